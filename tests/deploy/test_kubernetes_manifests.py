"""The Kubernetes manifests in deploy/kubernetes/ validate against the API schemas
(kubernetes-validate, offline) and hold what the runbooks promise: several replicas, probes
on /livez and /readyz on the probe port, a read-only root file system as a non-root user,
resources, every writable path a volume, keys from a Secret, a configuration the gateway's
own loader accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from sqlalchemy import make_url

from tests.deploy.gateway_config import load_shipped

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
# The oldest Kubernetes release still commonly run, and the newest the validator knows.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                found.append((path.name, doc))
    return found


def _one(kind: str) -> dict[str, Any]:
    matches = [doc for _, doc in _documents() if doc["kind"] == kind]
    assert len(matches) == 1, kind
    return matches[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_strictly(version: str) -> None:
    documents = _documents()
    assert {doc["kind"] for _, doc in documents} >= {
        "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap",
        "PersistentVolumeClaim",
    }
    for name, doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']}: {exc.message}")


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_deployment_replicas_probes_and_hardening() -> None:
    deployment = _one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    (gateway,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert ports == {"grpc": 50651, "probes": 8081, "metrics": 9464}
    for probe, path in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/livez")]:
        get = gateway[probe]["httpGet"]
        assert get["path"] == path and ports[get["port"]] == 8081, probe
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in [*pod["initContainers"], gateway]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
        for mount in container["volumeMounts"]:
            volume = volumes[mount["name"]]
            if not mount.get("readOnly"):
                # Writable only where a volume is: nothing of the image's file system.
                assert "emptyDir" in volume or "persistentVolumeClaim" in volume, mount
            else:
                assert "emptyDir" not in volume or container is gateway, mount
    writable = {m["mountPath"] for m in gateway["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/var/lib/ketenpoort", "/var/lib/ketenpoort-checkpoints", "/tmp"}
    # Keys come from a Secret (never from the image or the ConfigMap), into memory.
    assert volumes["keys-secret"]["secret"]["secretName"] == "ketenpoort-keys"
    assert volumes["keys"]["emptyDir"]["medium"] == "Memory"
    (password,) = [e for e in gateway["env"] if e["name"] == "PGPASSWORD"]
    assert password["valueFrom"]["secretKeyRef"]["name"] == "ketenpoort-database"


def test_configmap_is_a_configuration_the_gateway_loads(tmp_path: Path) -> None:
    text = _one("ConfigMap")["data"]["gateway.toml"]
    config, raw = load_shipped(text, tmp_path)
    assert raw["probe_address"] == "0.0.0.0:8081"
    endpoint = config.metrics_endpoint
    assert endpoint is not None and (endpoint.host, endpoint.port) == ("0.0.0.0", 9464)
    assert config.listen.endswith(":50651")
    # No password in the ConfigMap: PGPASSWORD comes from the Secret.
    assert make_url(config.database_url).password is None
    pod = _one("Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    for path in (config.policy_dir, config.registry_path, config.data_dir,
                 config.checkpoints_path, config.keys_dir.parent):
        assert str(path) in mounts, path


def test_selectors_match_the_pods() -> None:
    labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    selectors = [_one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                 _one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"]]
    selectors += [doc["spec"]["selector"] for _, doc in _documents() if doc["kind"] == "Service"]
    for selector in selectors:
        assert selector.items() <= labels.items()
    assert _one("PodDisruptionBudget")["spec"]["minAvailable"] >= 1
    assert set(_one("NetworkPolicy")["spec"]["policyTypes"]) == {"Ingress", "Egress"}
