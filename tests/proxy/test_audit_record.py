"""The request record's pure pieces: its level, whether the dashboard wants it, how it is built
and redacted, how Vipps' answer grades it, and the metrics one finished request updates."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from policies.core.model import Decision, Finding, Outcome, RuleFailure, Source, Verdict
from proxy.audit import ErrorAnswer, RequestFacts, is_problem, request_level, request_record
from proxy.grading import graded_outcome
from proxy.metrics import ProxyMetrics

PHONE = "4791234567"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-part"
CLEAN = RequestFacts(
    request_id="r1",
    method="POST",
    api="epayment",
    operation="capture_payment",
    status=200,
    outcome="forwarded",
    seconds=0.0123456,
    path="/epayment/v1/payments/ref-1/capture",
    upstream_seconds=0.01,
)


def decision(outcome: Outcome, rule: str = "amount.bounds", value: str | None = None) -> Decision:
    """A decision on one body finding of `rule`."""
    finding = Finding(rule, Source.BODY, "amount.value", "is too small", "at least 1", value)
    return Decision(finding, outcome)


def facts(**changes: Any) -> RequestFacts:
    """The clean forwarded capture with some facts changed."""
    return dataclasses.replace(CLEAN, **changes)


@pytest.mark.parametrize(
    ("status", "verdict", "level"),
    [
        pytest.param(200, None, "info", id="clean"),
        pytest.param(200, Verdict((decision(Outcome.REPORTED),)), "info", id="only-reported"),
        pytest.param(200, Verdict((decision(Outcome.WOULD_BLOCK),)), "warning", id="would-block"),
        pytest.param(200, Verdict((decision(Outcome.REPAIRED),)), "warning", id="repaired"),
        pytest.param(200, Verdict(failures=(RuleFailure("a.b", "x"),)), "error", id="rule-error"),
        pytest.param(404, None, "warning", id="4xx"),
        pytest.param(404, Verdict(failures=(RuleFailure("a.b", "x"),)), "warning", id="4xx-err"),
        pytest.param(502, Verdict((decision(Outcome.REPORTED),)), "error", id="5xx"),
    ],
)
def test_the_level_follows_the_status_then_the_verdict(
    status: int, verdict: Verdict | None, level: str
) -> None:
    """A record is info, warning or error by status; below 400 a rule error makes it error and a
    finding the proxy did more than report makes it warning."""
    assert request_level(facts(status=status, verdict=verdict)) == level


@pytest.mark.parametrize(
    ("status", "verdict", "problem"),
    [
        pytest.param(200, None, False, id="clean"),
        pytest.param(200, Verdict(), False, id="empty-verdict"),
        pytest.param(200, Verdict((decision(Outcome.REPORTED),)), True, id="finding"),
        pytest.param(200, Verdict(failures=(RuleFailure("a.b", "x"),)), True, id="rule-error"),
        pytest.param(400, None, True, id="4xx"),
        pytest.param(399, None, False, id="3xx"),
    ],
)
def test_a_problem_is_an_error_answer_a_finding_or_a_rule_error(
    status: int, verdict: Verdict | None, problem: bool
) -> None:
    """The dashboard's records are those answered 400 or more, or with findings or rule errors."""
    assert is_problem(facts(status=status, verdict=verdict)) is problem


def test_a_clean_record_names_the_request_and_no_more() -> None:
    """A clean forwarded request's record holds its identity, status, outcome and times in
    milliseconds, in the order the log line writes them."""
    record = request_record(CLEAN)
    assert list(record.items()) == [
        ("request_id", "r1"),
        ("method", "POST"),
        ("path", "/epayment/v1/payments/ref-1/capture"),
        ("api", "epayment"),
        ("operation", "capture_payment"),
        ("status", 200),
        ("outcome", "forwarded"),
        ("duration_ms", 12.346),
        ("upstream_ms", 10.0),
    ]


def test_personal_data_and_secrets_in_the_request_are_masked() -> None:
    """Phone numbers in the path, query and Vipps error code are masked, a secret query
    parameter is replaced, and the long values are cut at 64 characters."""
    record = request_record(
        facts(
            path=f"/recurring/v3/agreements/{PHONE}",
            query=f"code={TOKEN}&phone={PHONE}",
            vipps_error_code=f"bad {PHONE} " + "x" * 100,
            retry_after="9" * 100,
            upstream_trace_id="t-1",
        )
    )
    line = orjson.dumps(record).decode()
    assert PHONE not in line
    assert TOKEN not in line
    assert record["path"].endswith("67")
    assert record["query"].startswith("code=")
    assert "phone=" in record["query"]
    # Cut at 64 of the characters Vipps sent (15 before the x's), then masked.
    assert record["vipps_error_code"].count("x") == 64 - 15
    assert record["retry_after"] == "9" * 64
    assert record["upstream_trace_id"] == "t-1"


def test_findings_carry_their_action_grade_repair_and_rule_errors() -> None:
    """A record with findings lists each masked, Vipps' grade, the repair, and each rule error
    with its message masked."""
    verdict = Verdict(
        (decision(Outcome.WOULD_BLOCK, value=f"'{PHONE}'"),),
        body=b"{}",
        failures=(RuleFailure("phone.format", f"ValueError: {PHONE}"),),
    )
    record = request_record(facts(verdict=verdict, graded="accepted"))
    assert [(f["rule"], f["action"]) for f in record["findings"]] == [
        ("amount.bounds", "would_block")
    ]
    assert PHONE not in record["findings"][0]["value"]
    assert record["vipps_outcome"] == "accepted"
    assert record["repaired"] is True
    assert record["rule_errors"][0]["rule"] == "phone.format"
    assert PHONE not in record["rule_errors"][0]["error"]


def test_an_empty_verdict_adds_no_findings() -> None:
    """A verdict with neither findings nor rule errors leaves the finding fields out, grade
    included."""
    record = request_record(facts(verdict=Verdict(body=b"{}"), graded="accepted"))
    assert not {"findings", "vipps_outcome", "repaired", "rule_errors"} & record.keys()


def test_vipps_error_body_is_redacted_and_capped() -> None:
    """Vipps' JSON error answer is quoted with phone numbers redacted; one longer than the cap
    is cut to it as text."""
    body = orjson.dumps({"detail": "wrong", "phoneNumber": PHONE})
    quoted = request_record(facts(status=400), ErrorAnswer(body, "application/json"), 2000)
    assert quoted["error_body"]["content_type"] == "application/json"
    assert PHONE not in orjson.dumps(quoted["error_body"]).decode()
    capped = request_record(facts(status=400), ErrorAnswer(body, "application/json"), 10)
    assert capped["error_body"]["truncated"] is True
    assert len(capped["error_body"]["text"]) == 10


def test_the_proxys_own_answer_keeps_its_words() -> None:
    """The proxy's own (already masked) answer is quoted as it is, header names included."""
    words = {"detail": "Ocp-Apim-Subscription-Key: required header is missing"}
    answer = ErrorAnswer(orjson.dumps(words), "application/problem+json", masked=True)
    record = request_record(facts(status=400, outcome="blocked"), answer, 2000)
    assert record["error_body"] == {"json": words, "content_type": "application/problem+json"}


def test_the_requests_own_credentials_are_scrubbed_where_they_can_be_quoted() -> None:
    """A credential quoted in the error body or a rule error is scrubbed; it is not looked for
    in a record that has neither."""
    answer = ErrorAnswer(f"token {TOKEN} refused".encode(), "text/plain")
    failure = Verdict(failures=(RuleFailure("header.format", f"bad {TOKEN}"),))
    in_body = request_record(facts(status=401, secrets=(TOKEN,)), answer, 2000)
    in_error = request_record(facts(verdict=failure, secrets=(TOKEN,)))
    assert TOKEN not in orjson.dumps(in_body).decode()
    assert in_body["error_body"]["text"].startswith("token ")
    assert TOKEN not in orjson.dumps(in_error).decode()
    # Without an error body or rule error, the record's own path is not searched for it.
    in_path = request_record(facts(path=f"/x/{TOKEN}", secrets=(TOKEN,)))
    assert in_path["path"] == f"/x/{TOKEN}"


@pytest.mark.parametrize(
    ("outcome", "status", "decisions", "graded"),
    [
        pytest.param("forwarded", 200, True, "accepted", id="accepted"),
        pytest.param("forwarded", 409, True, "rejected", id="rejected"),
        pytest.param("forwarded", 503, True, "no_answer", id="5xx"),
        pytest.param("upstream_error", 504, True, "no_answer", id="no-answer"),
        pytest.param("forwarded", 200, False, None, id="no-findings"),
        pytest.param("blocked", 400, True, None, id="blocked"),
        pytest.param("shutdown", 200, True, None, id="cut"),
    ],
)
def test_vipps_grades_only_forwarded_requests_with_findings(
    outcome: str, status: int, decisions: bool, graded: str | None
) -> None:
    """Vipps' answer grades a forwarded request (or one that got none) that had findings."""
    verdict = Verdict((decision(Outcome.WOULD_BLOCK),) if decisions else ())
    assert graded_outcome(verdict, outcome, status) == graded
    assert graded_outcome(None, outcome, status) is None


def labels(**extra: str) -> dict[str, str]:
    return {"api": "epayment", "operation": "capture_payment", **extra}


def test_one_request_updates_every_metric_it_belongs_to() -> None:
    """A forwarded capture that Vipps refused, with findings of two rules (one rate limit block
    among them) and a rule error, counts once in each metric with its labels."""
    registry = CollectorRegistry()
    metrics = ProxyMetrics(registry)
    verdict = Verdict(
        (
            decision(Outcome.WOULD_BLOCK),
            decision(Outcome.WOULD_BLOCK),
            decision(Outcome.BLOCKED, rule="rate_limit.exceeded"),
        ),
        failures=(RuleFailure("phone.format", "boom"),),
    )
    metrics.count_request(
        facts(status=409, method="BREW", verdict=verdict, graded="rejected", vipps_error_code="81")
    )

    def sample(name: str, **extra: str) -> float | None:
        return registry.get_sample_value(name, labels(**extra))

    assert sample("vipps_proxy_requests_total", method="other", code="409", outcome="forwarded")
    assert sample("vipps_proxy_request_duration_seconds_count", outcome="forwarded") == 1
    assert sample("vipps_proxy_request_duration_seconds_sum", outcome="forwarded") == (
        pytest.approx(0.0123456)
    )
    assert sample("vipps_proxy_upstream_duration_seconds_count") == 1
    assert sample("vipps_proxy_vipps_errors_total", code="409", error_code="81") == 1
    findings = "vipps_proxy_policy_findings_total"
    assert sample(findings, rule="amount.bounds", action="would_block") == 2
    assert sample(findings, rule="rate_limit.exceeded", action="blocked") == 1
    assert sample("vipps_proxy_rate_limited_total") == 1
    assert registry.get_sample_value("vipps_proxy_rule_errors_total", {"rule": "phone.format"})
    outcomes = "vipps_proxy_finding_outcomes_total"
    assert sample(outcomes, rule="amount.bounds", vipps="rejected") == 1
    assert sample(outcomes, rule="rate_limit.exceeded", vipps="rejected") == 1


def test_a_request_without_an_answer_counts_its_reason_not_its_time() -> None:
    """An upstream error counts its reason and no upstream time, nor a Vipps error code."""
    registry = CollectorRegistry()
    ProxyMetrics(registry).count_request(
        facts(status=504, outcome="upstream_error", upstream_reason="timeout")
    )
    assert registry.get_sample_value(
        "vipps_proxy_upstream_errors_total", labels(reason="timeout")
    ) == (1)
    assert registry.get_sample_value("vipps_proxy_upstream_duration_seconds_count", labels()) in (
        None,
        0,
    )
    assert registry.get_sample_value(
        "vipps_proxy_vipps_errors_total", labels(code="504", error_code="none")
    ) in (None, 0)


def test_a_blocked_request_counts_no_vipps_error() -> None:
    """The proxy's own 400 is not counted as an error answer from Vipps."""
    registry = CollectorRegistry()
    ProxyMetrics(registry).count_request(
        facts(status=400, outcome="blocked", upstream_seconds=None)
    )
    assert registry.get_sample_value(
        "vipps_proxy_requests_total",
        labels(method="POST", code="400", outcome="blocked"),
    ) == (1)
    assert registry.get_sample_value(
        "vipps_proxy_vipps_errors_total", labels(code="400", error_code="none")
    ) in (None, 0)
