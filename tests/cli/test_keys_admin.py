"""`ketenpoort keys list | rotate | retire` on the key directory and on a PKCS#11 token."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from gateway.cli.main import main
from gateway.crypto.envelope import DataKey, wrap_data_key
from gateway.crypto.keystore import Keystore
from gateway.crypto.layout import GatewayKeyPaths
from gateway.store.db import create_engine_for, init_schema
from gateway.store.tables import cases
from tests.softhsm import SoftHsm, pkcs11_settings


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "keys"
    assert main(["keys", "init", str(directory)]) == 0
    capsys.readouterr()
    return directory


def _listed(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["keys", "list", "--format", "json", *args]) == 0
    rows: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return rows


def _current(rows: list[dict[str, object]], kind: str) -> str:
    return next(str(r["id"]) for r in rows if r["kind"] == kind and r["current"])


def test_list_shows_ids_and_no_key_material(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "list", "--keys", str(keys)]) == 0
    text = capsys.readouterr().out
    for kind in ("signing", "hpke", "kek"):
        assert f"\n{kind} " in text
    assert "PRIVATE KEY" not in text
    rows = _listed(capsys, "--keys", str(keys))
    assert sorted(str(r["kind"]) for r in rows) == ["hpke", "kek", "signing"]
    assert all(r["current"] and r["provider"] == "file" and r["created"] for r in rows)


def test_rotate_then_retire_the_old_signing_key(
    keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _current(_listed(capsys, "--keys", str(keys)), "signing")
    assert main(["keys", "rotate", "signing", "--keys", str(keys)]) == 0
    assert "new current signing key" in capsys.readouterr().out
    rows = _listed(capsys, "--keys", str(keys))
    new = _current(rows, "signing")
    assert new != old and {str(r["id"]) for r in rows if r["kind"] == "signing"} == {old, new}

    assert main(["keys", "retire", "signing", new, "--keys", str(keys)]) == 1
    assert "current" in capsys.readouterr().err
    # Right after a rotation a replica may not have taken the new key up yet.
    assert main(["keys", "retire", "signing", old, "--keys", str(keys)]) == 1
    # Partners learn the new signing key from the signed key statement, fetched hourly.
    assert "partners" in capsys.readouterr().err
    assert main(["keys", "retire", "signing", old, "--keys", str(keys), "--grace-s", "60"]) == 1
    assert main(["keys", "retire", "signing", old, "--keys", str(keys), "--grace-s", "0"]) == 0
    assert "stays trusted" in capsys.readouterr().out
    paths = GatewayKeyPaths.under(keys)
    assert paths.retired_signing_pub_file(old).is_file()
    assert not paths.signing_file(old).exists()
    assert [str(r["id"]) for r in _listed(capsys, "--keys", str(keys)) if r["kind"] == "signing"] \
        == [new]
    assert main(["keys", "retire", "signing", old, "--keys", str(keys)]) == 1


def test_a_kek_is_retired_only_once_no_data_key_is_wrapped_under_it(
    keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    old = Keystore.open(keys).current_kek
    engine = create_engine_for(url)
    try:
        init_schema(engine)
        with engine.begin() as conn:
            conn.execute(
                insert(cases).values(
                    case_id="case-1",
                    subject_pseudonym="p",
                    case_type="code_rood",
                    phase="registration",
                    registered_by="police",
                    created_at=datetime.now(UTC),
                    wrapped_data_key=wrap_data_key(DataKey.generate(), old, "case-1").to_bytes(),
                )
            )
        assert main(["keys", "rotate", "kek", "--keys", str(keys)]) == 0
        capsys.readouterr()
        command = ["keys", "retire", "kek", old.kek_id, "--keys", str(keys), "--db", url,
                   "--grace-s", "0"]
        assert main(command) == 1
        assert "1 live cases" in capsys.readouterr().err
        assert old.kek_id in Keystore.open(keys).kek_ids
        # Shredded at the end of its retention: nothing needs the old key any more.
        with engine.begin() as conn:
            conn.execute(
                update(cases).values(wrapped_data_key=b"", shredded_at=datetime.now(UTC))
            )
        assert main(command) == 0
        assert old.kek_id not in Keystore.open(keys).kek_ids
    finally:
        engine.dispose()


def test_the_keys_of_a_pkcs11_configuration(
    softhsm: SoftHsm, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = pkcs11_settings(softhsm)
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'keys_dir = "{keys}"\n'
        f'database_url = "sqlite:///{tmp_path / "g.db"}"\n'
        "[key_provider]\n"
        'type = "pkcs11"\n'
        f'module = "{settings.module}"\n'
        f'token_label = "{settings.token_label}"\n'
        f'pin_file = "{settings.pin_file}"\n'
        f'namespace = "{settings.namespace}"\n'
        'kinds = ["signing", "kek"]\n',
        encoding="utf-8",
    )
    assert main(["keys", "list", "--config", str(config)]) == 0
    assert "pkcs11" not in capsys.readouterr().out  # nothing in the token yet
    for kind in ("signing", "kek", "signing"):
        assert main(["keys", "rotate", kind, "--config", str(config)]) == 0
        assert "(pkcs11)" in capsys.readouterr().out
    rows = _listed(capsys, "--config", str(config))
    providers = {(str(r["kind"]), str(r["provider"])) for r in rows}
    assert providers == {("signing", "pkcs11"), ("kek", "pkcs11"), ("hpke", "file")}
    signing = [r for r in rows if r["kind"] == "signing"]
    assert len(signing) == 2
    old = next(str(r["id"]) for r in signing if not r["current"])
    assert main(["keys", "retire", "signing", old, "--config", str(config), "--grace-s", "0"]) == 0
    assert "retired signing key" in capsys.readouterr().out
    assert GatewayKeyPaths.under(keys).retired_signing_pub_file(old).is_file()
    assert len([r for r in _listed(capsys, "--config", str(config)) if r["kind"] == "signing"]) \
        == 1
