"""deploy/kubernetes: the proxy as a native sidecar of an example merchant app.

Manifests are checked against the Kubernetes API schemas with kubernetes-validate --strict,
both as files and as `kubectl kustomize` renders them (kubectl runs offline here). The
PodMonitor is a custom resource those schemas do not know: it is checked against a small JSON
schema of the fields used, taken from the Prometheus Operator's monitoring.coreos.com/v1 CRD.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from proxy.config import Settings, unknown_variables
from tests.deploy import DEPLOY, load_yaml, load_yaml_documents
from tests.hardening.process import proxy_process

KUBERNETES = DEPLOY / "kubernetes"
COMPONENT = KUBERNETES / "prometheus-operator"
# Native sidecars (init containers with restartPolicy Always) are on by default from 1.29.
OLDEST_KUBERNETES = "1.29.0"
PLAIN_MANIFESTS = ("deployment.yaml", "service.yaml", "secret.example.yaml")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a kustomize env file; blank lines and comments skipped."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value
    return env


@pytest.fixture(scope="module")
def proxy_env() -> dict[str, str]:
    """The sidecar's settings as the ConfigMap will hold them."""
    return read_env_file(KUBERNETES / "vipps-audit-proxy.env")


@pytest.fixture(scope="module")
def pod_spec() -> dict[str, Any]:
    """The pod template's spec of the example Deployment."""
    spec: dict[str, Any] = load_yaml(KUBERNETES / "deployment.yaml")["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def sidecar(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """The vipps-audit-proxy container."""
    (container,) = [c for c in pod_spec["initContainers"] if c["name"] == "vipps-audit-proxy"]
    return dict(container)


def kustomize(kubectl: str, directory: Path) -> str:
    """`kubectl kustomize` output for a directory."""
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def with_component(tmp_path: Path) -> Path:
    """A kustomization that enables the prometheus-operator component on the base."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources: [{os.path.relpath(KUBERNETES, overlay)}]\n"
        f"components: [{os.path.relpath(COMPONENT, overlay)}]\n",
        encoding="utf-8",
    )
    return overlay


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, None], ids=["oldest", "newest"])
def test_manifests_pass_kubernetes_validate_strict(
    kubernetes_validate: str, kubectl: str, tmp_path: Path, version: str | None
) -> None:
    """The plain manifests and the rendered kustomization are valid, unknown fields rejected."""
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(kustomize(kubectl, KUBERNETES), encoding="utf-8")
    files = [str(KUBERNETES / name) for name in PLAIN_MANIFESTS] + [str(rendered)]
    flags = ["-k", version] if version else []
    result = subprocess.run(
        [kubernetes_validate, "--strict", *flags, *files],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # A kind without a schema is only a warning to the tool; here every kind must be known.
    assert "WARN" not in result.stdout + result.stderr
    assert result.stdout.count("passed") == len(PLAIN_MANIFESTS) + 3


def test_kustomization_renders_configmap_and_rewrites_its_name(kubectl: str) -> None:
    """The ConfigMap is generated from the env file with a content hash that envFrom follows."""
    documents = load_yaml_documents(kustomize(kubectl, KUBERNETES))
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    (configmap,) = [d for d in documents if d["kind"] == "ConfigMap"]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    assert configmap["metadata"]["name"].startswith("vipps-audit-proxy-")
    assert configmap["data"] == read_env_file(KUBERNETES / "vipps-audit-proxy.env")
    sidecar = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert sidecar["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]


def test_component_adds_only_the_podmonitor(kubectl: str, tmp_path: Path) -> None:
    """Enabling the prometheus-operator component adds a PodMonitor and changes nothing else."""
    base = load_yaml_documents(kustomize(kubectl, KUBERNETES))
    combined = load_yaml_documents(kustomize(kubectl, with_component(tmp_path)))
    added = [d for d in combined if d not in base]
    assert [d["kind"] for d in added] == ["PodMonitor"]
    assert len(combined) == len(base) + 1


def test_secret_example_is_not_applied_by_the_kustomization() -> None:
    """Applying the kustomization can never overwrite the real credentials with placeholders."""
    listed = set(load_yaml(KUBERNETES / "kustomization.yaml")["resources"])
    manifests = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert manifests - listed == {"secret.example.yaml"}


def test_env_file_holds_valid_settings(proxy_env: dict[str, str]) -> None:
    """Every variable is a proxy setting, the values are accepted, the admin port is reachable."""
    assert unknown_variables(proxy_env) == []
    settings = Settings.model_validate(
        {k.removeprefix("VIPPS_PROXY_").lower(): v for k, v in proxy_env.items()}
    )
    assert settings.admin_host == "0.0.0.0"
    assert settings.listen_host == "127.0.0.1"


def test_sidecar_is_native_and_probed_on_the_admin_port(
    sidecar: dict[str, Any], proxy_env: dict[str, str]
) -> None:
    """restartPolicy Always makes it a sidecar; probes ask /livez and /readyz on the admin port."""
    assert sidecar["restartPolicy"] == "Always"
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert ports == {
        "proxy": int(proxy_env["VIPPS_PROXY_LISTEN_PORT"]),
        "admin": int(proxy_env["VIPPS_PROXY_ADMIN_PORT"]),
    }
    probes = {
        kind: sidecar[kind]["httpGet"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": {"path": "/livez", "port": "admin"},
        "livenessProbe": {"path": "/livez", "port": "admin"},
        "readinessProbe": {"path": "/readyz", "port": "admin"},
    }


def test_app_calls_vipps_through_the_sidecar(
    pod_spec: dict[str, Any], proxy_env: dict[str, str]
) -> None:
    """The app's VIPPS_BASE_URL is the proxy's listen address; only the app gets the Secret."""
    (app,) = pod_spec["containers"]
    env = {e["name"]: e["value"] for e in app["env"]}
    listen = f"http://{proxy_env['VIPPS_PROXY_LISTEN_HOST']}:{proxy_env['VIPPS_PROXY_LISTEN_PORT']}"
    assert env["VIPPS_BASE_URL"] == listen
    secret = load_yaml(KUBERNETES / "secret.example.yaml")
    assert app["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    for container in pod_spec["initContainers"]:
        assert all("secretRef" not in source for source in container.get("envFrom", []))


def test_grace_period_covers_the_drain(pod_spec: dict[str, Any], proxy_env: dict[str, str]) -> None:
    """terminationGracePeriodSeconds leaves the proxy its drain budget plus 10 s margin."""
    drain = float(proxy_env["VIPPS_PROXY_SHUTDOWN_GRACE_SECONDS"])
    assert pod_spec["terminationGracePeriodSeconds"] >= drain + 10


def test_pod_is_isolated_from_service_links_and_the_api(pod_spec: dict[str, Any]) -> None:
    """No service-link variables (a vipps-proxy Service would inject VIPPS_PROXY_PORT), no token."""
    assert pod_spec["enableServiceLinks"] is False
    assert pod_spec["automountServiceAccountToken"] is False


def test_every_container_meets_the_restricted_pod_security_standard(
    pod_spec: dict[str, Any],
) -> None:
    """Non-root, no privilege escalation, all capabilities dropped, read-only root, seccomp."""
    pod = pod_spec["securityContext"]
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod_spec["initContainers"] + pod_spec["containers"]:
        context = container["securityContext"]
        assert context.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        seccomp = context.get("seccompProfile", pod["seccompProfile"])
        assert seccomp == {"type": "RuntimeDefault"}, container["name"]


def test_sidecar_has_requests_and_limits(sidecar: dict[str, Any]) -> None:
    """CPU and memory requests and limits are set, requests not above limits."""
    resources = sidecar["resources"]
    for kind in ("cpu", "memory"):
        request, limit = resources["requests"][kind], resources["limits"][kind]
        assert _quantity(request) <= _quantity(limit), kind


def _quantity(value: str) -> float:
    """A Kubernetes quantity such as 100m or 64Mi as a number."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value.removesuffix(suffix)) * factor
    return float(value)


def test_pods_carry_prometheus_scrape_annotations(proxy_env: dict[str, str]) -> None:
    """prometheus.io annotations point at the admin port's /metrics."""
    annotations = load_yaml(KUBERNETES / "deployment.yaml")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": proxy_env["VIPPS_PROXY_ADMIN_PORT"],
        "prometheus.io/path": "/metrics",
    }


def test_kustomization_images_name_the_containers_images(pod_spec: dict[str, Any]) -> None:
    """`images:` entries match the images in the Deployment, so `kustomize edit set image` works."""
    kustomization = load_yaml(KUBERNETES / "kustomization.yaml")
    named = {entry["name"] for entry in kustomization["images"]}
    used = {
        c["image"].rsplit(":", 1)[0] for c in pod_spec["initContainers"] + pod_spec["containers"]
    }
    assert named == used


# The fields of monitoring.coreos.com/v1 PodMonitor that podmonitor.yaml uses, with their types
# as the Operator's CRD declares them; unknown fields are rejected as kubectl would.
PODMONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {
                                "type": "string",
                                "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$",
                            },
                            "relabelings": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "action": {"enum": ["replace", "keep", "drop", "labelmap"]},
                                        "sourceLabels": {
                                            "type": "array",
                                            "items": {"type": "string"},
                                        },
                                        "targetLabel": {"type": "string"},
                                        "replacement": {"type": "string"},
                                        "regex": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_podmonitor_is_well_formed_and_selects_the_sidecar(
    pod_spec: dict[str, Any], sidecar: dict[str, Any]
) -> None:
    """The PodMonitor matches the pods' labels and scrapes the sidecar's admin port by name."""
    podmonitor = load_yaml(COMPONENT / "podmonitor.yaml")
    jsonschema.validate(podmonitor, PODMONITOR_SCHEMA)
    labels = load_yaml(KUBERNETES / "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert podmonitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = podmonitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for p in sidecar["ports"]}
    assert endpoint["path"] == "/metrics"
    assert {"action": "replace", "targetLabel": "job", "replacement": "vipps-audit-proxy"} in (
        endpoint["relabelings"]
    )
    assert load_yaml(COMPONENT / "kustomization.yaml")["resources"] == ["podmonitor.yaml"]


# What Kubernetes injects for a Service named vipps-proxy when service links are on.
SERVICE_LINKS = {
    "VIPPS_PROXY_SERVICE_HOST": "10.96.0.12",
    "VIPPS_PROXY_SERVICE_PORT": "8080",
    "VIPPS_PROXY_SERVICE_PORT_HTTP": "8080",
    "VIPPS_PROXY_PORT": "tcp://10.96.0.12:8080",
    "VIPPS_PROXY_PORT_8080_TCP": "tcp://10.96.0.12:8080",
    "VIPPS_PROXY_PORT_8080_TCP_PROTO": "tcp",
    "VIPPS_PROXY_PORT_8080_TCP_PORT": "8080",
    "VIPPS_PROXY_PORT_8080_TCP_ADDR": "10.96.0.12",
}


@pytest.mark.slow
async def test_rendered_env_starts_under_strict_settings(
    sidecar: dict[str, Any], proxy_env: dict[str, str]
) -> None:
    """The sidecar's env as rendered (ConfigMap, the container's own env, even a Service's
    injected variables) starts the real process under strict settings, the default."""
    assert "VIPPS_PROXY_STRICT_SETTINGS" not in proxy_env
    rendered = dict(proxy_env)
    rendered.update({e["name"]: e["value"] for e in sidecar.get("env", []) if "value" in e})
    rendered.update(SERVICE_LINKS)
    # Ports of its own on this machine; everything else as the example sets it.
    for name in ("VIPPS_PROXY_LISTEN_PORT", "VIPPS_PROXY_ADMIN_PORT"):
        rendered.pop(name, None)
    upstream = rendered.pop("VIPPS_PROXY_UPSTREAM_URL")
    async with proxy_process(upstream, **rendered) as running:
        pass
    assert running.process.returncode == 0
    assert b"unknown_setting" not in running.stdout
    assert running.stderr == b""


STATE_COMPONENT = KUBERNETES / "shared-state"


def with_state_component(tmp_path: Path) -> Path:
    """A kustomization that enables the shared-state component on the base."""
    overlay = tmp_path / "state-overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources: [{os.path.relpath(KUBERNETES, overlay)}]\n"
        f"components: [{os.path.relpath(STATE_COMPONENT, overlay)}]\n",
        encoding="utf-8",
    )
    return overlay


def test_state_component_passes_kubernetes_validate_strict(
    kubernetes_validate: str, kubectl: str, tmp_path: Path
) -> None:
    """The base with the shared-state component renders to valid manifests, unknown fields
    rejected, for the oldest Kubernetes the example supports."""
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(kustomize(kubectl, with_state_component(tmp_path)), encoding="utf-8")
    result = subprocess.run(
        [kubernetes_validate, "--strict", "-k", OLDEST_KUBERNETES, str(rendered)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARN" not in result.stdout + result.stderr
    assert result.stdout.count("passed") == 6  # ConfigMap, 2 Services, 2 Deployments, policy


def test_state_component_adds_the_store_and_points_the_sidecar_at_it(
    kubectl: str, tmp_path: Path, proxy_env: dict[str, str]
) -> None:
    """Valkey, its Service and NetworkPolicy are added; the sidecar's ConfigMap gains the state
    settings (a valid URL naming that Service), everything else stays as in the base."""
    base = load_yaml_documents(kustomize(kubectl, KUBERNETES))
    combined = load_yaml_documents(kustomize(kubectl, with_state_component(tmp_path)))
    named = {(d["kind"], d["metadata"]["name"]) for d in base if d["kind"] != "ConfigMap"}
    added = sorted(
        (d["kind"], d["metadata"]["name"])
        for d in combined
        if d["kind"] != "ConfigMap" and (d["kind"], d["metadata"]["name"]) not in named
    )
    assert added == [
        ("Deployment", "vipps-audit-proxy-state"),
        ("NetworkPolicy", "vipps-audit-proxy-state"),
        ("Service", "vipps-audit-proxy-state"),
    ]
    (configmap,) = [d for d in combined if d["kind"] == "ConfigMap"]
    state = read_env_file(STATE_COMPONENT / "state.env")
    assert configmap["data"] == {**proxy_env, **state}
    settings = Settings.model_validate(
        {k.removeprefix("VIPPS_PROXY_").lower(): v for k, v in configmap["data"].items()}
    )
    assert settings.state_backend == "redis://vipps-audit-proxy-state:6379/0"
    (service,) = [
        d for d in combined if d["kind"] == "Service" and "state" in d["metadata"]["name"]
    ]
    assert service["spec"]["ports"][0]["port"] == 6379
    (deployment,) = [
        d for d in combined if d["kind"] == "Deployment" and d["metadata"]["name"] == "merchant-app"
    ]
    sidecar = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert sidecar["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]


def test_state_store_is_restricted_and_reachable_only_from_the_app(tmp_path: Path) -> None:
    """The store's container meets the restricted standard, keeps nothing on disk, and only the
    merchant app's pods may connect to it."""
    documents = load_yaml_documents((STATE_COMPONENT / "redis.yaml").read_text(encoding="utf-8"))
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["args"][:4] == ["--save", "", "--appendonly", "no"]
    policy = load_yaml(STATE_COMPONENT / "networkpolicy.yaml")
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "merchant-app"}}}
    ]
