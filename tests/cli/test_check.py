"""`vipps-audit-proxy check` through the real console script: inputs, settings, exit codes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, clean_env
from tests.cli.saved import har, http, jsonl, with_json
from tests.samples import (
    ECOM_INITIATE,
    EPAYMENT_CAPTURE,
    EPAYMENT_CREATE,
    EPAYMENT_CREATE_PLAIN,
    EPAYMENT_GET,
    EPAYMENT_REFUND,
    Sample,
)

GOOD = EPAYMENT_CREATE
FLOAT_AMOUNT = with_json(
    EPAYMENT_CREATE, amount={"currency": "NOK", "value": 49900.5}, reference="order-654321"
).with_headers(Idempotency_Key="idem-create-0002")
WRITERS = {"har": har, "http": http, "jsonl": jsonl}


def report(cli: Cli, *args: str, **settings: str) -> tuple[int, dict[str, Any]]:
    result = cli("check", "--format", "json", *args, env=clean_env(**settings))
    return result.returncode, json.loads(result.stdout)


def rules_of(document: dict[str, Any]) -> list[list[tuple[str, str]]]:
    """Per request, its (rule, outcome) pairs."""
    return [[(f["rule"], f["outcome"]) for f in r["findings"]] for r in document["requests"]]


@pytest.mark.parametrize("kind", ["har", "http", "jsonl"])
def test_every_input_format_gives_the_same_findings(cli: Cli, tmp_path: Path, kind: str) -> None:
    """A good and a bad create, saved as HAR, HTTP messages or JSON Lines, are judged alike."""
    saved = tmp_path / f"requests.{kind}"
    saved.write_text(WRITERS[kind]([GOOD, FLOAT_AMOUNT]))
    code, document = report(cli, str(saved))
    assert code == 1
    assert [r["operation"] for r in document["requests"]] == ["epayment.create_payment"] * 2
    assert rules_of(document) == [[], [("amount.not_integer", "blocked")]]
    assert [r["blocked"] for r in document["requests"]] == [False, True]
    assert document["errors"] == []


def test_the_format_is_told_by_content_not_name(cli: Cli, tmp_path: Path) -> None:
    """A HAR file named .txt and JSON Lines named .http are read as what they are."""
    (tmp_path / "a.txt").write_text(har([FLOAT_AMOUNT]))
    (tmp_path / "b.http").write_text(jsonl([FLOAT_AMOUNT]))
    code, document = report(cli, str(tmp_path / "a.txt"), str(tmp_path / "b.http"))
    assert code == 1
    assert [(r["entry"], r["line"]) for r in document["requests"]] == [(0, None), (None, 1)]
    assert rules_of(document) == [[("amount.not_integer", "blocked")]] * 2


def test_standard_input_is_read_for_a_dash(cli: Cli) -> None:
    """`check -` reads the requests from standard input."""
    result = cli("check", "-", stdin=jsonl([GOOD]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<stdin>:1: POST /epayment/v1/payments (epayment.create_payment): passes" in (
        result.stdout
    )


def test_jsonl_body_may_be_a_json_value_kept_exactly_as_written(cli: Cli) -> None:
    """A body given as a JSON value keeps its numbers as written: 49900.0 is still a float."""
    line = json.dumps({"method": "POST", "path": GOOD.path, "headers": GOOD.headers})
    body = GOOD.body.decode().replace('"value":49900', '"value":49900.0')
    line = line[:-1] + ', "body": ' + body + "}"
    result = cli("check", "--format", "json", "-", stdin=line + "\n")
    assert result.returncode == 1
    findings = json.loads(result.stdout)["requests"][0]["findings"]
    assert [(f["rule"], f["field"]) for f in findings] == [("amount.not_integer", "amount.value")]
    assert "sent 49900.0" in findings[0]["message"]


def test_jsonl_headers_may_be_pairs_and_the_target_a_url(cli: Cli) -> None:
    """`headers` as [name, value] pairs and `url` instead of `path` are accepted."""
    line = {
        "method": "GET",
        "url": "https://api.vipps.no/epayment/v1/payments/order-123456?x=1",
        "headers": [[k, v] for k, v in EPAYMENT_GET.headers.items()],
    }
    result = cli("check", "--format", "json", "-", stdin=json.dumps(line))
    document = json.loads(result.stdout)
    assert result.returncode == 0
    assert document["requests"][0]["operation"] == "epayment.get_payment"
    assert document["requests"][0]["query"] == "x=1"


def test_settings_of_the_environment_apply(cli: Cli, tmp_path: Path) -> None:
    """POLICY_MODE, RULE_ACTIONS and AMOUNT_BOUNDS change the outcome exactly as in the proxy."""
    saved = tmp_path / "r.jsonl"
    cheap = with_json(GOOD, amount={"currency": "NOK", "value": 499})
    saved.write_text(jsonl([FLOAT_AMOUNT]))
    code, document = report(cli, str(saved), VIPPS_PROXY_POLICY_MODE="report")
    assert (code, rules_of(document)) == (0, [[("amount.not_integer", "would_block")]])
    code, document = report(cli, str(saved), VIPPS_PROXY_RULE_ACTIONS="amount.not_integer=report")
    assert (code, rules_of(document)) == (0, [[("amount.not_integer", "would_block")]])
    code, document = report(cli, str(saved), VIPPS_PROXY_POLICY_MODE="off")
    assert (code, rules_of(document)) == (0, [[]])

    saved.write_text(jsonl([cheap]))
    code, document = report(cli, str(saved))
    assert (code, rules_of(document)) == (0, [[("amount.bounds", "would_block")]])
    code, document = report(cli, str(saved), VIPPS_PROXY_RULE_ACTIONS="amount.bounds=block")
    assert (code, rules_of(document)) == (1, [[("amount.bounds", "blocked")]])
    code, document = report(cli, str(saved), VIPPS_PROXY_AMOUNT_BOUNDS="NOK=100..1000")
    assert (code, rules_of(document)) == (0, [[]])


def test_payment_level_rules_see_the_requests_of_one_run_in_order(cli: Cli, tmp_path: Path) -> None:
    """Across two files: captures beyond the reservation, a reused key and a rate limit."""
    first = tmp_path / "1-create.http"
    first.write_text(http([EPAYMENT_CREATE_PLAIN]))
    capture = with_json(EPAYMENT_CAPTURE, modificationAmount={"currency": "NOK", "value": 30000})
    again = capture.with_headers(Idempotency_Key="idem-capture-0002")
    reused = with_json(capture, modificationAmount={"currency": "NOK", "value": 100}).with_headers(
        Idempotency_Key="idem-capture-0001"
    )
    second = tmp_path / "2-captures.jsonl"
    second.write_text(jsonl([capture, again, reused]))
    code, document = report(cli, str(first), str(second))
    assert code == 1
    assert rules_of(document) == [
        [],
        [],
        [("ledger.capture_exceeds_reserved", "blocked")],
        [("idempotency.key_reused", "blocked")],
    ]
    # Each file alone has no payment to hold the captures against.
    code, document = report(cli, str(second))
    assert rules_of(document)[1] == []

    initiates = tmp_path / "initiates.jsonl"
    initiates.write_text(jsonl([ECOM_INITIATE] * 3))
    code, document = report(cli, str(initiates))
    assert (code, rules_of(document)) == (1, [[], [], [("rate_limit.exceeded", "blocked")]])
    code, document = report(
        cli, str(initiates), VIPPS_PROXY_RATE_LIMITS="ecom.initiate_payment=off"
    )
    assert (code, rules_of(document)) == (0, [[], [], []])


def test_har_times_are_the_clock_of_the_payment_level_rules(cli: Cli, tmp_path: Path) -> None:
    """A poll 1 s after the create is too early; 6 s after it is not (Vipps' guidelines)."""
    saved = tmp_path / "poll.har"
    saved.write_text(har([GOOD, EPAYMENT_GET], seconds_apart=1.0))
    code, document = report(cli, str(saved))
    assert (code, rules_of(document)) == (0, [[], [("polling.too_frequent", "would_block")]])
    saved.write_text(har([GOOD, EPAYMENT_GET], seconds_apart=6.0))
    code, document = report(cli, str(saved))
    assert (code, rules_of(document)) == (0, [[], []])


def test_har_entries_to_other_hosts_are_skipped(cli: Cli, tmp_path: Path) -> None:
    """Only entries to a Vipps host or a catalogued path are checked; the rest are counted."""
    other = json.loads(har([GOOD]))["log"]["entries"][0]
    other["request"]["url"] = "https://cdn.example.com/app.js"
    other["request"]["method"] = "GET"
    saved = tmp_path / "browse.har"
    saved.write_text(har([FLOAT_AMOUNT], extra=[other]))
    result = cli("check", str(saved))
    assert result.returncode == 1
    assert "1 request checked in 1 input" in result.stdout
    assert "1 HAR entries to other hosts skipped" in result.stdout


def test_text_output_names_field_problem_expected_and_repair(cli: Cli, tmp_path: Path) -> None:
    """The text block gives the field, the problem, the expected value and the repair."""
    phone = with_json(GOOD, customer={"phoneNumber": "+47 912 34 567"})
    saved = tmp_path / "phone.jsonl"
    saved.write_text(jsonl([phone]))
    result = cli("check", str(saved))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"{saved}:1: POST /epayment/v1/payments (epayment.create_payment): passes"
    assert lines[1].split()[:3] == ["repaired", "phone.format", "customer.phoneNumber:"]
    assert "expected MSISDN digits with country code" in lines[1]
    assert "(sent +47******67)" in lines[1]  # a phone number is masked as in the log
    assert lines[2].split() == ["repair:", '"4791234567"']
    assert lines[-1] == ("1 request checked in 1 input: 0 would be blocked, 1 finding, 0 errors")


def test_a_clean_run_exits_0(cli: Cli, tmp_path: Path) -> None:
    """Only valid requests: exit 0, every request passes."""
    samples: list[Sample] = [GOOD, EPAYMENT_GET, ECOM_INITIATE]
    saved = tmp_path / "ok.har"
    saved.write_text(har(samples, seconds_apart=10.0))
    result = cli("check", str(saved))
    assert result.returncode == 0, result.stdout
    assert result.stdout.count(": passes") == 3


def test_refund_is_checked_too(cli: Cli, tmp_path: Path) -> None:
    """A refund with a float amount is blocked like any other money field."""
    refund = with_json(EPAYMENT_REFUND, modificationAmount={"currency": "NOK", "value": 1.5})
    saved = tmp_path / "refund.http"
    saved.write_text(http([refund]))
    code, document = report(cli, str(saved))
    assert (code, rules_of(document)) == (1, [[("amount.not_integer", "blocked")]])


def test_har_entry_details(cli: Cli, tmp_path: Path) -> None:
    """Base64 bodies are decoded; HTTP/2 pseudo-headers dropped; broken entries are errors."""
    log = json.loads(har([FLOAT_AMOUNT, GOOD]))
    first = log["log"]["entries"][0]["request"]
    first["postData"] = {
        "mimeType": "application/json",
        "encoding": "base64",
        "text": base64.b64encode(FLOAT_AMOUNT.body).decode(),
    }
    first["headers"].append({"name": ":authority", "value": "api.vipps.no"})
    log["log"]["entries"][1]["request"]["headers"] = [{"name": "X"}]
    log["log"]["entries"].extend(
        [
            "not an entry",
            {"request": {"method": "POST"}},
            {"request": {"method": "GET", "url": "https://api.vipps.no/x", "headers": {}}},
            {"request": {"method": "POST", "url": "https://api.vipps.no/epayment/v1/payments",
                         "postData": {"encoding": "base64", "text": "@@@"}}},
        ]
    )  # fmt: skip
    saved = tmp_path / "odd.har"
    saved.write_text(json.dumps(log))
    code, document = report(cli, str(saved))
    assert code == 2
    assert rules_of(document) == [[("amount.not_integer", "blocked")]]
    assert [(e["entry"], e["message"]) for e in document["errors"]] == [
        (1, "a request header has no name or value string"),
        (2, "entry has no request object"),
        (3, "request has no method or url string"),
        (4, "request.headers is not an array"),
        (5, "request.postData.text is not valid base64"),
    ]
