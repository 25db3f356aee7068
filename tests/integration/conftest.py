"""A real gateway on loopback with real partner source systems, per test.

The gateway runs on port 0 with mutual TLS and certificate-bound, single-use tokens, as in
production; storage is the database of the `db_url` fixture (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.core import CompiledPolicy
from gateway.crypto.devkeys import init_dev_keys
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir
from tests.integration.harness import Harness, running_harness


@pytest.fixture(scope="session")
def shipped_policy() -> CompiledPolicy:
    return load_policy_dir(shipped_policy_dir())


@pytest.fixture(scope="session")
def session_dev_keys(
    tmp_path_factory: pytest.TempPathFactory, shipped_policy: CompiledPolicy
) -> Path:
    keys = tmp_path_factory.mktemp("keys") / "keys"
    init_dev_keys(keys, sorted(shipped_policy.partners))
    return keys


@pytest.fixture
def dev_keys(session_dev_keys: Path, tmp_path: Path) -> Path:
    """The development keys, made once, in a directory of this test's own: what lies beside
    them (the checkpoint files commands read and write by default, the registry) is the
    test's alone."""
    keys = tmp_path / "dev-keys" / "keys"
    shutil.copytree(session_dev_keys, keys)
    return keys


@pytest.fixture
async def harness(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Harness]:
    async with running_harness(db_url, dev_keys, shipped_policy) as running:
        yield running
