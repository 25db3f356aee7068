"""Re-wrapping data keys under the current key-encryption key, in the store: every case ends
under the newest key and still decrypts, runs resume, replicas and shredding racing with a
re-wrap lose no key and resurrect none, and a stored key that cannot be re-wrapped is
reported and passed by.

Runs on SQLite and PostgreSQL, with real key directories and real case-file entries.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update

from gateway.crypto import Keystore, rotate_kek
from gateway.crypto.devkeys import init_dev_keys
from gateway.crypto.envelope import (
    DataKey,
    KekLookup,
    WrappedKey,
    field_aad,
    unwrap_data_key,
    wrap_data_key,
)
from gateway.crypto.keystore import KeyEncryptionKey
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.live_keystore import LiveKeystore
from gateway.store import CaseRepository, EntryRow, create_engine_for
from gateway.store.retention import CaseShredder, DueCase
from gateway.store.rewrap import (
    BatchOutcome,
    FailureReason,
    Rewrapper,
    data_keys_pending,
    data_keys_under,
    rewrap_status,
)
from gateway.store.tables import cases as cases_table
from tests.store.factories import T0
from tests.store.test_store_retention import record_of

FIELDS = ("subject.name", "case.reason", "case.notes")
CLOSED_AT = T0 - timedelta(days=800)
SHRED_AT = T0


@dataclass
class Keys:
    """A key directory of the test's own (one partner: the gateway's keys are what count)."""

    root: Path

    def open(self) -> Keystore:
        return Keystore.open(self.root)

    def rotate(self) -> str:
        return rotate_kek(self.root)

    def retire(self, kek_id: str) -> None:
        GatewayKeyPaths.under(self.root).kek_file(kek_id).unlink()


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    root = tmp_path / "keys"
    init_dev_keys(root, ["police"])
    return Keys(root)


def register(
    cases: CaseRepository, kek: KeyEncryptionKey, n: int, prefix: str = "c"
) -> dict[str, dict[str, str]]:
    """``n`` closed cases whose fields are encrypted under their own data key, as the case
    file writes them; returns what each field says, per case id."""
    written: dict[str, dict[str, str]] = {}
    for i in range(n):
        case_id = f"{prefix}{i:03d}"
        data_key = DataKey.generate()
        values = {field: f"{field} of {case_id}" for field in FIELDS}
        entries = [
            EntryRow(
                entry_id=f"{case_id}-{field}",
                case_id=case_id,
                field=field,
                ciphertext=data_key.encrypt(
                    text.encode(), field_aad(case_id, f"{case_id}-{field}", field)
                ),
                created_by="police",
                created_at=T0 - timedelta(days=900),
            )
            for field, text in values.items()
        ]
        cases.create_case(
            case_id=case_id,
            subject_pseudonym=f"ps-{case_id}",
            case_type="code_rood",
            phase="registration",
            registered_by="police",
            wrapped_data_key=wrap_data_key(data_key, kek, case_id).to_bytes(),
            entries=entries,
            invitees=[("zvh", "police")],
            now=T0 - timedelta(days=900),
        )
        cases.set_phase(case_id, "closure", closed_at=CLOSED_AT)
        written[case_id] = values
    return written


def read_case(cases: CaseRepository, keystore: KekLookup, case_id: str) -> dict[str, str]:
    """Every field of the case, decrypted with its data key unwrapped by ``keystore``."""
    snap = cases.snapshot(case_id)
    assert snap is not None
    data_key = unwrap_data_key(
        WrappedKey.from_bytes(snap.case.wrapped_data_key), keystore, case_id
    )
    return {
        e.field: data_key.decrypt(e.ciphertext, field_aad(case_id, e.entry_id, e.field)).decode()
        for e in snap.entries
    }


def stored_key(engine: Engine, case_id: str) -> bytes:
    with engine.begin() as conn:
        return bytes(
            conn.execute(
                select(cases_table.c.wrapped_data_key).where(cases_table.c.case_id == case_id)
            ).scalar_one()
        )


def shred(engine: Engine, case_id: str) -> None:
    shredder = CaseShredder(engine)
    listed = shredder.due(closed_by=CLOSED_AT, closing_phase="closure", limit=1000)
    due = next(c for c in listed if c.case_id == case_id)
    assert shredder.shred(due, SHRED_AT, record_of) is not None


def test_after_rotation_every_case_is_rewrapped_still_decrypts_and_survives_retiring(
    cases: CaseRepository, engine: Engine, keys: Keys
) -> None:
    first = keys.open().current_kek
    written = register(cases, first, 7)
    shred(engine, "c003")
    second = keys.rotate()
    keystore = keys.open()
    before = rewrap_status(engine, keystore)
    assert (before.current_kek_id, dict(before.by_kek), before.pending) == (
        second, {first.kek_id: 6}, 6
    )

    batches: list[BatchOutcome] = []
    report = Rewrapper(engine, keystore, batch_size=4).run(on_batch=batches.append)

    assert (report.rewrapped, report.passed_over, report.failed) == (6, 0, 0)
    assert [b.rewrapped for b in batches] == [4, 2]
    assert (report.target_kek_id, report.passes, report.stopped) == (second, 1, False)
    after = rewrap_status(engine, keystore)
    assert (dict(after.by_kek), after.pending, after.total) == ({second: 6}, 0, 6)
    assert data_keys_under(engine, first.kek_id) == 0
    assert data_keys_under(engine, second) == 6
    assert data_keys_pending(engine, second) == 0
    assert stored_key(engine, "c003") == b""
    # Retire the old key: its file goes, and every live case still reads as written.
    keys.retire(first.kek_id)
    retired = keys.open()
    assert retired.kek_ids == (second,)
    for case_id, values in written.items():
        if case_id != "c003":
            assert read_case(cases, retired, case_id) == values
    # Nothing is left to do, and a second run changes nothing.
    again = Rewrapper(engine, retired).run()
    assert (again.rewrapped, again.failed, again.batches) == (0, 0, 1)


def test_data_keys_under_counts_live_keys_of_one_kek(
    cases: CaseRepository, engine: Engine, keys: Keys
) -> None:
    first = keys.open().current_kek
    register(cases, first, 3, prefix="a")
    keys.rotate()
    second = keys.open().current_kek
    register(cases, second, 2, prefix="b")
    shred(engine, "a001")
    shred(engine, "b000")
    assert data_keys_under(engine, first.kek_id) == 2
    assert data_keys_under(engine, second.kek_id) == 1
    assert data_keys_under(engine, "kek_0000000000000000") == 0
    assert data_keys_pending(engine, second.kek_id) == 2
    status = rewrap_status(engine, keys.open())
    assert dict(status.by_kek) == {first.kek_id: 2, second.kek_id: 1}
    assert (status.under_current, status.pending, status.unknown_kek_ids) == (1, 2, ())


def test_an_interrupted_run_resumes_where_it_stopped_and_finishes(
    cases: CaseRepository, engine: Engine, keys: Keys
) -> None:
    written = register(cases, keys.open().current_kek, 7)
    keys.rotate()
    seen: list[BatchOutcome] = []
    first = Rewrapper(engine, keys.open(), batch_size=2).run(
        should_stop=lambda: bool(seen), on_batch=seen.append
    )
    assert (first.stopped, first.rewrapped, first.batches) == (True, 2, 1)
    assert rewrap_status(engine, keys.open()).pending == 5

    # A new process: nothing but the cases tells it what is left.
    rest = Rewrapper(engine, keys.open(), batch_size=2).run()
    assert (rest.stopped, rest.rewrapped, rest.passed_over) == (False, 5, 0)
    keystore = keys.open()
    assert rewrap_status(engine, keystore).pending == 0
    for case_id, values in written.items():
        assert read_case(cases, keystore, case_id) == values


class ShredsOnFirstLookup:
    """The real keystore; the first time a re-wrap looks a key up (after it listed its batch,
    before it writes) the case ``victim`` is shredded by the real retention code."""

    def __init__(self, keystore: Keystore, engine: Engine, victim: str) -> None:
        self._keystore = keystore
        self._engine = engine
        self._victim: str | None = victim

    @property
    def current_kek(self) -> KeyEncryptionKey:
        return self._keystore.current_kek

    def kek(self, kek_id: str) -> KeyEncryptionKey:
        if self._victim is not None:
            victim, self._victim = self._victim, None
            shred(self._engine, victim)
        return self._keystore.kek(kek_id)


def test_a_case_shredded_during_the_rewrap_stays_shredded(
    cases: CaseRepository, engine: Engine, keys: Keys
) -> None:
    register(cases, keys.open().current_kek, 4)
    keys.rotate()
    keystore = keys.open()
    report = Rewrapper(engine, ShredsOnFirstLookup(keystore, engine, "c002")).run()

    assert (report.rewrapped, report.passed_over) == (3, 1)
    assert stored_key(engine, "c002") == b""
    row = cases.get_case("c002")
    assert row is not None and row.shredded_at is not None
    assert rewrap_status(engine, keystore).total == 3


class RunsAnotherReplicaFirst:
    """The real keystore; after the re-wrap listed its first batch, another replica (its own
    engine and keystore) re-wraps everything and commits before this one writes."""

    def __init__(self, keystore: Keystore, other: Rewrapper) -> None:
        self._keystore = keystore
        self._other: Rewrapper | None = other

    @property
    def current_kek(self) -> KeyEncryptionKey:
        return self._keystore.current_kek

    def kek(self, kek_id: str) -> KeyEncryptionKey:
        if self._other is not None:
            other, self._other = self._other, None
            assert other.run().rewrapped == 5
        return self._keystore.kek(kek_id)


def test_a_case_rewrapped_by_another_replica_meanwhile_keeps_that_wrap(
    cases: CaseRepository, engine: Engine, keys: Keys, db_url: str
) -> None:
    written = register(cases, keys.open().current_kek, 5)
    keys.rotate()
    other_engine = create_engine_for(db_url)
    try:
        other = Rewrapper(other_engine, keys.open())
        report = Rewrapper(engine, RunsAnotherReplicaFirst(keys.open(), other)).run()
    finally:
        other_engine.dispose()
    assert (report.rewrapped, report.passed_over) == (0, 5)
    keystore = keys.open()
    for case_id, values in written.items():
        assert read_case(cases, keystore, case_id) == values
    assert rewrap_status(engine, keystore).pending == 0


def test_concurrent_rewrappers_and_shredding_lose_no_key(
    cases: CaseRepository, engine: Engine, keys: Keys, db_url: str
) -> None:
    written = register(cases, keys.open().current_kek, 60)
    doomed = [f"c{i:03d}" for i in range(0, 60, 7)]
    keys.rotate()
    replicas = 3
    start = threading.Barrier(replicas + 1)
    reports = []
    errors: list[BaseException] = []

    def rewrap() -> None:
        replica_engine = create_engine_for(db_url)
        try:
            rewrapper = Rewrapper(replica_engine, keys.open(), batch_size=5)
            start.wait()
            reports.append(rewrapper.run())
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            replica_engine.dispose()

    def shred_some() -> None:
        shred_engine = create_engine_for(db_url)
        try:
            start.wait()
            for case_id in doomed:
                shred(shred_engine, case_id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            shred_engine.dispose()

    threads = [threading.Thread(target=rewrap) for _ in range(replicas)]
    threads.append(threading.Thread(target=shred_some))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors

    live = [c for c in written if c not in doomed]
    # Each case was re-wrapped at most once, by one replica (a doomed one maybe before it was
    # shredded); the replicas that lost a race passed it over.
    rewrapped = sum(r.rewrapped for r in reports)
    assert len(live) <= rewrapped <= len(written)
    keystore = keys.open()
    status = rewrap_status(engine, keystore)
    assert (dict(status.by_kek), status.pending) == ({keystore.current_kek.kek_id: len(live)}, 0)
    for case_id in doomed:
        assert stored_key(engine, case_id) == b""
    for case_id in live:
        assert read_case(cases, keystore, case_id) == written[case_id]


def test_a_rotation_during_the_rewrap_ends_with_every_key_under_the_newest(
    cases: CaseRepository, engine: Engine, keys: Keys
) -> None:
    written = register(cases, keys.open().current_kek, 6)
    second = keys.rotate()
    # Sees the directory as it is at every look, as a serving gateway does after recheck_s.
    live = LiveKeystore(keys.open(), recheck_s=0)
    rotated: list[str] = []

    def rotate_after_first_batch(batch: BatchOutcome) -> None:
        if not rotated:
            rotated.append(keys.rotate())

    report = Rewrapper(engine, live, batch_size=2).run(on_batch=rotate_after_first_batch)

    third = rotated[0]
    assert (report.target_kek_id, report.passes, report.unsettled) == (third, 2, False)
    keystore = keys.open()
    status = rewrap_status(engine, keystore)
    assert (dict(status.by_kek), status.pending) == ({third: 6}, 0)
    # Neither older key wraps anything: both can go, and every case still reads.
    assert second in keystore.kek_ids
    for kek_id in set(keystore.kek_ids) - {third}:
        keys.retire(kek_id)
    only_newest = keys.open()
    assert only_newest.kek_ids == (third,)
    for case_id, values in written.items():
        assert read_case(cases, only_newest, case_id) == values


def test_keys_that_cannot_be_rewrapped_are_reported_and_passed_by(
    cases: CaseRepository, engine: Engine, keys: Keys
) -> None:
    first = keys.open().current_kek
    written = register(cases, first, 3, prefix="a")
    second_id = keys.rotate()
    second = keys.open().current_kek
    written |= register(cases, second, 1, prefix="d")
    keys.rotate()
    written |= register(cases, keys.open().current_kek, 1, prefix="z")
    # a000: damaged in storage; a001: another case's wrap (bound to its case id: does not
    # open here); d000: under the second key, which is removed before the run.
    with engine.begin() as conn:
        conn.execute(
            update(cases_table)
            .where(cases_table.c.case_id == "a000")
            .values(wrapped_data_key=b"\x01\xff broken")
        )
        conn.execute(
            update(cases_table)
            .where(cases_table.c.case_id == "a001")
            .values(wrapped_data_key=stored_key(engine, "a002"))
        )
    keys.retire(second_id)
    keystore = keys.open()

    report = Rewrapper(engine, keystore, batch_size=2).run()

    assert (report.rewrapped, report.failed, report.stopped) == (1, 3, False)
    assert report.failures_by_reason == {
        FailureReason.MALFORMED: 1,
        FailureReason.DOES_NOT_OPEN: 1,
        FailureReason.UNKNOWN_KEK: 1,
    }
    status = rewrap_status(engine, keystore)
    assert status.unknown_kek_ids == (second_id,)
    assert (status.unreadable, status.pending) == (1, 3)
    assert read_case(cases, keystore, "a002") == written["a002"]
    assert read_case(cases, keystore, "z000") == written["z000"]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_rewrap_waiting_on_a_shredding_transaction_passes_the_case_over(
    cases: CaseRepository, engine: Engine, keys: Keys
) -> None:
    """On PostgreSQL the compare-and-set that waits for another writer's row lock checks its
    condition again against what that writer committed. (SQLite has one writer at a time.)"""
    register(cases, keys.open().current_kek, 3)
    keys.rotate()
    holder = engine.connect()
    holder.begin()
    holder_pid = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
    # The claim retention makes, held uncommitted.
    holder.execute(
        update(cases_table)
        .where(cases_table.c.case_id == "c001", cases_table.c.shredded_at.is_(None))
        .values(wrapped_data_key=b"", shredded_at=SHRED_AT)
    )
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(Rewrapper(engine, keys.open()).run())
    )
    worker.start()
    try:
        assert _waits_for_lock_held_by(engine, holder_pid), "the re-wrap never waited"
    finally:
        holder.commit()
        holder.close()
    worker.join()
    report = result[0]
    assert (report.rewrapped, report.passed_over) == (2, 1)  # type: ignore[attr-defined]
    assert stored_key(engine, "c001") == b""


def _waits_for_lock_held_by(engine: Engine, pid: int) -> bool:
    deadline = time.monotonic() + 10
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE :pid = ANY(pg_blocking_pids(pid))"
                ),
                {"pid": pid},
            ).scalar_one()
            conn.rollback()
            if waiting:
                return True
            time.sleep(0.01)
    return False


def test_a_due_case_listing_is_unchanged_by_rewrapping(
    cases: CaseRepository, engine: Engine, keys: Keys
) -> None:
    """Retention lists by closure; a re-wrap changes no column it pins."""
    register(cases, keys.open().current_kek, 2)
    shredder = CaseShredder(engine)
    listed = shredder.due(closed_by=CLOSED_AT, closing_phase="closure")
    keys.rotate()
    Rewrapper(engine, keys.open()).run()
    assert shredder.due(closed_by=CLOSED_AT, closing_phase="closure") == listed
    assert all(isinstance(c, DueCase) for c in listed)
    assert shredder.shred(listed[0], SHRED_AT, record_of) is not None
