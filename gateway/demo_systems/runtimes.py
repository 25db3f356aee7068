"""A demo partner answering through the source runtime, as a real partner would: its system
(the loopback police REST service or GGZ FHIR server, seeded with the demo's records) and, in
front of it, the runtime `ketenpoort source serve` runs, configured by files written here —
source.toml, the catalogue, the example mapping from deploy/source/ and the API token — over
mutual TLS with the partner's development certificate, sealed both ways."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.source_runtime.config import load_config
from adapters.source_runtime.service import RunningRuntime, start_runtime
from adapters.source_server import RunningSource, SubjectRecord
from gateway.demo_systems.fhir_server import FhirServer
from gateway.demo_systems.police_rest import PoliceRestServer
from gateway.demo_systems.seeds import ggz_resources, police_records

__all__ = ["EXAMPLE_MAPPINGS", "HTTP_SYSTEMS", "SystemBehindRuntime", "start_behind_runtime"]

EXAMPLE_MAPPINGS = Path(__file__).resolve().parents[2] / "deploy" / "source"
# Partner type -> (adapter kind, example mapping) of the demo systems reached over HTTP.
HTTP_SYSTEMS = {"police": ("rest", "police-rest.yaml"), "ggz": ("fhir", "ggz-fhir.yaml")}


@dataclass
class SystemBehindRuntime:
    kind: str
    system: PoliceRestServer | FhirServer
    runtime: RunningRuntime

    @property
    def source(self) -> RunningSource:
        return self.runtime.source

    async def stop(self) -> None:
        await self.runtime.stop(None)
        self.system.stop()


async def start_behind_runtime(
    partner_id: str,
    partner_type: str,
    records: Iterable[SubjectRecord],
    keys: Path,
    work: Path,
    catalogue: Mapping[str, Any],
) -> SystemBehindRuntime:
    """Start the partner type's demo system with ``records`` and the source runtime in front
    of it, listening on an ephemeral loopback port (``.source.port``)."""
    kind, mapping = HTTP_SYSTEMS[partner_type]
    token = secrets.token_urlsafe(24)
    system: PoliceRestServer | FhirServer
    if kind == "rest":
        system = PoliceRestServer(token=token)
        system.add(*police_records(records))
    else:
        system = FhirServer(token=token)
        system.add(*ggz_resources(records))
    system.start()
    try:
        directory = work / partner_id
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        (directory / "catalogue.json").write_text(json.dumps(catalogue), encoding="utf-8")
        shutil.copy(EXAMPLE_MAPPINGS / mapping, directory / mapping)
        (directory / "api-token").write_text(token, encoding="utf-8")
        (directory / "api-token").chmod(0o600)
        (directory / "source.toml").write_text(
            f'partner_id = "{partner_id}"\n'
            'listen = "127.0.0.1:0"\n'
            'catalogue = "catalogue.json"\n'
            f'mapping = "{mapping}"\n'
            'access_log = "access.jsonl"\n'
            "[keys]\n"
            f"dir = {json.dumps(str(keys))}\n"
            "[system]\n"
            f'base_url = "{system.base_url}"\n'
            'auth = {bearer_token_file = "api-token"}\n'
            "tls = {}\n",
            encoding="utf-8",
        )
        runtime = await start_runtime(load_config(directory / "source.toml"),
                                      serve_metrics=False)
    except BaseException:
        system.stop()
        raise
    return SystemBehindRuntime(kind, system, runtime)
