"""Durable accountability records per second, against the database's own floors.

For each database (SQLite in WAL mode with ``synchronous=FULL`` in a temporary directory;
PostgreSQL in a fresh schema of the ``ketenpoort_bench`` database) it measures, in one run:

- ``row_per_commit``: the same rows inserted with one durable commit per row (the floor
  without group commit);
- ``rows_100_per_commit``: 100 rows per commit (what batching can reach at best);
- the accountability log at 1, 16 and 64 concurrent writers: asyncio tasks in one event
  loop, each awaiting ``log.append(event)`` in a loop, with disclosure events of 12 fields
  and, when the log can sign them, a checkpoint every 1000 records.

Every point starts on an empty database; the points take turns in rounds and the median
across rounds is reported, as JSON on stdout::

    python bench/audit_append_bench.py [--db sqlite,postgres] [--writers 1,16,64]
                                       [--seconds 5] [--rounds 3] [--quick]
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
from importlib import metadata
from pathlib import Path
from typing import Any

from append_load import AppendRun, BatchClock, run_appends
from log_checkpoints import CheckpointSetup, checkpoint_setup, checkpoints_in
from log_databases import bench_database_url, fresh_engine, postgres_problem
from log_events import DEFAULT_CASES, FIELD_COUNT, event_pool
from raw_insert import BATCH_ROWS, RawRun, raw_insert
from sampling import Sampler
from sqlalchemy.engine import URL

from gateway.store import AuditLog
from gateway.store.audit_event import encode_event

DATABASES = ("sqlite", "postgres")
DEFAULT_WRITERS = (1, 16, 64)
DEFAULT_SECONDS = 5.0
DEFAULT_WARMUP_S = 1.0
DEFAULT_ROUNDS = 3
DEFAULT_POOL = 4096
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Durable records per second the log aims at, at AIM_WRITERS concurrent writers.
AIMS = {"sqlite": 15_000, "postgres": 8_000}
AIM_WRITERS = 64
QUICK = {"seconds": 0.2, "warmup": 0.05, "rounds": 1, "pool": 256}
BASELINES = {"row_per_commit": 1, "rows_100_per_commit": BATCH_ROWS}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    p.add_argument("--db", default=",".join(DATABASES), help="comma-separated: sqlite,postgres")
    p.add_argument(
        "--writers",
        default=",".join(map(str, DEFAULT_WRITERS)),
        help="comma-separated numbers of concurrent writers",
    )
    p.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per measured point")
    p.add_argument("--warmup", type=float, default=DEFAULT_WARMUP_S, help="before every point")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    p.add_argument("--pool", type=int, default=DEFAULT_POOL, help="distinct events cycled")
    p.add_argument("--fields", type=int, default=FIELD_COUNT, help="field decisions per event")
    p.add_argument(
        "--cases",
        type=int,
        default=DEFAULT_CASES,
        help="cases (one subject each) the events are spread over",
    )
    p.add_argument("--pg-url", default=os.environ.get("KETENPOORT_BENCH_PG_URL", DEFAULT_PG_URL))
    p.add_argument(
        "--no-checkpoints",
        dest="checkpoints",
        action="store_false",
        help="do not give the log a signer even when it takes one",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny durations and one round: proves the bench works, measures nothing",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="PATH",
        help="sample every thread during the log points and write the summaries to PATH; "
        "slows the log down: do not compare the figures of a profiled run",
    )
    args = p.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    args.db = tuple(d for d in DATABASES if d in set(args.db.split(",")))
    try:
        args.writers = tuple(sorted({int(w) for w in args.writers.split(",")}))
    except ValueError:
        p.error("--writers takes whole numbers, e.g. 1,16,64")
    if not args.db or min(args.writers) < 1 or args.rounds < 1 or args.seconds <= 0:
        p.error("need a database, writers >= 1, rounds >= 1 and seconds > 0")
    if min(args.cases, args.pool, args.fields) < 1:
        p.error("--cases, --pool and --fields must be at least 1")
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    setup = checkpoint_setup() if args.checkpoints else CheckpointSetup(reason="--no-checkpoints")
    say(f"checkpoints: {setup.describe()}")
    pool = event_pool(args.pool, args.cases, args.fields)
    databases: dict[str, Any] = {}
    profiles: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ketenpoort-logbench-") as tmp:
        for db in args.db:
            pg_url = None
            if db == "postgres":
                problem = postgres_problem(args.pg_url)
                if problem is not None:
                    say(f"postgres skipped: {problem}")
                    databases[db] = {"skipped": f"PostgreSQL not usable: {problem}"}
                    continue
                pg_url = bench_database_url(args.pg_url)
            databases[db] = await measure_database(
                args, db, Path(tmp), pg_url, pool, setup, profiles
            )
    if args.profile is not None and profiles:
        args.profile.write_text("\n".join(profiles), encoding="utf-8")
    result = report(args, databases, setup, pool)
    # Other work on the machine moves every figure here; this shows how much there was.
    result["environment"]["loadavg_1min"] = {
        "start": round(load_before[0], 2),
        "end": round(os.getloadavg()[0], 2),
    }
    return result


async def measure_database(
    args: argparse.Namespace,
    db: str,
    work: Path,
    pg_url: URL | None,
    pool: list[Any],
    setup: CheckpointSetup,
    profiles: list[str],
) -> dict[str, Any]:
    raw: dict[str, list[RawRun]] = {name: [] for name in BASELINES}
    points: dict[int, list[dict[str, Any]]] = {w: [] for w in args.writers}
    for round_no in range(1, args.rounds + 1):
        for name, per_commit in BASELINES.items():
            with fresh_engine(db, work, pg_url) as engine:
                run = raw_insert(engine, pool, rows_per_commit=per_commit, seconds=args.seconds)
            raw[name].append(run)
            say(
                f"{db} round {round_no}/{args.rounds} {name:20s} {run.rate:9.1f} rows/s "
                f"commit p50 {run.commit_ms_p50:.2f} ms"
            )
        for writers in args.writers:
            point = await measure_point(args, db, work, pg_url, pool, setup, writers, profiles)
            points[writers].append(point)
            say(
                f"{db} round {round_no}/{args.rounds} log, {writers:3d} writers "
                f"{point['run'].rate:9.1f} records/s p50 {point['run'].p50_ms:.2f} ms "
                f"p99 {point['run'].p99_ms:.2f} ms mean batch {_mean_batch(point['run']):.1f}"
            )
    baselines = {name: _raw_summary(runs) for name, runs in raw.items()}
    log = {str(w): _log_summary(points[w], baselines) for w in args.writers}
    out: dict[str, Any] = {"baselines": baselines, "log": log}
    if AIM_WRITERS in args.writers:
        measured = log[str(AIM_WRITERS)]["rate"]
        out["aim"] = {
            "records_per_s": AIMS[db],
            "writers": AIM_WRITERS,
            "measured": measured,
            "met": measured >= AIMS[db],
        }
    return out


async def measure_point(
    args: argparse.Namespace,
    db: str,
    work: Path,
    pg_url: URL | None,
    pool: list[Any],
    setup: CheckpointSetup,
    writers: int,
    profiles: list[str],
) -> dict[str, Any]:
    """One log run on an empty database, then the log is counted and verified."""
    with fresh_engine(db, work, pg_url) as engine:
        batches = BatchClock()
        log = AuditLog(engine, on_batch=batches, **setup.options)
        sampler = Sampler() if args.profile is not None else None
        await log.start()
        try:
            if sampler is not None:
                sampler.start()
            run = await run_appends(
                log, batches, pool, writers=writers, seconds=args.seconds, warmup_s=args.warmup
            )
        finally:
            await log.close()
            if sampler is not None:
                profiles.append(f"== {db}, {writers} writers\n{sampler.stop()}")
        in_log = log.count()
        started = time.perf_counter()
        verified = log.verify()
        verify_s = time.perf_counter() - started
        return {
            "run": run,
            "in_log": in_log,
            "verified": bool(verified.ok),
            "verify_rate": verified.records_checked / verify_s if verify_s > 0 else 0.0,
            "checkpoints": checkpoints_in(engine),
            "committed": (log.records_committed, log.batches_committed),
        }


def _mean_batch(run: AppendRun) -> float:
    return run.batch_records / run.batches if run.batches else 0.0


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _raw_summary(runs: list[RawRun]) -> dict[str, Any]:
    return {
        "rate": round(_median([r.rate for r in runs]), 1),
        "commit_ms_p50": round(_median([r.commit_ms_p50 for r in runs]), 3),
        "commit_ms_p99": round(_median([r.commit_ms_p99 for r in runs]), 3),
        "rate_per_round": [round(r.rate, 1) for r in runs],
    }


def _per_record_us(seconds: float | None, run: AppendRun) -> float | None:
    if seconds is None or not run.batch_records:
        return None
    return round(seconds / run.batch_records * 1e6, 1)


def _log_summary(points: list[dict[str, Any]], baselines: dict[str, Any]) -> dict[str, Any]:
    runs: list[AppendRun] = [p["run"] for p in points]
    rate = round(_median([r.rate for r in runs]), 1)

    def med(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(_median(known), 3) if known else None

    return {
        "rate": rate,
        "p50_ms": round(_median([r.p50_ms for r in runs]), 3),
        "p99_ms": round(_median([r.p99_ms for r in runs]), 3),
        "errors": sum(r.errors for r in runs),
        "first_error": next((r.first_error for r in runs if r.first_error), ""),
        "rate_per_round": [round(r.rate, 1) for r in runs],
        "mean_batch": round(_median([_mean_batch(r) for r in runs]), 2),
        "batch_p50": _median([r.batch_p50 for r in runs]),
        "batch_max": max(r.batch_max for r in runs),
        "ratios": {
            f"vs_{name}": round(rate / base["rate"], 3) if base["rate"] else None
            for name, base in baselines.items()
        },
        # Where an append's time goes, per committed record in the measured window.
        "per_record_us": {
            "event_loop_cpu": med([_per_record_us(r.loop_cpu_s, r) for r in runs]),
            "writer_cpu": med([_per_record_us(r.writer_cpu_s, r) for r in runs]),
            "writer_in_batch": med([_per_record_us(r.writer_batch_seconds, r) for r in runs]),
        },
        "writer_busy_share": med([r.writer_batch_seconds / r.seconds for r in runs]),
        "delayed_batch_share": med(
            [r.delayed_batches / r.batches if r.batches else 0.0 for r in runs]
        ),
        "records": {
            "appended_per_round": [r.appended for r in runs],
            "in_log_per_round": [p["in_log"] for p in points],
            "committed_per_round": [p["committed"][0] for p in points],
            "all_in_log": all(p["in_log"] == p["run"].appended for p in points),
            "verified": all(p["verified"] for p in points),
            "verify_records_per_s": round(_median([p["verify_rate"] for p in points])),
        },
        "checkpoints_per_round": [p["checkpoints"] for p in points],
    }


def report(
    args: argparse.Namespace,
    databases: dict[str, Any],
    setup: CheckpointSetup,
    pool: list[Any],
) -> dict[str, Any]:
    body_bytes = statistics.median(len(encode_event(e).encode()) for e in pool)
    return {
        "benchmark": "audit_append",
        "databases": databases,
        "writers": list(args.writers),
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "quick": args.quick,
        "event": {
            "kind": "disclosure",
            "fields": args.fields,
            "body_bytes": body_bytes,
            "cases": args.cases,
        },
        "checkpoints": setup.describe(),
        "aims": {"records_per_s": AIMS, "writers": AIM_WRITERS},
        "environment": {
            "python": platform.python_version(),
            "sqlalchemy": metadata.version("sqlalchemy"),
            "psycopg": metadata.version("psycopg"),
            "sqlite": _sqlite_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
    }


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(measure(args))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
