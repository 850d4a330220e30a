"""The series Prometheus holds for the proxy, by name, with the label names each carries.

Three sources, none written by hand here:
- exported: what `proxy.metrics.ProxyMetrics` (on the proxy's process registry, which adds the
  process_* and python_info collectors) exposes, read off a fresh registry;
- scraped: `up`, and the target labels that scraping adds (job, instance, and whatever the
  relabelling in deploy/prometheus/prometheus.yml writes);
- recorded: every recording rule in deploy/prometheus, its labels inferred from its expression.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from proxy.app import process_registry
from proxy.metrics import ProxyMetrics
from tests.deploy import DEPLOY, load_yaml
from tests.deploy.promql import MetricInfo, check

PROMETHEUS = DEPLOY / "prometheus"
RULE_FILES = (PROMETHEUS / "recording-rules.yml", PROMETHEUS / "alert-rules.yml")
# Labels Prometheus itself puts on every scraped series.
SCRAPE_LABELS = frozenset({"job", "instance"})


def exported_series(registry: CollectorRegistry | None = None) -> dict[str, MetricInfo]:
    """Every sample name the proxy exposes on /metrics, with its label names and `le` bounds.

    Labelled metrics have no samples until a child exists, so one child with placeholder label
    values is made per metric; the names then come from collecting the registry, which gives
    the exact exposed forms (`_total`, `_created`, `_bucket`, `_sum`, `_count`).
    """
    registry = registry if registry is not None else process_registry()
    metrics = ProxyMetrics(registry)
    for metric in vars(metrics).values():
        # _labelnames is prometheus_client's own record of the declared label names.
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*("placeholder" for _ in metric._labelnames))
    labels: dict[str, set[str]] = defaultdict(set)
    buckets: dict[str, set[str]] = defaultdict(set)
    for family in registry.collect():
        for sample in family.samples:
            labels[sample.name] |= set(sample.labels)
            if "le" in sample.labels:
                buckets[sample.name].add(sample.labels["le"])
    return {
        name: MetricInfo(frozenset(names), frozenset(buckets[name]))
        for name, names in labels.items()
    }


def relabel_target_labels(scrape_configs: list[dict[str, Any]]) -> frozenset[str]:
    """Label names that the scrape configs add to targets (static labels and relabelling)."""
    names: set[str] = set()
    for job in scrape_configs:
        for rule in job.get("relabel_configs", []):
            target = rule.get("target_label", "")
            if target and not target.startswith("__"):
                names.add(target)
        for static in job.get("static_configs", []):
            names |= set(static.get("labels", {}))
    return frozenset(names)


def target_labels() -> frozenset[str]:
    """Label names a scraped proxy series can carry besides its own."""
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    return SCRAPE_LABELS | relabel_target_labels(config["scrape_configs"])


def scraped_series() -> dict[str, MetricInfo]:
    """Exported series as Prometheus stores them (target labels added), plus `up`."""
    extra = target_labels()
    series = {
        name: MetricInfo(info.labels | extra, info.buckets)
        for name, info in exported_series().items()
    }
    series["up"] = MetricInfo(extra)
    return series


def rules(kind: str) -> Iterator[dict[str, Any]]:
    """Every rule of `kind` ("record" or "alert") in deploy/prometheus, in evaluation order."""
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            yield from (rule for rule in group["rules"] if kind in rule)


def known_series() -> dict[str, MetricInfo]:
    """Scraped series plus every recording rule, whose labels come from its expression."""
    series = scraped_series()
    for rule in rules("record"):
        _, labels = check(rule["expr"], series)
        series[rule["record"]] = MetricInfo(labels | set(rule.get("labels", {})))
    return series
