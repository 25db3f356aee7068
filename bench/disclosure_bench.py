"""Disclosures per second and latency through the gateway, against the gRPC stack's own floor.

Three targets, measured in one run, on loopback, at the same concurrency and with answers of
the same size:

- direct:  client -> partner source (FetchFields for the police fields)
- proxy:   client -> bare pass-through proxy (raw bytes) -> partner source
- gateway: client -> Ketenpoort RequestDisclosure -> partner source, with the durable
  accountability log on; the client mints a token for every call and opens every sealed
  answer, the gateway verifies each token and claims its id once.

Every hop runs mutual TLS with the development CA's certificates and the gateway requires
certificate-bound tokens, as in production (``--tls mtls``, the default); ``--tls insecure``
runs every hop in plaintext with unbound tokens. Source, proxy and gateway each run in their
own process; the load generator runs here. The targets take turns in rounds and the median
across rounds is reported, as JSON on stdout::

    python bench/disclosure_bench.py [--concurrency 16] [--seconds 10] [--db sqlite|postgres]
        [--tls mtls|insecure]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from grpc import aio
from loadgen import Call, RunStats, median_of, run_load
from payload import padded_record
from targets import (
    GatewaySpec,
    TargetProcess,
    process_cpu_seconds,
    record_to_dict,
    run_gateway,
    run_proxy,
    run_source,
)
from tls_setup import BenchTls, bench_tls

from adapters.channels import open_channel
from adapters.client import OpenedDisclosure, PartnerClient, PartnerCredentials
from adapters.source_server import SubjectRecord
from gateway.api.v1 import cases_pb2, common_pb2, exchange_pb2, source_pb2, source_pb2_grpc
from gateway.cli.demo_data import REASON, SOURCE_RECORDS, SUBJECT
from gateway.crypto.devkeys import init_dev_keys
from gateway.policyfiles import load_policy_dir
from gateway.registry.dev import register_dev_partners
from gateway.server.config import shipped_policy_dir

DEFAULT_CONCURRENCY = 16
DEFAULT_SECONDS = 10.0
DEFAULT_WARMUP_S = 1.0
DEFAULT_ROUNDS = 3
DEFAULT_PAYLOAD_BYTES = 1024
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Production's transport: figures measured without TLS leave out work every call does there.
DEFAULT_TLS = "mtls"
TARGETS = ("direct", "proxy", "gateway", "replicas")

SOURCE_TYPE = "police"
FIELDS = tuple(SOURCE_RECORDS[SOURCE_TYPE].fields)
PURPOSE = "analysis_and_plan"
PHASES = ("registration", "triage", "case_meeting")
# The direct and proxy targets ask for another subject, whose values are padded so that
# their answer is as large as the gateway's; the gateway's own source record stays as it is.
BASELINE_BSN = "999999990"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    p.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per measured run")
    p.add_argument("--warmup", type=float, default=DEFAULT_WARMUP_S, help="before every run")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--pg-url", default=os.environ.get("KETENPOORT_BENCH_PG_URL", DEFAULT_PG_URL))
    p.add_argument(
        "--tls", choices=("mtls", "insecure"), default=DEFAULT_TLS,
        help="mtls: every hop over mutual TLS, certificate-bound tokens (production; default); "
        "insecure: every hop in plaintext, unbound tokens",
    )
    p.add_argument(
        "--targets", default=",".join(TARGETS[:3]),
        help="comma-separated subset of direct,proxy,gateway,replicas (ratios need the first "
        "three; replicas: the same load spread over --replicas gateway processes on one database)",
    )
    p.add_argument(
        "--payload-bytes", type=int, default=DEFAULT_PAYLOAD_BYTES,
        help="answer size of the direct and proxy targets when the gateway is not measured",
    )
    p.add_argument(
        "--profile", type=Path, default=None, metavar="PATH",
        help="profile the gateway process (all threads) while it runs; a text summary goes "
        "to PATH.txt. Slows the gateway: do not compare the figures of a profiled run.",
    )
    p.add_argument(
        "--profile-mode", choices=("sample", "cpu", "wall"), default="sample",
        help="sample: a sampling profiler over all threads (default); cpu / wall: cProfile "
        "in every thread with that clock, its pstats file written to PATH",
    )
    p.add_argument(
        "--replicas", type=int, default=2,
        help="gateway processes of the replicas target, sharing one database (default 2)",
    )
    args = p.parse_args(argv)
    args.targets = tuple(t for t in TARGETS if t in set(args.targets.split(",")))
    if args.replicas < 2 and "replicas" in args.targets:
        p.error("--replicas must be at least 2")
    if not args.targets or args.concurrency < 1 or args.rounds < 1 or args.seconds <= 0:
        p.error("need at least one target, concurrency >= 1, rounds >= 1 and seconds > 0")
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def database(kind: str, work: Path, pg_url: str) -> Iterator[str]:
    """SQLite in the work directory, or a fresh PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{work / 'ketenpoort.db'}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(pg_url)
    if parsed.get_backend_name() != "postgresql":
        raise SystemExit("--pg-url must be a postgresql+psycopg:// URL")
    schema = "ketenpoort_bench_" + secrets.token_hex(4)
    libpq_url = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        options = parsed.query.get("options", "")
        yield parsed.update_query_dict(
            {"options": f"{options} -csearch_path={schema}".strip()}
        ).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def set_up_case(address: str, keys: Path, mutual_tls: bool) -> str:
    """Police register the case and take its casusregie; the ZVH process director accepts it
    at intake and moves it to the case meeting."""
    police = PartnerClient(
        address,
        PartnerCredentials.from_key_dir(keys, "police", tls=mutual_tls),
        role="case_director",
    )
    zvh = PartnerClient(
        address,
        PartnerCredentials.from_key_dir(keys, "zvh", tls=mutual_tls),
        role="process_director",
    )
    async with police, zvh:
        case = await police.register_case(
            SUBJECT, "", approach="code_rood", reason=REASON, casusregie_partner="police"
        )
        await zvh.cases.decide_intake(case.case_id, cases_pb2.ACCEPT, "bench case")
        for before, after in zip(PHASES, PHASES[1:], strict=False):
            await zvh.change_phase(case.case_id, before, after)
    return case.case_id


async def gateway_client(
    port: int, keys: Path, case_id: str, mutual_tls: bool
) -> tuple[PartnerClient, Call, dict[str, int]]:
    """The police client of the gateway target; checks the answer and measures its size.
    Under mutual TLS it presents the police's certificate and binds every token to it."""
    police = PartnerClient(
        f"127.0.0.1:{port}",
        PartnerCredentials.from_key_dir(keys, "police", tls=mutual_tls),
        role="case_director",
    )

    async def disclose() -> OpenedDisclosure:
        return await police.request_disclosure(case_id, PURPOSE, PHASES[-1], fields=FIELDS)

    probe = await disclose()
    if probe.values != dict(SOURCE_RECORDS[SOURCE_TYPE].fields) or probe.response.incomplete:
        raise RuntimeError("the gateway's answer is not the police record the policy releases")
    request = exchange_pb2.DisclosureRequest(
        case_id=case_id, purpose=PURPOSE, phase=PHASES[-1], fields=list(FIELDS)
    )
    sizes = {"gateway_request": request.ByteSize(), "gateway_response": probe.response.ByteSize()}
    return police, disclose, sizes


async def source_clients(
    ports: dict[str, int], targets: tuple[str, ...], tls: BenchTls | None
) -> tuple[list[aio.Channel], dict[str, Call], dict[str, int]]:
    """One channel each to the source and to the proxy, asking for the padded subject;
    under mutual TLS each presents the same client certificate as the gateway's client."""
    fetch = source_pb2.FetchFieldsRequest(
        subject=common_pb2.SubjectIdentity(
            bsn=BASELINE_BSN, name=SUBJECT.name, date_of_birth=SUBJECT.date_of_birth,
            address=SUBJECT.address, postcode=SUBJECT.postcode,
        ),
        fields=list(FIELDS),
        purpose=PURPOSE,
        disclosure_id="d_" + secrets.token_hex(16),
        recipient_id="police",
    )
    channels: list[aio.Channel] = []
    calls: dict[str, Call] = {}
    sizes = {"source_request": fetch.ByteSize()}
    for target in (t for t in targets if t in ("direct", "proxy")):
        channel = open_channel(f"127.0.0.1:{ports[target]}", tls.client if tls else None)
        channels.append(channel)
        stub = source_pb2_grpc.SourceServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]
        answer = await stub.FetchFields(fetch, timeout=10.0)
        sizes[f"{target}_response"] = answer.ByteSize()
        calls[target] = _fetcher(stub, fetch)
    return channels, calls, sizes


def _replica(index: int) -> str:
    """The process name of gateway replica ``index``; replica 0 is the gateway target."""
    return "gateway" if index == 0 else f"gateway_r{index}"


def _round_robin(calls: list[Call]) -> Call:
    """One call that goes to each replica's client in turn, as a load balancer would."""
    turn = itertools.count()

    async def call() -> object:
        return await calls[next(turn) % len(calls)]()

    return call


def _fetcher(stub: Any, request: source_pb2.FetchFieldsRequest) -> Call:
    async def call() -> source_pb2.FetchFieldsResponse:
        response: source_pb2.FetchFieldsResponse = await stub.FetchFields(request, timeout=10.0)
        return response

    return call


def cpu_snapshot(processes: dict[str, TargetProcess]) -> dict[str, float | None]:
    snap = {name: p.cpu_seconds() for name, p in processes.items()}
    snap["client"] = process_cpu_seconds(os.getpid())
    return snap


def _snapshot_into(into: dict[str, float | None], processes: dict[str, TargetProcess]) -> None:
    into.update(cpu_snapshot(processes))


def cpu_per_request(
    before: dict[str, float | None], after: dict[str, float | None], completed: int, target: str
) -> dict[str, float]:
    """CPU microseconds per completed request, for the processes that took part."""
    replicas = tuple(name for name in before if name.startswith("gateway"))
    involved = {"direct": ("client", "source"), "proxy": ("client", "proxy", "source"),
                "gateway": ("client", "gateway", "source"),
                "replicas": ("client", *replicas, "source")}[target]
    out: dict[str, float] = {}
    for name in involved:
        b, a = before.get(name), after.get(name)
        if b is not None and a is not None and completed:
            out[name] = round((a - b) / completed * 1e6, 1)
    return out


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    processes: dict[str, TargetProcess] = {}
    with tempfile.TemporaryDirectory(prefix="ketenpoort-bench-") as tmp:
        work = Path(tmp)
        keys = work / "keys"
        # Keys for every partner the policy names, so the registry is whole as in production.
        policy = load_policy_dir(shipped_policy_dir())
        partner_ids = [p.id for p in policy.policy.partners]
        init_dev_keys(keys, partner_ids)
        # The gateway's registry (DATA_DIR/registry): certificates and token keys.
        register_dev_partners(keys, work / "registry", partner_ids)
        tls = bench_tls(keys, SOURCE_TYPE) if args.tls == "mtls" else None
        with database(args.db, work, args.pg_url) as db_url:
            try:
                return await _measure(args, processes, keys, db_url, tls)
            finally:
                for p in processes.values():
                    p.kill()


async def _measure(
    args: argparse.Namespace,
    processes: dict[str, TargetProcess],
    keys: Path,
    db_url: str,
    tls: BenchTls | None,
) -> dict[str, Any]:
    source_record = record_to_dict(SOURCE_RECORDS[SOURCE_TYPE])
    processes["source"] = TargetProcess.spawn("source", run_source, [source_record], tls)
    source_port = await processes["source"].ready()
    source_address = f"127.0.0.1:{source_port}"
    ports = {"direct": source_port}
    if "proxy" in args.targets:
        processes["proxy"] = TargetProcess.spawn("proxy", run_proxy, source_address, tls)
    replicas = args.replicas if "replicas" in args.targets else 1
    if {"gateway", "replicas"} & set(args.targets):
        # Replica r0 is the gateway target; the replicas target spreads its load over r0 and
        # the others, all on the one database, as production replicas share PostgreSQL.
        for index in range(replicas):
            spec = GatewaySpec(
                database_url=db_url, keys_dir=keys, source_address=source_address,
                source_partner_type=SOURCE_TYPE, profile_path=args.profile if index == 0 else None,
                profile_mode=args.profile_mode, mutual_tls=tls is not None,
                replica_id=f"r{index}",
            )
            processes[_replica(index)] = TargetProcess.spawn(_replica(index), run_gateway, spec)
    for name in ("proxy", *(_replica(i) for i in range(replicas))):
        if name in processes:
            ports[name] = await processes[name].ready()
    say(f"ports {ports} ({args.db}, {args.tls})")

    calls: dict[str, Call] = {}
    sizes: dict[str, int] = {}
    police: PartnerClient | None = None
    extra_clients: list[PartnerClient] = []
    channels: list[aio.Channel] = []
    try:
        payload = args.payload_bytes
        if "gateway" in processes:
            mutual = tls is not None
            case_id = await set_up_case(f"127.0.0.1:{ports['gateway']}", keys, mutual)
            police, calls["gateway"], sizes = await gateway_client(
                ports["gateway"], keys, case_id, mutual
            )
            payload = sizes["gateway_response"]
            if replicas > 1:
                others = [
                    await gateway_client(ports[_replica(i)], keys, case_id, mutual)
                    for i in range(1, replicas)
                ]
                extra_clients = [client for client, _, _ in others]
                calls["replicas"] = _round_robin([calls["gateway"], *(c for _, c, _ in others)])
        # The baseline answers are padded to the size of the gateway's answer.
        original = SOURCE_RECORDS[SOURCE_TYPE]
        baseline = padded_record(
            SubjectRecord(BASELINE_BSN, original.role, original.fields), payload
        )
        await processes["source"].command("add_record", record_to_dict(baseline))
        channels, source_calls, source_sizes = await source_clients(ports, args.targets, tls)
        calls.update(source_calls)
        sizes.update(source_sizes)
        runs, cpu = await _rounds(args, processes, calls)
    finally:
        if police is not None:
            await police.close()
        for client in extra_clients:
            await client.close()
        for channel in channels:
            await channel.close(None)

    # Front to back, so that no process sees its upstream go away first.
    infos = {name: await p.stop() for name, p in reversed(processes.items())}
    return _report(args, runs, cpu, sizes, infos)


async def _rounds(
    args: argparse.Namespace, processes: dict[str, TargetProcess], calls: dict[str, Call]
) -> tuple[dict[str, list[RunStats]], dict[str, list[dict[str, float]]]]:
    """The targets take turns, ``args.rounds`` times."""
    runs: dict[str, list[RunStats]] = {t: [] for t in args.targets}
    cpu: dict[str, list[dict[str, float]]] = {t: [] for t in args.targets}
    for round_no in range(1, args.rounds + 1):
        for target in args.targets:
            before: dict[str, float | None] = {}
            stats = await run_load(
                target, calls[target], concurrency=args.concurrency, seconds=args.seconds,
                warmup_s=args.warmup, on_measure=partial(_snapshot_into, before, processes),
            )
            after = cpu_snapshot(processes)
            cpu[target].append(cpu_per_request(before, after, stats.completed, target))
            runs[target].append(stats)
            say(f"round {round_no}/{args.rounds} {target:8s} {stats.rate:8.1f} req/s "
                f"p50 {stats.p50_ms:6.2f} ms p99 {stats.p99_ms:6.2f} ms"
                + (f" errors {stats.errors}: {stats.first_error}" if stats.errors else ""))
    return runs, cpu


def _report(
    args: argparse.Namespace,
    runs: dict[str, list[RunStats]],
    cpu: dict[str, list[dict[str, float]]],
    sizes: dict[str, int],
    infos: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    for target, stats in runs.items():
        summary: dict[str, Any] = median_of(stats)
        names = sorted({k for c in cpu[target] for k in c})
        summary["cpu_us_per_request"] = {
            n: round(statistics.median(c[n] for c in cpu[target] if n in c), 1) for n in names
        }
        targets[target] = summary
    report: dict[str, Any] = {
        "benchmark": "disclosure",
        "targets": targets,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "db": args.db,
        "tls": args.tls,
        "payload_bytes": sizes,
    }
    if {"gateway", "replicas"} <= set(targets):
        report["replicas"] = {
            "count": args.replicas,
            "rate_vs_one_replica": round(
                targets["replicas"]["rate"] / targets["gateway"]["rate"], 3
            ),
        }
        if "proxy" in targets:
            report["replicas"]["rate_vs_proxy"] = round(
                targets["replicas"]["rate"] / targets["proxy"]["rate"], 3
            )
    if {"direct", "proxy", "gateway"} <= set(targets):
        g = targets["gateway"]
        report["ratios"] = {
            f"gateway_vs_{base}": {
                "rate": round(g["rate"] / targets[base]["rate"], 3),
                "p50": round(g["p50_ms"] / targets[base]["p50_ms"], 3),
            }
            for base in ("direct", "proxy")
        }
    log_info = infos.get("gateway", {})
    if log_info.get("log_batches"):
        report["gateway_log"] = {
            "records": log_info["log_records"],
            "batches": log_info["log_batches"],
            "mean_batch": round(log_info["log_records"] / log_info["log_batches"], 1),
        }
    if log_info.get("token_batches"):
        report["gateway_tokens"] = {
            "bound_to_certificate": args.tls == "mtls",
            "claims": log_info["token_claims"],
            "batches": log_info["token_batches"],
            "mean_batch": round(log_info["token_claims"] / log_info["token_batches"], 1),
        }
    if "profile" in log_info and args.profile is not None:
        summary_path = args.profile.with_name(args.profile.name + ".txt")
        summary_path.write_text(log_info["profile"], encoding="utf-8")
        report["profile"] = {"mode": args.profile_mode, "summary": str(summary_path)}
        if args.profile_mode != "sample":
            report["profile"]["pstats"] = str(args.profile)
    report["environment"] = {
        "python": platform.python_version(),
        "grpcio": metadata.version("grpcio"),
        "protobuf": metadata.version("protobuf"),
        "cryptography": metadata.version("cryptography"),
        "sqlalchemy": metadata.version("sqlalchemy"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(measure(args))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
