"""Assembling the proxy: the proxy application, the admin application, and the process lifecycle.

`create_app(settings)` returns the proxy application (every path, every method); the admin
application serves `/metrics`, `/livez`, `/readyz`. `serve(settings)` runs both until SIGTERM
or SIGINT, then drains within `VIPPS_PROXY_SHUTDOWN_GRACE_SECONDS` from the signal to the
return: readiness turns false, the listener closes, in-flight requests may finish until the
budget's reserve, and any still running then are answered and recorded as cut
(`proxy.drain`). A port in use or a host that does not resolve raises `StartupError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler

from policies import checker
from policies.audit.payment_audit import AuditStores, PaymentAudit
from policies.audit.polling import Unpolled
from policies.audit.state import Clock
from policies.core.engine import PolicyEngine
from proxy import __version__
from proxy.audit import AuditLog, Sink, stdout_sink
from proxy.config import Settings, StartupError
from proxy.dashboard import install_dashboard
from proxy.drain import Budget, Drain
from proxy.handler import ProxyHandler
from proxy.metrics import ProxyMetrics, StateCollector
from proxy.upstream import Upstream

if TYPE_CHECKING:
    # redis-py is loaded only when VIPPS_PROXY_STATE_URL asks for it (about 20 MB).
    from proxy.state_redis import RedisState


@dataclass
class Lifecycle:
    """Readiness as the admin port reports it: ready once listening, unready once draining."""

    ready: bool = False
    draining: bool = False
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ProxyState:
    """Everything the two applications share, built once from the settings."""

    settings: Settings
    registry: CollectorRegistry
    metrics: ProxyMetrics
    audit: AuditLog
    engine: PolicyEngine
    upstream: Upstream
    lifecycle: Lifecycle
    payments: PaymentAudit
    drain: Drain
    # The shared payment-level state (VIPPS_PROXY_STATE_URL); None keeps it in this process.
    shared: RedisState | None = None


STATE = web.AppKey("state", ProxyState)


def build_payment_audit(
    settings: Settings, clock: Clock = time.monotonic, stores: AuditStores | None = None
) -> PaymentAudit:
    """The payment-level audit (ledger, idempotency, rate limits, polling) with bounded state,
    in this process unless shared `stores` are given."""
    return checker.build_payment_audit(settings, clock, stores)


def build_engine(settings: Settings, payments: PaymentAudit) -> PolicyEngine:
    """The policy engine with every rule, configured by the settings (raises on bad actions).

    Built by `policies.checker`, the same path as `vipps-audit-proxy check` and `policies.check`.
    """
    return checker.build_engine(settings, payments)


def build_state(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    engine: PolicyEngine | None = None,
    sink: Sink = stdout_sink,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
) -> ProxyState:
    """Build the shared state; tests pass their own registry, engine, audit sink and clock.

    With `VIPPS_PROXY_STATE_URL` set, the payment-level state lives in Redis and its times are
    `wall_clock` seconds (replicas compare them); otherwise in this process, on `clock`.
    """
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ProxyMetrics(registry, __version__)
    shared: RedisState | None = None
    if settings.state_url:
        from proxy.state_redis import RedisState

        shared = RedisState(settings, metrics, wall_clock=wall_clock)
    if shared is None:
        payments = build_payment_audit(settings, clock)
        registry.register(StateCollector(payments.stats))
    else:
        payments = build_payment_audit(settings, wall_clock, shared.stores())
    return ProxyState(
        settings=settings,
        registry=registry,
        metrics=metrics,
        audit=AuditLog(sink, settings.log_level),
        engine=engine if engine is not None else build_engine(settings, payments),
        upstream=Upstream(settings),
        lifecycle=Lifecycle(),
        payments=payments,
        drain=Drain(grace=settings.shutdown_grace_seconds),
        shared=shared,
    )


def report_unpolled(state: ProxyState, due: list[Unpolled] | None = None) -> int:
    """Log and count the payments never polled within the window; returns how many.

    `due` is what the shared state handed this replica; None asks the in-process audit.
    """
    due = state.payments.due_unpolled() if due is None else due
    for payment in due:
        state.metrics.payments_unpolled.labels(payment.api).inc()
        state.audit.write(
            "warning",
            "payment_unpolled",
            {
                "rule": "polling.never_polled",
                "api": payment.api,
                "reference": payment.reference,
                "age_seconds": round(payment.age, 1),
                "detail": "created through the proxy but its status was never polled; Vipps"
                " asks integrators not to rely on callbacks alone",
            },
        )
    return len(due)


def create_app(settings: Settings, state: ProxyState | None = None) -> web.Application:
    """The proxy application: every method and path is handled by ProxyHandler."""
    state = state if state is not None else build_state(settings)
    # Room for the body limit plus headers; the handler turns an overflow into a clear 413.
    # auto_decompress off: a compressed body is forwarded as sent and decoded only for the rules.
    app = web.Application(
        client_max_size=settings.max_body_bytes, handler_args={"auto_decompress": False}
    )
    app[STATE] = state
    handler = ProxyHandler(
        state.engine,
        state.upstream,
        state.metrics,
        state.audit,
        state.payments,
        log_body_max_bytes=settings.log_body_max_bytes,
        max_body_bytes=settings.max_body_bytes,
        drain=state.drain,
        shared=state.shared,
    )
    app.router.add_route("*", "/{tail:.*}", handler.handle)

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        await state.upstream.start()
        yield
        await state.upstream.close()

    async def unpolled_watch(app: web.Application) -> AsyncIterator[None]:
        # Check a few times per window, so a finding comes at most a quarter window late.
        interval = min(30.0, settings.poll_audit_window_seconds / 4)

        async def watch() -> None:
            while True:
                await asyncio.sleep(interval)
                shared = state.shared
                report_unpolled(state, await shared.due_unpolled() if shared else None)

        task = asyncio.create_task(watch())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def shared_state(app: web.Application) -> AsyncIterator[None]:
        yield
        if state.shared is not None:
            await state.shared.close()

    app.cleanup_ctx.append(upstream_session)
    app.cleanup_ctx.append(unpolled_watch)
    app.cleanup_ctx.append(shared_state)
    return app


async def _livez(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    lifecycle = request.app[STATE].lifecycle
    if lifecycle.ready and not lifecycle.draining:
        return web.Response(text="ready\n")
    return web.Response(status=503, text="draining\n" if lifecycle.draining else "starting\n")


def create_admin_app(state: ProxyState) -> web.Application:
    """The admin application: metrics, health, error dashboard; never dependent on Vipps."""
    app = web.Application()
    app[STATE] = state
    app.router.add_get("/livez", _livez)
    app.router.add_get("/readyz", _readyz)
    # prometheus_client's own handler: the format the scraper asks for (Prometheus text or
    # OpenMetrics), `name[]` filters, and gzip when the scraper accepts it.
    app.router.add_get("/metrics", make_aiohttp_handler(state.registry))
    if state.settings.dashboard_enabled:
        install_dashboard(app, state.audit, state.settings.dashboard_max_entries)
    return app


def process_registry() -> CollectorRegistry:
    """A registry with the process and platform collectors (memory, CPU, open fds)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def _bind_cause(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "host name does not resolve"
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def bind_failure(name: str, host: str, port: int, exc: OSError) -> StartupError:
    """The one-line start-up error for a listener that could not open: which setting, why."""
    cause = _bind_cause(exc)
    host_fault = isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL
    if host_fault:
        return StartupError(f"VIPPS_PROXY_{name}_HOST", host, cause)
    return StartupError(f"VIPPS_PROXY_{name}_PORT", str(port), cause)


async def _listen(runner: web.AppRunner, name: str, host: str, port: int) -> None:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise bind_failure(name, host, port, exc) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def startup_notes(settings: Settings) -> dict[str, object]:
    """What the `started` line says beyond the addresses: overrides, dashboard, upstream."""
    notes: dict[str, object] = {
        "rule_actions": {rule: action.value for rule, action in settings.rule_actions.items()},
        "rate_limits": settings.rate_limits,
    }
    if settings.dashboard_enabled:
        host = settings.admin_host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        notes["dashboard"] = f"http://{shown}:{settings.admin_port}/dashboard"
    return notes


def plain_upstream_warning(settings: Settings) -> dict[str, str] | None:
    """A warning when requests would go to a non-loopback host without TLS."""
    url = settings.upstream_url
    if url.scheme != "http" or _is_loopback(url.host or ""):
        return None
    return {
        "upstream": settings.upstream_base,
        "detail": "the upstream is plain http:// to a host that is not loopback: tokens and"
        " payment data would cross the network unencrypted; Vipps is https://api.vipps.no",
    }


async def serve(settings: Settings, state: ProxyState | None = None) -> None:
    """Run the proxy and admin servers until a stop signal, then drain and return.

    The drain fits in the grace budget, measured from the signal: requests may finish until
    `Budget.wait`, the rest are cut (answered 504 or 503 and recorded with
    `outcome="shutdown"`), and the servers close within the reserve.
    """
    if state is None:
        state = build_state(settings, registry=process_registry())
    lifecycle = state.lifecycle
    loop = asyncio.get_running_loop()
    budget = Budget(settings.shutdown_grace_seconds)

    admin_runner = web.AppRunner(
        create_admin_app(state), access_log=None, shutdown_timeout=budget.close
    )
    proxy_runner = web.AppRunner(
        create_app(settings, state),
        access_log=None,
        shutdown_timeout=budget.close,
        handle_signals=False,
    )
    # The proxy listens before the admin port answers, so a passing probe means it is serving.
    await proxy_runner.setup()
    try:
        await _listen(proxy_runner, "LISTEN", settings.listen_host, settings.listen_port)
        await admin_runner.setup()
        await _listen(admin_runner, "ADMIN", settings.admin_host, settings.admin_port)
    except StartupError:
        await admin_runner.cleanup()
        await proxy_runner.cleanup()
        raise
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lifecycle.stopped.set)
    lifecycle.ready = True
    # Unreachable state is no reason not to serve: the payment-level rules fail open.
    reachable = await state.shared.ping() if state.shared is not None else True
    state.audit.write(
        "info",
        "started",
        {
            "state": settings.state_backend,
            "state_reachable": reachable,
            "listen": f"{settings.listen_host}:{settings.listen_port}",
            "admin": f"{settings.admin_host}:{settings.admin_port}",
            "upstream": settings.upstream_base,
            "policy_mode": settings.policy_mode.value,
            "version": __version__,
            **startup_notes(settings),
        },
    )
    plain = plain_upstream_warning(settings)
    if plain is not None:
        state.audit.write("warning", "upstream_not_tls", plain)
    await lifecycle.stopped.wait()
    signalled = loop.time()
    lifecycle.draining = True
    state.audit.write(
        "info",
        "draining",
        {"grace_seconds": settings.shutdown_grace_seconds, "in_flight": state.drain.in_flight},
    )
    # Close the listener first; requests already accepted run on.
    for site in list(proxy_runner.sites):
        await site.stop()
    await asyncio.sleep(0)
    wait = budget.wait - (loop.time() - signalled)
    if not await state.drain.wait_idle(wait):
        cut = state.drain.cut()
        state.audit.write(
            "warning",
            "drain_cut",
            {"requests": cut, "grace_seconds": settings.shutdown_grace_seconds},
        )
        # Let the cut handlers answer and record before the servers close.
        await state.drain.wait_idle(budget.close)
    await proxy_runner.cleanup()
    await admin_runner.cleanup()
    state.audit.write(
        "info",
        "stopped",
        {
            "drain_seconds": round(loop.time() - signalled, 3),
            "requests": request_totals(state.metrics),
        },
    )


def request_totals(metrics: ProxyMetrics) -> dict[str, int]:
    """Requests counted since start, by outcome (the final line's summary of the counter)."""
    totals: dict[str, int] = {}
    for family in metrics.requests.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                outcome = sample.labels["outcome"]
                totals[outcome] = totals.get(outcome, 0) + int(sample.value)
    return totals
