"""The README's "Try it locally" block, run command by command as a newcomer would.

The block is read from the README itself, so the test and the document cannot drift apart.
Only the ports change (8081, 8080 and 9180 may be taken on a shared machine); commands ending
in `&` run in the background and the next command waits until they listen, as a person typing
would. The README's other examples (the library test, the docker settings file) run too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from proxy.cli import build_parser
from tests.binaries import require_binary
from tests.cli.conftest import Cli, clean_env
from tests.cli.processes import accepts, free_port, ready, running, send, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README text under `## title`, up to the next `## ` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def commands(block: str) -> list[str]:
    """Shell commands of a block: comments dropped, continuation lines joined."""
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def test_the_block_is_what_this_test_expects() -> None:
    """Five steps: stand-in, proxy, two curls, grep, metrics, check."""
    steps = commands(code_blocks(section("Try it locally"), "sh")[0])
    assert [s.split()[0] for s in steps] == [
        ".venv/bin/vipps-audit-proxy",
        "VIPPS_PROXY_UPSTREAM_URL=http://127.0.0.1:8081",
        "curl",
        "curl",
        "grep",
        "curl",
        ".venv/bin/vipps-audit-proxy",
    ]


@pytest.mark.slow
def test_try_it_locally_runs_as_written(tmp_path: Path) -> None:
    """Every command of "Try it locally" works, and shows what the README says it shows."""
    require_binary("curl")
    standin, listen, admin = free_port(), free_port(), free_port()
    ports = {"8081": str(standin), "8080": str(listen), "9180": str(admin)}
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    env = clean_env(VIPPS_PROXY_LISTEN_PORT=str(listen), VIPPS_PROXY_ADMIN_PORT=str(admin))
    background: list[subprocess.Popen[bytes]] = []
    outputs: list[tuple[str, int, str]] = []
    try:
        for step in commands(code_blocks(section("Try it locally"), "sh")[0]):
            command = re.sub(r"\b(8081|8080|9180)\b", lambda m: ports[m.group(1)], step)
            if command.endswith("&"):
                process = subprocess.Popen(
                    # `exec env`: the process itself, not a shell, gets the SIGTERM at the end.
                    ["bash", "-c", "exec env " + command.removesuffix("&").strip()],
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.DEVNULL if "stand-in" in command else None,
                    stderr=subprocess.DEVNULL,
                )
                background.append(process)
                if "stand-in" in command:
                    wait_until(running(process, lambda: accepts(standin)), "stand-in listening")
                else:
                    wait_until(running(process, lambda: ready(admin)), "the proxy ready")
                continue
            done = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, timeout=60
            )
            outputs.append((step, done.returncode, done.stdout.decode()))
        dashboard = json.loads(send("GET", f"http://127.0.0.1:{admin}/dashboard/data")[2])
    finally:
        codes = [stop(p) for p in reversed(background)]
    assert codes == [0, 0]  # both stop cleanly on SIGTERM

    good, bad, grep, metrics, check = outputs
    assert good[1] == 0
    assert json.loads(good[2])["redirectUrl"].startswith("https://landing.vipps.no/")
    head, _, body = bad[2].partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 201")
    assert "Audit-Proxy-Findings: amount.not_integer,amount.bounds\r\n" in head
    assert json.loads(body)["reference"] == "quickstart-bad-1"
    [line] = grep[2].splitlines()
    record: dict[str, Any] = json.loads(line)
    assert [(f["rule"], f["action"]) for f in record["findings"]] == [
        ("amount.not_integer", "would_block"),
        ("amount.bounds", "would_block"),
    ]
    assert (
        'vipps_proxy_policy_findings_total{action="would_block",api="epayment",'
        'operation="create_payment",rule="amount.not_integer"} 1.0'
    ) in metrics[2]
    assert "amount.not_integer" in json.dumps(dashboard)
    assert check[1] == 1
    assert "blocked     amount.not_integer" in check[2]
    assert "would_block amount.bounds" in check[2]


def test_the_library_example_in_the_readme_passes(tmp_path: Path) -> None:
    """The README's pytest example for merchants runs green under pytest."""
    [example] = code_blocks(section("Command line"), "python")
    test_file = tmp_path / "test_merchant.py"
    test_file.write_text(example)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_every_subcommand_of_the_table_exists() -> None:
    """The README's command table and the parser name the same subcommands."""
    documented = re.findall(r"^\| `([a-z-]+)[ `]", section("Command line"), re.MULTILINE)
    parser = build_parser()
    [sub] = [a for a in parser._actions if a.dest == "==SUPPRESS==" and a.choices]
    assert set(documented) | {"serve"} == set(sub.choices or {})


def test_the_deployment_settings_file_passes_config_check(cli: Cli) -> None:
    """`config --check` accepts the settings the Kubernetes example ships (docker --env-file)."""
    lines = (ROOT / "deploy/kubernetes/vipps-audit-proxy.env").read_text().splitlines()
    settings = dict(
        line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")
    )
    result = cli("config", "--check", env=clean_env(**settings))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration is valid: policy mode report")
