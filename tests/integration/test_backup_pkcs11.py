"""A backup of a gateway whose keys live in a PKCS#11 token (SoftHSM2) holds the token's
settings and the public halves, never a token key or the PIN; the restore needs the same
token configured, and the restored log verifies with the public halves."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.ops.archive import MANIFEST
from tests.integration.test_pkcs11_gateway import (  # noqa: F401 - the fixture
    HsmGateway,
    _disclose,
    hsm_gateway,
)
from tests.softhsm import SoftHsm


def _config(root: Path, db_url: str, keys: Path, token_table: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "gateway.toml"
    path.write_text(
        f"database_url = '{db_url}'\nkeys_dir = '{keys}'\ndata_dir = '{root}'\n"
        f"registry_dir = '{root / 'registry'}'\ncheckpoint_dir = '{root / 'checkpoints'}'\n"
        f"policy_dir = '{root / 'policy'}'\n{token_table}",
        encoding="utf-8",
    )
    return path


async def test_a_backup_holds_the_token_references_not_its_keys(
    hsm_gateway: HsmGateway, softhsm: SoftHsm, tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _disclose(hsm_gateway)
    hsm_gateway.gateway.log.checkpoint_now()
    token_table = hsm_gateway.config_file.read_text().split("[key_provider]", 1)[1]
    token_table = "[key_provider]" + token_table
    source = _config(
        tmp_path / "source", hsm_gateway.db_url, hsm_gateway.keys, token_table
    )
    # The running gateway keeps its checkpoint files elsewhere: the backup's come from the
    # log itself here.
    archive = tmp_path / "hsm.backup"
    assert main(["backup", "--config", str(source), "--output", str(archive)]) == 0
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        handle = tar.extractfile(MANIFEST)
        assert handle is not None
        manifest = json.loads(handle.read())
        everything = b"".join(
            tar.extractfile(m).read() for m in tar.getmembers()  # type: ignore[union-attr]
        )
    provider = manifest["key_provider"]
    assert provider["type"] == "pkcs11"
    assert provider["token_label"] == softhsm.token_label
    assert provider["token_kinds"] == ["hpke", "kek", "signing"]
    assert provider["pin_file"] == str(softhsm.pin_file)
    assert softhsm.pin.encode() not in everything
    # The token's keys are in the archive as public halves only (the key files beside them
    # are the development keys from before the rotation into the token).
    keystore = hsm_gateway.gateway.keystore
    assert keystore is not None
    in_token = (keystore.signing_key_id, keystore.hpke_key_id, keystore.current_kek.kek_id)
    assert all(any(i in n for n in names) for i in in_token[:2])
    assert not [n for n in names for i in in_token if i in n and not n.endswith(".pub.pem")]
    assert "files/keys/gateway/signing.pub.pem" in names

    # Restoring without the token is refused before anything is written.
    fresh = tmp_path / "restored"
    db = f"sqlite:///{fresh / 'gateway.db'}"
    without = _config(fresh, db, fresh / "keys", "")
    capsys.readouterr()
    assert main(["restore", "--config", str(without), str(archive)]) == 1
    assert "PKCS#11 token" in capsys.readouterr().err
    assert not (fresh / "keys").exists()
    # With the same token configured it restores, and the log verifies.
    with_token = _config(fresh, db, fresh / "keys", token_table)
    assert main(["restore", "--config", str(with_token), str(archive)]) == 0
    assert main(["audit", "verify", "--config", str(with_token)]) == 0
