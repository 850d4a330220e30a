"""The sample requests the end-to-end tests start from are valid: no default rule objects."""

from __future__ import annotations

import pytest

from policies.core.engine import PolicyEngine
from policies.core.model import Outcome, audited_request
from policies.rules.listing import RuleOptions, default_rules
from tests.samples import VALID, Sample


@pytest.mark.parametrize(("key", "sample"), VALID.items(), ids=list(VALID))
def test_sample_passes_every_default_rule(key: str, sample: Sample) -> None:
    """Each sample is its catalogued operation and draws no finding that would block."""
    engine = PolicyEngine(default_rules(RuleOptions(amount_bounds="NOK=1000..10000000")))
    request = audited_request(sample.method, sample.path, sample.headers.items(), sample.body)
    assert request.operation.key == key
    verdict = engine.evaluate(request)
    assert [d.finding.message for d in verdict.decisions if d.outcome is not Outcome.REPORTED] == []
