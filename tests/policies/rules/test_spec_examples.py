"""Every request-body example in Vipps' own specs passes every rule untouched, unless listed here.

The proxy must never stop a payment Vipps would accept, and Vipps' examples are the closest thing
to requests Vipps is known to accept. Each example is sent, with the headers a correct integration
sends, through an engine holding every rule: it must come out neither blocked nor repaired, with no
finding that claims Vipps would refuse it (advisory findings are fine). The few examples that
contradict their own schema are listed in `EXCLUDED` with the reason and the rules that catch them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from policies.core.engine import PolicyEngine
from policies.core.model import Finding, Rule, Verdict, audited_request
from policies.rules.body_shape import (
    BodyIsJson,
    BodyIsObject,
    FieldNameCase,
    NoDuplicateKeys,
    RequiredFields,
)
from policies.rules.express import ExplicitCheckoutFlow
from policies.rules.listing import default_rules
from tests.policies.rules.spec_examples import (
    SpecExample,
    catalogued,
    example_headers,
    request_examples,
    spec_dir_or_skip,
)

SPECS = Path(__file__).parents[3].parent / "shared" / "vipps-openapi"
EXAMPLES: list[SpecExample] = catalogued(request_examples(SPECS)) if SPECS.is_dir() else []


@dataclass(frozen=True)
class Exclusion:
    """Why an example is not valid for its operation, and the rules whose findings show it."""

    reason: str
    codes: frozenset[str]


def _excluded(reason: str, *codes: str) -> Exclusion:
    return Exclusion(reason, frozenset(codes))


_POSTMAN = _excluded(
    "a Postman template: {{currency}}, {{orderId}} and the URLs are variables, not values",
    "amount.currency",
    "reference.format",
    "url.not_https",
)
_PREFILL_PLUS = _excluded(
    "prefillCustomer.phoneNumber +4748644347 has a + prefix; the schema describes MSISDN digits "
    "such as 4791234567 [CO #/components/schemas/PrefillCustomer/properties/phoneNumber]",
    "phone.format",
)
_V2_PHONE = _excluded(
    "customerPhoneNumber 91234567 has 8 digits, the schema's pattern is ^\\d{10,15}$ "
    "[RC #/components/schemas/DraftAgreementV2/properties/customerPhoneNumber]",
    "phone.format",
)

EXCLUDED: dict[str, Exclusion] = {
    "checkout-v2:checkout.create_session_v2:postman": _POSTMAN,
    "checkout-v3:checkout.create_session:postman": _POSTMAN,
    "checkout-v2:checkout.create_session_v2:swagger": _PREFILL_PLUS,
    "checkout-v3:checkout.create_session:swagger": _PREFILL_PLUS,
    "epayment-v1.7.0.copy-2025-03:epayment.create_payment:"
    "createpaymentrequest-example-with-user-info": _excluded(
        "customer.phoneNumber is the JSON number 4796844569; the schema's type is string "
        "[EP170 #/components/schemas/CustomerPhoneNumber/properties/phoneNumber]",
        "phone.format",
    ),
    "recurring-v3:recurring.draft_agreement_v2:minimal": _V2_PHONE,
    "recurring-v3:recurring.draft_agreement_v2:with-initial-charge": _V2_PHONE,
    "recurring-v3:recurring.draft_agreement_v2:with-price-campaign": _V2_PHONE,
    "recurring-v3:recurring.draft_agreement_v2:with-price-campaign-and-initial-charge": _V2_PHONE,
    "recurring-v3:recurring.draft_agreement_v2:with-variable-amount": _V2_PHONE,
    "recurring-v3:recurring.draft_agreement_v2:with-profile-flow": _V2_PHONE,
}

_OWN_RULES: tuple[Rule, ...] = (
    BodyIsJson(),
    NoDuplicateKeys(),
    BodyIsObject(),
    FieldNameCase(),
    RequiredFields(),
    ExplicitCheckoutFlow(),
)


@pytest.fixture(scope="module")
def rules() -> tuple[Rule, ...]:
    """Every rule of the proxy (`policies.rules.listing.default_rules()`), and this change's own
    rules."""
    by_code: dict[str, Rule] = {}
    for rule in (*default_rules(), *_OWN_RULES):
        by_code.setdefault(rule.code, rule)
    return tuple(by_code.values())


@pytest.fixture(scope="module")
def engine(rules: tuple[Rule, ...]) -> PolicyEngine:
    """An engine holding every rule, each with its default action."""
    return PolicyEngine(rules)


def evaluate(engine: PolicyEngine, example: SpecExample) -> Verdict:
    """The engine's verdict on the example, sent with the headers a correct integration sends."""
    request = audited_request(
        example.method, example.path, example_headers(example), example.body()
    )
    return engine.evaluate(request)


def objections(verdict: Verdict) -> list[Finding]:
    """The findings that say Vipps would refuse the request (all but advisory ones)."""
    return [d.finding for d in verdict.decisions if not d.finding.advisory]


def test_spec_folder_is_present() -> None:
    """The specs are where the tests look for them (skipped without them, failed so in CI)."""
    assert spec_dir_or_skip(SPECS) == SPECS


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [
        pytest.param(None, pytest.skip.Exception, id="local-skips"),
        pytest.param("false", pytest.skip.Exception, id="ci-false-skips"),
        pytest.param("true", pytest.fail.Exception, id="ci-fails"),
    ],
)
def test_missing_specs_skip_locally_and_fail_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str | None, outcome: type[BaseException]
) -> None:
    """Without the spec folder the spec tests skip, except where env CI is true: there they fail."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome):
        spec_dir_or_skip(tmp_path / "vipps-openapi")


@pytest.mark.parametrize("example", [pytest.param(e, id=e.id) for e in EXAMPLES])
def test_spec_example_passes_every_rule_untouched(
    example: SpecExample, engine: PolicyEngine
) -> None:
    """A spec example valid for its operation is forwarded as sent, with nothing said against it."""
    verdict = evaluate(engine, example)
    assert verdict.failures == ()
    exclusion = EXCLUDED.get(example.id)
    if exclusion is None:
        assert [f.message for f in objections(verdict)] == []
        assert not verdict.blocked
        assert verdict.body is None
        return
    # An excluded example is caught for the reason given, and by no other rule.
    codes = {f.rule for f in objections(verdict)}
    assert codes <= exclusion.codes, exclusion.reason
    active = {rule.code for rule in engine.rules}
    if exclusion.codes & active:
        assert codes, f"no rule catches it any more: {exclusion.reason}"


def test_every_exclusion_names_an_example() -> None:
    """The exclusion list names only examples that exist, so it cannot go stale silently."""
    spec_dir_or_skip(SPECS)
    assert set(EXCLUDED) <= {e.id for e in EXAMPLES}


def test_example_count(engine: PolicyEngine, capsys: pytest.CaptureFixture[str]) -> None:
    """Every spec file with request examples contributes, and the tally is printed."""
    spec_dir_or_skip(SPECS)
    clean = [e for e in EXAMPLES if not evaluate(engine, e).decisions]
    files = {e.file for e in EXAMPLES}
    assert {"checkout-v3.yaml", "epayment-v1.yaml", "recurring-v3.yaml"} <= files
    with capsys.disabled():
        print(
            f"\nspec examples: {len(EXAMPLES)} from {len(files)} files; "
            f"{len(EXAMPLES) - len(EXCLUDED)} valid, {len(EXCLUDED)} excluded; "
            f"{len(clean)} without any finding; {len(engine.rules)} rules"
        )
