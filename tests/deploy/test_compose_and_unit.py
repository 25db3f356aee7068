"""The compose file runs the image as the Containerfile means it (non-root, read-only root
file system, every path the image declares writable a volume, configuration and keys read
only, a health check on the probe port), next to PostgreSQL, Prometheus and Grafana wired to
the shipped alerts and dashboard; the systemd unit is hardened and loads."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.gateway_config import load_shipped

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
CONTAINERFILE = ROOT / "deploy" / "container" / "Containerfile"
UNIT = ROOT / "deploy" / "systemd" / "ketenpoort.service"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _image_volumes() -> set[str]:
    (line,) = re.findall(r"^VOLUME\s+(\[.*\])\s*$", CONTAINERFILE.read_text(), re.MULTILINE)
    return set(yaml.safe_load(line))


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """container path -> (source, options) of the service's short-form volumes."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *options = volume.split(":")
        mounts[target] = (source, options[0] if options else "")
    return mounts


def test_compose_runs_gateway_postgres_prometheus_and_grafana() -> None:
    services = _compose()["services"]
    assert set(services) == {"gateway", "postgres", "prometheus", "grafana"}
    gateway = services["gateway"]
    assert (COMPOSE.parent / gateway["build"]["context"] / gateway["build"]["dockerfile"]) \
        .resolve() == CONTAINERFILE
    assert gateway["image"]
    assert gateway["read_only"] is True
    assert not gateway["user"].startswith("0")
    assert gateway["cap_drop"] == ["ALL"]
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    health = " ".join(gateway["healthcheck"]["test"])
    assert "http://127.0.0.1:8081/readyz" in health


def test_compose_gateway_writes_only_to_volumes() -> None:
    compose = _compose()
    gateway = compose["services"]["gateway"]
    mounts = _mounts(gateway)
    tmpfs = {entry.split(":")[0] for entry in gateway.get("tmpfs", [])}
    named = set(compose["volumes"])
    for path in _image_volumes():
        if path in tmpfs:
            continue
        source, options = mounts[path]
        assert source in named and options != "ro", path
    for path in ("/etc/ketenpoort/gateway.toml", "/etc/ketenpoort/keys",
                 "/etc/ketenpoort/policies", "/etc/ketenpoort/registry"):
        assert mounts[path][1] == "ro", path
    # Files the compose file mounts from the repository exist; keys and registry are the
    # operator's (docs/operations/install.md), kept out of the repository.
    prepared = {"./keys", "./registry"}
    ignored = (COMPOSE.parent / ".gitignore").read_text().split()
    assert {p.lstrip("./") + "/" for p in prepared} <= set(ignored)
    for source, _ in mounts.values():
        if source.startswith(".") and source not in prepared:
            assert (COMPOSE.parent / source).exists(), source


def test_compose_gateway_configuration_loads(tmp_path: Path) -> None:
    config, raw = load_shipped((COMPOSE.parent / "gateway.toml").read_text(), tmp_path)
    mounts = _mounts(_compose()["services"]["gateway"])
    for path in (config.policy_dir, config.registry_path, config.keys_dir, config.data_dir,
                 config.checkpoints_path):
        assert str(path) in mounts, path
    assert raw["probe_address"] == "0.0.0.0:8081"
    endpoint = config.metrics_endpoint
    assert endpoint is not None and endpoint.port == 9464 and endpoint.host == "0.0.0.0"
    assert "password" not in config.database_url


def test_compose_prometheus_and_grafana_use_the_shipped_files() -> None:
    services = _compose()["services"]
    prometheus = _mounts(services["prometheus"])
    rules = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert prometheus["/etc/prometheus/prometheus.yml"][0] == "../prometheus/prometheus.yml"
    (rule_file,) = rules["rule_files"]
    assert prometheus[rule_file][0] == "../prometheus/ketenpoort-alerts.yml"
    (job,) = rules["scrape_configs"]
    assert job["job_name"] == "ketenpoort"
    assert job["static_configs"][0]["targets"] == ["gateway:9464"]
    grafana = _mounts(services["grafana"])
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/ketenpoort.yml").read_text()
    )
    dashboards = provider["providers"][0]["options"]["path"]
    assert grafana[f"{dashboards}/ketenpoort.json"][0] == "../grafana/ketenpoort.json"
    assert grafana["/etc/grafana/provisioning"][0] == "../grafana/provisioning"


def _unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_systemd_unit_is_hardened() -> None:
    service = _unit()["Service"]
    assert service["User"] == "ketenpoort"
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "RestrictSUIDSGID": "yes",
        "MemoryDenyWriteExecute": "yes", "CapabilityBoundingSet": "", "UMask": "0077",
    }.items():
        assert service[key] == value, key
    assert service["ReadWritePaths"].split() == [
        "/var/lib/ketenpoort", "/var/lib/ketenpoort-checkpoints"]
    assert "serve --config /etc/ketenpoort/gateway.toml" in service["ExecStart"]


def test_systemd_unit_loads(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # The unit as shipped, with an ExecStart that exists on this machine.
    text = re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", UNIT.read_text(), flags=re.MULTILINE)
    unit = tmp_path / "ketenpoort.service"
    unit.write_text(text)
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, check=False)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if "ketenpoort.service" in line]
    assert not problems, problems
