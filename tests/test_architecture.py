"""The wall between the pure policies and the I/O side stays standing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_policies_import_no_io_modules() -> None:
    """Importing every policies module in a fresh interpreter loads no I/O module."""
    code = (
        "import pkgutil, importlib, sys, policies\n"
        "for m in pkgutil.walk_packages(policies.__path__, 'policies.'):\n"
        "    importlib.import_module(m.name)\n"
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
        "import sys, policies.core.redaction\n"
        "rules = ('phones', 'amounts', 'headers', 'references', 'urls', 'body_shape', 'express')\n"
        "print(','.join(sorted(r for r in rules if 'policies.rules.' + r in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_the_readme_names_every_module_where_it_lies() -> None:
    """The README's layout section names each module of `policies/` and `proxy/` under its
    folder, so the tree it draws is the tree there is."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    tree = section.split("```", 2)[1]
    folders: list[str] = []
    named: set[str] = set()
    for line in tree.splitlines():
        words = line.split()
        depth = (len(line) - len(line.lstrip())) // 2
        if words and words[0].endswith("/"):
            folders = [*folders[:depth], words[0].rstrip("/")]
            continue
        where = "/".join(folders[:depth])
        named.update(f"{where}/{w}" for w in words if w.endswith((".py", ".html")))
    modules = {
        p.relative_to(root).as_posix()
        for package in ("policies", "proxy")
        for p in (root / package).rglob("*")
        if p.suffix in (".py", ".html") and p.name != "__init__.py"
    }
    assert named == modules


def test_the_default_start_path_loads_no_redis_client() -> None:
    """redis-py (about 20 MB of the process) is loaded only when shared state is configured."""
    code = (
        "import sys, proxy.startup, proxy.app, proxy.handler\n"
        "print(','.join(sorted(n for n in sys.modules if n.split('.')[0] == 'redis')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
