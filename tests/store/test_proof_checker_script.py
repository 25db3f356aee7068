"""docs/check_proof.py, the standalone inclusion-proof checker, follows RFC 9162 section
2.1.3.2 to the letter: a genuine proof checks, and a proof that places its record at another
position (outside the signed tree, or with a path of the wrong length) does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from gateway.cli.audit_log import inclusion_document
from gateway.store import AuditLog
from gateway.store.checkpoints import CheckpointSigner
from tests.store.factories import event

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "check_proof.py"
KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def proof(engine: Engine) -> dict[str, Any]:
    log = AuditLog(engine, signer=CheckpointSigner(KEY, "test.ketenpoort/log"))
    log.append_sync([event(n) for n in range(4)])
    return inclusion_document(log, 4)


def check(document: dict[str, Any], tmp_path: Path) -> int:
    proof_file, key_file = tmp_path / "proof.json", tmp_path / "log.pub.pem"
    proof_file.write_text(json.dumps(document), encoding="utf-8")
    key_file.write_bytes(
        KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(proof_file), str(key_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return run.returncode


def test_a_genuine_proof_checks(proof: dict[str, Any], tmp_path: Path) -> None:
    assert (proof["seq"], proof["leaf_index"], proof["tree_size"]) == (4, 3, 4)
    assert check(proof, tmp_path) == 0


@pytest.mark.parametrize("index", [7, 11, -1])
def test_a_leaf_index_outside_the_tree_fails(
    proof: dict[str, Any], tmp_path: Path, index: int
) -> None:
    # Leaf 3's path, claimed for leaf 7 of a tree of 4, folds to the same root: only the
    # index check of step 1 and the early end of step 4a tell them apart.
    assert check(dict(proof, leaf_index=index, seq=index + 1), tmp_path) == 1


def test_a_seq_that_is_not_the_leaf_position_fails(proof: dict[str, Any], tmp_path: Path) -> None:
    assert check(dict(proof, seq=2), tmp_path) == 1


def test_a_path_longer_than_the_tree_is_high_fails(proof: dict[str, Any], tmp_path: Path) -> None:
    assert check(dict(proof, path=[*proof["path"], proof["path"][0]]), tmp_path) == 1
