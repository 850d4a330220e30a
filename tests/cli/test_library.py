"""`policies.check` and `policies.Checker`: the same check as a library, for a merchant's tests."""

from __future__ import annotations

from dataclasses import fields

import pytest

import policies
from policies import Checker, CheckSettings, Outcome, check
from policies.core.engine import PolicyConfigError, PolicyMode
from policies.core.model import Action, audited_request
from proxy.app import build_engine, build_payment_audit
from proxy.config import Settings
from tests.samples import EPAYMENT_CAPTURE, EPAYMENT_CREATE, EPAYMENT_CREATE_PLAIN, VALID, Sample


def blocked(decisions: list[policies.Decision]) -> list[str]:
    return [d.finding.rule for d in decisions if d.outcome is Outcome.BLOCKED]


@pytest.mark.parametrize("sample", VALID.values(), ids=list(VALID))
def test_every_valid_sample_is_clean(sample: Sample) -> None:
    """The valid request of each common operation has no finding at all."""
    assert check(sample.method, sample.path, sample.headers, sample.body) == []


def test_a_float_amount_is_found_with_field_and_expectation() -> None:
    """A float amount is a blocking finding with its field, problem and expected value."""
    body = EPAYMENT_CREATE.body.replace(b'"value":49900', b'"value":49900.5')
    decisions = check("POST", "/epayment/v1/payments", EPAYMENT_CREATE.headers, body)
    assert blocked(decisions) == ["amount.not_integer"]
    finding = decisions[0].finding
    assert (finding.field, finding.value) == ("amount.value", "49900.5")
    assert finding.expected.startswith("an integer number of minor units")


def test_headers_as_pairs_and_body_as_text() -> None:
    """Headers may be (name, value) pairs and the body a str (UTF-8)."""
    pairs = list(EPAYMENT_CREATE.headers.items())
    decisions = check("POST", "/epayment/v1/payments", pairs, EPAYMENT_CREATE.body.decode())
    assert decisions == []
    missing = [(k, v) for k, v in pairs if k != "Idempotency-Key"]
    decisions = check("POST", "/epayment/v1/payments", missing, EPAYMENT_CREATE.body)
    assert blocked(decisions) == ["header.missing"]


def test_settings_change_outcomes_as_in_the_proxy() -> None:
    """Report mode and rule overrides give the proxy's outcomes."""
    body = EPAYMENT_CREATE.body.replace(b'"value":49900', b'"value":49900.0')
    args = ("POST", "/epayment/v1/payments", EPAYMENT_CREATE.headers, body)
    report = check(*args, settings=CheckSettings(policy_mode=PolicyMode.REPORT))
    assert [d.outcome for d in report] == [Outcome.WOULD_BLOCK]
    repair = CheckSettings(rule_actions={"amount.not_integer": Action.REPAIR})
    assert [d.outcome for d in check(*args, settings=repair)] == [Outcome.REPAIRED]
    with pytest.raises(PolicyConfigError, match=r"unknown rule amount\.integer"):
        check(*args, settings=CheckSettings(rule_actions={"amount.integer": Action.BLOCK}))


def test_the_proxy_settings_class_is_accepted() -> None:
    """The sidecar's own `Settings` can be passed as the settings."""
    body = EPAYMENT_CREATE.body.replace(b'"value":49900', b'"value":499')
    args = ("POST", "/epayment/v1/payments", EPAYMENT_CREATE.headers, body)
    assert blocked(check(*args)) == []
    strict = Settings(rule_actions={"amount.bounds": Action.BLOCK})
    assert blocked(check(*args, settings=strict)) == ["amount.bounds"]


def test_check_settings_defaults_are_the_proxy_defaults() -> None:
    """`CheckSettings()` and `Settings()` agree on every rule setting."""
    proxy_defaults = Settings()
    for item in fields(CheckSettings):
        assert getattr(CheckSettings(), item.name) == getattr(proxy_defaults, item.name), item.name


def test_a_checker_keeps_payment_state_between_requests() -> None:
    """A second capture past the reservation is blocked by a Checker, not by one-shot checks."""
    checker = Checker()
    capture = EPAYMENT_CAPTURE.body.replace(b'"value":20000', b'"value":30000')

    def send(sample: Sample, body: bytes, key: str) -> list[str]:
        headers = {**sample.headers, "Idempotency-Key": key}
        request = audited_request(sample.method, sample.path, headers.items(), body)
        return [d.finding.rule for d in checker.evaluate(request).decisions]

    assert send(EPAYMENT_CREATE_PLAIN, EPAYMENT_CREATE_PLAIN.body, "k-create") == []
    assert send(EPAYMENT_CAPTURE, capture, "k-capture-1") == []
    assert send(EPAYMENT_CAPTURE, capture, "k-capture-2") == ["ledger.capture_exceeds_reserved"]
    headers = {**EPAYMENT_CAPTURE.headers, "Idempotency-Key": "k-capture-3"}
    assert check("POST", EPAYMENT_CAPTURE.path, headers, capture) == []


def test_the_proxy_builds_its_engine_the_same_way() -> None:
    """`proxy.app` builds the same rules, in the same order, with the same actions."""
    settings = Settings(rule_actions={"amount.bounds": Action.BLOCK})
    proxy_engine = build_engine(settings, build_payment_audit(settings))
    checker = Checker(settings)
    assert [r.code for r in proxy_engine.rules] == [r.code for r in checker.engine.rules]
    assert proxy_engine.actions == checker.engine.actions
    assert proxy_engine.mode is checker.engine.mode
