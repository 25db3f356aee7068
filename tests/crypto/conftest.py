from __future__ import annotations

from pathlib import Path

import pytest

from gateway.crypto import DevKeyPaths, init_dev_keys

PARTNERS = ("politie", "ggz-twente")


@pytest.fixture(scope="session")
def dev_keys(tmp_path_factory: pytest.TempPathFactory) -> DevKeyPaths:
    """One key directory shared by tests that only read it."""
    return init_dev_keys(tmp_path_factory.mktemp("keys") / "dev", PARTNERS)


@pytest.fixture
def fresh_keys(tmp_path: Path) -> DevKeyPaths:
    """A key directory of the test's own, for tests that change files."""
    return init_dev_keys(tmp_path / "dev", PARTNERS)
