"""Bad input and bad settings: one clear line each, exit code 2, never a traceback."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, clean_env
from tests.cli.saved import har, http, jsonl, with_json
from tests.samples import EPAYMENT_CREATE

FLOAT_AMOUNT = with_json(
    EPAYMENT_CREATE, amount={"currency": "NOK", "value": 49900.5}
).with_headers(Idempotency_Key="idem-create-0002")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            har([EPAYMENT_CREATE])[:700].encode(),
            "is not valid JSON (Expecting value: line ",
            id="truncated-har",
        ),
        pytest.param(
            har([EPAYMENT_CREATE]).encode()[:-40],
            "a truncated HAR file?",
            id="har-cut-at-the-end",
        ),
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file, not a HAR file",
            id="binary",
        ),
        pytest.param(b"\xff\xfe\xfa not utf-8", "is not UTF-8 text (byte 0)", id="latin-1"),
        pytest.param(b"", "is empty", id="empty"),
        pytest.param(b"hello there\n", "is not a HAR file, an HTTP request message", id="prose"),
        pytest.param(
            b'{"log": {"version": "1.2"}}', "is JSON but not a HAR file (no log.entries array)",
            id="har-without-entries",
        ),
    ],
)  # fmt: skip
def test_unreadable_inputs(cli: Cli, tmp_path: Path, content: bytes, message: str) -> None:
    """Each unreadable input is named with what is wrong with it, and the exit code is 2."""
    saved = tmp_path / "input.har"
    saved.write_bytes(content)
    result = cli("check", str(saved))
    assert result.returncode == 2
    [line] = [x for x in result.stdout.splitlines() if x.startswith(f"{saved}: error: ")]
    assert message in line


def test_unknown_operation_is_an_error_with_the_closest_one(cli: Cli, tmp_path: Path) -> None:
    """A path outside the catalogue is named, with the closest operation, exit 2."""
    typo = replace(EPAYMENT_CREATE, path="/epayment/v1/payment")
    saved = tmp_path / "typo.http"
    saved.write_text(http([typo]))
    result = cli("check", str(saved))
    assert result.returncode == 2
    assert (
        f"{saved}:1: error: POST /epayment/v1/payment is not an operation of the catalogue"
        " (`vipps-audit-proxy operations` lists them); did you mean POST /epayment/v1/payments?"
    ) in result.stdout


def test_errors_win_over_findings_but_every_request_is_still_checked(
    cli: Cli, tmp_path: Path
) -> None:
    """A bad line among good ones: the others are still judged, the exit code is 2."""
    lines = jsonl([FLOAT_AMOUNT]) + "{not json\n" + json.dumps({"method": "GET"}) + "\n"
    lines += json.dumps({"method": "GET", "path": "/x", "headers": "nope"}) + "\n"
    saved = tmp_path / "mixed.jsonl"
    saved.write_text(lines)
    result = cli("check", "--format", "json", str(saved))
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["requests"][0]["blocked"] is True
    assert [(e["line"], e["message"]) for e in document["errors"]] == [
        (2, "not valid JSON: Expecting property name enclosed in double quotes at column 2"),
        (3, 'needs "method" and "path" (or "url") strings'),
        (4, '"headers" is not an object or [name, value] pairs'),
    ]
    assert f"{saved}:2: not valid JSON" in result.stderr


def test_http_message_errors(cli: Cli, tmp_path: Path) -> None:
    """A header line without a colon in an HTTP message is named by its line."""
    saved = tmp_path / "bad.http"
    saved.write_text("POST /epayment/v1/payments HTTP/1.1\nAuthorization Bearer x\n\n{}\n")
    result = cli("check", str(saved))
    assert result.returncode == 2
    assert "bad.http:1: error: line 2: expected a header `Name: value` or a blank line" in (
        result.stdout
    )


def test_a_missing_file(cli: Cli, tmp_path: Path) -> None:
    """A file that does not exist is an error, not a crash."""
    result = cli("check", str(tmp_path / "nowhere.har"))
    assert result.returncode == 2
    assert "nowhere.har: error: cannot be read: No such file or directory" in result.stdout


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(
            {"VIPPS_PROXY_POLICY_MODE": "strict"},
            "invalid configuration: VIPPS_PROXY_POLICY_MODE: Input should be 'enforce', "
            "'report' or 'off'",
            id="mode",
        ),
        pytest.param(
            {"VIPPS_PROXY_RULE_ACTIONS": "amount.integer=block"},
            "invalid configuration: VIPPS_PROXY_RULE_ACTIONS: unknown rule amount.integer;",
            id="unknown-rule",
        ),
        pytest.param(
            {"VIPPS_PROXY_RULE_ACTIONS": "header.missing=repair"},
            "rule header.missing has no safe repair",
            id="no-repair",
        ),
        pytest.param(
            {"VIPPS_PROXY_RATE_LIMITS": "epayment.capture=5/60"},
            "VIPPS_PROXY_RATE_LIMITS: rate limit 'epayment.capture=5/60': unknown operation "
            "'epayment.capture'",
            id="unknown-operation",
        ),
        pytest.param(
            {"VIPPS_PROXY_AMOUNT_BOUNDS": "NOK=10..1"},
            "invalid configuration: VIPPS_PROXY_AMOUNT_BOUNDS:",
            id="bounds",
        ),
    ],
)
@pytest.mark.parametrize("command", ["check", "rules", "operations", "config"])
def test_bad_settings_stop_every_command_with_exit_2(
    cli: Cli, tmp_path: Path, settings: dict[str, str], message: str, command: str
) -> None:
    """The same invalid settings that stop the proxy stop each subcommand, with one line."""
    saved = tmp_path / "r.jsonl"
    saved.write_text(jsonl([EPAYMENT_CREATE]))
    args = [command, str(saved)] if command == "check" else [command]
    result = cli(*args, env=clean_env(**settings))
    if command == "operations" and "RULE_ACTIONS" in str(settings):
        assert result.returncode == 0  # the catalogue does not depend on the rule actions
        return
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("vipps-audit-proxy: invalid configuration: ")
    assert message in line


def test_binary_standard_input(cli: Cli) -> None:
    """Binary bytes on standard input are named as `<stdin>`, exit 2."""
    result = cli("check", "--format", "github", "-", stdin=b"\x00\x01\x02")
    assert result.returncode == 2
    assert result.stdout == (
        "::error file=<stdin>,title=unreadable input::is a binary file, not a HAR file,"
        " an HTTP request message or JSON Lines\n"
    )
    assert result.stderr.startswith("vipps-audit-proxy: <stdin>: is a binary file")
