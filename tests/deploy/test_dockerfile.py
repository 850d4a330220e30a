"""deploy/Dockerfile: a small, non-root, two-stage image whose defaults suit a pod.

No Docker engine runs here, so the image itself is not built; these tests lint the file, read
its instructions, and run its HEALTHCHECK command against a stand-in admin port.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from proxy.config import Settings, unknown_variables
from tests.deploy import DEPLOY, REPO, load_yaml

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its arguments, continuation lines joined."""

    keyword: str
    args: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions in order, comments and parser directives dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    found = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        found.append(Instruction(keyword.upper(), args.strip()))
    return found


def stages() -> list[list[Instruction]]:
    """Instructions grouped by build stage (each starts at FROM); global ARGs are dropped."""
    grouped: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append(instruction)
    return grouped


def runtime_env() -> dict[str, str]:
    """The ENV of the final stage, as KEY=VALUE pairs."""
    env: dict[str, str] = {}
    for instruction in stages()[-1]:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def only(keyword: str, stage: list[Instruction]) -> Instruction:
    """The single instruction `keyword` of a stage."""
    matches = [i for i in stage if i.keyword == keyword]
    assert len(matches) == 1, f"expected one {keyword}, found {len(matches)}"
    return matches[0]


def test_dockerfile_passes_hadolint(hadolint: str) -> None:
    """hadolint finds nothing at warning level or above (any ignore is justified inline)."""
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_builder_and_runtime_share_a_slim_python_base() -> None:
    """Both stages use the same python:3.11-slim base, so the venv's interpreter link resolves."""
    default = next(
        i.args for i in instructions() if i.keyword == "ARG" and i.args.startswith("PYTHON_IMAGE=")
    )
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?(@sha256:[0-9a-f]{64})?", default)
    froms = [stage[0].args for stage in stages()]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]


def test_runtime_stage_gets_only_the_venv() -> None:
    """The runtime stage copies the built venv and nothing else, and installs nothing."""
    runtime = stages()[-1]
    copies = [i.args for i in runtime if i.keyword in {"COPY", "ADD"}]
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    for instruction in runtime:
        if instruction.keyword == "RUN":
            assert not re.search(r"\b(apt-get|apt|pip|gcc|make)\b", instruction.args), instruction


def test_builder_installs_the_package_with_its_extras() -> None:
    """The builder installs the project with extras that pyproject.toml defines."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    builder = stages()[0]
    extras = only("ARG", builder).args.partition("=")[2]
    assert set(extras.split(",")) <= set(pyproject["project"]["optional-dependencies"])
    runs = " ".join(i.args for i in builder if i.keyword == "RUN")
    assert 'pip install --no-cache-dir ".[${PROXY_EXTRAS}]"' in runs


def test_image_runs_the_console_script_as_a_numeric_non_root_user() -> None:
    """ENTRYPOINT is the console script; USER is numeric, not root, and the pod's runAsUser."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = stages()[-1]
    entrypoint = json.loads(only("ENTRYPOINT", runtime).args)
    assert entrypoint == ["vipps-audit-proxy"]
    assert entrypoint[0] in pyproject["project"]["scripts"]
    user = only("USER", runtime).args
    match = re.fullmatch(r"(\d+):(\d+)", user)
    assert match is not None
    assert int(match[1]) != 0
    deployment = load_yaml(DEPLOY / "kubernetes" / "deployment.yaml")
    sidecar = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert sidecar["securityContext"]["runAsUser"] == int(match[1])
    assert sidecar["securityContext"]["runAsGroup"] == int(match[2])


def test_exposed_ports_and_env_defaults_are_valid_settings() -> None:
    """EXPOSE names the two ports of the ENV defaults, which the proxy's Settings accept."""
    env = runtime_env()
    proxy_env = {k: v for k, v in env.items() if k.startswith("VIPPS_PROXY_")}
    assert unknown_variables(proxy_env) == []
    settings = Settings.model_validate(
        {k.removeprefix("VIPPS_PROXY_").lower(): v for k, v in proxy_env.items()}
    )
    assert settings.admin_host == "0.0.0.0"
    exposed = only("EXPOSE", stages()[-1]).args.split()
    assert exposed == [str(settings.listen_port), str(settings.admin_port)]
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


class _Admin(BaseHTTPRequestHandler):
    """A stand-in admin port: /livez answers with the class's status."""

    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/livez" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads exit codes, not logs."""


@pytest.fixture
def admin_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """Port of a stand-in admin server on loopback whose /livez answers the parametrised status."""
    handler = type("Admin", (_Admin,), {"status": request.param})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def run_healthcheck(port: int) -> int:
    """Exit code of the image's HEALTHCHECK command, run with this interpreter."""
    args = only("HEALTHCHECK", stages()[-1]).args
    command = json.loads(args[args.index("CMD") + 3 :])
    assert command[:2] == ["python", "-c"]
    result = subprocess.run(
        [sys.executable, *command[1:]],
        env={"VIPPS_PROXY_ADMIN_PORT": str(port)},
        capture_output=True,
        check=False,
        timeout=10,
    )
    return result.returncode


@pytest.mark.parametrize(
    ("admin_port", "healthy"), [(200, True), (503, False)], indirect=["admin_port"]
)
def test_healthcheck_asks_livez(admin_port: int, *, healthy: bool) -> None:
    """The HEALTHCHECK exits 0 when /livez answers 200 and non-zero otherwise."""
    assert (run_healthcheck(admin_port) == 0) is healthy


def test_healthcheck_fails_when_nothing_listens() -> None:
    """The HEALTHCHECK fails when the admin port is closed."""
    with HTTPServer(("127.0.0.1", 0), _Admin) as server:
        port = server.server_address[1]
    assert run_healthcheck(port) != 0


def test_build_context_is_an_allowlist_holding_what_is_copied() -> None:
    """The .dockerignore excludes everything but the files the Dockerfile copies, which exist."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for instruction in instructions():
        if instruction.keyword == "COPY" and not instruction.args.startswith("--from"):
            *sources, _ = instruction.args.split()
            for source in sources:
                assert source.rstrip("/") in allowed, source
                assert (REPO / source).exists(), source
