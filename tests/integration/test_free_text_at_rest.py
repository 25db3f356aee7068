"""Free text at rest, over real gRPC on SQLite and PostgreSQL: hold reasons, a break-glass
justification and a review comment are in no database row in clear, and the log keeps no
plain SHA-256 of them (a guess could be confirmed with it), only a keyed digest. The product's
own paths still show them, and they go with the case when its retention ends."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from gateway.broker.casefile import JUSTIFICATION_FIELD
from gateway.broker.free_texts import FreeTexts, SealedText
from gateway.broker.log_events import RecordKind
from gateway.core import CompiledPolicy
from gateway.crypto.free_text import KeyScope, TextClass, TextKind, text_key_id
from gateway.store.holds import HoldStore
from gateway.store.tables import case_entries, metadata, text_keys
from gateway.store.text_keys import TextKeyStore
from tests.integration.access_helpers import hold_reason, place_hold
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import accept, register

CASE_REASON = "Lopend onderzoek naar de broer; inzage schaadt het onderzoek (PV 2026-114)."
ALL_CASES_REASON = "Getuigenbescherming tot de zitting; niets over deze persoon vrijgeven."
JUSTIFICATION = "Dreiging vannacht: vader heeft mes getoond, kinderen (4 en 7) thuis."
COMMENT = "Terecht: politiemelding 77-Q bevestigt de acute dreiging die nacht."
TEXTS = (CASE_REASON, ALL_CASES_REASON, JUSTIFICATION, COMMENT)
DAYS = 730  # the default retention_days_after_closure


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC) - timedelta(days=3 * 365))


@pytest.fixture
async def harness(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy, clock: Clock
) -> AsyncIterator[Harness]:
    async with running_harness(db_url, dev_keys, shipped_policy, clock=clock) as running:
        yield running


def raw_rows(engine: Engine) -> list[tuple[str, object]]:
    """Every value of every row of every table, as the database hands it out."""
    values: list[tuple[str, object]] = []
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).all():
                values.extend((table.name, value) for value in row)
    return values


def in_clear_anywhere(engine: Engine, needle: str) -> list[str]:
    """The tables holding ``needle`` or its plain SHA-256 (hex), as text or as bytes."""
    found = []
    plain_digest = hashlib.sha256(needle.encode()).hexdigest()
    for table, value in raw_rows(engine):
        blob = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        if needle.encode() in blob or plain_digest.encode() in blob:
            found.append(table)
    return found


def texts_of(harness: Harness) -> FreeTexts:
    keystore = harness.gateway.keystore
    assert keystore is not None
    return FreeTexts(TextKeyStore(harness.gateway.engine), keystore, lambda: datetime.now(UTC))


def justification_of(harness: Harness, case_id: str) -> str | None:
    """The break-glass justification, opened with the case's privacy-officer text key."""
    with harness.gateway.engine.begin() as conn:
        entry = conn.execute(
            select(case_entries.c.entry_id, case_entries.c.ciphertext).where(
                case_entries.c.case_id == case_id, case_entries.c.field == JUSTIFICATION_FIELD
            )
        ).one()
    key_id = text_key_id(TextClass.PRIVACY_OFFICER, KeyScope.CASE, case_id)
    sealed = SealedText(key_id, bytes(entry.ciphertext))
    return texts_of(harness).open(sealed, kind=TextKind.JUSTIFICATION, row_id=entry.entry_id)


async def test_free_texts_are_encrypted_readable_in_the_product_and_shredded_with_the_case(
    harness: Harness, clock: Clock
) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    officer = harness.client("zvh", role="privacy_officer", user_ref="fg-1")
    responder = harness.client("veilig-thuis")
    case_id = await register(police, ("zvh", "veilig-thuis"))
    acute = await responder.request_disclosure(
        case_id, "acute_safety", "registration", justification=JUSTIFICATION
    )
    until = (clock.now + timedelta(days=4 * 365)).date().isoformat()
    case_hold = await place_hold(
        harness, "police", case_id=case_id, reason=CASE_REASON, until=until
    )
    all_hold = await place_hold(harness, "police", reason=ALL_CASES_REASON, until=until)
    await officer.close_break_glass_review(acute.response.log_seq, "justified", COMMENT)

    # 1. No row of any table holds a text, or a plain hash of one.
    engine = harness.gateway.engine
    for text in TEXTS:
        assert in_clear_anywhere(engine, text) == [], text
    log = harness.gateway.log
    [placed_case, placed_all] = log.list_records(kinds=[RecordKind.HOLD_PLACED])
    [review] = log.list_records(kinds=[RecordKind.BREAK_GLASS_REVIEW])
    texts = texts_of(harness)
    assert dict(placed_case.event.detail)["reason_hmac"] == texts.digest(
        TextKind.HOLD_REASON, CASE_REASON
    )
    assert dict(placed_all.event.detail)["reason_hmac"] == texts.digest(
        TextKind.HOLD_REASON, ALL_CASES_REASON
    )
    assert dict(review.event.detail)["comment_hmac"] == texts.digest(
        TextKind.REVIEW_COMMENT, COMMENT
    )

    # 2. The product's own paths read them.
    [done] = (await officer.list_break_glass_reviews(status="closed")).reviews
    assert done.comment == COMMENT
    holds = HoldStore(engine)
    stored_case_hold, stored_all_hold = holds.get(case_hold.hold_id), holds.get(all_hold.hold_id)
    assert stored_case_hold is not None and stored_all_hold is not None
    assert hold_reason(harness, stored_case_hold) == CASE_REASON
    assert hold_reason(harness, stored_all_hold) == ALL_CASES_REASON
    assert justification_of(harness, case_id) == JUSTIFICATION
    # Each class has keys of its own: the hold on every case one of the hold's own.
    with engine.begin() as conn:
        keys = dict(conn.execute(select(text_keys.c.key_id, text_keys.c.case_id)).all())
    assert keys == {
        f"privacy_officer/case/{case_id}": case_id,
        f"hold_reason/case/{case_id}": case_id,
        f"hold_reason/hold/{all_hold.hold_id}": "",
    }

    # 3. The case's retention ends: its texts go with it; the hold on every case stays.
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "closure")
    clock.now += timedelta(days=DAYS + 1)
    retention = harness.gateway.retention
    assert retention is not None
    report = await retention.run_once()
    assert report is not None and [c.case_id for c in report.cases] == [case_id]
    with engine.begin() as conn:
        left = dict(conn.execute(select(text_keys.c.key_id, text_keys.c.wrapped_data_key)).all())
    assert left[f"privacy_officer/case/{case_id}"] == b""
    assert left[f"hold_reason/case/{case_id}"] == b""
    assert left[f"hold_reason/hold/{all_hold.hold_id}"] != b""
    assert hold_reason(harness, stored_case_hold) is None
    assert hold_reason(harness, stored_all_hold) == ALL_CASES_REASON
    [after] = (await officer.list_break_glass_reviews(status="closed")).reviews
    assert after.verdict == "justified" and after.comment == ""
    assert log.verify().ok
    for client in (police, director, officer, responder):
        await client.close()
