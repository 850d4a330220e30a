"""Vipps grades the rules: what Vipps answered to the requests a rule doubted but forwarded.

A finding in report mode, or of a condition that only reports, is `would_block`: the rule
doubted the request, and the proxy forwarded it anyway. Vipps' answer grades that doubt. When
Vipps accepted the request, the rule was *contradicted* (it would have failed a payment Vipps
takes, so it must not be switched to `block`); when Vipps rejected it, the rule was
*confirmed*. `graded_outcome` is that answer for one request (the record's `vipps_outcome`);
`RuleGrades` reads the audit records and keeps, per rule, the three counts and the latest
example, for the error dashboard. The same counts, with advice and repairs too, are the metric
`vipps_proxy_finding_outcomes_total`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.core.model import Verdict
from proxy.audit import Record

# What a rule doubted but let through: `would_repair` is what report mode makes of a repair.
DOUBTED = frozenset({"would_block", "would_repair"})
OUTCOMES = ("accepted", "rejected", "no_answer")
DEFAULT_MAX_RULES = 100
# The outcomes of a request that Vipps' answer (or its absence) grades.
_GRADED = frozenset({"forwarded", "upstream_error"})


def vipps_outcome(status: int | None) -> str:
    """What Vipps made of a forwarded request: `accepted` (2xx), `rejected` (4xx), or
    `no_answer` (5xx, none at all, or anything else that says nothing about the request)."""
    if status is not None and 200 <= status < 300:
        return "accepted"
    if status is not None and 400 <= status < 500:
        return "rejected"
    return "no_answer"


def graded_outcome(verdict: Verdict | None, outcome: str, status: int) -> str | None:
    """Vipps' answer to a request a rule doubted and the proxy sent on (`outcome` forwarded or
    upstream_error, where no answer came); None when there is nothing to grade."""
    if verdict is None or not verdict.decisions or outcome not in _GRADED:
        return None
    return vipps_outcome(None if outcome == "upstream_error" else status)


@dataclass(slots=True)
class Grade:
    """One rule's record: how Vipps answered what it doubted, and the latest such request."""

    rule: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    latest: Record | None = None

    def view(self) -> Record:
        """The JSON form: `contradicted` (accepted) and `confirmed` (rejected) by name."""
        return {
            "rule": self.rule,
            "contradicted": self.counts["accepted"],
            "confirmed": self.counts["rejected"],
            "no_answer": self.counts["no_answer"],
            "latest": self.latest,
        }


class RuleGrades:
    """Per rule, Vipps' answers to the forwarded requests it doubted (at most `max_rules`)."""

    def __init__(self, max_rules: int = DEFAULT_MAX_RULES) -> None:
        self.max_rules = max_rules
        # Ordered by last graded; the rule graded longest ago goes when a new one needs room.
        self._grades: OrderedDict[str, Grade] = OrderedDict()

    def observe(self, ts: str, record: Mapping[str, Any]) -> None:
        """Grade the rules a request record doubted by the `vipps_outcome` it carries."""
        outcome = record.get("vipps_outcome")
        if outcome not in OUTCOMES:
            return
        doubted: dict[str, Mapping[str, Any]] = {}
        for finding in record.get("findings") or ():
            if isinstance(finding, Mapping) and finding.get("action") in DOUBTED:
                doubted.setdefault(str(finding.get("rule")), finding)
        for rule, finding in doubted.items():
            grade = self._grades.get(rule)
            if grade is None:
                if len(self._grades) >= self.max_rules:
                    self._grades.popitem(last=False)
                grade = self._grades[rule] = Grade(rule)
            else:
                self._grades.move_to_end(rule)
            grade.counts[str(outcome)] += 1
            grade.latest = {
                "ts": ts,
                "vipps": outcome,
                "request_id": record.get("request_id"),
                "api": record.get("api"),
                "operation": record.get("operation"),
                "status": record.get("status"),
                "vipps_error_code": record.get("vipps_error_code"),
                "condition": finding.get("condition"),
                "field": finding.get("field"),
                "problem": finding.get("problem"),
                "value": finding.get("value"),
            }

    def view(self) -> list[Record]:
        """The rules, most contradicted first (then most confirmed, then by name)."""
        grades = sorted(
            self._grades.values(),
            key=lambda g: (-g.counts["accepted"], -g.counts["rejected"], g.rule),
        )
        return [g.view() for g in grades]
