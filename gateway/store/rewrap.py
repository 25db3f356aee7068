"""Re-wrapping the cases' data keys under the current key-encryption key (KEK).

The free-text keys (``text_keys``: hold reasons, justifications, review comments; see
``gateway.crypto.free_text``) are stored in the same wrapped format and re-wrapped the same
way, table after table in each pass; everything below about a case holds for a text key,
with its key id for the case id and emptied-when-shredded alike.

A case's data key is stored wrapped under a KEK, and the stored bytes name that KEK in clear
(``gateway.crypto.envelope.wrapped_key_header``). After a rotation the keys wrapped under
older KEKs are unwrapped and wrapped again under the current one, so that the old KEK can be
retired: once its file is gone, every copy of a key it wrapped (old database pages, WAL
archives, backups) stays closed. The data key itself does not change, so the case's
encrypted entries are not touched.

In batches, by case id
    A batch lists the next live cases (not shredded, key not empty) whose stored key is not
    in the current format under the target KEK, in case-id order after a cursor; unwraps
    and wraps them outside any transaction; then writes them in one transaction, each with
    compare-and-set: ``UPDATE cases SET wrapped_data_key = <new> WHERE case_id = ? AND
    wrapped_data_key = <old, as listed> AND shredded_at IS NULL``. A row that changed in
    between is passed over, not overwritten:

    - shredded meanwhile: its key is empty now and stays empty (never resurrected);
    - re-wrapped meanwhile by another replica: its wrap stands, the same data key under a
      KEK at least as new as ours;
    - on PostgreSQL an UPDATE that waits for another transaction's lock on the row checks
      the condition again against what that transaction committed, so the same holds for
      writers racing at the same instant. SQLite runs one writer at a time.

    Replicas take row locks in the same order (by case id, one batch at a time) and hold no
    other lock while they do, so re-wrappers cannot deadlock with each other, with shredding
    (which locks one case row after the log head) or with writers that add to a case.

Resumable by construction
    Nothing but the cases themselves records progress: a run that stops (or a gateway that
    dies) leaves every case either as it was or re-wrapped, and the next run lists what is
    still not under the current KEK. Within a run the cursor moves past every case listed,
    also one that failed, so a run ends.

Rotation during a run
    A run reads the current KEK before each batch; when it changed, the pass ends and a new
    one starts from the first case toward the new key. Cases re-wrapped under the older
    target so far are listed again by it.

A key that cannot be re-wrapped
    A stored key that does not parse, names a KEK that is not loaded, or does not open under
    the KEK it names is left as it is and reported (``RewrapFailure``: case id, KEK id, reason,
    never key material); the run goes on with the next case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Engine,
    LargeBinary,
    Table,
    and_,
    bindparam,
    func,
    select,
    update,
)

from gateway.crypto.envelope import (
    WRAP_FORMAT_VERSION,
    DataKey,
    KekLookup,
    WrappedKey,
    unwrap_data_key,
    unwrap_text_key,
    wrap_data_key,
    wrap_text_key,
    wrapped_key_header,
)
from gateway.crypto.errors import EnvelopeError, KeystoreError
from gateway.crypto.keystore import KeyEncryptionKey
from gateway.store.db import for_writing, translate_errors
from gateway.store.tables import cases, text_keys

__all__ = [
    "DEFAULT_BATCH",
    "MAX_PASSES",
    "BatchOutcome",
    "FailureReason",
    "KekSource",
    "RewrapFailure",
    "RewrapReport",
    "RewrapStatus",
    "Rewrapper",
    "data_keys_pending",
    "data_keys_under",
    "rewrap_status",
]

DEFAULT_BATCH = 100
# Passes one run makes when the current KEK keeps changing under it; the next run goes on.
MAX_PASSES = 5



@dataclass(frozen=True)
class _KeyTable:
    """A table of wrapped data keys: its rows' id, their stored key, which rows are live,
    and how a key of that table is wrapped (bound to the row's id under its own label)."""

    table: Table
    wrap: Callable[[DataKey, KeyEncryptionKey, str], WrappedKey]
    unwrap: Callable[[WrappedKey, KekLookup, str], DataKey]
    id_name: str

    @property
    def id(self) -> Any:
        return self.table.c[self.id_name]

    @property
    def key(self) -> Any:
        return self.table.c.wrapped_data_key

    @property
    def live(self) -> ColumnElement[bool]:
        return and_(self.table.c.shredded_at.is_(None), func.length(self.key) > 0)

    def bytes_at(self, start: int, length: int) -> Any:
        # substr counts bytes on a BLOB (SQLite) and on a bytea (PostgreSQL).
        return func.substr(self.key, start, length, type_=LargeBinary)


_CASES = _KeyTable(cases, wrap_data_key, unwrap_data_key, "case_id")
_TEXT_KEYS = _KeyTable(text_keys, wrap_text_key, unwrap_text_key, "key_id")
_TABLES = (_CASES, _TEXT_KEYS)


class KekSource(KekLookup, Protocol):
    """The KEKs a re-wrap works with: a ``Keystore``, or a ``LiveKeystore`` that follows
    rotation while the gateway serves."""

    @property
    def current_kek(self) -> KeyEncryptionKey: ...


@translate_errors("re-wrap: counting data keys under a key-encryption key")
def data_keys_under(engine: Engine, kek_id: str) -> int:
    """The number of live (not shredded) data keys, of cases and free texts, wrapped under
    ``kek_id`` in any wrap format. Zero means the KEK can be retired without losing data."""
    marker = wrapped_key_header(kek_id)[1:]
    with engine.begin() as conn:
        return sum(
            int(conn.execute(
                select(func.count()).where(t.live, t.bytes_at(2, len(marker)) == marker)
            ).scalar_one())
            for t in _TABLES
        )


@translate_errors("re-wrap: counting data keys still to re-wrap")
def data_keys_pending(engine: Engine, current_kek_id: str) -> int:
    """The number of live data keys not in the current wrap format under ``current_kek_id``:
    what a re-wrap toward it still has to do (one scan per table, no unwrapping)."""
    header = wrapped_key_header(current_kek_id)
    with engine.begin() as conn:
        return sum(
            int(conn.execute(
                select(func.count()).where(t.live, t.bytes_at(1, len(header)) != header)
            ).scalar_one())
            for t in _TABLES
        )


@dataclass(frozen=True, slots=True)
class RewrapStatus:
    """Where the live data keys stand: how many each KEK wraps, and how many still need a
    re-wrap under the current KEK."""

    current_kek_id: str
    # Live data keys per KEK id their stored form names (also ids that are not loaded).
    by_kek: Mapping[str, int]
    # Of those, the ones in the current wrap format under the current KEK.
    under_current: int
    # Live stored keys whose header names no KEK (damaged): they cannot be re-wrapped.
    unreadable: int
    # KEK ids named by stored keys that the keystore does not hold: those cases are
    # unreadable until the key is back.
    unknown_kek_ids: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.by_kek.values()) + self.unreadable

    @property
    def pending(self) -> int:
        """Live data keys not (yet) in the current format under the current KEK."""
        return self.total - self.under_current


@translate_errors("re-wrap: status")
def rewrap_status(engine: Engine, keystore: KekSource) -> RewrapStatus:
    """Count the live data keys per KEK (two grouped scans of each key table, no
    unwrapping)."""
    current = keystore.current_kek.kek_id
    by_kek: dict[str, int] = {}
    under_current = unreadable = 0
    with engine.begin() as conn:
        for t in _TABLES:
            head = t.bytes_at(1, 2).label("head")
            heads = conn.execute(select(head, func.count()).where(t.live).group_by(head)).all()
            for raw_head, count in heads:
                version_and_length = bytes(raw_head)
                id_length = version_and_length[1] if len(version_and_length) == 2 else 0
                if id_length == 0:
                    unreadable += int(count)
                    continue
                kek = t.bytes_at(3, id_length).label("kek")
                named = conn.execute(
                    select(kek, func.count())
                    .where(t.live, t.bytes_at(1, 2) == version_and_length)
                    .group_by(kek)
                ).all()
                for raw_id, n in named:
                    kek_id = _kek_id(bytes(raw_id), id_length)
                    if kek_id is None:
                        unreadable += int(n)
                        continue
                    by_kek[kek_id] = by_kek.get(kek_id, 0) + int(n)
                    if kek_id == current and version_and_length[0] == WRAP_FORMAT_VERSION:
                        under_current += int(n)
    unknown = tuple(k for k in sorted(by_kek) if not _holds(keystore, k))
    return RewrapStatus(
        current_kek_id=current,
        by_kek=dict(sorted(by_kek.items())),
        under_current=under_current,
        unreadable=unreadable,
        unknown_kek_ids=unknown,
    )


def _kek_id(raw: bytes, length: int) -> str | None:
    if len(raw) != length:
        return None
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return None


def _holds(keystore: KekSource, kek_id: str) -> bool:
    try:
        keystore.kek(kek_id)
    except KeystoreError:
        return False
    return True


class FailureReason(StrEnum):
    """Why a stored data key was left as it was (a metric label: a fixed set)."""

    MALFORMED = "malformed"  # does not parse, or a wrap format this gateway does not know
    UNKNOWN_KEK = "unknown_kek"  # names a KEK that is not loaded (retired too early?)
    DOES_NOT_OPEN = "does_not_open"  # does not open under the KEK it names


@dataclass(frozen=True, slots=True)
class RewrapFailure:
    # The case id, or for a free-text key its key id (``<class>/<scope>/<id>``).
    case_id: str
    kek_id: str  # as the stored key names it; empty when it names none
    reason: FailureReason


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    target_kek_id: str
    listed: int
    rewrapped: int
    # Changed between listing and writing (shredded, or re-wrapped by another replica).
    passed_over: int
    failures: tuple[RewrapFailure, ...]
    # The cursor: the next batch of the pass starts after this case id.
    last_case_id: str


@dataclass(slots=True)
class RewrapReport:
    target_kek_id: str = ""
    rewrapped: int = 0
    passed_over: int = 0
    failed: int = 0
    batches: int = 0
    passes: int = 0
    # should_stop ended the run before it was through.
    stopped: bool = False
    # The current KEK changed in each of MAX_PASSES passes; the next run goes on.
    unsettled: bool = False
    failures_by_reason: dict[FailureReason, int] = field(default_factory=dict)

    def add(self, batch: BatchOutcome) -> None:
        self.batches += 1
        self.rewrapped += batch.rewrapped
        self.passed_over += batch.passed_over
        self.failed += len(batch.failures)
        for failure in batch.failures:
            reason = failure.reason
            self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + 1


class Rewrapper:
    """Re-wraps the live data keys that are not under the current KEK (see module doc)."""

    def __init__(self, engine: Engine, keys: KekSource, *, batch_size: int = DEFAULT_BATCH):
        if batch_size < 1:
            raise ValueError("batch_size must be 1 or more")
        self._engine = engine
        self._writer = for_writing(engine)
        self._keys = keys
        self._batch = batch_size
        self._cas = {
            t.table.name: update(t.table)
            .where(
                t.id == bindparam("listed_case"),
                t.key == bindparam("listed_key"),
                t.table.c.shredded_at.is_(None),
            )
            .values(wrapped_data_key=bindparam("new_key"))
            for t in _TABLES
        }

    @property
    def batch_size(self) -> int:
        return self._batch

    def run(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> RewrapReport:
        """Re-wrap until no live key is left outside the current KEK, the current KEK kept
        changing for ``MAX_PASSES`` passes, or ``should_stop()`` (asked before each batch)
        says so. Raises ``StoreError`` when the database fails, and ``EnvelopeError`` when a
        new wrap does not open under the current KEK (a faulty key): the batch at hand writes
        nothing, what earlier batches committed stays."""
        report = RewrapReport()
        while report.passes < MAX_PASSES:
            report.passes += 1
            target = self._keys.current_kek
            report.target_kek_id = target.kek_id
            outcome = "done"
            for table in _TABLES:
                outcome = self._pass(table, target, report, should_stop, on_batch)
                if outcome != "done":
                    break
            if outcome == "stopped":
                report.stopped = True
                return report
            if outcome == "done":
                return report
        report.unsettled = True
        return report

    def _pass(
        self,
        table: _KeyTable,
        target: KeyEncryptionKey,
        report: RewrapReport,
        should_stop: Callable[[], bool],
        on_batch: Callable[[BatchOutcome], None] | None,
    ) -> str:
        """One table's keys toward ``target``: "done", "stopped", or "rotated" (a new pass)."""
        after = ""
        while True:
            if should_stop():
                return "stopped"
            if self._keys.current_kek.kek_id != target.kek_id:
                return "rotated"
            batch = self._batch_of(table, target, after)
            if batch.listed == 0 and table is not _CASES:
                return "done"  # no text key to move: no batch to report
            report.add(batch)
            if on_batch is not None:
                on_batch(batch)
            if batch.listed < self._batch:
                return "done"
            after = batch.last_case_id

    def rewrap_batch(self, target: KeyEncryptionKey, after: str = "") -> BatchOutcome:
        """List the next batch of cases after case id ``after`` not under ``target`` and
        re-wrap it in one transaction."""
        return self._batch_of(_CASES, target, after)

    def _batch_of(self, table: _KeyTable, target: KeyEncryptionKey, after: str) -> BatchOutcome:
        rows = self._list(table, target, after)
        updates: list[dict[str, Any]] = []
        failures: list[RewrapFailure] = []
        for row_id, stored in rows:
            new_key = self._rewrapped(table, row_id, stored, target)
            if isinstance(new_key, RewrapFailure):
                failures.append(new_key)
            else:
                updates.append({"listed_case": row_id, "listed_key": stored, "new_key": new_key})
        written = self._write(table, updates) if updates else 0
        return BatchOutcome(
            target_kek_id=target.kek_id,
            listed=len(rows),
            rewrapped=written,
            passed_over=len(updates) - written,
            failures=tuple(failures),
            last_case_id=rows[-1][0] if rows else after,
        )

    @translate_errors("re-wrap: listing data keys")
    def _list(
        self, table: _KeyTable, target: KeyEncryptionKey, after: str
    ) -> list[tuple[str, bytes]]:
        header = wrapped_key_header(target.kek_id)
        query = (
            select(table.id, table.key)
            .where(table.id > after, table.live, table.bytes_at(1, len(header)) != header)
            .order_by(table.id)
            .limit(self._batch)
        )
        with self._engine.begin() as conn:
            return [(r[0], bytes(r[1])) for r in conn.execute(query)]

    @translate_errors("re-wrap: writing data keys")
    def _write(self, table: _KeyTable, updates: list[dict[str, Any]]) -> int:
        # Rows in id order, as listed: every re-wrapper locks them in the same order.
        with self._writer.begin() as conn:
            return int(conn.execute(self._cas[table.table.name], updates).rowcount)

    def _rewrapped(
        self, table: _KeyTable, case_id: str, stored: bytes, target: KeyEncryptionKey
    ) -> bytes | RewrapFailure:
        try:
            wrapped = WrappedKey.from_bytes(stored)
        except EnvelopeError:
            return RewrapFailure(case_id, "", FailureReason.MALFORMED)
        if wrapped.version != WRAP_FORMAT_VERSION:
            return RewrapFailure(case_id, wrapped.kek_id, FailureReason.MALFORMED)
        if not _holds(self._keys, wrapped.kek_id):
            return RewrapFailure(case_id, wrapped.kek_id, FailureReason.UNKNOWN_KEK)
        try:
            data_key = table.unwrap(wrapped, self._keys, case_id)
        except EnvelopeError:
            return RewrapFailure(case_id, wrapped.kek_id, FailureReason.DOES_NOT_OPEN)
        rewrapped = table.wrap(data_key, target, case_id)
        # Checked before the old wrap is replaced: once the old KEK is retired, a new wrap
        # that does not open would have lost the case. Raises, so the batch writes nothing.
        table.unwrap(rewrapped, _Only(target), case_id)
        return rewrapped.to_bytes()


@dataclass(frozen=True)
class _Only:
    """A lookup that holds one KEK: the new wrap must open under exactly the target."""

    kek_: KeyEncryptionKey

    def kek(self, kek_id: str) -> KeyEncryptionKey:
        if kek_id != self.kek_.kek_id:
            raise KeystoreError(f"no key-encryption key with id {kek_id!r}")
        return self.kek_
