"""Settings from the environment: typed values, and one line naming the variable when invalid."""

from __future__ import annotations

import pytest

from policies.core.model import Action
from proxy.config import ConfigError, load_settings


def test_rule_actions_are_read_into_typed_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """`rule=action` pairs, with spaces and empty parts, become a mapping of rule to Action."""
    monkeypatch.setenv("VIPPS_PROXY_RULE_ACTIONS", " amount.bounds = block,,phone.format=report ")
    assert load_settings().rule_actions == {
        "amount.bounds": Action.BLOCK,
        "phone.format": Action.REPORT,
    }


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        pytest.param(
            "VIPPS_PROXY_RULE_ACTIONS",
            "amount.bounds=stop",
            "VIPPS_PROXY_RULE_ACTIONS: amount.bounds: Input should be 'block', 'repair', "
            "'report' or 'off'",
            id="unknown-action",
        ),
        pytest.param(
            "VIPPS_PROXY_RULE_ACTIONS",
            "amount.bounds",
            "VIPPS_PROXY_RULE_ACTIONS: 'amount.bounds' is not of the form rule=action",
            id="no-action",
        ),
        pytest.param(
            "VIPPS_PROXY_RULE_ACTIONS",
            "=block",
            "VIPPS_PROXY_RULE_ACTIONS: '=block' is not of the form rule=action",
            id="no-rule",
        ),
        pytest.param(
            "VIPPS_PROXY_LISTEN_PORT",
            "eighty",
            "VIPPS_PROXY_LISTEN_PORT: Input should be a valid integer, unable to parse string "
            "as an integer",
            id="port",
        ),
    ],
)
def test_invalid_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    """An invalid value raises ConfigError whose message is exactly the one expected line."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value) == expected
