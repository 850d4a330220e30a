"""Every PromQL expression in deploy/ names only series and labels that will exist.

The names come from the proxy's own metric declarations (tests/deploy/series.py), so renaming a
metric or a label in proxy/metrics.py without updating the rules and the dashboard fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy import DASHBOARD, DEPLOY, dashboard_panels, load_yaml
from tests.deploy.promql import MetricInfo, check
from tests.deploy.series import (
    exported_series,
    known_series,
    rules,
    scraped_series,
    target_labels,
)

# Grafana's built-in interval variables stand in for a duration; dashboard variables are only
# used inside regex matchers, where "match anything" is their widest value.
_GRAFANA_VARIABLE = re.compile(r"\$\{?(\w+)\}?")
_GRAFANA_DURATIONS = frozenset({"__rate_interval", "__interval", "__range"})
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def substitute_grafana_variables(expr: str) -> str:
    """The expression Grafana would send, with variables replaced by representative values."""
    return _GRAFANA_VARIABLE.sub(
        lambda m: "5m" if m.group(1) in _GRAFANA_DURATIONS else ".*",
        expr,
    )


def expressions() -> Iterator[Any]:
    """(id, PromQL) for every recording rule, alert and dashboard query."""
    for rule in rules("record"):
        yield pytest.param(rule["expr"], id=f"record:{rule['record']}")
    for rule in rules("alert"):
        yield pytest.param(rule["expr"], id=f"alert:{rule['alert']}")
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            expr = substitute_grafana_variables(target["expr"])
            yield pytest.param(expr, id=f"grafana:{panel['title']}:{target['refId']}")


@pytest.fixture(scope="module")
def series() -> dict[str, MetricInfo]:
    """Every series name a query may use, with its label names."""
    return known_series()


@pytest.mark.parametrize("expr", list(expressions()))
def test_query_names_only_existing_series_and_labels(
    expr: str, series: dict[str, MetricInfo]
) -> None:
    """The expression uses exported or recorded series, and only labels those series carry."""
    problems, _ = check(expr, series)
    assert problems == []


def test_dashboard_variables_query_existing_labels(series: dict[str, MetricInfo]) -> None:
    """Each label_values() variable names an existing series and one of its labels."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert queries
    for variable in queries:
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(text)
        assert match is not None, f"{variable['name']}: only label_values() is supported here"
        selector = substitute_grafana_variables(match["selector"])
        problems, labels = check(selector, series)
        assert problems == []
        assert match["label"] in labels, f"{variable['name']}: {selector} has no {match['label']}"


def test_series_are_derived_from_the_proxy() -> None:
    """The derivation finds the proxy's contract metrics in their exposed forms, and no others."""
    exported = exported_series()
    assert {
        "vipps_proxy_requests_total",
        "vipps_proxy_request_duration_seconds_bucket",
        "vipps_proxy_upstream_duration_seconds_count",
        "vipps_proxy_upstream_errors_total",
        "vipps_proxy_vipps_errors_total",
        "vipps_proxy_policy_findings_total",
        "vipps_proxy_rule_errors_total",
        "vipps_proxy_in_flight_requests",
        "vipps_proxy_build_info",
    } <= set(exported)
    assert exported["vipps_proxy_requests_total"].labels == {
        "api",
        "operation",
        "method",
        "code",
        "outcome",
    }
    assert "1.0" in exported["vipps_proxy_request_duration_seconds_bucket"].buckets


def test_checker_rejects_unknown_names_and_labels() -> None:
    """A wrong metric, a wrong label and an impossible le bound are each reported."""
    series = scraped_series()
    assert check("vipps_proxy_no_such_metric_total", series)[0]
    assert check('vipps_proxy_requests_total{reason="timeout"}', series)[0]
    assert check("sum by (rule) (vipps_proxy_requests_total)", series)[0]
    assert check('vipps_proxy_request_duration_seconds_bucket{le="0.3"}', series)[0]
    mismatched = "sum by (api) (x) / sum by (operation) (x)".replace(
        "x", "vipps_proxy_requests_total"
    )
    assert check(mismatched, series)[0]


def test_recording_rule_names_state_their_labels(series: dict[str, MetricInfo]) -> None:
    """A rule named level:metric:operations keeps exactly the labels its level names."""
    for rule in rules("record"):
        level, _, _ = rule["record"].split(":")
        labels = series[rule["record"]].labels
        assert set(level.split("_")) == {part for label in labels for part in label.split("_")}, (
            rule["record"]
        )


def test_target_labels_used_by_rules_come_from_both_scrape_setups() -> None:
    """Labels the rules take from the target (not the proxy) are set by prometheus.yml and by
    the Prometheus Operator for the PodMonitor alike."""
    exported_labels = {label for info in exported_series().values() for label in info.labels}
    used: set[str] = set()
    for rule in rules("record"):
        used |= _grouping_labels(rule["expr"])
    from_target = used - exported_labels
    assert from_target == {"namespace"}
    assert from_target <= target_labels()
    # The Operator labels every PodMonitor target with namespace, pod, container and endpoint.
    podmonitor = load_yaml(DEPLOY / "kubernetes" / "prometheus-operator" / "podmonitor.yaml")
    assert podmonitor["kind"] == "PodMonitor"
    assert from_target <= {"namespace", "pod", "container", "endpoint"}


def _grouping_labels(expr: str) -> set[str]:
    """Label names in the `by (...)` clauses of an expression."""
    return {
        label.strip()
        for group in re.findall(r"\bby\s*\(([^)]*)\)", expr)
        for label in group.split(",")
        if label.strip()
    }


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param("max_over_time(rate(up[5m])[1h:5m] offset 1d @ end())", id="subquery"),
        pytest.param("up / on(instance) group_left(job) up", id="group-left"),
        pytest.param("2 ^ 3 ^ 2 - -1 * scalar(up)", id="arithmetic"),
        pytest.param('count_values("value", up) without (job)', id="count-values"),
        pytest.param('label_replace(up, "host", "$1", "instance", "(.*):.*")', id="label-replace"),
    ],
)
def test_reader_understands_promql_forms(expr: str) -> None:
    """The reader parses PromQL's other forms and follows their labels without false alarms."""
    problems, _ = check(expr, scraped_series())
    assert problems == []
