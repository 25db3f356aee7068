"""A SoftHSM2 token for the PKCS#11 tests: one per test session, in a temporary directory.

SoftHSM2 reads ``SOFTHSM2_CONF`` once, when the module is first initialised in a process, so
the fixture sets it (for this process and the commands it starts) before any test loads the
module. Tests share the token and keep apart by a namespace each (:func:`pkcs11_settings`).

Without SoftHSM2 (Debian package ``softhsm2``) or python-pkcs11 the tests that need the token
are skipped, unless ``CI`` is set: there they fail, so a machine where the install step did
not work cannot pass by skipping them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.crypto.provider_settings import Pkcs11Settings

__all__ = ["SoftHsm", "pkcs11_settings", "softhsm"]

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "ketenpoort-test"
USER_PIN = "4711-test"
SO_PIN = "so-4711-test"

_namespaces = itertools.count(1)


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    token_label: str
    pin: str
    pin_file: Path
    conf: Path


def _find_module() -> Path | None:
    named = os.environ.get("SOFTHSM2_MODULE")
    for candidate in ([named] if named else []) + list(MODULE_CANDIDATES):
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def _unavailable() -> str | None:
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        return "python-pkcs11 is not installed (pip install -e '.[test]')"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util is not installed (apt-get install softhsm2)"
    if _find_module() is None:
        return "libsofthsm2.so was not found (apt-get install softhsm2, or set SOFTHSM2_MODULE)"
    return None


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"SoftHSM2 is needed in CI: {reason}")
        pytest.skip(reason)
    module = _find_module()
    assert module is not None
    root = tmp_path_factory.mktemp("softhsm")
    tokens = root / "tokens"
    tokens.mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL,
         "--pin", USER_PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
    )
    pin_file = root / "pin"
    pin_file.write_text(USER_PIN + "\n", encoding="utf-8")
    pin_file.chmod(0o600)
    try:
        yield SoftHsm(module, TOKEN_LABEL, USER_PIN, pin_file, conf)
    finally:
        if before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = before


def pkcs11_settings(hsm: SoftHsm, *, namespace: str | None = None) -> Pkcs11Settings:
    """Settings for the session's token with a namespace no other test uses."""
    return Pkcs11Settings(
        module=hsm.module,
        token_label=hsm.token_label,
        pin_env=None,
        pin_file=hsm.pin_file,
        namespace=namespace or f"t{os.getpid()}-{next(_namespaces)}",
    )
