"""Free-text keys in the store, on SQLite and PostgreSQL: made once per class and case (one
key even when replicas race), re-wrapped with the cases' keys after a KEK rotation so the old
KEK can be retired, never made for a shredded case, and a database of the schema generation
before them is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text, update

from gateway.broker.free_texts import FreeTexts
from gateway.crypto.devkeys import init_dev_keys
from gateway.crypto.free_text import KeyScope, TextClass, TextKind
from gateway.crypto.keystore import Keystore
from gateway.store import CaseRepository
from gateway.store.db import SchemaMismatch, init_schema
from gateway.store.errors import CaseShredded
from gateway.store.rewrap import Rewrapper, data_keys_pending, data_keys_under
from gateway.store.tables import schema_info
from gateway.store.text_keys import TextKeyStore
from tests.store.test_store_rewrap import Keys, register, shred

NOTE = "Dreiging bevestigd door de wijkagent; kinderen tijdelijk bij oma."


@pytest.fixture(name="keys")
def keys_fixture(tmp_path: Path) -> Keys:
    root = tmp_path / "keys"
    init_dev_keys(root, ["police"])
    return Keys(root)


def texts_on(engine: Engine, keystore: Keystore) -> FreeTexts:
    return FreeTexts(TextKeyStore(engine), keystore, lambda: datetime.now(UTC))


def test_text_keys_are_rewrapped_and_survive_retiring_the_old_kek(
    cases: CaseRepository, engine: Engine, keys: Keys
) -> None:
    first = keys.open()
    register(cases, first.current_kek, 2)
    texts = texts_on(engine, first)
    on_case = texts.seal(NOTE, text_class=TextClass.PRIVACY_OFFICER,
                         kind=TextKind.REVIEW_COMMENT, row_id="7",
                         scope=KeyScope.CASE, scope_id="c000")
    own = texts.seal(NOTE, text_class=TextClass.HOLD_REASON, kind=TextKind.HOLD_REASON,
                     row_id="h_1", scope=KeyScope.HOLD, scope_id="h_1")
    old = first.current_kek.kek_id
    assert data_keys_under(engine, old) == 4  # two cases, two text keys

    keys.rotate()
    second = keys.open()
    assert data_keys_pending(engine, second.current_kek.kek_id) == 4
    report = Rewrapper(engine, second, batch_size=1).run()
    assert (report.rewrapped, report.failed) == (4, 0)
    assert data_keys_under(engine, old) == 0
    keys.retire(old)
    retired = keys.open()
    after = texts_on(engine, retired)
    assert after.open(on_case, kind=TextKind.REVIEW_COMMENT, row_id="7") == NOTE
    assert after.open(own, kind=TextKind.HOLD_REASON, row_id="h_1") == NOTE
    # Bound to its row and kind: moved elsewhere it does not open.
    with pytest.raises(Exception, match="does not open"):
        after.open(own, kind=TextKind.HOLD_REASON, row_id="h_2")


def test_one_key_per_class_and_case_and_none_for_a_shredded_case(
    cases: CaseRepository, engine: Engine, keys: Keys
) -> None:
    keystore = keys.open()
    register(cases, keystore.current_kek, 2)
    # Two replicas, one key: the second writer goes on with the first one's.
    a, b = texts_on(engine, keystore), texts_on(engine, keystore)
    sealed = [
        t.seal(NOTE, text_class=TextClass.PRIVACY_OFFICER, kind=TextKind.JUSTIFICATION,
               row_id=f"e_{n}", scope=KeyScope.CASE, scope_id="c001")
        for n, t in enumerate((a, b))
    ]
    assert {s.key_id for s in sealed} == {"privacy_officer/case/c001"}
    assert b.open(sealed[0], kind=TextKind.JUSTIFICATION, row_id="e_0") == NOTE
    assert a.open(sealed[1], kind=TextKind.JUSTIFICATION, row_id="e_1") == NOTE

    # Shredding the case empties its key: the text no longer opens, and nothing new is
    # written under it; a case shredded before it had a key never gets one.
    shred(engine, "c001")
    shred(engine, "c000")
    assert a.open(sealed[0], kind=TextKind.JUSTIFICATION, row_id="e_0") is None
    for scope_id in ("c001", "c000"):
        with pytest.raises(CaseShredded):
            a.seal(NOTE, text_class=TextClass.PRIVACY_OFFICER, kind=TextKind.JUSTIFICATION,
                   row_id="e_9", scope=KeyScope.CASE, scope_id=scope_id)
    assert TextKeyStore(engine).get("privacy_officer/case/c000") is None


def test_a_database_of_the_generation_before_free_text_keys_is_refused(engine: Engine) -> None:
    # As such a database is: no alembic_version (migrations came after generation 3).
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(update(schema_info).values(version=2))
    with pytest.raises(SchemaMismatch, match="generation 2"):
        init_schema(engine)
