"""What re-wrapping the cases' data keys costs, on SQLite and PostgreSQL.

For each database it fills ``cases`` with ``--cases`` live cases (and one in twenty shredded)
whose data keys are wrapped under one key-encryption key, makes a second one current, and
measures, as medians over ``--rounds``:

- ``status_s``: ``rewrap_status`` (counts per KEK; two grouped scans, no unwrapping);
- ``data_keys_under_s``: ``data_keys_under`` for the old KEK (one scan);
- ``pending_s``: ``data_keys_pending`` toward the new KEK (one scan: what a gateway's re-wrap
  task pays each interval when there is nothing to do);
- ``rewrap_s`` and ``keys_per_s``: one ``Rewrapper.run`` that moves every live key to the
  new KEK, at each ``--batch`` size (the table is moved back between points);
- ``idle_pass_s``: a ``Rewrapper.run`` when nothing is left to do.

SQLite in WAL mode with ``synchronous=FULL`` in a temporary directory; PostgreSQL in a fresh
schema of the ``ketenpoort_bench`` database, dropped afterwards. JSON on stdout::

    python bench/rewrap_bench.py [--db sqlite,postgres] [--cases 100000] [--batch 100,500]
                                 [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from log_databases import bench_database_url, fresh_engine, postgres_problem
from sqlalchemy import Engine, insert

from gateway.crypto.envelope import DataKey, wrap_data_key
from gateway.crypto.keystore import KEK_BYTES, KeyEncryptionKey, Keystore, new_kek_id
from gateway.store.rewrap import Rewrapper, data_keys_pending, data_keys_under, rewrap_status
from gateway.store.tables import cases

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
INSERT_CHUNK = 5000
SHREDDED_EVERY = 20
QUICK = {"cases": 2000, "rounds": 1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default="sqlite,postgres")
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--batch", default="100,500")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pg-url", default=os.environ.get("KETENPOORT_BENCH_PG_URL", DEFAULT_PG_URL))
    p.add_argument("--quick", action="store_true", help="a few cases, one round (tests)")
    args = p.parse_args(argv)
    if args.quick:
        args.cases, args.rounds = QUICK["cases"], QUICK["rounds"]
    return args


def keystore(keks: list[KeyEncryptionKey], current: KeyEncryptionKey) -> Keystore:
    return Keystore(
        keks=keks,
        current_kek_id=current.kek_id,
        pseudonym_key=os.urandom(32),
        signing_key=Ed25519PrivateKey.generate(),
        hpke_private_key=X25519PrivateKey.generate(),
    )


def fill(engine: Engine, n: int, kek: KeyEncryptionKey) -> None:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        case_id = f"c_{i:09d}"
        shredded = i % SHREDDED_EVERY == 0
        key = b"" if shredded else wrap_data_key(DataKey.generate(), kek, case_id).to_bytes()
        rows.append({
            "case_id": case_id, "subject_pseudonym": f"p{i % 997}", "case_type": "code_rood",
            "phase": "registration", "registered_by": "police", "created_at": now,
            "wrapped_data_key": key, "shredded_at": now if shredded else None,
        })
        if len(rows) == INSERT_CHUNK:
            with engine.begin() as conn:
                conn.execute(insert(cases), rows)
            rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(cases), rows)


def timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def measure(engine: Engine, args: argparse.Namespace, batches: list[int]) -> dict[str, Any]:
    old = KeyEncryptionKey(new_kek_id(), os.urandom(KEK_BYTES))
    new = KeyEncryptionKey(new_kek_id(), os.urandom(KEK_BYTES))
    fill(engine, args.cases, old)
    live = args.cases - len(range(0, args.cases, SHREDDED_EVERY))
    towards = {old.kek_id: keystore([old, new], new), new.kek_id: keystore([old, new], old)}
    status_s, under_s, pending_s = [], [], []
    for _ in range(args.rounds):
        seconds, status = timed(lambda: rewrap_status(engine, towards[old.kek_id]))
        status_s.append(seconds)
        assert status.pending == live, status  # type: ignore[attr-defined]
        seconds, count = timed(lambda: data_keys_under(engine, old.kek_id))
        under_s.append(seconds)
        assert count == live
        seconds, count = timed(lambda: data_keys_pending(engine, new.kek_id))
        pending_s.append(seconds)
        assert count == live
    points: dict[str, Any] = {}
    source = old
    for batch in batches:
        runs, idle = [], []
        for _ in range(args.rounds):
            target = new if source is old else old
            rewrapper = Rewrapper(engine, towards[source.kek_id], batch_size=batch)
            seconds, report = timed(rewrapper.run)
            assert report.rewrapped == live, report  # type: ignore[attr-defined]
            runs.append(seconds)
            seconds, again = timed(rewrapper.run)
            assert again.rewrapped == 0  # type: ignore[attr-defined]
            idle.append(seconds)
            source = target
        median = statistics.median(runs)
        points[str(batch)] = {
            "rewrap_s": round(median, 3),
            "keys_per_s": round(live / median),
            "idle_pass_s": round(statistics.median(idle), 4),
        }
    return {
        "cases": args.cases,
        "live": live,
        "status_s": round(statistics.median(status_s), 4),
        "data_keys_under_s": round(statistics.median(under_s), 4),
        "pending_s": round(statistics.median(pending_s), 4),
        "batches": points,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kinds = [k for k in args.db.split(",") if k]
    batches = [int(b) for b in args.batch.split(",") if b]
    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "databases": {},
    }
    with tempfile.TemporaryDirectory() as work:
        for kind in kinds:
            pg_url = None
            if kind == "postgres":
                problem = postgres_problem(args.pg_url)
                if problem is not None:
                    print(f"postgres skipped: {problem}", file=sys.stderr)
                    continue
                pg_url = bench_database_url(args.pg_url)
            print(f"{kind}: {args.cases} cases", file=sys.stderr)
            with fresh_engine(kind, Path(work), pg_url) as engine:
                report["databases"][kind] = measure(engine, args, batches)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
