"""What an attacker with write access to the gateway's database does to its log, done well:
records wiped, rolled back or rewritten, and everything inside the database that would betray
it (chain, tiles, frontier, head row) recomputed, the checkpoints and cosignatures deleted."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Connection, text

from gateway.store.audit_event import GENESIS_HASH, chain_hash
from gateway.store.db import create_engine_for
from gateway.store.merkle import Frontier, Tile, leaf_hash
from tests.integration.harness import Harness

TAMPERS = ("wipe", "roll_back", "rewrite")
# How many records a roll-back keeps.
ROLL_BACK_KEEP = 2


def tamper(db_url: str, how: str) -> None:
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            if how == "wipe":
                conn.execute(text("DELETE FROM audit_log"))
            elif how == "roll_back":
                conn.execute(text("DELETE FROM audit_log WHERE seq > :k"), {"k": ROLL_BACK_KEEP})
            elif how == "rewrite":
                # Another trace id in the second record: nothing an index copies, so only
                # the hashes betray it, and those are recomputed below.
                body = conn.execute(text("SELECT body FROM audit_log WHERE seq = 2")).scalar_one()
                start = body.index('"trace_id":"') + len('"trace_id":"')
                forged = body[:start] + "0" * 32 + body[start + 32 :]
                assert forged != body
                conn.execute(
                    text("UPDATE audit_log SET body = :b WHERE seq = 2"), {"b": forged}
                )
            else:
                raise ValueError(how)
            _recompute(conn)
    finally:
        engine.dispose()


def _recompute(conn: Connection) -> None:
    conn.execute(text("DELETE FROM log_checkpoints"))
    conn.execute(text("DELETE FROM log_cosignatures"))
    conn.execute(text("DELETE FROM merkle_tiles"))
    rows = conn.execute(text("SELECT seq, body FROM audit_log ORDER BY seq")).all()
    prev = bytes.fromhex(GENESIS_HASH)
    frontier = Frontier()
    tiles: list[Tile] = []
    for seq, body in rows:
        digest = chain_hash(seq, prev, body.encode())
        conn.execute(
            text("UPDATE audit_log SET prev_hash = :p, record_hash = :r WHERE seq = :s"),
            {"p": prev.hex(), "r": digest.hex(), "s": seq},
        )
        frontier.append(leaf_hash(body.encode()), tiles)
        prev = digest
    for tile in tiles:
        conn.execute(
            text("INSERT INTO merkle_tiles (level, idx, hash) VALUES (:l, :i, :h)"),
            {"l": tile.level, "i": tile.idx, "h": tile.hash},
        )
    conn.execute(
        text(
            "UPDATE log_head SET last_seq = :n, last_hash = :h, frontier = :f, "
            "checkpoint_size = 0, checkpoint_at = NULL"
        ),
        {"n": len(rows), "h": prev.hex(), "f": frontier.encode()},
    )


def remove_outside_evidence(checkpoint_dir: Path) -> None:
    """The attacker also holds the gateway's host: its checkpoint files and alarm go too."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


def config_file(harness: Harness, path: Path) -> Path:
    """The gateway's configuration as an operator keeps it: `audit verify --config` is the
    command with no further argument."""
    config = harness.gateway.config
    path.write_text(
        f"database_url = '{config.database_url}'\n"
        f"keys_dir = '{config.keys_dir}'\n"
        f"data_dir = '{config.data_dir}'\n"
        f"registry_dir = '{config.registry_path}'\n"
        f"checkpoint_dir = '{config.checkpoints_path}'\n"
        f"policy_dir = '{config.policy_dir}'\n",
        encoding="utf-8",
    )
    return path
