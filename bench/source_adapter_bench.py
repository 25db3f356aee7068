"""What a FHIR and a SQL source add per disclosure, against calling that system directly.

For each system kind (``fhir``: a FHIR R4 server; ``sql_sqlite``: a SQLite database file; with
``--db postgres`` also ``sql_postgres``: PostgreSQL) six targets, measured in one run on
loopback, for the same person and the same fields:

- system_direct:       the system asked directly (FHIR: the adapter's HTTP searches with httpx;
                       SQL: the mapping's parameterised queries with SQLAlchemy)
- adapter:             the adapter's fetch, in this process (mapping, conversion, validation)
- runtime_inmemory:    SourceService.FetchFields, sealed both ways, to a source answering
                       from memory (what the sealed contract costs on its own)
- runtime:             the same call to the source runtime serving the adapter (mutual TLS,
                       sealed query, sealed and signed answer)
- disclosure_inmemory: RequestDisclosure through a real gateway whose source answers from
                       memory (the gateway's own cost)
- disclosure:          RequestDisclosure through a real gateway whose source is the runtime

and ``grpc_floor``: a clear FetchFields to a source answering from memory, over mutual TLS
(the bare gRPC round trip). Every server runs in its own process; the load generator runs
here. The targets take turns in rounds and the median across rounds is reported, as JSON on
stdout (bench/README.md)::

    python bench/source_adapter_bench.py [--concurrency 1] [--seconds 3] [--rounds 3]
        [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from grpc import aio
from loadgen import Call, RunStats, median_of, run_load
from source_processes import (
    GatewaySources,
    run_fhir_server,
    run_gateway_with_sources,
    run_memory_source,
    run_runtime,
)
from source_systems import (
    PARTNER,
    SourceFiles,
    expected_values,
    fhir_direct,
    make_sqlite,
    postgres_system,
    sql_direct,
    write_source_files,
)
from targets import TargetProcess, process_cpu_seconds, record_to_dict

from adapters.channels import open_channel
from adapters.client import PartnerClient, PartnerCredentials
from adapters.source_runtime.adapter import Person, SystemAdapter
from adapters.source_runtime.catalogue import load_catalogue
from adapters.source_runtime.mapping import load_mapping
from adapters.source_runtime.service import open_adapter
from adapters.systems.fhir import FhirAdapter
from gateway.api.v1 import cases_pb2, common_pb2, source_pb2, source_pb2_grpc
from gateway.broker.sources import FetchContext, Subject
from gateway.broker.submission_gate import SubmissionGate
from gateway.cli.demo_data import GOAL, REASON, SOURCE_RECORDS, SUBJECT
from gateway.cli.policy_catalogue import catalogue_document
from gateway.core import CompiledPolicy
from gateway.crypto.devkeys import init_dev_keys
from gateway.crypto.keystore import Keystore
from gateway.policyfiles import load_policy_dir
from gateway.registry.dev import register_dev_partners
from gateway.server.app import (
    gateway_client_tls,
    request_sealer,
    source_certificates,
    source_origins,
)
from gateway.server.config import GatewayConfig, SourceEndpoint, shipped_policy_dir
from gateway.server.partners import load_registry
from gateway.sources.grpc_source import GrpcSource

DEFAULT_CONCURRENCY = 1
DEFAULT_SECONDS = 3.0
DEFAULT_WARMUP_S = 0.5
DEFAULT_ROUNDS = 3
DEFAULT_PATIENTS = 200
DEFAULT_PERSONS = 1000
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
QUICK = {"seconds": 0.3, "warmup": 0.05, "rounds": 1, "patients": 5, "persons": 10}
KIND_TARGETS = ("system_direct", "adapter", "runtime_inmemory", "runtime",
                "disclosure_inmemory", "disclosure")
PURPOSE, MEETING, REQUESTER = "analysis_and_plan", "case_meeting", "zvh"
CALL_TIMEOUT_S = 10.0
# What each figure in "added" compares: (what, against).
ADDED = {
    "per_disclosure": ("disclosure", "disclosure_inmemory"),
    "runtime_vs_system_direct": ("runtime", "system_direct"),
    "adapter_vs_system_direct": ("adapter", "system_direct"),
    "runtime_vs_adapter": ("runtime", "adapter"),
    "runtime_vs_runtime_inmemory": ("runtime", "runtime_inmemory"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                   help="calls in flight per target (1: latency without queueing)")
    p.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per measured run")
    p.add_argument("--warmup", type=float, default=DEFAULT_WARMUP_S, help="before every run")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite",
                   help="postgres: measure a PostgreSQL source as well as the SQLite one")
    p.add_argument("--pg-url", default=os.environ.get("KETENPOORT_BENCH_PG_URL", DEFAULT_PG_URL))
    p.add_argument("--patients", type=int, default=DEFAULT_PATIENTS,
                   help="other clients the FHIR server holds")
    p.add_argument("--persons", type=int, default=DEFAULT_PERSONS,
                   help="other persons the databases hold")
    p.add_argument("--quick", action="store_true",
                   help="a fraction of a second per target, one round, small systems: proves "
                   "the bench works (tests); its figures mean little")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if args.concurrency < 1 or args.rounds < 1 or args.seconds <= 0 or args.warmup < 0:
        p.error("need concurrency >= 1, rounds >= 1, seconds > 0 and warmup >= 0")
    args.kinds = ("fhir", "sql_sqlite") + (("sql_postgres",) if args.db == "postgres" else ())
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Bench:
    """The run's files, processes and the clients the load generator holds."""

    work: Path
    keys: Path
    registry: Path
    policy: CompiledPolicy
    processes: dict[str, TargetProcess] = field(default_factory=dict)
    files: dict[str, SourceFiles] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    identifiers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # "<kind>.<figure>" -> per round, the median difference of paired calls (ms).
    paired: dict[str, list[float]] = field(default_factory=dict)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ketenpoort-srcbench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        keys, registry = work / "keys", work / "registry"
        policy = load_policy_dir(shipped_policy_dir())
        partner_ids = [p.id for p in policy.policy.partners]
        init_dev_keys(keys, partner_ids)
        register_dev_partners(keys, registry, partner_ids)
        bench = Bench(work, keys, registry, policy)
        catalogue = work / "catalogue.json"
        catalogue.write_text(json.dumps(catalogue_document(policy)), encoding="utf-8")
        make_sqlite(work / "gemeente.db", args.persons)
        system_urls = {"sql_sqlite": f"sqlite:///{work / 'gemeente.db'}"}
        if "sql_postgres" in args.kinds:
            say("filling a PostgreSQL schema for the municipality")
            system_urls["sql_postgres"] = stack.enter_context(
                postgres_system(args.pg_url, args.persons))
        try:
            return await _measure(args, bench, catalogue, system_urls)
        finally:
            for process in bench.processes.values():
                process.kill()


async def _measure(
    args: argparse.Namespace, bench: Bench, catalogue: Path, system_urls: dict[str, str]
) -> dict[str, Any]:
    spawn = bench.processes
    ggz, mun = SOURCE_RECORDS["ggz"], SOURCE_RECORDS["municipality"]
    say(f"starting the FHIR server ({args.patients} other clients) and the sources")
    spawn["fhir_server"] = TargetProcess.spawn(
        "fhir_server", run_fhir_server, [record_to_dict(ggz)], args.patients)
    system_urls["fhir"] = f"http://127.0.0.1:{await spawn['fhir_server'].ready()}/fhir"
    for kind in args.kinds:
        bench.files[kind] = write_source_files(
            kind, bench.work / kind, bench.keys, catalogue, system_urls[kind])
        spawn[f"runtime_{kind}"] = TargetProcess.spawn(
            f"runtime_{kind}", run_runtime, bench.files[kind].config)
    for partner, record in (("ggz", ggz), ("municipality", mun)):
        spawn[f"memory_{partner}"] = TargetProcess.spawn(
            f"memory_{partner}", run_memory_source, bench.keys, partner, record_to_dict(record),
            True)
    spawn["floor"] = TargetProcess.spawn(
        "floor", run_memory_source, bench.keys, "ggz", record_to_dict(ggz), False)
    ports = {name: await p.ready() for name, p in list(spawn.items()) if name != "fhir_server"}
    addresses = {name: f"127.0.0.1:{port}" for name, port in ports.items()}

    # A gateway per set of sources: the systems through their runtimes, the PostgreSQL one
    # apart (one source per partner type), and the same partners answering from memory.
    gateways: dict[str, tuple[tuple[str, str], ...]] = {
        "gateway_systems": (("ggz", addresses["runtime_fhir"]),
                            ("municipality", addresses["runtime_sql_sqlite"])),
        "gateway_inmemory": (("ggz", addresses["memory_ggz"]),
                             ("municipality", addresses["memory_municipality"])),
    }
    if "sql_postgres" in args.kinds:
        gateways["gateway_postgres"] = (("municipality", addresses["runtime_sql_postgres"]),)
    for name, sources in gateways.items():
        data = bench.work / name
        data.mkdir()
        spec = GatewaySources(f"sqlite:///{data / 'ketenpoort.db'}", bench.keys,
                              bench.registry, data, sources)
        spawn[name] = TargetProcess.spawn(name, run_gateway_with_sources, spec)
    for name in gateways:
        ports[name] = await spawn[name].ready()
    say(f"processes up: {', '.join(sorted(spawn))}")

    async with AsyncExitStack() as stack:
        await _clients(args, bench, ports, addresses, stack)
        runs, cpu = await _rounds(args, bench)
    infos = {name: await p.stop() for name, p in reversed(spawn.items())}
    return _report(args, bench, runs, cpu, infos)


def gateway_of(kind: str) -> str:
    return "gateway_postgres" if kind == "sql_postgres" else "gateway_systems"


async def _clients(
    args: argparse.Namespace, bench: Bench, ports: dict[str, int],
    addresses: dict[str, str], stack: AsyncExitStack,
) -> None:
    """Cases in every gateway, a probe of every target, and the calls the rounds make."""
    disclosers: dict[str, Callable[[tuple[str, ...]], Awaitable[Any]]] = {}
    for name in ("gateway_systems", "gateway_inmemory", "gateway_postgres"):
        if name in ports:
            disclosers[name] = await _case(bench, f"127.0.0.1:{ports[name]}", stack)
    for kind in args.kinds:
        partner = PARTNER[kind]
        expected = expected_values(kind)
        # Which of the kind's fields the gateway asks the source for (the policy releases them
        # to the requester), and which identifiers it gives the source: from a probe.
        probe = await disclosers[gateway_of(kind)](tuple(expected))
        asked = tuple(f.field for f in probe.response.fields
                      if f.source == partner and f.outcome != common_pb2.OUTCOME_WITHHELD)
        if not asked:
            raise RuntimeError(f"the policy releases none of {partner}'s fields to "
                               f"{REQUESTER} in the case meeting")
        disclosed = tuple(f.field for f in probe.response.fields
                          if f.source == partner and f.outcome == common_pb2.OUTCOME_DISCLOSED)
        _check(f"{kind} disclosure", probe.values, expected, disclosed)
        bench.fields[kind] = asked
        bench.identifiers[kind] = _identifiers_asked(bench.files[kind].directory)
        say(f"{kind}: the gateway asks {partner} for {', '.join(asked)} "
            f"by {', '.join(bench.identifiers[kind])}")
        subject = Subject(**{
            name: getattr(SUBJECT, name) if name in bench.identifiers[kind] else ""
            for name in ("bsn", "name", "date_of_birth", "address", "postcode", "reference")
        })
        person = Person(**asdict(subject))
        adapter = await _adapter(bench.files[kind], catalogue=bench.work / "catalogue.json")
        stack.push_async_callback(adapter.close)
        calls: dict[str, Call] = {}
        if kind == "fhir":
            assert isinstance(adapter, FhirAdapter)
            direct, client = fhir_direct(
                bench.files[kind].system["base_url"], adapter.plan, asked, SUBJECT.bsn)
            stack.push_async_callback(client.aclose)
        else:
            direct, engine = sql_direct(bench.files[kind].system["url"], SUBJECT.bsn)
            stack.callback(engine.dispose)
        calls["system_direct"] = direct
        calls["adapter"] = _adapter_call(adapter, person, asked, expected)
        for target, source in (("runtime_inmemory", f"memory_{partner}"),
                               ("runtime", f"runtime_{kind}")):
            grpc_source = _gateway_side_source(bench, partner, addresses[source], stack)
            calls[target] = _fetch_call(grpc_source, subject, asked, expected)
        inmemory = disclosers["gateway_inmemory"]
        calls["disclosure_inmemory"] = _disclosure_call(inmemory, asked, expected, disclosed)
        calls["disclosure"] = _disclosure_call(
            disclosers[gateway_of(kind)], asked, expected, disclosed)
        for target, call in calls.items():
            await call()  # a probe: every target answers the subject's values before it counts
            bench.calls[f"{kind}.{target}"] = call
    bench.calls = {"grpc_floor": await _floor_call(bench, addresses["floor"], stack),
                   **bench.calls}


async def _case(
    bench: Bench, address: str, stack: AsyncExitStack
) -> Callable[[tuple[str, ...]], Awaitable[Any]]:
    """The police register the demo subject's case with the ZVH, the GGZ provider and the
    municipality invited; the ZVH's process director accepts it and moves it to the case
    meeting. Returns the ZVH's disclosure request for given fields (a fresh token each)."""
    def client(partner: str, role: str) -> PartnerClient:
        return PartnerClient(
            address, PartnerCredentials.from_key_dir(bench.keys, partner, tls=True), role=role)

    police = client("police", "case_director")
    zvh = client(REQUESTER, "process_director")
    stack.push_async_callback(police.close)
    stack.push_async_callback(zvh.close)
    case = await police.register_case(
        SUBJECT, "", approach="general", reason=REASON, goal=GOAL,
        invitees=[REQUESTER, "ggz", "municipality"], casusregie_partner="police",
    )
    await zvh.cases.decide_intake(case.case_id, cases_pb2.ACCEPT, "bench case")
    await zvh.change_phase(case.case_id, "registration", "triage")
    await zvh.change_phase(case.case_id, "triage", MEETING)

    async def disclose(fields: tuple[str, ...]) -> Any:
        return await zvh.request_disclosure(case.case_id, PURPOSE, MEETING, fields=fields)

    return disclose


def _identifiers_asked(directory: Path) -> tuple[str, ...]:
    """The kinds of identifier the gateway gave the runtime in its last fetch (its access log
    names them, never their values)."""
    lines = (directory / "access.jsonl").read_text(encoding="utf-8").splitlines()
    fetches = [json.loads(line) for line in lines if '"SourceService/FetchFields"' in line]
    if not fetches:
        raise RuntimeError(f"the runtime in {directory.name} logged no fetch")
    return tuple(fetches[-1]["identifiers"])


async def _adapter(files: SourceFiles, catalogue: Path) -> SystemAdapter:
    mapping = load_mapping(files.mapping, load_catalogue(catalogue))
    return open_adapter(mapping, files.system, files.directory)


def _check(what: str, values: Any, expected: dict[str, str], asked: tuple[str, ...]) -> None:
    got = {f: values.get(f) for f in asked}
    want = {f: expected[f] for f in asked}
    if got != want:
        raise RuntimeError(f"{what}: {sorted(f for f in asked if got[f] != want[f])} "
                           "are not the system's values")


def _adapter_call(
    adapter: SystemAdapter, person: Person, fields: tuple[str, ...], expected: dict[str, str]
) -> Call:
    first = True

    async def call() -> None:
        nonlocal first
        found = await adapter.fetch(person, fields, deadline_s=CALL_TIMEOUT_S)
        if first or found.unavailable or len(found.values) != len(fields):
            _check("adapter", found.values, expected, fields)
            first = False

    return call


def _gateway_side_source(
    bench: Bench, partner: str, address: str, stack: AsyncExitStack
) -> GrpcSource:
    """The gateway's own client of a configured source, built as start_gateway builds it:
    the query sealed to the partner's registered key, the answer opened with the gateway's
    HPKE key only once signed by the partner, the connection pinned to its certificate."""
    config = GatewayConfig(keys_dir=bench.keys, sources=(SourceEndpoint(partner, address),))
    registry = load_registry(bench.policy, bench.registry)
    keystore = Keystore.open(bench.keys)
    stack.callback(keystore.close)
    source = GrpcSource(
        address, gateway_client_tls(bench.keys), partner_id=partner,
        answers=SubmissionGate(keystore.hpke_keys),
        requests=request_sealer(config, lambda: registry.sealing_keys),
        origins=source_origins(config, lambda: registry.partners),
        certificates=source_certificates(bench.keys, lambda: registry.partners),
    )
    stack.push_async_callback(source.close)
    return source


def _fetch_call(
    source: GrpcSource, subject: Subject, fields: tuple[str, ...], expected: dict[str, str]
) -> Call:
    context = FetchContext(purpose=PURPOSE, disclosure_id="d_bench", recipient_id=REQUESTER)
    first = True

    async def call() -> None:
        nonlocal first
        result = await source.fetch(subject, fields, context, timeout_s=CALL_TIMEOUT_S)
        if first or result.unavailable or len(result.values) != len(fields):
            _check("source", result.values, expected, fields)
            first = False

    return call


def _disclosure_call(
    disclose: Callable[[tuple[str, ...]], Awaitable[Any]], fields: tuple[str, ...],
    expected: dict[str, str], disclosed: tuple[str, ...],
) -> Call:
    """The ZVH's disclosure of ``fields``; the ``disclosed`` ones (not masked) must carry the
    system's values."""
    first = True

    async def call() -> None:
        nonlocal first
        answer = await disclose(fields)
        if first or answer.response.incomplete:
            if answer.response.incomplete:
                raise RuntimeError("the disclosure is incomplete: a source did not answer")
            _check("disclosure", answer.values, expected, disclosed)
            first = False

    return call


async def _floor_call(bench: Bench, address: str, stack: AsyncExitStack) -> Call:
    """A clear FetchFields for the GGZ fields to a source answering from memory, over mutual
    TLS with the gateway's certificate: the gRPC round trip every source call pays."""
    channel: aio.Channel = open_channel(address, gateway_client_tls(bench.keys))
    stack.push_async_callback(channel.close, None)
    stub = source_pb2_grpc.SourceServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]
    fields = list(SOURCE_RECORDS["ggz"].fields)
    request = source_pb2.FetchFieldsRequest(
        subject=common_pb2.SubjectIdentity(bsn=SUBJECT.bsn), fields=fields,
        purpose=PURPOSE, disclosure_id="d_bench", recipient_id=REQUESTER,
    )

    async def call() -> None:
        response = await stub.FetchFields(request, timeout=CALL_TIMEOUT_S)
        if len(response.values) != len(fields):
            raise RuntimeError("the in-memory source did not answer every field")

    await call()
    return call


# Which processes take part in each target, for the CPU each spends per call.
def involved(target: str) -> tuple[str, ...]:
    if target == "grpc_floor":
        return ("client", "floor")
    kind, what = target.split(".", 1)
    partner = PARTNER[kind]
    system = ("fhir_server",) if kind == "fhir" else ()
    return {
        "system_direct": ("client", *system),
        "adapter": ("client", *system),
        "runtime_inmemory": ("client", f"memory_{partner}"),
        "runtime": ("client", f"runtime_{kind}", *system),
        "disclosure_inmemory": ("client", "gateway_inmemory", f"memory_{partner}"),
        "disclosure": ("client", gateway_of(kind), f"runtime_{kind}", *system),
    }[what]


# The figures also measured in pairs: what and against, one call of each in turn.
PAIRED = ("per_disclosure", "runtime_vs_system_direct")


async def paired(target: Call, baseline: Call, seconds: float) -> list[float]:
    """One call of each in turn (the order swapped every pair) for ``seconds``: the pairs'
    differences in ms. Drift in the machine's or the system's speed falls on both calls of a
    pair, which the turn-taking of whole runs cannot promise on a shared machine."""
    differences: list[float] = []
    clock = time.perf_counter
    ends = clock() + seconds
    while clock() < ends or not differences:
        took: dict[str, float] = {}
        for name, call in (("t", target), ("b", baseline))[:: 1 if len(differences) % 2 else -1]:
            began = clock()
            await call()
            took[name] = clock() - began
        differences.append((took["t"] - took["b"]) * 1000)
    return differences


def cpu_snapshot(processes: dict[str, TargetProcess]) -> dict[str, float | None]:
    snap = {name: p.cpu_seconds() for name, p in processes.items()}
    snap["client"] = process_cpu_seconds(os.getpid())
    return snap


async def _rounds(
    args: argparse.Namespace, bench: Bench
) -> tuple[dict[str, list[RunStats]], dict[str, list[dict[str, float]]]]:
    """The targets take turns, ``args.rounds`` times."""
    runs: dict[str, list[RunStats]] = {t: [] for t in bench.calls}
    cpu: dict[str, list[dict[str, float]]] = {t: [] for t in bench.calls}
    for round_no in range(1, args.rounds + 1):
        for target, call in bench.calls.items():
            before: dict[str, float | None] = {}
            stats = await run_load(
                target, call, concurrency=args.concurrency, seconds=args.seconds,
                warmup_s=args.warmup,
                on_measure=partial(lambda into: into.update(cpu_snapshot(bench.processes)),
                                   before),
            )
            after = cpu_snapshot(bench.processes)
            used: dict[str, float] = {}
            for name in involved(target):
                b, a = before.get(name), after.get(name)
                if b is not None and a is not None and stats.completed:
                    used[name] = round((a - b) / stats.completed * 1e6, 1)
            cpu[target].append(used)
            runs[target].append(stats)
            say(f"round {round_no}/{args.rounds} {target:32s} {stats.rate:8.1f}/s "
                f"p50 {stats.p50_ms:7.2f} ms p99 {stats.p99_ms:7.2f} ms"
                + (f" errors {stats.errors}: {stats.first_error}" if stats.errors else ""))
        for kind in args.kinds:
            for name in PAIRED:
                what, against = ADDED[name]
                differences = await paired(bench.calls[f"{kind}.{what}"],
                                           bench.calls[f"{kind}.{against}"], args.seconds)
                middle = statistics.median(differences)
                bench.paired.setdefault(f"{kind}.{name}", []).append(middle)
                say(f"round {round_no}/{args.rounds} {kind}.{name} in pairs: "
                    f"{middle:7.2f} ms ({len(differences)} pairs)")
    return runs, cpu


def _summary(stats: list[RunStats], cpu: list[dict[str, float]]) -> dict[str, Any]:
    summary: dict[str, Any] = median_of(stats)
    summary["p50_ms_per_round"] = [round(r.p50_ms, 3) for r in stats]
    names = sorted({k for c in cpu for k in c})
    summary["cpu_us_per_call"] = {
        n: round(statistics.median(c[n] for c in cpu if n in c), 1) for n in names
    }
    return summary


def added(target: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """``target`` against ``baseline``: the latency it adds (ms) and the ratios."""
    return {
        "p50_ms": round(target["p50_ms"] - baseline["p50_ms"], 3),
        "p99_ms": round(target["p99_ms"] - baseline["p99_ms"], 3),
        "p50_ratio": round(target["p50_ms"] / baseline["p50_ms"], 3),
        "rate_ratio": round(target["rate"] / baseline["rate"], 3),
    }


def _report(
    args: argparse.Namespace, bench: Bench, runs: dict[str, list[RunStats]],
    cpu: dict[str, list[dict[str, float]]], infos: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    summaries = {t: _summary(runs[t], cpu[t]) for t in runs}
    targets: dict[str, Any] = {"grpc_floor": summaries["grpc_floor"]}
    report_added: dict[str, Any] = {}
    for kind in args.kinds:
        mine = {what: summaries[f"{kind}.{what}"] for what in KIND_TARGETS}
        targets[kind] = mine
        report_added[kind] = {
            name: added(mine[what], mine[against]) for name, (what, against) in ADDED.items()
        }
        for name in PAIRED:
            per_round = bench.paired[f"{kind}.{name}"]
            report_added[kind][name]["paired_ms"] = round(statistics.median(per_round), 3)
            report_added[kind][name]["paired_ms_per_round"] = [round(x, 3) for x in per_round]
    return {
        "benchmark": "source_adapter",
        "targets": targets,
        "added": report_added,
        "fields": {kind: list(bench.fields[kind]) for kind in args.kinds},
        "identifiers": {kind: list(bench.identifiers[kind]) for kind in args.kinds},
        "fhir_server_requests": infos.get("fhir_server", {}).get("requests", {}),
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "quick": args.quick,
        "db": args.db,
        "tls": "mtls",
        "fhir_patients": args.patients + 1,
        "sql_persons": args.persons + 1,
        "environment": {
            "python": platform.python_version(),
            "grpcio": metadata.version("grpcio"),
            "httpx": metadata.version("httpx"),
            "sqlalchemy": metadata.version("sqlalchemy"),
            "fhir.resources": metadata.version("fhir.resources"),
            "cpu_count": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(measure(args))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
