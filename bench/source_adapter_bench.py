"""What the source runtime adds per disclosure in front of a FHIR server and a SQL database,
against calling that system directly, with a bare gRPC round trip as the floor; one run.

Targets (each asked ``--calls`` times, one call at a time, after ``--warmup`` calls;
``--rounds`` rounds, medians reported):

- ``grpc_floor``: ``SourceService.FetchFields`` for the three ggz fields to a source served
  from memory (``adapters.source_server.InMemoryBackend``): the gRPC round trip any source
  pays.
- ``fhir_direct``: what the FHIR adapter asks, done by hand with httpx: the Patient search by
  BSN, then the Condition, EpisodeOfCare and CarePlan searches concurrently, each answer
  parsed as JSON.
- ``fhir_runtime``: ``FetchFields`` for the three ggz fields to the source runtime with the
  FHIR adapter and deploy/source/ggz-fhir.yaml, in front of the same FHIR server.
- ``sql_direct``: what the SQL adapter asks, done by hand with SQLAlchemy: the person's row
  and the debts' rows, on one pooled connection, in a worker thread as the adapter does.
- ``sql_runtime``: ``FetchFields`` for four municipality fields to the source runtime with
  the SQL adapter, in front of the same SQLite database.

``added_ms`` is what a disclosure pays for reaching the system through the runtime rather
than calling it directly: direct and runtime calls alternate one by one, and it is the median
of the pairs' differences (the median over rounds), so that drift in the system's own speed
falls on both. Less the floor, it is the runtime's own work (the adapter's validation and
mapping, conversions, the access log, the breaker, the deadline). The FHIR server
(gateway/demo_systems/fhir_server.py) holds ``--patients`` clients with a Patient, Condition,
EpisodeOfCare and CarePlan each; the SQLite database (WAL) as many persons with two debts
each.

Each server runs in its own process (``multiprocessing``, spawn): the FHIR server, the two
runtimes and the in-memory source. The gRPC hops run in plaintext with clear requests and
answers (``clear_answers=True``), so what is compared is the runtime's work, not TLS or
HPKE; the gateway's own cost per disclosure is disclosure_bench.py's. JSON on stdout::

    python bench/source_adapter_bench.py [--calls 300] [--warmup 30] [--rounds 3]
                                         [--patients 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import httpx
import sqlalchemy
from grpc import aio

from gateway.api.v1 import common_pb2, source_pb2, source_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
GGZ_FIELDS = ["ggz.diagnosis", "ggz.treatment_status", "ggz.care_involved"]
MUN_FIELDS = ["mun.brp_address", "mun.household_composition", "mun.housing_status",
              "mun.debts"]
SQL_MAPPING = """\
kind: sql
partner_type: municipality
queries:
  person: {sql: "SELECT adres, huishouden, status FROM personen WHERE bsn = :bsn"}
  debts: {sql: "SELECT schuld FROM schulden WHERE bsn = :bsn ORDER BY schuld", rows: all}
fields:
  mun.brp_address: {type: text, query: person, column: adres}
  mun.household_composition: {type: text, query: person, column: huishouden}
  mun.housing_status:
    type: text
    query: person
    column: status
    convert: {map: {H: Social rental, K: Owner-occupied}}
  mun.debts: {type: text, query: debts, column: schuld, convert: {join: "; "}}
lookup: {query: person, role: resident}
"""
QUICK = {"calls": 20, "warmup": 5, "rounds": 1, "patients": 20}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--patients", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="a few calls, one round (tests)")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bsn_of(i: int) -> str:
    return f"9{i:08d}"


# --- the servers, each in its own process ------------------------------------------------

def _fhir_server(conn: Connection, patients: int) -> None:
    from gateway.demo_systems.fhir_server import FhirServer, ggz_client

    server = FhirServer(token="bench")
    for i in range(patients):
        server.add(*ggz_client(
            patient_id=f"p{i}", bsn=bsn_of(i), given=["Client"], family=f"Nr{i}",
            birth_date="1980-01-01", diagnosis="Intermittent explosive disorder",
            episode_status="active", care_team="FACT team Enschede, 053-480 1234",
        ))
    server.start()
    conn.send(server.base_url)
    conn.recv()  # until told to stop
    server.stop()


def _runtime(conn: Connection, kind: str, work: str, base_url: str) -> None:
    asyncio.run(_runtime_main(conn, kind, Path(work), base_url))


async def _runtime_main(conn: Connection, kind: str, work: Path, base_url: str) -> None:
    from adapters.circuit_breaker import CircuitBreaker
    from adapters.source_runtime.access_log import AccessLog
    from adapters.source_runtime.config import Deadlines
    from adapters.source_runtime.mapping import load_mapping
    from adapters.source_runtime.metrics import SourceMetrics
    from adapters.source_runtime.service import RuntimeBackend, open_adapter
    from adapters.source_server import serve_source

    if kind == "fhir":
        (work / "token").write_text("bench")
        mapping = load_mapping(ROOT / "deploy" / "source" / "ggz-fhir.yaml")
        system: dict[str, Any] = {"base_url": base_url, "tls": {},
                                  "auth": {"bearer_token_file": "token"}}
    else:
        (work / "mapping.yaml").write_text(SQL_MAPPING)
        mapping = load_mapping(work / "mapping.yaml")
        system = {"url": "sqlite:///system.db"}
    adapter = open_adapter(mapping, system, work)
    metrics = SourceMetrics()
    backend = RuntimeBackend(
        adapter, deadlines=Deadlines(default_s=5.0, margin_s=0.05),
        breaker=CircuitBreaker(kind, on_change=metrics.breaker_changed),
        metrics=metrics, access_log=AccessLog(work / f"access-{kind}.jsonl"),
    )
    running = await serve_source(backend, clear_answers=True)
    conn.send(running.address)
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    await running.stop(None)
    await adapter.close()


def _memory_source(conn: Connection) -> None:
    asyncio.run(_memory_main(conn))


async def _memory_main(conn: Connection) -> None:
    from adapters.source_server import InMemoryBackend, SubjectRecord, serve_source

    backend = InMemoryBackend()
    backend.add(SubjectRecord(bsn=bsn_of(0), role="client", fields={
        "ggz.diagnosis": "Intermittent explosive disorder",
        "ggz.treatment_status": "in treatment",
        "ggz.care_involved": "FACT team Enschede, 053-480 1234",
    }))
    running = await serve_source(backend, clear_answers=True)
    conn.send(running.address)
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    await running.stop(None)


class Child:
    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=target, args=(theirs, *args), daemon=True)
        self.process.start()
        self.address: str = self.conn.recv()

    def stop(self) -> None:
        self.conn.send("stop")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


# --- the calls ------------------------------------------------------------------------------

def make_database(path: Path, persons: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE personen (bsn TEXT PRIMARY KEY, adres, huishouden, status)")
        db.execute("CREATE TABLE schulden (bsn TEXT, schuld)")
        db.execute("CREATE INDEX schulden_bsn ON schulden (bsn)")
        db.executemany("INSERT INTO personen VALUES (?, ?, ?, ?)", [
            (bsn_of(i), f"Lindenstraat {i}, 7511 AB Enschede", "Two adults", "H")
            for i in range(persons)])
        db.executemany("INSERT INTO schulden VALUES (?, ?)", [
            (bsn_of(i), debt) for i in range(persons)
            for debt in ("Energy arrears", "Rent arrears")])


Call = Callable[[], Awaitable[None]]


def fetcher(address: str, fields: list[str]) -> tuple[Call, aio.Channel]:
    channel = aio.insecure_channel(address)
    stub = source_pb2_grpc.SourceServiceStub(channel)  # type: ignore[no-untyped-call]
    request = source_pb2.FetchFieldsRequest(
        subject=common_pb2.SubjectIdentity(bsn=bsn_of(0)), fields=fields,
        purpose="analysis_and_plan", disclosure_id="bench", recipient_id="zvh",
    )

    async def call() -> None:
        response = await stub.FetchFields(request, timeout=10)
        if len(response.values) != len(fields):
            raise RuntimeError(f"{len(response.values)} values for {len(fields)} fields")

    return call, channel


def fhir_direct(client: httpx.AsyncClient) -> Call:
    async def search(resource: str, params: dict[str, str]) -> Any:
        response = await client.get(resource, params=params)
        response.raise_for_status()
        return response.json()

    async def call() -> None:
        bundle = await search("Patient", {"identifier": f"{BSN_SYSTEM}|{bsn_of(0)}"})
        patient = bundle["entry"][0]["resource"]["id"]
        await asyncio.gather(
            search("Condition", {"patient": patient, "clinical-status": "active"}),
            search("EpisodeOfCare", {"patient": patient}),
            search("CarePlan", {"patient": patient, "status": "active"}),
        )

    return call


def sql_direct(engine: sqlalchemy.Engine) -> Call:
    person = sqlalchemy.text("SELECT adres, huishouden, status FROM personen WHERE bsn = :bsn")
    debts = sqlalchemy.text("SELECT schuld FROM schulden WHERE bsn = :bsn ORDER BY schuld")

    async def call() -> None:
        # As the adapter does: the blocking driver off the event loop, in a worker thread.
        def run() -> None:
            with engine.connect() as connection:
                connection.execute(person, {"bsn": bsn_of(0)}).one()
                connection.execute(debts, {"bsn": bsn_of(0)}).all()

        await asyncio.to_thread(run)

    return call


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": ordered[len(ordered) // 2],
            "p90_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))],
            "mean_ms": statistics.fmean(ordered)}


async def once(call: Call) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def timed(call: Call, calls: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        await call()
    return stats([await once(call) for _ in range(calls)])


async def paired(direct: Call, runtime: Call, calls: int, warmup: int
                 ) -> tuple[dict[str, float], dict[str, float], float]:
    """Direct and runtime calls alternated, so that drift in the system's own speed (the
    FHIR server's threads, other load on the machine) falls on both; with the median of
    the pairs' differences."""
    for _ in range(warmup):
        await direct()
        await runtime()
    a, b = [], []
    for _ in range(calls):
        a.append(await once(direct))
        b.append(await once(runtime))
    return stats(a), stats(b), statistics.median(y - x for x, y in zip(a, b, strict=True))


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    make_database(work / "system.db", args.patients)
    say(f"starting the FHIR server ({args.patients} clients), two runtimes, a memory source")
    children = {"fhir": Child(_fhir_server, args.patients)}
    try:
        base_url = children["fhir"].address
        children["fhir_runtime"] = Child(_runtime, "fhir", str(work), base_url)
        children["sql_runtime"] = Child(_runtime, "sql", str(work), "")
        children["floor"] = Child(_memory_source)
        client = httpx.AsyncClient(base_url=base_url + "/", trust_env=False,
                                   headers={"Authorization": "Bearer bench"})
        engine = sqlalchemy.create_engine(f"sqlite:///{work / 'system.db'}")
        floor, floor_channel = fetcher(children["floor"].address, GGZ_FIELDS)
        fhir_rt, fhir_channel = fetcher(children["fhir_runtime"].address, GGZ_FIELDS)
        sql_rt, sql_channel = fetcher(children["sql_runtime"].address, MUN_FIELDS)
        pairs = {"fhir": (fhir_direct(client), fhir_rt), "sql": (sql_direct(engine), sql_rt)}
        rounds: dict[str, list[dict[str, float]]] = {
            name: [] for name in ("grpc_floor", "fhir_direct", "fhir_runtime", "sql_direct",
                                  "sql_runtime")}
        differences: dict[str, list[float]] = {"fhir": [], "sql": []}
        for number in range(args.rounds):
            say(f"round {number + 1}/{args.rounds}: grpc_floor")
            rounds["grpc_floor"].append(await timed(floor, args.calls, args.warmup))
            for kind, (direct, runtime) in pairs.items():
                say(f"round {number + 1}/{args.rounds}: {kind}_direct and {kind}_runtime")
                a, b, difference = await paired(direct, runtime, args.calls, args.warmup)
                rounds[f"{kind}_direct"].append(a)
                rounds[f"{kind}_runtime"].append(b)
                differences[kind].append(difference)
        for channel in (floor_channel, fhir_channel, sql_channel):
            await channel.close(None)
        await client.aclose()
        engine.dispose()
    finally:
        for child in children.values():
            child.stop()
    result: dict[str, dict[str, Any]] = {
        name: {
            key: round(statistics.median(r[key] for r in runs), 3)
            for key in ("p50_ms", "p90_ms", "mean_ms")
        } | {"p50_ms_per_round": [round(r["p50_ms"], 3) for r in runs]}
        for name, runs in rounds.items()
    }
    floor_ms = float(result["grpc_floor"]["p50_ms"])
    added: dict[str, Any] = {}
    for kind in ("fhir", "sql"):
        extra = statistics.median(differences[kind])
        added[kind] = {"added_ms": round(extra, 3),
                       "added_ms_per_round": [round(d, 3) for d in differences[kind]],
                       "added_beyond_grpc_floor_ms": round(extra - floor_ms, 3)}
    return {"targets": result, "added_latency_p50": added}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ketenpoort-source-bench-") as tmp:
        report = asyncio.run(measure(args, Path(tmp)))
    report |= {
        "calls": args.calls, "warmup": args.warmup, "rounds": args.rounds,
        "patients": args.patients,
        "environment": {"python": platform.python_version(), "grpcio": grpc.__version__,
                        "httpx": httpx.__version__, "sqlalchemy": sqlalchemy.__version__,
                        "cpu_count": multiprocessing.cpu_count()},
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
