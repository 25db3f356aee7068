"""What per-call tokens cost: minting one, verifying it, and claiming its id once.

Every call to the gateway carries a fresh token: the client signs one (``TokenSource``, as
``PartnerClient`` does per call), the gateway checks it (``TokenVerifier.verify``, bound to
the client certificate under mutual TLS) and claims its ``jti`` in the database so that it
is never accepted twice (``TokenAdmission.admit``, group-committed). Measured in one run,
each against a baseline from the same run:

- mint (client CPU per token) against one Ed25519 signature;
- verify, bound and unbound (gateway CPU per token), against one Ed25519 verification and
  against the server CPU of a bare gRPC call over mutual TLS (a partner source answering
  FetchFields in its own process);
- claims per second, admit latency and CPU per claim at several concurrencies, on SQLite and
  PostgreSQL, against one claim per durable transaction.

JSON on stdout; progress on stderr::

    python bench/token_bench.py [--db sqlite,postgres] [--concurrency 1,16,64] [--seconds 3]
        [--rounds 3] [--iterations 2000] [--quick] [--disclosure REPORT.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from loadgen import run_load
from log_databases import fresh_engine, postgres_problem
from sqlalchemy.engine import URL, make_url
from targets import TargetProcess, process_cpu_seconds, record_to_dict, run_source
from tls_setup import bench_tls
from token_claims import admission_point, one_claim_per_commit
from token_fixture import PARTNER, TokenFixture, signing_input_and_signature, token_fixture

from adapters.channels import open_channel
from gateway.api.v1 import source_pb2, source_pb2_grpc
from gateway.cli.demo_data import SOURCE_RECORDS, SUBJECT

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DATABASES = ("sqlite", "postgres")
DEFAULT_CONCURRENCY = (1, 16, 64)
DEFAULT_SECONDS = 3.0
DEFAULT_WARMUP_S = 0.5
DEFAULT_ROUNDS = 3
DEFAULT_ITERATIONS = 2000
# The disclosure bench's default concurrency: the bare gRPC call is measured at it, and the
# per-call summary reads the claims at it.
CALL_CONCURRENCY = 16
# The CPU targets take turns in this many slices per round.
CPU_SLICES = 10
QUICK = {"iterations": 200, "seconds": 0.5, "warmup": 0.1, "rounds": 1, "concurrency": (1, 16)}

Prepare = Callable[[int], list[Any]]
Operation = Callable[[Any], object]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    p.add_argument("--db", default=",".join(DATABASES), help="comma-separated: sqlite,postgres")
    p.add_argument("--pg-url", default=os.environ.get("KETENPOORT_BENCH_PG_URL", DEFAULT_PG_URL))
    p.add_argument("--concurrency", default=None,
                   help="comma-separated concurrent calls for the claims (default 1,16,64)")
    p.add_argument("--seconds", type=float, default=None, help="per measured load point")
    p.add_argument("--warmup", type=float, default=None, help="before every load point")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--iterations", type=int, default=None, help="tokens per CPU target and round")
    p.add_argument("--quick", action="store_true",
                   help="a short run that proves the bench works; its figures mean little")
    p.add_argument("--disclosure", type=Path, default=None, metavar="REPORT",
                   help="a disclosure_bench.py report: put the token cost beside its gateway's")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else {
        "iterations": DEFAULT_ITERATIONS, "seconds": DEFAULT_SECONDS, "warmup": DEFAULT_WARMUP_S,
        "rounds": DEFAULT_ROUNDS, "concurrency": DEFAULT_CONCURRENCY,
    }
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if isinstance(args.concurrency, str):
        args.concurrency = tuple(int(c) for c in args.concurrency.split(","))
    args.db = tuple(d for d in DATABASES if d in set(args.db.split(",")))
    if (not args.db or min(args.concurrency) < 1 or args.rounds < 1 or args.seconds <= 0
            or args.iterations < 1):
        p.error("need a database, concurrency >= 1, rounds >= 1, seconds > 0, iterations >= 1")
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cpu_targets(fx: TokenFixture) -> dict[str, tuple[Prepare, Operation]]:
    """Each target: what to prepare for ``n`` operations, and one operation."""

    def tokens(source: Callable[[], str]) -> Prepare:
        return lambda n: [source() for _ in range(n)]

    def signed(n: int) -> list[tuple[bytes, bytes]]:
        return [signing_input_and_signature(fx.bound.token()) for _ in range(n)]

    def verify_signature(item: tuple[bytes, bytes]) -> None:
        fx.public_key.verify(item[1], item[0])

    return {
        "ed25519_sign": (lambda n: [m for m, _ in signed(n)], fx.signing_key.sign),
        "mint": (lambda n: [None] * n, lambda _: fx.bound.token()),
        "ed25519_verify": (signed, verify_signature),
        "verify_bound": (tokens(fx.bound.token),
                         lambda t: fx.verify_bound.verify(t, fx.thumbprint)),
        "verify_unbound": (tokens(fx.unbound.token),
                           lambda t: fx.verify_unbound.verify(t, None)),
    }


def time_targets(
    targets: dict[str, tuple[Prepare, Operation]], n: int, slices: int = CPU_SLICES
) -> dict[str, dict[str, float]]:
    """Mean wall and CPU microseconds per operation, ``n`` operations per target. The targets
    take turns in ``slices`` slices, so that a slow spell of a shared machine is spread over
    all of them; the garbage of one slice is collected before the next is timed."""
    per_slice = max(1, n // slices)
    wall = dict.fromkeys(targets, 0)
    cpu = dict.fromkeys(targets, 0)
    for prepare, operation in targets.values():
        for item in prepare(min(per_slice, 50)):
            operation(item)
    for _ in range(slices):
        for name, (prepare, operation) in targets.items():
            items = prepare(per_slice)
            gc.collect()
            c, w = time.process_time_ns(), time.perf_counter_ns()
            for item in items:
                operation(item)
            wall[name] += time.perf_counter_ns() - w
            cpu[name] += time.process_time_ns() - c
    done = per_slice * slices
    return {
        name: {"mean_us": wall[name] / done / 1000, "cpu_mean_us": cpu[name] / done / 1000}
        for name in targets
    }


async def grpc_call(
    source: TargetProcess, port: int, fx: TokenFixture, seconds: float, warmup_s: float
) -> dict[str, Any]:
    """A bare FetchFields call to the partner source over mutual TLS, at CALL_CONCURRENCY."""
    tls = bench_tls(fx.keys, PARTNER)
    request = source_pb2.FetchFieldsRequest(
        subject=SUBJECT, fields=list(SOURCE_RECORDS[PARTNER].fields), purpose="analysis_and_plan",
        disclosure_id="d_" + secrets.token_hex(16), recipient_id=PARTNER,
    )
    channel = open_channel(f"127.0.0.1:{port}", tls.client)
    try:
        stub = source_pb2_grpc.SourceServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]

        async def call() -> object:
            return await stub.FetchFields(request, timeout=10.0)

        await call()
        marks: dict[str, float | None] = {}

        def on_measure() -> None:
            marks.update(server=source.cpu_seconds(), client=process_cpu_seconds(os.getpid()))

        stats = await run_load("grpc_call", call, concurrency=CALL_CONCURRENCY, seconds=seconds,
                               warmup_s=warmup_s, on_measure=on_measure)
        after = {"server": source.cpu_seconds(), "client": process_cpu_seconds(os.getpid())}
    finally:
        await channel.close(None)
    out: dict[str, Any] = stats.as_dict()
    for side, value in after.items():
        before = marks.get(side)
        if value is not None and before is not None and stats.completed:
            out[f"{side}_cpu_us"] = round((value - before) / stats.completed * 1e6, 1)
    return out


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    skipped: dict[str, str] = {}
    if "postgres" in args.db and (problem := postgres_problem(args.pg_url)) is not None:
        skipped["postgres"] = problem
        say(f"postgres skipped: {problem}")
    databases = [d for d in args.db if d not in skipped]
    pg_url = make_url(args.pg_url) if "postgres" in databases else None
    with tempfile.TemporaryDirectory(prefix="ketenpoort-token-bench-") as tmp:
        work = Path(tmp)
        fx = token_fixture(work)
        source = TargetProcess.spawn(
            "source", run_source, [record_to_dict(SOURCE_RECORDS[PARTNER])],
            bench_tls(fx.keys, PARTNER),
        )
        try:
            port = await source.ready()
            rounds = await _rounds(args, fx, source, port, work, databases, pg_url)
            await source.stop()
        finally:
            source.kill()
    return _report(args, rounds, skipped)


async def _rounds(
    args: argparse.Namespace,
    fx: TokenFixture,
    source: TargetProcess,
    port: int,
    work: Path,
    databases: list[str],
    pg_url: URL | None,
) -> dict[str, Any]:
    """Every target once per round, in turn; the report takes the medians."""
    targets = cpu_targets(fx)
    cpu: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    calls: list[dict[str, Any]] = []
    floors: dict[str, list[dict[str, Any]]] = {db: [] for db in databases}
    claims: dict[str, dict[int, list[dict[str, Any]]]] = {
        db: {c: [] for c in args.concurrency} for db in databases
    }
    for round_no in range(1, args.rounds + 1):
        for name, figures in time_targets(targets, args.iterations).items():
            cpu[name].append(figures)
        say(f"round {round_no}/{args.rounds} cpu "
            + " ".join(f"{n} {cpu[n][-1]['cpu_mean_us']:.1f}" for n in targets) + " (µs)")
        calls.append(await grpc_call(source, port, fx, args.seconds, args.warmup))
        say(f"round {round_no}/{args.rounds} grpc_call {calls[-1]['rate']:.0f} calls/s "
            f"server {calls[-1].get('server_cpu_us', 0):.0f} µs CPU per call")
        for db in databases:
            with fresh_engine(db, work, pg_url) as engine:
                floors[db].append(
                    await one_claim_per_commit(engine, seconds=args.seconds, warmup_s=args.warmup)
                )
            for c in args.concurrency:
                with fresh_engine(db, work, pg_url) as engine:
                    point = await admission_point(
                        engine, concurrency=c, seconds=args.seconds, warmup_s=args.warmup,
                        thumbprint=fx.thumbprint,
                    )
                claims[db][c].append(point)
                say(f"round {round_no}/{args.rounds} {db} claims c{c}: {point['rate']:.0f}/s "
                    f"p50 {point['p50_ms']:.2f} ms batch {point['mean_batch']} "
                    f"CPU {point['cpu_us_per_claim']:.0f} µs/claim"
                    + (f" errors {point['errors']}" if point["errors"] else ""))
    return {"cpu": cpu, "calls": calls, "floors": floors, "claims": claims}


def _median(runs: list[dict[str, Any]], digits: int = 1) -> dict[str, Any]:
    """Median of every figure across rounds; errors summed; the per-round rates kept."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if key == "errors":
            out[key] = sum(r[key] for r in runs)
        elif isinstance(value, int | float) and key != "completed":
            out[key] = round(statistics.median(r[key] for r in runs), digits)
    if "rate" in runs[0]:
        out["rate_per_round"] = [r["rate"] for r in runs]
    return out


def _report(
    args: argparse.Namespace, rounds: dict[str, Any], skipped: dict[str, str]
) -> dict[str, Any]:
    cpu = {name: _median(runs, 2) for name, runs in rounds["cpu"].items()}
    call = _median(rounds["calls"])
    admission: dict[str, Any] = {db: {"skipped": reason} for db, reason in skipped.items()}
    for db, floor_runs in rounds["floors"].items():
        admission[db] = {
            "one_claim_per_commit": _median(floor_runs, 3),
            "admission": {str(c): _median(runs, 3) for c, runs in rounds["claims"][db].items()},
        }
    report: dict[str, Any] = {
        "benchmark": "token",
        "cpu_per_token": cpu,
        "grpc_call": {"tls": "mtls", "concurrency": CALL_CONCURRENCY, **call},
        "claims": admission,
        "ratios": _ratios(cpu, call, admission),
        "per_call": _per_call(args, cpu, call, admission),
        "databases": list(args.db),
        "concurrency": list(args.concurrency),
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "iterations": args.iterations,
        "quick": args.quick,
    }
    if args.disclosure is not None:
        report["against_disclosure"] = against_disclosure(
            json.loads(args.disclosure.read_text(encoding="utf-8")), cpu, admission
        )
    report["environment"] = {
        "python": platform.python_version(),
        "cryptography": metadata.version("cryptography"),
        "pyjwt": metadata.version("pyjwt"),
        "grpcio": metadata.version("grpcio"),
        "sqlalchemy": metadata.version("sqlalchemy"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    return report


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _ratios(
    cpu: dict[str, Any], call: dict[str, Any], admission: dict[str, Any]
) -> dict[str, Any]:
    """Each figure over its baseline from the same run (CPU means)."""
    server = call.get("server_cpu_us")
    ratios: dict[str, Any] = {
        "mint_vs_ed25519_sign": _ratio(cpu["mint"]["cpu_mean_us"],
                                       cpu["ed25519_sign"]["cpu_mean_us"]),
        "verify_bound_vs_ed25519_verify": _ratio(cpu["verify_bound"]["cpu_mean_us"],
                                                 cpu["ed25519_verify"]["cpu_mean_us"]),
        "verify_bound_vs_verify_unbound": _ratio(cpu["verify_bound"]["cpu_mean_us"],
                                                 cpu["verify_unbound"]["cpu_mean_us"]),
        "verify_bound_vs_grpc_call_server": _ratio(cpu["verify_bound"]["cpu_mean_us"], server),
        "mint_vs_grpc_call_client": _ratio(cpu["mint"]["cpu_mean_us"], call.get("client_cpu_us")),
        "claims_vs_one_claim_per_commit": {},
    }
    for db, figures in admission.items():
        if "skipped" in figures:
            continue
        floor = figures["one_claim_per_commit"]["rate"]
        ratios["claims_vs_one_claim_per_commit"][db] = {
            c: _ratio(point["rate"], floor) for c, point in figures["admission"].items()
        }
    return ratios


def _claims_at(figures: dict[str, Any], concurrency: int) -> tuple[str, dict[str, Any]]:
    """The admission point nearest ``concurrency``."""
    key = min(figures["admission"], key=lambda c: (abs(int(c) - concurrency), int(c)))
    return key, figures["admission"][key]


def _per_call(
    args: argparse.Namespace, cpu: dict[str, Any], call: dict[str, Any], admission: dict[str, Any]
) -> dict[str, Any]:
    """CPU per call for the whole token step: the client's mint, the gateway's verify and
    claim (mutual TLS, bound tokens), beside the server CPU of a bare gRPC call."""
    gateway: dict[str, Any] = {}
    for db, figures in admission.items():
        if "skipped" in figures:
            continue
        at, point = _claims_at(figures, CALL_CONCURRENCY)
        total = cpu["verify_bound"]["cpu_mean_us"] + point["cpu_us_per_claim"]
        gateway[db] = {
            "cpu_us": round(total, 1),
            "claims_at_concurrency": int(at),
            "vs_grpc_call_server": _ratio(total, call.get("server_cpu_us")),
        }
    return {"client_cpu_us": cpu["mint"]["cpu_mean_us"], "gateway": gateway}


def against_disclosure(
    disclosure: dict[str, Any], cpu: dict[str, Any], admission: dict[str, Any]
) -> dict[str, Any]:
    """The token step's CPU beside the gateway's CPU per request in a disclosure bench run.
    The claim's CPU is read at the mean claim batch that run's gateway reached."""
    db = disclosure.get("db", "sqlite")
    tls = disclosure.get("tls", "insecure")
    gateway = disclosure.get("targets", {}).get("gateway")
    if gateway is None:
        return {"skipped": "the disclosure report has no gateway target"}
    if db not in admission or "skipped" in admission[db]:
        return {"skipped": f"this run has no claims on {db}"}
    points = admission[db]["admission"]
    at, nearest = _claims_at(admission[db], int(disclosure.get("concurrency", CALL_CONCURRENCY)))
    batch = float(disclosure.get("gateway_tokens", {}).get("mean_batch") or nearest["mean_batch"])
    claim_cpu = claim_cpu_at_batch(points, batch)
    verify = cpu["verify_bound" if tls == "mtls" else "verify_unbound"]["cpu_mean_us"]
    gateway_cpu = gateway.get("cpu_us_per_request", {}).get("gateway")
    client_cpu = gateway.get("cpu_us_per_request", {}).get("client")
    token_cpu = verify + claim_cpu
    return {
        "db": db,
        "tls": tls,
        "gateway_rate": gateway["rate"],
        "gateway_cpu_us_per_request": gateway_cpu,
        "claims_mean_batch": batch,
        "verify_cpu_us": round(verify, 1),
        "claim_cpu_us": round(claim_cpu, 1),
        "token_cpu_us_per_request": round(token_cpu, 1),
        "token_share_of_gateway_cpu": _ratio(token_cpu, gateway_cpu),
        "mint_share_of_client_cpu": _ratio(cpu["mint"]["cpu_mean_us"], client_cpu),
        "claims_at_concurrency": int(at),
        "claim_capacity_vs_gateway_rate": _ratio(nearest["rate"], gateway["rate"]),
    }


def claim_cpu_at_batch(points: dict[str, dict[str, Any]], batch: float) -> float:
    """CPU per claim at a mean batch of ``batch`` claims per transaction. A transaction costs a
    part its batch shares and a part per claim, so CPU per claim is linear in 1/batch: it is
    interpolated between the measured points around it, or taken from the nearest one."""
    measured = sorted(
        (1 / p["mean_batch"], float(p["cpu_us_per_claim"]))
        for p in points.values() if p["mean_batch"] > 0
    )
    if not measured:
        raise ValueError("no admission point committed a batch")
    x = 1 / max(batch, 1.0)
    if x <= measured[0][0]:
        return measured[0][1]
    for (x0, y0), (x1, y1) in zip(measured, measured[1:], strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1
    return measured[-1][1]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(measure(args))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
