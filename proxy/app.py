"""Assembling the proxy: the proxy application, the admin application, and the process lifecycle.

`create_app(settings)` returns the proxy application (every path, every method); the admin
application serves `/metrics`, `/livez`, `/readyz`. `serve(settings)` runs both until SIGTERM
or SIGINT, then drains: readiness turns false, the listener closes, in-flight requests finish
within the grace budget, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from policies.engine import PolicyEngine
from policies.payment_audit import AuditStores, PaymentAudit
from policies.polling import Unpolled
from policies.ratelimit import parse_limits
from policies.rules import RuleOptions, default_rules
from policies.state import Clock
from proxy import __version__
from proxy.audit import AuditLog, Sink, stdout_sink
from proxy.config import Settings
from proxy.dashboard import install_dashboard
from proxy.handler import ProxyHandler
from proxy.metrics import ProxyMetrics, StateCollector
from proxy.state_redis import RedisState
from proxy.upstream import Upstream


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
    # The shared payment-level state (VIPPS_PROXY_STATE_URL); None keeps it in this process.
    shared: RedisState | None = None


STATE = web.AppKey("state", ProxyState)


def build_payment_audit(
    settings: Settings, clock: Clock = time.monotonic, stores: AuditStores | None = None
) -> PaymentAudit:
    """The payment-level audit (ledger, idempotency, rate limits, polling) with bounded state,
    in this process unless shared `stores` are given."""
    return PaymentAudit(
        clock,
        max_entries=settings.state_max_entries,
        ttl_seconds=settings.state_ttl_seconds,
        poll_window_seconds=settings.poll_audit_window_seconds,
        limits=parse_limits(settings.rate_limits),
        stores=stores,
    )


def build_engine(settings: Settings, payments: PaymentAudit) -> PolicyEngine:
    """The policy engine with every rule, configured by the settings (raises on bad actions)."""
    options = RuleOptions(
        phone_default_region=settings.phone_default_region,
        amount_bounds=settings.amount_bounds,
    )
    return PolicyEngine(
        (*default_rules(options), *payments.rules()),
        settings.policy_mode,
        settings.rule_actions,
        fail_open=settings.policy_fail_open,
    )


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
    shared = RedisState(settings, metrics, wall_clock=wall_clock) if settings.state_url else None
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


async def _metrics(request: web.Request) -> web.Response:
    payload = generate_latest(request.app[STATE].registry)
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_admin_app(state: ProxyState) -> web.Application:
    """The admin application: metrics, health, error dashboard; never dependent on Vipps."""
    app = web.Application()
    app[STATE] = state
    app.router.add_get("/livez", _livez)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    if state.settings.dashboard_enabled:
        install_dashboard(app, state.audit, state.settings.dashboard_max_entries)
    return app


def process_registry() -> CollectorRegistry:
    """A registry with the process and platform collectors (memory, CPU, open fds)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


async def serve(settings: Settings, state: ProxyState | None = None) -> None:
    """Run the proxy and admin servers until a stop signal, then drain and return."""
    if state is None:
        state = build_state(settings, registry=process_registry())
    lifecycle = state.lifecycle
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lifecycle.stopped.set)

    admin_runner = web.AppRunner(create_admin_app(state), access_log=None)
    proxy_runner = web.AppRunner(
        create_app(settings, state),
        access_log=None,
        shutdown_timeout=settings.shutdown_grace_seconds,
        handle_signals=False,
    )
    # The proxy listens before the admin port answers, so a passing probe means it is serving.
    await proxy_runner.setup()
    await web.TCPSite(proxy_runner, settings.listen_host, settings.listen_port).start()
    await admin_runner.setup()
    await web.TCPSite(admin_runner, settings.admin_host, settings.admin_port).start()
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
        },
    )
    await lifecycle.stopped.wait()
    lifecycle.draining = True
    state.audit.write("info", "draining", {"grace_seconds": settings.shutdown_grace_seconds})
    # Closes the listener first, then waits up to the grace budget for in-flight requests.
    await proxy_runner.cleanup()
    await admin_runner.cleanup()
    state.audit.write("info", "stopped", {})
