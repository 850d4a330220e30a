"""The systems under test: the Vipps stand-in, nginx, the aiohttp pass-through, the proxy.

Each starter starts one system pinned to the system-under-test core, waits until it serves,
and returns its process (None for the direct path) and the URL wrk should load.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.bench.processes import (
    Child,
    Children,
    free_port,
    require,
    wait_http_ok,
    wait_listening,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parents[1]
# Changes made at start-up, in the interpreter, to measure what something costs without
# editing the proxy: row 4b makes `import uvloop` fail.
_NO_UVLOOP = "sys.modules['uvloop'] = None"


@dataclass
class Setup:
    """What every row needs: where to put files, the stand-in's URL, and the core layout."""

    children: Children
    workdir: Path
    upstream: Child
    upstream_url: str
    sut_cpu: str | None
    load_cpu: str | None


def start_stand_in(
    kids: Children, workdir: Path, sut_cpu: str | None, load_cpu: str | None
) -> Setup:
    """Start the Vipps stand-in on the load core."""
    port = free_port()
    argv = [sys.executable, str(BENCH / "upstream.py"), "--port", str(port)]
    upstream = kids.start("upstream", argv, cpu=load_cpu)
    wait_listening(upstream, port)
    return Setup(kids, workdir, upstream, f"http://127.0.0.1:{port}", sut_cpu, load_cpu)


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def _proxy_argv(with_uvloop: bool, tracemalloc_to: Path | None) -> list[str]:
    changes = [] if with_uvloop else [_NO_UVLOOP]
    if tracemalloc_to is not None:
        changes.append(f"from tests.bench.memory import install; install({str(tracemalloc_to)!r})")
    if changes:
        code = "; ".join(["import sys", *changes, "from proxy.__main__ import main"])
        return [sys.executable, "-c", code + "; sys.exit(main())"]
    script = Path(sys.executable).with_name("vipps-audit-proxy")
    return [str(script)] if script.exists() else [sys.executable, "-m", "proxy"]


def start_proxy(
    setup: Setup,
    name: str,
    *,
    mode: str,
    with_uvloop: bool,
    log_level: str = "info",
    tracemalloc_to: Path | None = None,
) -> tuple[Child, str]:
    """The proxy with its defaults except the ports, the upstream, the policy mode and what
    the ablation rows change; its log goes to a file. `tracemalloc_to`: see memory.py."""
    port, admin = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("VIPPS_PROXY_")}
    env.update(
        VIPPS_PROXY_UPSTREAM_URL=setup.upstream_url,
        VIPPS_PROXY_LISTEN_PORT=str(port),
        VIPPS_PROXY_ADMIN_PORT=str(admin),
        VIPPS_PROXY_POLICY_MODE=mode,
        VIPPS_PROXY_LOG_LEVEL=log_level,
    )
    child = setup.children.start(
        name,
        _proxy_argv(with_uvloop, tracemalloc_to),
        cpu=setup.sut_cpu,
        env=env,
        cwd=ROOT,
    )
    wait_http_ok(child, f"http://127.0.0.1:{admin}/readyz")
    return child, f"http://127.0.0.1:{port}"


def start_nginx(setup: Setup) -> tuple[Child, str]:
    """nginx as a plain reverse proxy: one process, keep-alive to the stand-in, no access log."""
    nginx = require("nginx", "nginx")
    port = free_port()
    home = setup.workdir / "nginx"
    home.mkdir()
    upstream = setup.upstream_url.removeprefix("http://")
    (home / "nginx.conf").write_text(
        f"""
# master_process off: the single process is the worker, so its RSS is nginx's whole footprint.
master_process off;
daemon off;
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    underscores_in_headers on;
    client_max_body_size 1m;
    client_body_temp_path {home}/client_body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;
    upstream vipps {{
        server {upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://vipps;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    )
    argv = [nginx, "-p", str(home), "-c", str(home / "nginx.conf"), "-e", str(home / "error.log")]
    child = setup.children.start("nginx", argv, cpu=setup.sut_cpu)
    wait_listening(child, port)
    return child, f"http://127.0.0.1:{port}"


def start_passthrough(setup: Setup, *, trust_env: bool = False) -> tuple[Child, str]:
    """The minimal aiohttp pass-through of row 3."""
    port = free_port()
    argv = [sys.executable, str(BENCH / "passthrough.py"), "--upstream", setup.upstream_url]
    argv += ["--port", str(port)] + (["--trust-env"] if trust_env else [])
    name = "passthrough-trust-env" if trust_env else "passthrough"
    child = setup.children.start(name, argv, cpu=setup.sut_cpu)
    wait_listening(child, port)
    return child, f"http://127.0.0.1:{port}"


Starter = Callable[[Setup], tuple[Child | None, str]]


def _direct(setup: Setup) -> tuple[Child | None, str]:
    return None, setup.upstream_url


def _proxy(name: str, mode: str, with_uvloop: bool, log_level: str = "info") -> Starter:
    return lambda setup: start_proxy(
        setup, name, mode=mode, with_uvloop=with_uvloop, log_level=log_level
    )


def rows(uvloop: bool, *, ablation: bool = False) -> list[tuple[str, str, Starter]]:
    """Key, label and starter of every row, in the order they run.

    `ablation` adds rows that each take one thing away from or add one thing to a row, to
    measure its share: aiohttp's trust_env on the pass-through, the rules, the info-level log,
    and both of the last off at once (what is left is the proxy's own plumbing). The proxy's
    own session never trusts the environment, so there is no trust_env row for it; A4 was one
    and is gone, and A5 keeps its key so results files stay comparable.
    """
    table: list[tuple[str, str, Starter]] = [
        ("1", "direct to the stand-in (floor)", _direct),
        ("2", "nginx reverse proxy", start_nginx),
        ("3", "aiohttp pass-through", start_passthrough),
        ("4", "proxy, enforce, all defaults", _proxy("proxy-enforce", "enforce", uvloop)),
    ]
    if uvloop:
        table.append(("4b", "row 4 without uvloop", _proxy("proxy-asyncio", "enforce", False)))
    table.append(("5", "proxy, report mode", _proxy("proxy-report", "report", uvloop)))
    if ablation:
        table += [
            ("A1", "row 3 + trust_env=True", lambda s: start_passthrough(s, trust_env=True)),
            ("A2", "row 4, policy mode off", _proxy("proxy-off", "off", uvloop)),
            ("A3", "row 4, log level warning", _proxy("proxy-warn", "enforce", uvloop, "warning")),
            (
                "A5",
                "row 4, policies off, log warning",
                _proxy("proxy-bare", "off", uvloop, "warning"),
            ),
        ]
    return table
