"""Verification finds every kind of tampering and names the first bad record."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, text

from gateway.store import AuditLog, VerifyResult, encode_event
from gateway.store.audit_event import chain_hash
from gateway.store.tables import audit_log
from tests.store.factories import event

RECORDS = 10


@pytest.fixture
def log(engine: Engine) -> AuditLog:
    log = AuditLog(engine, max_batch=4)
    log.append_sync([event(n) for n in range(RECORDS)])
    return log


def tamper(engine: Engine, *statements: str, **params: object) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def row(conn: Connection, seq: int) -> tuple[str, str, str]:
    body, prev_hash, record_hash = conn.execute(
        text("SELECT body, prev_hash, record_hash FROM audit_log WHERE seq = :s"), {"s": seq}
    ).one()
    return body, prev_hash, record_hash


def assert_bad(result: VerifyResult, seq: int, reason: str) -> None:
    assert not result.ok
    assert result.first_bad_seq == seq
    assert reason in result.reason


def test_untouched_log_verifies(log: AuditLog) -> None:
    assert log.verify() == VerifyResult(True, RECORDS, None, "ok")


def test_streams_in_small_chunks(log: AuditLog) -> None:
    assert log.verify(chunk_size=3).ok
    assert log.verify(chunk_size=1).records_checked == RECORDS
    with pytest.raises(ValueError):
        log.verify(chunk_size=0)


def test_empty_log_verifies(engine: Engine) -> None:
    assert AuditLog(engine).verify() == VerifyResult(True, 0, None, "ok")


def test_edited_body(log: AuditLog, engine: Engine) -> None:
    tamper(
        engine,
        'UPDATE audit_log SET body = replace(body, \'"status":"ok"\', \'"status":"refused"\') '
        "WHERE seq = 4",
    )
    assert_bad(log.verify(), 4, "record hash")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("partner_id", "someone-else"),
        ("case_id", "case-x"),
        ("subject_pseudonym", "ps-x"),
        ("kind", "triage"),
        ("purpose", "other"),
        ("status", "refused"),
    ],
)
def test_edited_indexed_column(log: AuditLog, engine: Engine, column: str, value: str) -> None:
    tamper(engine, f"UPDATE audit_log SET {column} = :v WHERE seq = 6", v=value)
    assert_bad(log.verify(), 6, "indexed column")


def test_edited_event_time_column(log: AuditLog, engine: Engine) -> None:
    other = log.list_records()[0].event.occurred_at
    with engine.begin() as conn:
        # Through the table definition, so the time is stored the way the backend keeps it.
        conn.execute(audit_log.update().where(audit_log.c.seq == 7).values(occurred_at=other))
    assert_bad(log.verify(), 7, "indexed column")


def test_edited_prev_hash(log: AuditLog, engine: Engine) -> None:
    tamper(engine, "UPDATE audit_log SET prev_hash = :h WHERE seq = 5", h="ab" * 32)
    assert_bad(log.verify(), 5, "previous-hash")


def test_deleted_middle_row(log: AuditLog, engine: Engine) -> None:
    tamper(engine, "DELETE FROM audit_log WHERE seq = 5")
    assert_bad(log.verify(), 5, "missing")


def test_swapped_rows(log: AuditLog, engine: Engine) -> None:
    with engine.begin() as conn:
        body3, _, hash3 = row(conn, 3)
        body7, _, hash7 = row(conn, 7)
        swap = "UPDATE audit_log SET body = :b, record_hash = :h WHERE seq = :s"
        conn.execute(text(swap), {"b": body7, "h": hash7, "s": 3})
        conn.execute(text(swap), {"b": body3, "h": hash3, "s": 7})
    assert_bad(log.verify(), 3, "record hash")


def test_swapped_rows_with_their_links(log: AuditLog, engine: Engine) -> None:
    with engine.begin() as conn:
        r3, r7 = row(conn, 3), row(conn, 7)
        swap = "UPDATE audit_log SET body = :b, prev_hash = :p, record_hash = :h WHERE seq = :s"
        conn.execute(text(swap), {"b": r7[0], "p": r7[1], "h": r7[2], "s": 3})
        conn.execute(text(swap), {"b": r3[0], "p": r3[1], "h": r3[2], "s": 7})
    assert_bad(log.verify(), 3, "previous-hash")


def test_deleted_last_row(log: AuditLog, engine: Engine) -> None:
    tamper(engine, f"DELETE FROM audit_log WHERE seq = {RECORDS}")
    assert_bad(log.verify(), RECORDS, "chain head")


def test_forged_row_appended_behind_the_head(log: AuditLog, engine: Engine) -> None:
    last = log.list_records(after_seq=RECORDS - 1)[0]
    forged = event(99, partner_id="politie")
    body = encode_event(forged)
    seq = RECORDS + 1
    record_hash = chain_hash(seq, bytes.fromhex(last.record_hash), body.encode()).hex()
    with engine.begin() as conn:
        conn.execute(
            audit_log.insert().values(
                seq=seq,
                recorded_at=last.recorded_at,
                occurred_at=forged.occurred_at,
                kind=forged.kind.value,
                partner_id=forged.partner_id,
                case_id=forged.case_id,
                subject_pseudonym=forged.subject_pseudonym,
                purpose=forged.purpose,
                status=forged.status,
                break_glass=forged.break_glass,
                body=body,
                prev_hash=last.record_hash,
                record_hash=record_hash,
            )
        )
    assert_bad(log.verify(), seq, "chain head")


def test_head_hash_mismatch(log: AuditLog, engine: Engine) -> None:
    tamper(engine, "UPDATE log_head SET last_hash = :h", h="cd" * 32)
    assert_bad(log.verify(), RECORDS, "chain head hash")


def test_missing_head_row(log: AuditLog, engine: Engine) -> None:
    tamper(engine, "DELETE FROM log_head")
    result = log.verify()
    assert not result.ok and "head" in result.reason


def test_unreadable_body_with_matching_hash(log: AuditLog, engine: Engine) -> None:
    # Rewriting a body and recomputing its hash breaks the next record's link instead.
    with engine.begin() as conn:
        _, prev, _ = row(conn, 2)
        forged = '{"not":"an event"}'
        new_hash = chain_hash(2, bytes.fromhex(prev), forged.encode()).hex()
        conn.execute(
            text("UPDATE audit_log SET body = :b, record_hash = :h WHERE seq = 2"),
            {"b": forged, "h": new_hash},
        )
    assert_bad(log.verify(), 2, "not a readable event")


def test_first_of_several_faults_is_named(log: AuditLog, engine: Engine) -> None:
    tamper(
        engine,
        "DELETE FROM audit_log WHERE seq = 8",
        "UPDATE audit_log SET partner_id = 'x' WHERE seq = 3",
    )
    assert_bad(log.verify(), 3, "indexed column")
