"""What a non-editable install ships: the wheel carries the package data the proxy reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built offline as `pip install .` would build it.

    It is built from a clean copy of the sources, so that no build or egg-info directory left
    in the working tree by an earlier build can add files the configuration would not.
    """
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("proxy", "policies"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(source)],
        check=True, capture_output=True, cwd=out,
    )  # fmt: skip
    (built,) = out.glob("vipps_audit_proxy-*.whl")
    return built


def test_wheel_carries_the_package_data(wheel: Path) -> None:
    """The dashboard page and the typing markers are in the wheel, next to the code."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"proxy/dashboard.html", "proxy/py.typed", "policies/py.typed"} <= names
    assert "proxy/dashboard_page.py" in names


def test_installed_package_serves_its_dashboard_page(wheel: Path, tmp_path: Path) -> None:
    """Imported from the wheel alone (not the source tree), the dashboard page loads whole."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(wheel)!r})\n"
        "import proxy.dashboard_page as page\n"
        "print(page.__file__)\n"
        "print(page.PAGE.startswith('<!doctype html>'), page.PAGE.rstrip().endswith('</html>'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    where, loaded = result.stdout.splitlines()
    assert where.startswith(str(wheel))
    assert loaded == "True True"
