"""Tests of the deployment files in deploy/: image, Kubernetes manifests, Prometheus, Grafana."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent
DASHBOARD = DEPLOY / "grafana" / "vipps-audit-proxy.json"


def load_yaml(path: Path) -> Any:
    """The single YAML document in `path`."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_documents(text: str) -> list[Any]:
    """Every non-empty YAML document in `text` (a kustomize rendering has several)."""
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a Grafana dashboard model, including those nested in collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])
