"""The partners whose systems the demo runs through the source runtime, as a partner runs it.

Four partners answer the gateway through ``ketenpoort source serve``'s runtime instead of the
in-memory test system: the police (its REST/JSON API), GGZ (a FHIR R4 server), the
municipality (a SQLite database the demo creates) and the housing corporation (a CSV export
dropped into the runtime's inbox and imported into its encrypted store). For each the demo
starts the stand-in system on loopback with data made from demo_data
(gateway.demo_systems.seeds, gateway.cli.demo_system_data), writes what the partner would
write — ``source.toml``, the mapping file (gateway.cli.demo_mappings), the secret files, the
catalogue the gateway's operator hands out — runs ``ketenpoort source check`` on it (a
mapping problem fails the demo before anything starts) and starts the runtime from those
files with the partner's dev certificate and keys: mutual TLS, sealed queries opened, answers
sealed and signed.

The runtimes run in the demo's own process and event loop, through the same
``load_config`` + ``start_runtime`` that ``source serve`` calls after its check: the demo's
checks look into each source's service (which fields it was asked, that every question came
sealed), and four more Python processes importing gRPC, SQLAlchemy and the FHIR models would
add seconds to a demo that CI runs on every push.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from adapters.source_runtime import cli as source_cli
from adapters.source_runtime.config import load_config
from adapters.source_runtime.service import RunningRuntime, start_runtime
from adapters.source_server import SubjectRecord
from adapters.systems.csv_drop import write_key_file
from gateway.cli.demo_checks import Checks
from gateway.cli.demo_mappings import MAPPINGS, mapping_text
from gateway.cli.demo_system_data import housing_export, municipality_database
from gateway.cli.policy_catalogue import catalogue_document
from gateway.core import CompiledPolicy
from gateway.demo_systems.fhir_server import FhirServer
from gateway.demo_systems.police_rest import PoliceRestServer
from gateway.demo_systems.seeds import ggz_resources, police_records

__all__ = ["RUNTIME_PARTNERS", "RuntimeSource", "RuntimeSources", "SourceSetupFailed"]

# The partners the demo runs through the source runtime (the others keep the in-memory system).
RUNTIME_PARTNERS = tuple(MAPPINGS)
ADAPTER_NAMES = {"rest": "REST adapter", "fhir": "FHIR adapter", "sql": "SQL adapter",
                 "csv": "CSV drop adapter"}
SYSTEM_KINDS = {"rest": "REST/JSON API", "fhir": "FHIR R4 server", "sql": "SQLite database",
                "csv": "CSV drop"}


# [system] in source.toml: text, or an inline table of text.
SystemTable = dict[str, str | dict[str, str]]


class SourceSetupFailed(Exception):
    """A partner's source runtime could not be set up (its mapping did not pass the check)."""


@dataclass
class RuntimeSource:
    partner_id: str
    kind: str  # rest | fhir | sql | csv
    directory: Path
    system: str  # what answers behind the runtime, for the demo's output
    requests: Callable[[], str]  # what the system was asked so far, for the demo's output
    runtime: RunningRuntime | None = None

    @property
    def config(self) -> Path:
        return self.directory / "source.toml"

    @property
    def access_log(self) -> Path:
        return self.directory / "access.jsonl"

    @property
    def system_kind(self) -> str:
        return SYSTEM_KINDS[self.kind]

    def describe(self) -> str:
        return f"source runtime ({ADAPTER_NAMES[self.kind]}) in front of {self.system}"


class RuntimeSources:
    """Set up, check, start and stop the runtime partners' systems under ``root``."""

    def __init__(
        self,
        root: Path,
        keys: Path,
        policy: CompiledPolicy,
        records: Mapping[str, Sequence[SubjectRecord]],
        mappings: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.keys = keys
        self.policy = policy
        self.records = records
        # A partner's mapping text instead of the demo's (to show a mapping error failing it).
        self.mappings = dict(mappings or {})
        self.sources: dict[str, RuntimeSource] = {}
        self._stops: list[Callable[[], None]] = []

    def prepare(self) -> None:
        """Start the stand-in systems and write each partner's files."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        # What the gateway's operator hands every partner: `ketenpoort policy catalogue`.
        (self.root / "catalogue.json").write_text(
            json.dumps(catalogue_document(self.policy), indent=2) + "\n", encoding="utf-8")
        for partner_id in RUNTIME_PARTNERS:
            directory = self.root / partner_id
            directory.mkdir(exist_ok=True, mode=0o700)
            kind = MAPPINGS[partner_id][0]
            partner_type = self.policy.partner(partner_id).type
            records = self.records.get(partner_type, ())
            setup = {"rest": self._rest, "fhir": self._fhir, "sql": self._sql,
                     "csv": self._csv}[kind]
            system_table, source = setup(partner_id, directory, records)
            self.sources[partner_id] = source
            self._write(source, system_table)

    def check(self, checks: Checks) -> bool:
        """``ketenpoort source check`` on every partner's configuration, as the partner runs
        it before starting; each result is one of the demo's checks."""
        ok = True
        for source in self.sources.values():
            out, err = io.StringIO(), io.StringIO()
            with redirect_stdout(out), redirect_stderr(err):
                status = source_cli.main(["check", "--config", str(source.config)])
            said = (out.getvalue() + err.getvalue()).replace(f"{self.root}{os.sep}", "")
            lines = [line for line in said.splitlines() if line.strip()]
            ok &= checks.check(
                status == 0,
                f"ketenpoort source check --config {source.partner_id}/source.toml: "
                + (lines[-1] if lines else f"exit {status}"),
            )
            if status != 0:
                for line in lines[:-1]:
                    print(f"      {line}")
        return ok

    async def start(self) -> None:
        """Start each runtime from its source.toml, as ``source serve`` does."""
        for source in self.sources.values():
            try:
                source.runtime = await start_runtime(load_config(source.config))
            except (ValueError, OSError) as exc:  # as `source serve` reports them
                raise SourceSetupFailed(
                    f"{source.partner_id}'s source runtime did not start: {exc}") from None

    async def stop(self) -> None:
        for source in self.sources.values():
            if source.runtime is not None:
                await source.runtime.stop(None)
                source.runtime = None
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()

    def access_logs_hold(self, values: Sequence[str]) -> list[str]:
        """The partners whose access log holds one of ``values`` (it must hold none)."""
        leaking = []
        for source in self.sources.values():
            text = source.access_log.read_text(encoding="utf-8") \
                if source.access_log.exists() else ""
            if any(v in text for v in values):
                leaking.append(source.partner_id)
        return leaking

    # --- per kind of system: start it, give it the demo's data --------------------------------

    def _rest(
        self, partner_id: str, directory: Path, records: Sequence[SubjectRecord]
    ) -> tuple[SystemTable, RuntimeSource]:
        token = secrets.token_urlsafe(24)
        # Where the example mapping's server block looks for the API token.
        _secret(directory / "secrets" / "police-api-token", token)
        server = PoliceRestServer(token=token)
        server.add(*police_records(records))
        server.start()
        self._stops.append(server.stop)
        return _http_system(server.base_url), RuntimeSource(
            partner_id, "rest", directory, f"its REST/JSON API on {server.base_url}",
            lambda: "the API answered " + _counted(server.counts),
        )

    def _fhir(
        self, partner_id: str, directory: Path, records: Sequence[SubjectRecord]
    ) -> tuple[SystemTable, RuntimeSource]:
        token = secrets.token_urlsafe(24)
        _secret(directory / "secrets" / "fhir-token", token)
        server = FhirServer(token=token)
        server.add(*ggz_resources(records))
        server.start()
        self._stops.append(server.stop)
        return _http_system(server.base_url), RuntimeSource(
            partner_id, "fhir", directory, f"its FHIR R4 server on {server.base_url}",
            lambda: "the server answered " + _counted(server.counts),
        )

    def _sql(
        self, partner_id: str, directory: Path, records: Sequence[SubjectRecord]
    ) -> tuple[SystemTable, RuntimeSource]:
        database = directory / "gemeente.db"
        database.unlink(missing_ok=True)
        municipality_database(records, database)
        return {"url": "sqlite:///gemeente.db"}, RuntimeSource(
            partner_id, "sql", directory,
            f"its SQLite database ({len(records)} residents, opened read-only)",
            lambda: f"the database holds {len(records)} residents",
        )

    def _csv(
        self, partner_id: str, directory: Path, records: Sequence[SubjectRecord]
    ) -> tuple[SystemTable, RuntimeSource]:
        inbox = directory / "inbox"
        inbox.mkdir(exist_ok=True)
        key = directory / "store.key"
        key.unlink(missing_ok=True)
        write_key_file(key)
        (directory / "store.bin").unlink(missing_ok=True)
        # Delivered as a partner's export job does: written under a temporary name, renamed.
        part = inbox / "huurders.csv.part"
        part.write_text(housing_export(records), encoding="utf-8")
        part.rename(inbox / "huurders.csv")
        system: SystemTable = {"inbox": "inbox", "store": "store.bin", "key_file": "store.key"}
        return system, RuntimeSource(
            partner_id, "csv", directory, "its CSV export, dropped into the inbox and "
            "imported into the runtime's encrypted store", lambda: _import_report(inbox),
        )

    def _write(self, source: RuntimeSource, system: SystemTable) -> None:
        name = MAPPINGS[source.partner_id][1]
        text = self.mappings.get(source.partner_id) or mapping_text(source.partner_id)
        (source.directory / name).write_text(text, encoding="utf-8")
        lines = [
            f"# {source.partner_id}'s source runtime: ketenpoort source serve --config "
            "source.toml",
            f"partner_id = {_toml(source.partner_id)}",
            'listen = "127.0.0.1:0"',
            'catalogue = "../catalogue.json"',
            f"mapping = {_toml(name)}",
            'access_log = "access.jsonl"',
            "",
            "[keys]",
            f"dir = {_toml(str(self.keys))}",
        ]
        if system:
            lines += ["", "[system]", *(f"{k} = {_toml(v)}" for k, v in system.items())]
        source.config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _http_system(base_url: str) -> SystemTable:
    # The example mapping names the partner's real server, its CA and client certificate;
    # [system] points it at the loopback system instead, which speaks plain HTTP.
    return {"base_url": base_url, "tls": {}}


def _toml(value: str | Mapping[str, str]) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is written as JSON writes a string
    return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + "}"


def _secret(path: Path, value: str) -> None:
    path.parent.mkdir(exist_ok=True, mode=0o700)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")


def _counted(counts: Mapping[str, int]) -> str:
    total = sum(counts.values())
    parts = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
    return f"{total} requests ({parts})" if total else "no requests"


def _import_report(inbox: Path) -> str:
    reports = sorted((inbox / "reports").glob("*.report.json"))
    if not reports:
        return "nothing imported"
    report = json.loads(reports[-1].read_text(encoding="utf-8"))
    return (f"the export {report['file']} was {report['outcome']}: "
            f"{report['rows_imported']} rows, {report['rows_rejected']} rejected")
