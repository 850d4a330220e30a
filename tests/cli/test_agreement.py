"""The same requests give the same findings through `check` and through a running proxy.

The proxy runs as `vipps-audit-proxy serve` in front of `vipps-audit-proxy stand-in`, both
real processes; the requests go through it in order, then the same requests, saved as JSON
Lines, go through `check` with the same settings. Each request's (rule, outcome) pairs from
the proxy's audit log must equal those `check` reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import clean_env, run_cli
from tests.cli.processes import accepts, console, free_port, ready, running, send, wait_until
from tests.cli.saved import jsonl, with_json
from tests.samples import ECOM_INITIATE, EPAYMENT_CAPTURE, EPAYMENT_CREATE_PLAIN, Sample

# Not an express payment: its reservation is known from the create, without Vipps' answers
# (which `check` never sees).
CREATE = EPAYMENT_CREATE_PLAIN
CAPTURE = with_json(EPAYMENT_CAPTURE, modificationAmount={"currency": "NOK", "value": 30000})
SEQUENCE: list[Sample] = [
    CREATE,
    with_json(CREATE, amount={"currency": "NOK", "value": 49900.5}, reference="o-2222222")
    .with_headers(Idempotency_Key="idem-create-0002"),
    with_json(CREATE, customer={"phoneNumber": "+47 912 34 567"}, reference="o-3333333")
    .with_headers(Idempotency_Key="idem-create-0003"),
    CAPTURE,
    CAPTURE.with_headers(Idempotency_Key="idem-capture-0002"),
    with_json(CAPTURE, modificationAmount={"currency": "NOK", "value": 100}),
    CAPTURE.with_headers(Idempotency_Key=None),
    ECOM_INITIATE,
    ECOM_INITIATE,
    ECOM_INITIATE,
]  # fmt: skip


def request_records(log: Path) -> list[dict[str, Any]]:
    """The proxy's audit records of requests, in order."""
    records = [json.loads(line) for line in log.read_bytes().splitlines() if line[:1] == b"{"]
    return [r for r in records if r.get("event") == "request"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["enforce", "report"])
def test_check_and_the_running_proxy_agree(tmp_path: Path, mode: str) -> None:
    """Ledger, idempotency, rate limit, repairs and blocks: the same findings both ways."""
    standin_port, listen, admin = free_port(), free_port(), free_port()
    settings = {"VIPPS_PROXY_POLICY_MODE": mode}
    env = clean_env(
        VIPPS_PROXY_UPSTREAM_URL=f"http://127.0.0.1:{standin_port}",
        VIPPS_PROXY_LISTEN_PORT=str(listen),
        VIPPS_PROXY_ADMIN_PORT=str(admin),
        **settings,
    )
    log = tmp_path / "proxy.log"
    standin = console("stand-in", "--port", str(standin_port), env=env, output=tmp_path / "s.log")
    with standin as standin_process, console("serve", env=env, output=log) as proxy:
        wait_until(running(standin_process, lambda: accepts(standin_port)), "stand-in listening")
        wait_until(running(proxy, lambda: ready(admin)), "the proxy ready")
        for s in SEQUENCE:
            send(s.method, f"http://127.0.0.1:{listen}{s.path}", s.headers, s.body)
    records = request_records(log)
    assert len(records) == len(SEQUENCE), log.read_text()
    through_proxy = [[(f["rule"], f["action"]) for f in r.get("findings", [])] for r in records]

    saved = tmp_path / "same.jsonl"
    saved.write_text(jsonl(SEQUENCE))
    result = run_cli("check", "--format", "json", str(saved), env=clean_env(**settings))
    checked = json.loads(result.stdout)["requests"]
    through_check = [[(f["rule"], f["outcome"]) for f in r["findings"]] for r in checked]
    assert through_check == through_proxy
    # The proxy blocked exactly what check says would be blocked.
    assert [r["outcome"] == "blocked" for r in records] == [r["blocked"] for r in checked]
    if mode == "enforce":
        assert through_check == [
            [],
            [("amount.not_integer", "blocked")],
            [("phone.format", "repaired")],
            [],
            [("ledger.capture_exceeds_reserved", "blocked")],
            [("idempotency.key_reused", "blocked")],
            [("header.missing", "blocked"), ("ledger.capture_exceeds_reserved", "blocked")],
            [],
            [],
            [("rate_limit.exceeded", "blocked")],
        ]
        assert result.returncode == 1
    else:
        assert not any(r["blocked"] for r in checked)
        assert result.returncode == 0
