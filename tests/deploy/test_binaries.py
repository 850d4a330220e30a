"""require_binary: a missing tool skips a test on a developer's machine and fails it in CI."""

from __future__ import annotations

import pytest

from tests.binaries import require_binary


def test_present_binary_is_found() -> None:
    """An installed executable is returned by path."""
    assert require_binary("python3").endswith("python3")


def test_missing_binary_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without CI=true a missing binary skips the test."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_binary("no-such-tool-vipps-audit-proxy")


def test_missing_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """With CI=true a missing binary fails the test instead of skipping it."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_binary("no-such-tool-vipps-audit-proxy")
