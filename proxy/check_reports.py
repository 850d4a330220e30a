"""What `vipps-audit-proxy check` prints: text, JSON, SARIF 2.1.0 or GitHub workflow commands.

Every format says the same things: for each request checked, where it stands in its input, the
operation, and each finding with its outcome under the settings in force (`blocked`,
`would_block`, `would_repair`, `repaired`, `reported`); inputs or requests that could not be
read are errors.
SARIF levels: `error` for a block, `warning` for a would-block or a repair, `note` for advice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from urllib.parse import quote

import orjson

from policies.catalogue.operations import Operation
from policies.core.model import Action, Outcome, Rule, Verdict
from proxy import __version__
from proxy.check_inputs import Location, SavedRequest

FORMATS = ("text", "json", "sarif", "github")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {
    Outcome.BLOCKED: "error",
    Outcome.WOULD_BLOCK: "warning",
    Outcome.WOULD_REPAIR: "warning",
    Outcome.REPAIRED: "warning",
    Outcome.REPORTED: "note",
}
_DEFAULT_LEVELS = {
    Action.BLOCK: "error",
    Action.REPAIR: "warning",
    Action.REPORT: "warning",
    Action.OFF: "none",
}
_GITHUB = {"error": "error", "warning": "warning", "note": "notice"}


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """One request with the proxy's verdict on it and, where one exists, the repaired body."""

    request: SavedRequest
    operation: Operation
    verdict: Verdict
    repaired: bytes | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One finding (or a rule that failed to evaluate) as every format shows it."""

    rule: str
    outcome: str
    level: str
    message: str
    field: str
    source: str
    repaired_value: str | None = None


@dataclass(slots=True)
class CheckRun:
    """Everything one run found, in input order."""

    checked: list[CheckedRequest] = field(default_factory=list)
    errors: list[tuple[Location, str]] = field(default_factory=list)
    inputs: int = 0
    skipped: int = 0
    fixed_files: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> int:
        return sum(c.verdict.blocked for c in self.checked)

    @property
    def exit_code(self) -> int:
        """2 for anything unreadable, else 1 when something would be blocked, else 0."""
        if self.errors:
            return 2
        return 1 if self.blocked else 0


def items(checked: CheckedRequest) -> list[Item]:
    """The findings of one request, then any rule that failed to evaluate."""
    found = []
    for decision in checked.verdict.decisions:
        finding = decision.finding
        repaired = (
            orjson.dumps(finding.repair.value, default=str).decode()
            if finding.repair is not None
            else None
        )
        found.append(
            Item(
                finding.rule,
                decision.outcome.value,
                _LEVELS[decision.outcome],
                finding.message,
                finding.field,
                finding.source.value,
                repaired,
            )
        )
    closed = checked.verdict.fail_closed
    for failure in checked.verdict.failures:
        found.append(
            Item(
                failure.rule,
                "blocked" if closed else "reported",
                "error" if closed else "note",
                f"the rule failed to evaluate ({failure.error})",
                "(rule)",
                "rule",
            )
        )
    return found


def _heading(checked: CheckedRequest) -> str:
    req, op = checked.request, checked.operation
    status = "blocked" if checked.verdict.blocked else "passes"
    return f"{req.location}: {req.method} {req.target} ({op.key}): {status}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def render_text(run: CheckRun) -> str:
    """One block per request: the finding's outcome, rule, field, problem, expected, repair."""
    out: list[str] = []
    for checked in run.checked:
        out.append(_heading(checked))
        for item in items(checked):
            out.append(f"  {item.outcome:<11} {item.rule:<32} {item.message}")
            if item.repaired_value is not None:
                out.append(f"  {'':<11} {'':<32} repair: {item.repaired_value}")
    for location, message in run.errors:
        out.append(f"{location}: error: {message}")
    findings = sum(len(items(c)) for c in run.checked)
    skipped = f", {run.skipped} HAR entries to other hosts skipped" if run.skipped else ""
    out.append(
        f"{_count(len(run.checked), 'request')} checked in {_count(run.inputs, 'input')}:"
        f" {run.blocked} would be blocked, {_count(findings, 'finding')},"
        f" {_count(len(run.errors), 'error')}{skipped}"
    )
    out.extend(f"repaired copy written to {name}" for name in run.fixed_files)
    return "\n".join(out) + "\n"


def _location_json(location: Location) -> dict[str, object]:
    return {"file": location.file, "line": location.line, "entry": location.entry}


def render_json(run: CheckRun) -> str:
    """One JSON document: the requests with their findings, the errors, and a summary."""
    requests = [
        {
            **_location_json(c.request.location),
            "method": c.request.method,
            "path": c.request.path,
            "query": c.request.query,
            "operation": c.operation.key,
            "blocked": c.verdict.blocked,
            "findings": [
                {
                    "rule": i.rule,
                    "outcome": i.outcome,
                    "level": i.level,
                    "source": i.source,
                    "field": i.field,
                    "message": i.message,
                    "repaired_value": i.repaired_value,
                }
                for i in items(c)
            ],
            "repaired_body": c.repaired.decode("utf-8", "replace") if c.repaired else None,
        }
        for c in run.checked
    ]
    document = {
        "version": __version__,
        "requests": requests,
        "errors": [{**_location_json(loc), "message": msg} for loc, msg in run.errors],
        "summary": {
            "inputs": run.inputs,
            "requests": len(run.checked),
            "blocked": run.blocked,
            "errors": len(run.errors),
            "skipped": run.skipped,
            "exit_code": run.exit_code,
        },
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def _uri(file: str) -> str:
    if file.startswith("<"):
        return quote(file)
    path = PurePath(file)
    return path.as_uri() if path.is_absolute() else quote(path.as_posix())


def _sarif_location(location: Location) -> dict[str, object]:
    physical: dict[str, object] = {"artifactLocation": {"uri": _uri(location.file)}}
    if location.line is not None:
        physical["region"] = {"startLine": location.line}
    where: dict[str, object] = {"physicalLocation": physical}
    if location.entry is not None:
        name = f"log.entries[{location.entry}]"
        where["logicalLocations"] = [{"fullyQualifiedName": name, "kind": "element"}]
    return where


def render_sarif(run: CheckRun, rules: Sequence[Rule]) -> str:
    """A SARIF 2.1.0 log with one run: one result per finding, `ruleId` the rule code."""
    index = {rule.code: i for i, rule in enumerate(rules)}
    descriptors = [
        {
            "id": rule.code,
            "shortDescription": {"text": rule.summary},
            "defaultConfiguration": {"level": _DEFAULT_LEVELS[rule.default_action]},
            "properties": {"defaultAction": rule.default_action.value},
        }
        for rule in rules
    ]
    results = []
    for checked in run.checked:
        req = checked.request
        for item in items(checked):
            result: dict[str, object] = {
                "ruleId": item.rule,
                "level": item.level,
                "message": {"text": f"{req.method} {req.target}: {item.message}"},
                "locations": [_sarif_location(req.location)],
                "properties": {
                    "outcome": item.outcome,
                    "operation": checked.operation.key,
                    "field": item.field,
                    "source": item.source,
                    **({"repairedValue": item.repaired_value} if item.repaired_value else {}),
                },
            }
            if item.rule in index:
                result["ruleIndex"] = index[item.rule]
            results.append(result)
    notifications = [
        {
            "level": "error",
            "message": {"text": message},
            "locations": [_sarif_location(location)],
        }
        for location, message in run.errors
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "vipps-audit-proxy",
                        "version": __version__,
                        "rules": descriptors,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not run.errors,
                        "exitCode": run.exit_code,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }
    return orjson.dumps(log, option=orjson.OPT_INDENT_2).decode() + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github_line(level: str, location: Location, title: str, message: str) -> str:
    props = [f"file={_escape_property(location.file)}"]
    if location.line is not None:
        props.append(f"line={location.line}")
    props.append(f"title={_escape_property(title)}")
    where = f"entry {location.entry}: " if location.entry is not None else ""
    return f"::{_GITHUB[level]} {','.join(props)}::{_escape_data(where + message)}"


def render_github(run: CheckRun) -> str:
    """GitHub Actions workflow commands: `::error file=…,line=…,title=rule::message`."""
    out = []
    for checked in run.checked:
        req = checked.request
        for item in items(checked):
            message = f"{req.method} {req.target}: {item.message}"
            out.append(_github_line(item.level, req.location, item.rule, message))
    for location, message in run.errors:
        out.append(_github_line("error", location, "unreadable input", message))
    return "\n".join(out) + ("\n" if out else "")
