"""The systems under test: the Vipps stand-in, nginx, the aiohttp pass-through, the proxy.

Each starter starts one system pinned to the system-under-test core, waits until it serves,
and returns its process (None for the direct path) and the URL wrk should load.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.bench.processes import (
    BenchError,
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
# The ablation rows take parts away in the interpreter, without a setting for each: the fast
# path (every body then goes through the detailed rules), the payment-level audit's
# bookkeeping of forwarded requests and answers, and the per-request metrics and record.
NO_FAST_PATH = (
    "import policies.core.engine as e; init = e.PolicyEngine.__init__; "
    "e.PolicyEngine.__init__ = "
    "lambda self, *a, **k: init(self, *a, **{**k, 'fast_path': False})"
)
NO_PAYMENT_AUDIT = (
    "from policies.audit.payment_audit import ObserveResult, PaymentAudit; "
    "PaymentAudit.record_forwarded = lambda self, request: None; "
    "PaymentAudit.observe = lambda self, *a, **k: ObserveResult()"
)
NO_RECORD = "from proxy.handler import ProxyHandler; ProxyHandler._record = lambda self, *a: None"
# Prism validates against one spec: ePayment's, the API the mix sends most of its requests to.
PRISM_SPEC = ROOT.parent / "shared" / "vipps-openapi" / "epayment-v1.yaml"
PRISM_PACKAGE = "@stoplight/prism-cli"


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


def _proxy_argv(
    with_uvloop: bool, tracemalloc_to: Path | None, patches: Sequence[str] = ()
) -> list[str]:
    changes = [] if with_uvloop else [_NO_UVLOOP]
    changes += patches
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
    settings: Mapping[str, str] | None = None,
    patches: Sequence[str] = (),
) -> tuple[Child, str]:
    """The proxy with its defaults except the ports, the upstream, the policy mode and what
    the ablation rows change (`settings`: more VIPPS_PROXY_* variables; `patches`: code run
    before start-up); its log goes to a file. `tracemalloc_to`: see memory.py."""
    port, admin = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("VIPPS_PROXY_")}
    env.update(
        VIPPS_PROXY_UPSTREAM_URL=setup.upstream_url,
        VIPPS_PROXY_LISTEN_PORT=str(port),
        VIPPS_PROXY_ADMIN_PORT=str(admin),
        VIPPS_PROXY_POLICY_MODE=mode,
        VIPPS_PROXY_LOG_LEVEL=log_level,
    )
    env.update(settings or {})
    child = setup.children.start(
        name,
        _proxy_argv(with_uvloop, tracemalloc_to, patches),
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


def prism_installed() -> bool:
    return shutil.which("prism") is not None and PRISM_SPEC.is_file()


def prefixed_spec(spec: Path, prefix: str, directory: Path) -> Path:
    """A copy of `spec` in `directory` whose paths start with `prefix` and that has no servers.

    The proxy sees `/epayment/v1/payments` where the spec writes `/v1/payments` under the
    server `https://api.vipps.no/epayment`; Prism matches paths as written, so the copy
    carries the prefix in every path. The copy is JSON, which is also YAML.
    """
    document = yaml.safe_load(spec.read_text())
    document["paths"] = {prefix + path: item for path, item in document["paths"].items()}
    document.pop("servers", None)
    copy = directory / f"{spec.stem}.prefixed.json"
    copy.write_text(json.dumps(document, default=str))
    return copy


def start_prism(setup: Setup) -> tuple[Child, str]:
    """Stoplight Prism's validating proxy on the ePayment spec, forwarding to the stand-in.

    `--errors` answers an invalid request (or an answer that does not fit the spec) with
    Prism's own error instead of forwarding it, as the proxy blocks; requests to other APIs
    match no path and get Prism's 404. Its log is kept to errors, so the row measures the
    validation, not a log line per request.
    """
    prism = shutil.which("prism")
    if prism is None:
        raise BenchError(f"prism not found; install it with: npm install -g {PRISM_PACKAGE}")
    port = free_port()
    spec = prefixed_spec(PRISM_SPEC, "/epayment", setup.workdir)
    argv = [prism, "proxy", "--errors", "--verboseLevel", "error", "-h", "127.0.0.1"]
    argv += ["-p", str(port), str(spec), setup.upstream_url]
    child = setup.children.start("prism", argv, cpu=setup.sut_cpu)
    wait_listening(child, port, timeout=60.0)
    return child, f"http://127.0.0.1:{port}"


Starter = Callable[[Setup], tuple[Child | None, str]]


def start_proxy_on_redis(setup: Setup, *, with_uvloop: bool) -> tuple[Child, str]:
    """Row 4 with its payment-level state in a `redis-server` on loopback (`VIPPS_PROXY_STATE_URL`).

    Redis runs on the load core, like the stand-in, so the row shows what the proxy itself
    spends on the round trips (one load and one commit per catalogued payment request).
    """
    server = shutil.which("redis-server")
    if server is None:
        raise BenchError("redis-server not found; install it with: apt-get install redis-server")
    port = free_port()
    argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    argv += ["no", "--dir", str(setup.workdir)]
    redis = setup.children.start("redis", argv, cpu=setup.load_cpu)
    wait_listening(redis, port)
    settings = {"VIPPS_PROXY_STATE_URL": f"redis://127.0.0.1:{port}/0"}
    return start_proxy(
        setup, "proxy-redis", mode="enforce", with_uvloop=with_uvloop, settings=settings
    )


def _direct(setup: Setup) -> tuple[Child | None, str]:
    return None, setup.upstream_url


def _proxy(
    name: str,
    mode: str,
    with_uvloop: bool,
    log_level: str = "info",
    settings: Mapping[str, str] | None = None,
    patches: Sequence[str] = (),
) -> Starter:
    return lambda setup: start_proxy(
        setup,
        name,
        mode=mode,
        with_uvloop=with_uvloop,
        log_level=log_level,
        settings=settings,
        patches=patches,
    )


_NO_DASHBOARD = {"VIPPS_PROXY_DASHBOARD_ENABLED": "false"}


def stripped_rows(uvloop: bool) -> list[tuple[str, str, Starter]]:
    """Row 4 with one part more taken away in each row, down to the proxy's bare plumbing.

    D1 turns the dashboard off (every record was built for it), D2 also logs only errors
    (no line per request), D3 also sets the policy mode off (no rules), D4 also stops the
    payment-level audit's bookkeeping, D5 also stops the metrics and the audit record. What
    D5 still costs over row 3 is the handler's own work: identifying the operation, parsing
    the body, header copies, the request id and the upstream client's use (`stages.py`).
    """
    steps: list[tuple[str, str, str, str, tuple[str, ...]]] = [
        ("D1", "row 4, dashboard off", "enforce", "info", ()),
        ("D2", "D1 + log level error", "enforce", "error", ()),
        ("D3", "D2 + policy mode off", "off", "error", ()),
        ("D4", "D3 + payment audit off", "off", "error", (NO_PAYMENT_AUDIT,)),
        ("D5", "D4 + metrics and record off", "off", "error", (NO_PAYMENT_AUDIT, NO_RECORD)),
    ]
    return [
        (key, label, _proxy(f"proxy-{key.lower()}", mode, uvloop, level, _NO_DASHBOARD, p))
        for key, label, mode, level, p in steps
    ]


def rows(uvloop: bool, *, ablation: bool = False) -> list[tuple[str, str, Starter]]:
    """Key, label and starter of every row, in the order they run.

    Row P is Stoplight Prism's validating proxy, when installed. `ablation` adds rows that
    each take one thing away from or add one thing to a row, to measure its share: aiohttp's
    trust_env on the pass-through, the rules, the info-level log, and both of the last off at
    once; row 4 without the fast path (F); and row 4 stripped one part at a time down to the
    handler's plumbing (D1-D5, `stripped_rows`). The proxy's own session never trusts the
    environment, so there is no trust_env row for it; A4 was one and is gone, and A5 keeps its
    key so results files stay comparable.
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
    table.append(
        (
            "R",
            "row 4, state on Redis (loopback)",
            lambda s: start_proxy_on_redis(s, with_uvloop=uvloop),
        )
    )
    if prism_installed():
        table.append(("P", "Prism proxy, ePayment spec", start_prism))
    else:
        print(
            f"note: row P (Prism) skipped: install it with npm install -g {PRISM_PACKAGE}",
            file=sys.stderr,
        )
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
            (
                "F",
                "row 4 without the fast path",
                _proxy("proxy-no-fast-path", "enforce", uvloop, patches=(NO_FAST_PATH,)),
            ),
            *stripped_rows(uvloop),
        ]
    return table
