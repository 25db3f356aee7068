"""The wrapped data keys of free texts (``text_keys``; see ``gateway.crypto.free_text``).

The table holds no key in clear and no text: each row is a data key wrapped under a
key-encryption key, in the stored format of a case's key, named by its text class and the case
(or hold) it is for. Keys are made on first use; replicas that make the same key at once
race on the primary key, and every one of them goes on with the row that won.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.store.cases import require_live_case
from gateway.store.db import for_writing, translate_errors
from gateway.store.errors import StoreError
from gateway.store.tables import text_keys

__all__ = ["TextKeyStore"]


class TextKeyStore:
    """Synchronous access to the text keys; call it through ``asyncio.to_thread`` from a
    server."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = for_writing(engine)

    @translate_errors("text keys: read")
    def get(self, key_id: str) -> bytes | None:
        """The stored wrapped key; ``b""`` once shredded, None when there is no such key."""
        query = select(text_keys.c.wrapped_data_key).where(text_keys.c.key_id == key_id)
        with self._engine.begin() as conn:
            row = conn.execute(query).first()
        return None if row is None else bytes(row[0])

    def add(
        self, key_id: str, text_class: str, case_id: str, wrapped: bytes, at: datetime
    ) -> bytes:
        """Store ``wrapped`` as ``key_id`` unless a key of that id exists; return the stored
        one (ours, or the one another writer stored first). Raises ``CaseShredded`` (or
        ``CaseNotFound``) for a key of a case that was shredded (or does not exist)."""
        values = {
            "key_id": key_id,
            "text_class": text_class,
            "case_id": case_id,
            "wrapped_data_key": wrapped,
            "created_at": at,
            "shredded_at": None,
        }
        try:
            self._insert(values)
        except IntegrityError as exc:
            stored = self.get(key_id)
            if stored is None:
                raise StoreError("text keys: storing a key failed") from exc
            return stored
        return wrapped

    def _insert(self, values: dict[str, object]) -> None:
        try:
            with self._writer.begin() as conn:
                if values["case_id"]:
                    # Never a new key for a shredded case: it would outlive the shredding.
                    # The case row stays share-locked until this commits (see cases.py).
                    require_live_case(conn, str(values["case_id"]))
                conn.execute(insert(text_keys).values(values))
        except IntegrityError:
            raise  # add() tells a key another writer stored from other failures
        except SQLAlchemyError as exc:
            raise StoreError("text keys: storing a key failed") from exc
