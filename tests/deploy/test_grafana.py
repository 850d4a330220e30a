"""deploy/grafana/vipps-audit-proxy.json: a dashboard Grafana can import as it is.

There is no Grafana here to render it; these tests check the JSON model's structure. The
queries themselves are checked against the proxy's metrics in test_queries.py.
"""

from __future__ import annotations

import json
import re
from itertools import combinations
from typing import Any

import pytest

from tests.deploy import DASHBOARD, dashboard_panels
from tests.deploy.series import rules

PANEL_TYPES = {"row", "timeseries", "table", "stat", "bargauge"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    """The dashboard's JSON model."""
    model: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return model


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    """A fixed uid (stable links), a title, and a data source variable of type prometheus."""
    assert dashboard["uid"] == "vipps-audit-proxy"
    assert dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_panels_are_well_formed(dashboard: dict[str, Any]) -> None:
    """Unique ids, known types, the variable data source, and targets with unique refIds."""
    panels = list(dashboard_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["description"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    """Every panel lies within the 24-column grid and no two panels cover the same cell."""
    boxes = []
    for panel in dashboard_panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert 0 < pos["w"] <= 24 - pos["x"], panel["title"]
        boxes.append((panel["title"], pos))
    for (first, a), (second, b) in combinations(boxes, 2):
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, (first, second)


def test_dashboard_shows_what_on_call_needs(dashboard: dict[str, Any]) -> None:
    """Each view the on-call engineer needs is a panel, and shows the metric it is about."""
    exprs: dict[str, str] = {
        panel["title"]: " ".join(t["expr"] for t in panel["targets"])
        for panel in dashboard_panels(dashboard)
        if panel["type"] != "row"
    }
    needed = {
        "Requests by outcome": "vipps_proxy_requests_total",
        "Vipps 5xx ratio per operation": "vipps_proxy_requests_total",
        "Top Vipps error codes": "vipps_proxy_vipps_errors_total",
        "Policy findings by rule and action": "vipps_proxy_policy_findings_total",
        "Latency p50/p99, proxy vs Vipps": "vipps_proxy_upstream_duration_seconds_bucket",
        "Upstream errors by reason": "vipps_proxy_upstream_errors_total",
        "In-flight requests": "vipps_proxy_in_flight_requests",
        "Build info": "vipps_proxy_build_info",
        "Rate-limited by Vipps (429)": 'code="429"',
        "Rule errors": "vipps_proxy_rule_errors_total",
        "Shared state errors and round trips": "vipps_proxy_state_errors_total",
        "Shared state round-trip latency p50/p99": "vipps_proxy_state_duration_seconds_bucket",
    }
    for title, metric in needed.items():
        assert metric in exprs.get(title, ""), title


def test_panels_named_in_runbooks_exist(dashboard: dict[str, Any]) -> None:
    """Every dashboard panel an alert's runbook or description points to is on the dashboard."""
    titles = {panel["title"] for panel in dashboard_panels(dashboard)}
    named = {
        title
        for rule in rules("alert")
        for text in rule["annotations"].values()
        for title in re.findall(r'panel "([^"]+)"', text)
    }
    assert named
    assert named <= titles
