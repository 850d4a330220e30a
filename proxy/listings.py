"""The tables `vipps-audit-proxy rules`, `operations` and `config` print, as text or JSON.

Each table is a tuple of columns (a heading and how to get the cell from a row), rendered by
one function for both formats, so a new column is one line in its tuple.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

import orjson
from pydantic import SecretStr

from policies.audit.ratelimit import DEFAULT_LIMITS, Limit, describe_per
from policies.catalogue.operations import OPERATIONS, Operation
from policies.core.engine import PolicyEngine, PolicyMode
from policies.core.model import Action, Condition, Rule
from proxy.config import ENV_PREFIX, Settings

Row = TypeVar("Row")
REDACTED = "**********"


@dataclass(frozen=True, slots=True)
class Column(Generic[Row]):
    """One column: its heading (also the JSON key) and how to get the cell from a row."""

    heading: str
    cell: Callable[[Row], object]


def render_table(columns: Sequence[Column[Row]], rows: Sequence[Row], fmt: str) -> str:
    """The rows as aligned text columns, or as a JSON array of objects keyed by heading."""
    if fmt == "json":
        objects = [{c.heading: c.cell(row) for c in columns} for row in rows]
        return orjson.dumps(objects, option=orjson.OPT_INDENT_2).decode() + "\n"
    cells = [[_text(c.cell(row)) for c in columns] for row in rows]
    headings = [c.heading for c in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headings)]
    widths[-1] = 0  # the last column is not padded
    lines = ["  ".join(h.ljust(w) for h, w in zip(headings, widths, strict=True)).rstrip()]
    lines.extend(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )
    return "\n".join(lines) + "\n"


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "; ".join(_text(item) for item in value) or "-"
    if isinstance(value, dict) and "condition" in value:
        sources = ", ".join(str(e["source"]) for e in value["evidence"]) or value["why"]
        return f"{value['condition']}={value['default']} ({sources})"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# rules -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleRow:
    """A rule with the action the settings give it."""

    rule: Rule
    action: str


RULE_COLUMNS: tuple[Column[RuleRow], ...] = (
    Column("code", lambda r: r.rule.code),
    Column("action", lambda r: r.action),
    Column("default", lambda r: r.rule.default_action.value),
    Column("repair", lambda r: r.rule.can_repair),
    Column("checks", lambda r: r.rule.summary),
    Column("evidence", lambda r: [_condition(c) for c in r.rule.conditions]),
)


def _condition(condition: Condition) -> dict[str, object]:
    """A rule's condition with its default action and the documented rejection behind it."""
    return {
        "condition": condition.name,
        "default": condition.action.value,
        "evidence": [{"source": e.source, "says": e.says} for e in condition.evidence],
        "why": condition.why or None,
    }


def rule_rows(engine: PolicyEngine) -> list[RuleRow]:
    """Every rule of the engine with its effective action: its own or the override in
    `enforce` mode; `report` for every rule that is not off in `report` mode; `off` in `off`."""
    rows = []
    for rule in engine.rules:
        action = engine.actions[rule.code]
        if engine.mode is PolicyMode.OFF:
            action = Action.OFF
        elif engine.mode is PolicyMode.REPORT and action is not Action.OFF:
            action = Action.REPORT
        rows.append(RuleRow(rule, action.value))
    return rows


# operations --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperationRow:
    """An operation of the catalogue with Vipps' documented limit and the one in force."""

    operation: Operation
    documented: Limit | None
    effective: Limit | None


def _limit(limit: Limit | None, api: str) -> str | None:
    if limit is None:
        return None
    return f"{limit.requests}/{limit.window_seconds:g}s per {describe_per(limit.per, api)}"


OPERATION_COLUMNS: tuple[Column[OperationRow], ...] = (
    Column("operation", lambda r: r.operation.key),
    Column("method", lambda r: r.operation.method),
    Column("path", lambda r: r.operation.template),
    Column("deprecated", lambda r: r.operation.deprecated),
    Column("rate_limit", lambda r: _limit(r.documented, r.operation.api)),
    Column("in_force", lambda r: _limit(r.effective, r.operation.api)),
)


def operation_rows(limits: Mapping[str, Limit]) -> list[OperationRow]:
    """Every operation of the catalogue, in catalogue order."""
    return [OperationRow(op, DEFAULT_LIMITS.get(op.key), limits.get(op.key)) for op in OPERATIONS]


# config ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingRow:
    """One setting: its variable, its effective value (secrets redacted) and its source."""

    variable: str
    value: object
    source: str


CONFIG_COLUMNS: tuple[Column[SettingRow], ...] = (
    Column("variable", lambda r: r.variable),
    Column("value", lambda r: r.value),
    Column("source", lambda r: r.source),
)


def shown_value(value: object) -> object:
    """A setting's value as printed: secrets redacted, enums and URLs as text, mappings joined."""
    if isinstance(value, SecretStr):
        return REDACTED if value.get_secret_value() else ""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return ",".join(f"{k}={shown_value(v)}" for k, v in value.items())
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def setting_rows(settings: Settings) -> list[SettingRow]:
    """Every setting in declaration order, from the environment or the default."""
    rows = []
    for name in type(settings).model_fields:
        source = "environment" if name in settings.model_fields_set else "default"
        value = shown_value(getattr(settings, name))
        rows.append(SettingRow(ENV_PREFIX + name.upper(), value, source))
    return rows
