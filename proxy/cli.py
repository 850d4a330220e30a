"""The command line: `vipps-audit-proxy [serve | check | rules | operations | config | stand-in]`.

Without a subcommand it starts the proxy, as the image and the manifests expect. Every other
subcommand reads the same `VIPPS_PROXY_*` settings through the one `Settings` class and builds
the rules the proxy's own way (`policies.checker`), binds no port and starts nothing, except
`stand-in`, which serves a stand-in Vipps API for trying the proxy locally. Exit codes follow
ruff and Spectral: 0 fine, 1 something would be blocked (`check`), 2 bad input or settings.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from policies.audit.ratelimit import parse_limits
from policies.catalogue.operations import OPERATIONS
from policies.checker import Checker
from policies.core.engine import PolicyConfigError
from policies.core.model import audited_request
from proxy import __version__
from proxy.check_inputs import (
    STDIN,
    InputError,
    Location,
    display_name,
    fixed_document,
    fixed_path,
    read_input,
)
from proxy.check_reports import (
    FORMATS,
    CheckedRequest,
    CheckRun,
    render_github,
    render_json,
    render_sarif,
    render_text,
)
from proxy.config import (
    ConfigError,
    Settings,
    check_unknown,
    load_settings,
    process_environment,
    unknown_settings,
)
from proxy.listings import (
    CONFIG_COLUMNS,
    OPERATION_COLUMNS,
    RULE_COLUMNS,
    operation_rows,
    render_table,
    rule_rows,
    setting_rows,
)

PROG = "vipps-audit-proxy"
EXIT_OK, EXIT_BLOCKED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """Bad settings or arguments: one line on stderr, exit code 2."""


def _settings() -> Settings:
    """The settings the proxy would start with; unknown variables as `serve` treats them."""
    try:
        settings = load_settings()
        unknown = unknown_settings(process_environment())
        for note in check_unknown(unknown, strict=settings.strict_settings):
            print(f"{PROG}: warning: unknown setting {note.note}", file=sys.stderr)
    except ConfigError as exc:
        raise UsageError(f"invalid configuration: {exc}") from None
    return settings


def _checker(settings: Settings) -> Checker:
    try:
        return Checker(settings)
    except PolicyConfigError as exc:
        raise UsageError(f"invalid configuration: VIPPS_PROXY_RULE_ACTIONS: {exc}") from None


def _read(name: str) -> bytes:
    if name == STDIN:
        return sys.stdin.buffer.read()
    return Path(name).read_bytes()


def run_check(args: argparse.Namespace) -> int:
    """Check saved requests against the rules and settings the proxy would use."""
    checker = _checker(_settings())
    run = CheckRun(inputs=len(args.files))
    for name in args.files:
        where = Location(display_name(name))
        try:
            saved = read_input(name, _read(name))
        except OSError as exc:
            run.errors.append((where, f"cannot be read: {exc.strerror or exc}"))
            continue
        except InputError as exc:
            run.errors.append((where, str(exc)))
            continue
        run.skipped += saved.skipped
        repaired: dict[int, bytes] = {}
        for index, request in enumerate(saved.requests):
            if request.problem is not None:
                run.errors.append((request.location, request.problem))
                continue
            audited = audited_request(
                request.method, request.path, request.headers, request.body, request.query
            )
            verdict = checker.evaluate(audited, at=request.at)
            fixed = checker.repaired_body(audited, verdict)
            if fixed is not None:
                repaired[index] = fixed
            run.checked.append(CheckedRequest(request, audited.operation, verdict, fixed))
        if args.fix and repaired:
            if name == STDIN:
                run.errors.append((where, "--fix cannot write next to standard input"))
                continue
            target = fixed_path(name)
            try:
                Path(target).write_text(fixed_document(saved, repaired), encoding="utf-8")
            except OSError as exc:
                run.errors.append((where, f"{target} cannot be written: {exc.strerror or exc}"))
                continue
            run.fixed_files.append(target)
    if args.format == "text":
        output = render_text(run)
    elif args.format == "json":
        output = render_json(run)
    elif args.format == "sarif":
        output = render_sarif(run, checker.engine.rules)
    else:
        output = render_github(run)
    sys.stdout.write(output)
    if args.format != "text":
        for location, message in run.errors:
            print(f"{PROG}: {location}: {message}", file=sys.stderr)
    return run.exit_code


def run_rules(args: argparse.Namespace) -> int:
    """List every rule with its effective and default action."""
    engine = _checker(_settings()).engine
    sys.stdout.write(render_table(RULE_COLUMNS, rule_rows(engine), args.format))
    return EXIT_OK


def run_operations(args: argparse.Namespace) -> int:
    """List the operation catalogue with Vipps' documented rate limits."""
    limits = parse_limits(_settings().rate_limits)
    rows = operation_rows(limits)
    if args.names:
        known = {op.key for op in OPERATIONS}
        unknown = [n for n in args.names if n not in known]
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UsageError(
                f"unknown operation {', '.join(unknown)}{hint} (`{PROG} operations` lists them all)"
            )
        rows = [r for r in rows if r.operation.key in args.names]
    sys.stdout.write(render_table(OPERATION_COLUMNS, rows, args.format))
    return EXIT_OK


def run_config(args: argparse.Namespace) -> int:
    """Print the effective settings with their source, or only validate them (`--check`)."""
    settings = _settings()
    checker = _checker(settings)
    if args.check:
        print(
            f"configuration is valid: policy mode {settings.policy_mode.value},"
            f" {len(checker.engine.rules)} rules, upstream {settings.upstream_base}"
        )
        return EXIT_OK
    sys.stdout.write(render_table(CONFIG_COLUMNS, setting_rows(settings), args.format))
    return EXIT_OK


def run_stand_in(args: argparse.Namespace) -> int:
    """Serve the stand-in Vipps API until interrupted."""
    import asyncio

    from proxy.standin import run

    asyncio.run(run(args.host, args.port))
    return EXIT_OK


def run_serve(args: argparse.Namespace) -> int:
    """Start the proxy (the existing start-up path)."""
    from proxy.__main__ import main as start_proxy

    return start_proxy()


def build_parser() -> argparse.ArgumentParser:
    """The parser for every subcommand, each with its own --help."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Sidecar reverse proxy that validates, measures and logs every call to the"
        " Vipps MobilePay API. Without a subcommand, starts the proxy. Settings come from"
        " VIPPS_PROXY_* environment variables for every subcommand.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.set_defaults(run=run_serve)
    sub = parser.add_subparsers(title="subcommands", metavar="COMMAND")

    serve = sub.add_parser("serve", help="start the proxy (the default)", description=(
        "Start the proxy with the settings of the environment; stops on SIGTERM or SIGINT."
    ))  # fmt: skip
    serve.set_defaults(run=run_serve)

    check = sub.add_parser(
        "check",
        help="check saved requests against the rules, without any network",
        description="Run saved requests through exactly the rules and settings the proxy would"
        " use. Inputs, told apart by content: HAR 1.2, an HTTP/1.1 request message (several"
        " separated by ### lines), or JSON Lines ({method, path or url, headers, body}). Exit"
        " code 0 when nothing would be blocked, 1 when something would be, 2 for unreadable"
        " input or bad settings.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="input file, or - for stdin")
    check.add_argument("--format", choices=FORMATS, default="text", help="output format")
    check.add_argument(
        "--fix",
        action="store_true",
        help="write the repaired requests next to each input (NAME.fixed.EXT) where a repair"
        " exists; repairs are those of rules whose action is repair",
    )
    check.set_defaults(run=run_check)

    rules = sub.add_parser(
        "rules",
        help="list every rule with its effective and default action",
        description="Every rule with its code, effective action after VIPPS_PROXY_POLICY_MODE"
        " and VIPPS_PROXY_RULE_ACTIONS, default action, and what it checks.",
    )
    rules.add_argument("--format", choices=("text", "json"), default="text")
    rules.set_defaults(run=run_rules)

    operations = sub.add_parser(
        "operations",
        help="list the catalogue of operations and their rate limits",
        description="Every operation name (the names VIPPS_PROXY_RATE_LIMITS takes), method,"
        " path template, Vipps' documented rate limit and the limit in force.",
    )
    operations.add_argument("names", nargs="*", metavar="OPERATION", help="only these")
    operations.add_argument("--format", choices=("text", "json"), default="text")
    operations.set_defaults(run=run_operations)

    config = sub.add_parser(
        "config",
        help="print the effective settings, or validate them with --check",
        description="The effective settings after the environment, secrets redacted, each with"
        " its source (environment or default). With --check, only validate: exit 0 when"
        " valid, 2 with one line naming the variable when not.",
    )
    config.add_argument("--check", action="store_true", help="validate only")
    config.add_argument("--format", choices=("text", "json"), default="text")
    config.set_defaults(run=run_config)

    stand_in = sub.add_parser(
        "stand-in",
        help="serve a stand-in Vipps API on loopback, for trying the proxy locally",
        description="A small stand-in for the Vipps API that answers the main ePayment, eCom,"
        " Checkout, Recurring and access-token operations plausibly. For local trials only.",
    )
    stand_in.add_argument("--host", default="127.0.0.1")
    stand_in.add_argument("--port", type=int, default=8081)
    stand_in.set_defaults(run=run_stand_in)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the subcommand; the proxy when there is none."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return code
