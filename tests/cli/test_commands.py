"""`--help`, `--version`, `rules`, `operations` and `config` through the real console script."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from policies.audit.ratelimit import DEFAULT_LIMITS
from policies.catalogue.operations import OPERATIONS
from proxy import __version__
from proxy.config import Settings
from proxy.listings import REDACTED, setting_rows
from tests.cli.conftest import Cli, clean_env

SUBCOMMANDS = ["serve", "check", "rules", "operations", "config", "stand-in"]


@pytest.fixture
def held_ports() -> Iterator[dict[str, str]]:
    """Settings naming two ports this test holds: a command that tried to serve would fail."""
    sockets = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        sockets.append(s)
    yield clean_env(
        VIPPS_PROXY_LISTEN_PORT=str(sockets[0].getsockname()[1]),
        VIPPS_PROXY_ADMIN_PORT=str(sockets[1].getsockname()[1]),
    )
    for s in sockets:
        s.close()


@pytest.mark.parametrize("args", [["--help"], *[[c, "--help"] for c in SUBCOMMANDS]])
def test_help_on_every_level_starts_nothing(
    cli: Cli, held_ports: dict[str, str], args: list[str]
) -> None:
    """`--help` prints usage and exits 0 at once, on every level, binding no port."""
    result = cli(*args, env=held_ports)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: vipps-audit-proxy")
    assert result.stderr == ""


def test_top_level_help_lists_every_subcommand(cli: Cli) -> None:
    """The top-level help names each subcommand."""
    result = cli("--help")
    for name in SUBCOMMANDS:
        assert re.search(rf"^    {name}\b", result.stdout, re.MULTILINE), name


def test_version_starts_nothing(cli: Cli, held_ports: dict[str, str]) -> None:
    """`--version` prints the installed version and exits 0."""
    result = cli("--version", env=held_ports)
    assert (result.returncode, result.stdout) == (0, f"vipps-audit-proxy {__version__}\n")


def test_python_dash_m_proxy_is_the_same_command_line() -> None:
    """`python -m proxy --version` goes through the same parser as the console script."""
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, f"vipps-audit-proxy {__version__}\n")


def test_an_unknown_subcommand_is_a_usage_error(cli: Cli) -> None:
    """argparse's own usage error, exit 2."""
    result = cli("chekc")
    assert result.returncode == 2
    assert "invalid choice: 'chekc'" in result.stderr


def test_rules_lists_every_rule_with_its_actions(cli: Cli) -> None:
    """Every rule: code, effective action, default, whether it repairs, what it checks."""
    result = cli("rules", "--format", "json")
    assert result.returncode == 0
    rules = {r["code"]: r for r in json.loads(result.stdout)}
    assert len(rules) == 26
    assert rules["amount.bounds"] == {
        "code": "amount.bounds",
        "action": "report",
        "default": "report",
        "repair": False,
        "checks": rules["amount.bounds"]["checks"],
        "evidence": [
            {
                "condition": "house_range",
                "default": "report",
                "evidence": [],
                "why": rules["amount.bounds"]["evidence"][0]["why"],
            }
        ],
    }
    assert rules["phone.format"]["action"] == "repair"
    assert rules["rate_limit.exceeded"]["default"] == "block"
    assert all(r["checks"] for r in rules.values())
    # Every condition that blocks by default names the documented rejection behind it.
    blocking = [c for r in rules.values() for c in r["evidence"] if c["default"] == "block"]
    assert blocking
    assert all(
        c["evidence"] and all(e["source"] and e["says"] for e in c["evidence"]) for c in blocking
    )


def test_rules_shows_the_environment_overrides(cli: Cli) -> None:
    """RULE_ACTIONS changes a rule's action; report and off modes change every rule's."""
    env = clean_env(VIPPS_PROXY_RULE_ACTIONS="amount.bounds=block,phone.format=off")
    rules = {r["code"]: r for r in json.loads(cli("rules", "--format", "json", env=env).stdout)}
    assert (rules["amount.bounds"]["action"], rules["amount.bounds"]["default"]) == (
        "block",
        "report",
    )
    assert rules["phone.format"]["action"] == "off"
    env = clean_env(VIPPS_PROXY_POLICY_MODE="report")
    rules = {r["code"]: r for r in json.loads(cli("rules", "--format", "json", env=env).stdout)}
    assert {r["action"] for r in rules.values()} == {"report"}
    text = cli("rules").stdout.splitlines()
    assert text[0].split() == ["code", "action", "default", "repair", "checks", "evidence"]
    assert text[1].split()[:4] == ["body.invalid_json", "block", "block", "false"]


def test_operations_lists_the_catalogue_with_rate_limits(cli: Cli) -> None:
    """Every operation name, method, template and Vipps' documented rate limit."""
    result = cli("operations", "--format", "json")
    assert result.returncode == 0
    rows = json.loads(result.stdout)
    assert [r["operation"] for r in rows] == [op.key for op in OPERATIONS]
    by_name = {r["operation"]: r for r in rows}
    assert by_name["epayment.capture_payment"] == {
        "operation": "epayment.capture_payment",
        "method": "POST",
        "path": "/epayment/v1/payments/{reference}/capture",
        "deprecated": False,
        "rate_limit": "5/60s per reference + Merchant-Serial-Number",
        "in_force": "5/60s per reference + Merchant-Serial-Number",
    }
    assert (
        by_name["ecom.initiate_payment"]["rate_limit"]
        == "2/60s per orderId + Merchant-Serial-Number"
    )
    assert sum(r["rate_limit"] is not None for r in rows) == len(DEFAULT_LIMITS)


def test_operations_shows_the_limits_in_force_and_filters(cli: Cli) -> None:
    """RATE_LIMITS changes the limit in force; names filter the list."""
    env = clean_env(VIPPS_PROXY_RATE_LIMITS="ecom.initiate_payment=off,epayment.get_payment=60/60")
    result = cli("operations", "ecom.initiate_payment", "epayment.get_payment", env=env)
    assert result.returncode == 0
    cells = [re.split(r"\s{2,}", line) for line in result.stdout.splitlines()]
    assert cells == [
        ["operation", "method", "path", "deprecated", "rate_limit", "in_force"],
        [
            "epayment.get_payment",
            "GET",
            "/epayment/v1/payments/{reference}",
            "false",
            "120/60s per reference + subscription key",
            "60/60s per reference + subscription key",
        ],
        [
            "ecom.initiate_payment",
            "POST",
            "/ecomm/v2/payments",
            "false",
            "2/60s per orderId + Merchant-Serial-Number",
            "-",
        ],
    ]


def test_an_unknown_operation_name_is_exit_2(cli: Cli) -> None:
    """A name outside the catalogue: one line with the closest name, exit 2."""
    result = cli("operations", "epayment.capture")
    assert result.returncode == 2
    assert result.stderr == (
        "vipps-audit-proxy: unknown operation epayment.capture; did you mean"
        " epayment.capture_payment? (`vipps-audit-proxy operations` lists them all)\n"
    )


def test_config_shows_each_value_and_where_it_came_from(cli: Cli) -> None:
    """Effective settings after the environment, each with its source."""
    env = clean_env(
        VIPPS_PROXY_POLICY_MODE="report",
        VIPPS_PROXY_RULE_ACTIONS="amount.bounds=block",
        VIPPS_PROXY_UPSTREAM_URL="https://api.vipps.no",
        VIPPS_PROXY_POLICY_MOOD="x",
        VIPPS_PROXY_STRICT_SETTINGS="false",
    )
    result = cli("config", "--format", "json", env=env)
    assert result.returncode == 0
    rows = {r["variable"]: (r["value"], r["source"]) for r in json.loads(result.stdout)}
    assert set(rows) == {"VIPPS_PROXY_" + name.upper() for name in Settings.model_fields}
    assert rows["VIPPS_PROXY_POLICY_MODE"] == ("report", "environment")
    assert rows["VIPPS_PROXY_RULE_ACTIONS"] == ("amount.bounds=block", "environment")
    assert rows["VIPPS_PROXY_UPSTREAM_URL"] == ("https://api.vipps.no/", "environment")
    assert rows["VIPPS_PROXY_LISTEN_PORT"] == (8080, "default")
    assert rows["VIPPS_PROXY_UPSTREAM_CA_BUNDLE"] == (None, "default")
    assert (
        "vipps-audit-proxy: warning: unknown setting VIPPS_PROXY_POLICY_MOOD"
        " (did you mean VIPPS_PROXY_POLICY_MODE?)"
    ) in result.stderr
    # As `serve`, strict settings (the default) refuse the unknown variable.
    strict = cli("config", "--check", env={**env, "VIPPS_PROXY_STRICT_SETTINGS": "true"})
    assert strict.returncode == 2
    assert "VIPPS_PROXY_POLICY_MOOD" in strict.stderr
    cells = [re.split(r"\s{2,}", line) for line in cli("config", env=env).stdout.splitlines()]
    assert cells[0] == ["variable", "value", "source"]
    assert ["VIPPS_PROXY_POLICY_MODE", "report", "environment"] in cells
    assert ["VIPPS_PROXY_UPSTREAM_CA_BUNDLE", "-", "default"] in cells


def test_config_check_validates_without_starting(cli: Cli, held_ports: dict[str, str]) -> None:
    """`config --check`: 0 and one line when valid, 2 and the variable's name when not."""
    result = cli("config", "--check", env=held_ports)
    assert result.returncode == 0
    assert result.stdout.startswith("configuration is valid: policy mode enforce, 26 rules")
    bad = {**held_ports, "VIPPS_PROXY_LISTEN_PORT": "0"}
    result = cli("config", "--check", env=bad)
    assert result.returncode == 2
    assert result.stderr == (
        "vipps-audit-proxy: invalid configuration: VIPPS_PROXY_LISTEN_PORT:"
        " Input should be greater than or equal to 1\n"
    )


def test_config_redacts_secrets() -> None:
    """A secret setting is shown redacted, never in clear; an empty one stays empty."""

    class WithSecret(Settings):
        api_token: SecretStr = SecretStr("")

    rows = {r.variable: r for r in setting_rows(WithSecret(api_token=SecretStr("s3cr3t-value")))}
    assert rows["VIPPS_PROXY_API_TOKEN"].value == REDACTED
    assert rows["VIPPS_PROXY_API_TOKEN"].source == "environment"
    rows = {r.variable: r for r in setting_rows(WithSecret())}
    assert (rows["VIPPS_PROXY_API_TOKEN"].value, rows["VIPPS_PROXY_API_TOKEN"].source) == (
        "",
        "default",
    )
