"""deploy/prometheus: scrape config, recording and alert rules, and their promtool unit tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import DEPLOY, load_yaml
from tests.deploy.promql import parse, selectors
from tests.deploy.series import PROMETHEUS, RULE_FILES, rules

UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning", "info"}


def run(command: list[str], cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    """Run a checker from deploy/prometheus, where the files' relative paths resolve."""
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def test_rule_files_pass_promtool_check(promtool: str) -> None:
    """promtool accepts both rule files (syntax, templates, duplicate names)."""
    result = run([promtool, "check", "rules", *(p.name for p in RULE_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass(promtool: str) -> None:
    """promtool test rules: every alert fires and stays silent where the tests expect."""
    assert UNIT_TESTS
    result = run([promtool, "test", "rules", *(str(p.relative_to(PROMETHEUS)) for p in UNIT_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    """Each alert has at least one unit test case where it fires and one where it does not."""
    firing: set[str] = set()
    silent: set[str] = set()
    for path in UNIT_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules("alert")}
    assert alerts - firing == set()
    assert alerts - silent == set()
    assert (firing | silent) - alerts == set()


@pytest.mark.parametrize("rule", list(rules("alert")), ids=lambda rule: rule["alert"])
def test_alert_says_how_bad_and_what_to_do(rule: dict[str, Any]) -> None:
    """An alert waits (`for`), has a severity, a summary, a description and a runbook hint."""
    assert re.fullmatch(r"\d+[smh]", rule["for"])
    assert rule["labels"]["severity"] in SEVERITIES
    assert set(rule["annotations"]) == {"summary", "description", "runbook"}
    assert all(text.strip() for text in rule["annotations"].values())


def test_prometheus_config_passes_promtool_check(promtool: str, tmp_path: Path) -> None:
    """promtool accepts prometheus.yml with its rule files.

    Debian's promtool is built without Kubernetes service discovery. When it rejects only that,
    the Kubernetes job is checked again with file_sd_configs in its place: everything else
    (relabelling, regexes, the rule files) is still checked by promtool.
    """
    result = run([promtool, "check", "config", "prometheus.yml"])
    if "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        config = load_yaml(PROMETHEUS / "prometheus.yml")
        for job in config["scrape_configs"]:
            if job.pop("kubernetes_sd_configs", None) is not None:
                job["file_sd_configs"] = [{"files": ["targets.json"]}]
        (tmp_path / "targets.json").write_text("[]", encoding="utf-8")
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        for path in RULE_FILES:
            (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        result = run([promtool, "check", "config", "prometheus.yml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def relabel(labels: dict[str, str], configs: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus' relabelling for the actions the config uses; None when the target is dropped."""
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace")
        value = config.get("separator", ";").join(
            labels.get(name, "") for name in config.get("source_labels", [])
        )
        # Prometheus anchors the regex at both ends; RE2 syntax here is also Python syntax.
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        if action == "keep" and match is None:
            return None
        if action == "drop" and match is not None:
            return None
        if action == "replace" and match is not None:
            template = re.sub(r"\$\{?(\d+)\}?", r"\\\1", config.get("replacement", "$1"))
            labels[config["target_label"]] = match.expand(template)
        if action not in {"keep", "drop", "replace"}:
            raise NotImplementedError(action)
    return labels


def discovered_targets(pod: dict[str, Any], namespace: str, ip: str) -> list[dict[str, str]]:
    """The targets Kubernetes pod discovery yields for a pod: one per container port."""
    meta = pod["metadata"]
    common = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": "merchant-app-5f7c9-x2k4q",
        "__meta_kubernetes_pod_ip": ip,
        "__meta_kubernetes_pod_phase": "Running",
    }
    for key, value in meta.get("annotations", {}).items():
        common[f"__meta_kubernetes_pod_annotation_{re.sub(r'[^A-Za-z0-9_]', '_', key)}"] = value
    for key, value in meta.get("labels", {}).items():
        common[f"__meta_kubernetes_pod_label_{re.sub(r'[^A-Za-z0-9_]', '_', key)}"] = value
    targets = []
    spec = pod["spec"]
    for init, containers in ((True, spec.get("initContainers", [])), (False, spec["containers"])):
        for container in containers:
            for port in container.get("ports", []):
                targets.append(
                    common
                    | {
                        "__address__": f"{ip}:{port['containerPort']}",
                        "__meta_kubernetes_pod_container_name": container["name"],
                        "__meta_kubernetes_pod_container_init": str(init).lower(),
                        "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                        "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
                    }
                )
    return targets


def scrape(job: dict[str, Any], pod: dict[str, Any]) -> list[dict[str, str]]:
    """The distinct targets a job scrapes for the pod, without the internal labels."""
    found = []
    for target in discovered_targets(pod, "shop", "10.244.1.17"):
        defaults = {"job": job["job_name"], "__metrics_path__": "/metrics", "__scheme__": "http"}
        labels = relabel(defaults | target, job["relabel_configs"])
        if labels is not None:
            kept = {k: v for k, v in labels.items() if not k.startswith("__meta_")}
            if kept not in found:
                found.append(kept)
    return found


@pytest.fixture(scope="module")
def kubernetes_job() -> dict[str, Any]:
    """The scrape job that discovers proxies in Kubernetes."""
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    return dict(job)


def test_kubernetes_job_scrapes_the_sidecar_once_per_pod(kubernetes_job: dict[str, Any]) -> None:
    """For the example pod, relabelling leaves one target: the admin port's /metrics."""
    pod = load_yaml(DEPLOY / "kubernetes" / "deployment.yaml")["spec"]["template"]
    assert scrape(kubernetes_job, pod) == [
        {
            "job": "vipps-audit-proxy",
            "__address__": "10.244.1.17:9180",
            "__metrics_path__": "/metrics",
            "__scheme__": "http",
            "namespace": "shop",
            "pod": "merchant-app-5f7c9-x2k4q",
            "app": "merchant-app",
        }
    ]


def test_kubernetes_job_ignores_pods_that_do_not_ask(kubernetes_job: dict[str, Any]) -> None:
    """A pod without prometheus.io/scrape "true" yields no target."""
    pod = load_yaml(DEPLOY / "kubernetes" / "deployment.yaml")["spec"]["template"]
    pod["metadata"]["annotations"]["prometheus.io/scrape"] = "false"
    assert scrape(kubernetes_job, pod) == []


def test_alerts_on_up_select_every_proxy_job() -> None:
    """The job matcher of the availability alerts matches every proxy scrape job there is."""
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    podmonitor = load_yaml(DEPLOY / "kubernetes" / "prometheus-operator" / "podmonitor.yaml")
    for endpoint in podmonitor["spec"]["podMetricsEndpoints"]:
        jobs |= {r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"}
    for rule in rules("alert"):
        if "up{" not in rule["expr"]:
            continue
        (selector,) = [s for s in selectors(parse(rule["expr"])) if s.name == "up"]
        ((_, op, pattern),) = [m for m in selector.matchers if m[0] == "job"]
        assert op == "=~"
        assert all(re.fullmatch(pattern, job) for job in jobs), (rule["alert"], jobs)
