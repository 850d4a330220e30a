"""The wall between the pure policies and the I/O side stays standing."""

from __future__ import annotations

import subprocess
import sys


def test_policies_import_no_io_modules() -> None:
    """Importing every policies module in a fresh interpreter loads no I/O module."""
    code = (
        "import pkgutil, importlib, sys, policies\n"
        "for m in pkgutil.iter_modules(policies.__path__):\n"
        "    importlib.import_module('policies.' + m.name)\n"
        "io = ('aiohttp', 'prometheus_client', 'proxy')\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in io)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_redaction_imports_no_rule_module() -> None:
    """The log redaction stands on its own: importing it loads none of the rule modules."""
    code = (
        "import sys, policies.redaction\n"
        "rules = ('phones', 'amounts', 'headers', 'references', 'urls', 'body_shape', 'express')\n"
        "print(','.join(sorted(r for r in rules if 'policies.' + r in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
