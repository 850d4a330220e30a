"""The real console script, run as a subprocess with a clean `VIPPS_PROXY_*` environment."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from proxy.cli import main

SCRIPT = Path(sys.executable).parent / "vipps-audit-proxy"
RUN_SECONDS = 60.0

Cli = Callable[..., subprocess.CompletedProcess[str]]


def clean_env(**settings: str) -> dict[str, str]:
    """The test's environment without any `VIPPS_PROXY_*` variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("VIPPS_PROXY_")}
    env.update(settings)
    return env


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | bytes | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `vipps-audit-proxy ARGS` to completion (bounded) and return its output as text."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run(
        [str(SCRIPT), *args],
        input=data,
        capture_output=True,
        env=dict(env) if env is not None else clean_env(),
        cwd=cwd,
        timeout=RUN_SECONDS,
        check=False,
    )
    stdout = result.stdout.decode("utf-8")
    stderr = result.stderr.decode("utf-8")
    # No subcommand ever ends in a Python traceback, whatever the input.
    assert "Traceback" not in stderr, stderr
    return subprocess.CompletedProcess(result.args, result.returncode, stdout, stderr)


def in_process(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Cli:
    """`proxy.cli.main` called in this process, with the same arguments and results as
    `run_cli`: the same code, measured by coverage (a subprocess is not)."""

    def run(
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        settings = env if env is not None else clean_env()
        with monkeypatch.context() as patch:
            for name in [n for n in os.environ if n.upper().startswith("VIPPS_PROXY_")]:
                patch.delenv(name)
            for name, value in settings.items():
                if name.upper().startswith("VIPPS_PROXY_"):
                    patch.setenv(name, value)
            data = stdin.encode() if isinstance(stdin, str) else stdin or b""
            patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
            if cwd is not None:
                patch.chdir(cwd)
            capfd.readouterr()
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's --help, --version and usage errors
                code = exc.code if isinstance(exc.code, int) else 0
            out, err = capfd.readouterr()
        return subprocess.CompletedProcess([SCRIPT.name, *args], code, out, err)

    return run


@pytest.fixture(params=["script", "in-process"])
def cli(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> Cli:
    """`cli(*args, env=..., stdin=..., cwd=...)`: the console script as a user runs it, and
    the same command line called in-process."""
    if request.param == "in-process":
        return in_process(monkeypatch, capfd)
    assert SCRIPT.exists(), f"console script not installed at {SCRIPT}"
    return run_cli
