"""Bytes per disclosure record on disk, on SQLite and PostgreSQL, and in a backup archive.

Appends ``--records`` disclosure records (``log_events.py``: the events the gateway writes
for one RequestDisclosure, ``--fields`` field decisions each) through the gateway's own log
writer, with a checkpoint signer, into an empty database, and measures what the database grew
by: on SQLite the database file after a WAL checkpoint (pages, free pages included), on
PostgreSQL ``pg_total_relation_size`` (heap, TOAST and indexes) of every table of the
schema, after VACUUM. The growth is divided by the records: tiles, checkpoints and the log's
indexes are part of each record's cost. It then dumps the database as ``ketenpoort backup``
does and reports the compressed dump's bytes per record too.

    python bench/record_size_bench.py [--records 20000] [--fields 12 50]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--json]

Sizes, not times: nothing here depends on the machine's speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from log_databases import bench_database_url, fresh_engine, postgres_problem
from log_events import disclosure_event, fields_of
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from gateway.ops.db_dump import dump_database
from gateway.store.audit_log import AuditLog
from gateway.store.audit_writer import EncodedEvent
from gateway.store.checkpoints import CheckpointSigner

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_BATCH = 500


def _sqlite_bytes(engine: Engine) -> int:
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
    return int(pages) * int(size)


def _pg_bytes(engine: Engine) -> int:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM"))
        total = conn.execute(
            text(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = current_schema()"
            )
        ).scalar_one()
    return int(total)


def measure(kind: str, records: int, fields: int, work: Path, pg: URL | None) -> dict[str, Any]:
    entries = fields_of(fields)
    with fresh_engine(kind, work, pg) as engine:
        size_of = _sqlite_bytes if kind == "sqlite" else _pg_bytes
        before = size_of(engine)
        log = AuditLog(
            engine,
            max_batch=_BATCH,
            signer=CheckpointSigner(Ed25519PrivateKey.generate(), "bench.local/log"),
        )
        body_bytes = 0
        for start in range(0, records, _BATCH):
            events = [
                disclosure_event(n, fields=entries)
                for n in range(start, min(records, start + _BATCH))
            ]
            body_bytes += sum(len(EncodedEvent.of(e).body_utf8) for e in events)
            log.append_sync(events)
        after = size_of(engine)
        dump_dir = Path(tempfile.mkdtemp(dir=work))
        dump = dump_database(engine, dump_dir)
        dump_bytes = sum(p.stat().st_size for p in dump.files.values())
    return {
        "database": kind,
        "records": records,
        "fields": fields,
        "bytes_per_record": round((after - before) / records),
        "backup_bytes_per_record": round(dump_bytes / records),
        "body_bytes_per_record": round(body_bytes / records),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--fields", type=int, nargs="+", default=[12, 50])
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    pg: URL | None = None
    if not args.no_postgres:
        problem = postgres_problem(args.pg_url)
        if problem:
            print(f"PostgreSQL left out: {problem}", file=sys.stderr)
        else:
            pg = bench_database_url(args.pg_url)
    kinds = ["sqlite"] + (["postgres"] if pg is not None else [])
    with tempfile.TemporaryDirectory(prefix="ketenpoort-record-size-") as tmp:
        for fields in args.fields:
            for kind in kinds:
                row = measure(kind, args.records, fields, Path(tmp), pg)
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print(
                        f"{kind:9} fields={fields:3} records={row['records']}: "
                        f"{row['bytes_per_record']} bytes/record in the database, "
                        f"{row['backup_bytes_per_record']} in a backup, "
                        f"body {row['body_bytes_per_record']}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
