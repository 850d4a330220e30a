"""Every policy rule, listed explicitly in one place, built from the options in the settings.

The order is the order findings are reported in: the body's shape first (a body that does not
parse cannot be judged further), then money, phone numbers, headers, references, URLs, advice.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.core.model import Rule
from policies.rules.amounts import (
    AmountBounds,
    AmountIsInteger,
    AmountWithinLimits,
    CurrencyAllowed,
    parse_bounds,
)
from policies.rules.body_shape import (
    BodyIsJson,
    BodyIsObject,
    FieldNameCase,
    NoDuplicateKeys,
    RequiredFields,
)
from policies.rules.express import ExplicitCheckoutFlow
from policies.rules.headers import HeaderFormat, RequiredHeaders, SingleValueHeaders, SystemHeaders
from policies.rules.phones import PhoneNumberFormat, PhoneNumberRecognised
from policies.rules.references import ReferenceFormat, ReferenceMismatch
from policies.rules.urls import CallbackIsHttps, LocalhostUrl


@dataclass(frozen=True, slots=True)
class RuleOptions:
    """The rule parameters that come from settings."""

    phone_default_region: str = "NO"
    amount_bounds: str = ""


def default_rules(options: RuleOptions | None = None) -> tuple[Rule, ...]:
    """All rules of the proxy (raises ValueError for options the rules cannot take)."""
    options = options or RuleOptions()
    return (
        BodyIsJson(),
        NoDuplicateKeys(),
        BodyIsObject(),
        FieldNameCase(),
        RequiredFields(),
        AmountIsInteger(),
        AmountWithinLimits(),
        CurrencyAllowed(),
        AmountBounds(parse_bounds(options.amount_bounds)),
        PhoneNumberFormat(options.phone_default_region),
        PhoneNumberRecognised(options.phone_default_region),
        RequiredHeaders(),
        HeaderFormat(),
        SingleValueHeaders(),
        SystemHeaders(),
        ReferenceFormat(),
        ReferenceMismatch(),
        CallbackIsHttps(),
        LocalhostUrl(),
        ExplicitCheckoutFlow(),
    )
