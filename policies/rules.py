"""Every policy rule, listed explicitly in one place, built from the options in the settings."""

from __future__ import annotations

from dataclasses import dataclass

from policies.model import Rule


@dataclass(frozen=True, slots=True)
class RuleOptions:
    """The rule parameters that come from settings."""

    phone_default_region: str = "NO"
    amount_bounds: str = ""


def default_rules(options: RuleOptions | None = None) -> tuple[Rule, ...]:
    """All rules of the proxy, in the order their findings are reported."""
    return ()
