"""One logged-in session per PKCS#11 token in this process, and one lock per module.

PKCS#11 login belongs to the application, not to a session: a second ``C_Login`` fails with
``CKR_USER_ALREADY_LOGGED_IN``, and closing a logged-in session logs every other session
out. And python-pkcs11 calls ``C_Initialize(NULL)``, which tells the module it will not be
called from several threads at once. So every user of a token in this process (the server's
keystore, a command run in the same process) shares one session, opened on first use and
closed when the last user lets go, and every call into a module is made under that module's
lock. The gateway calls the token to sign a checkpoint, open a submission or wrap a data key:
short operations, so one lock costs little. The PIN is checked when the process first logs in;
later users in the same process share that login.

python-pkcs11 (``pip install 'ketenpoort[hsm]'``) is imported here, on first use, so a gateway
that keeps its keys in files runs without it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from gateway.crypto.errors import KeystoreError

if TYPE_CHECKING:
    from pkcs11.types import Session

__all__ = ["TokenSession"]

T = TypeVar("T")

_registry = threading.Lock()
_module_locks: dict[str, threading.RLock] = {}
_shared: dict[tuple[str, str], _Shared] = {}


@dataclass
class _Shared:
    session: Session
    lock: threading.RLock
    users: int


class TokenSession:
    """A share of the process's session on one token (see the module docstring)."""

    def __init__(self, module: Path, token_label: str, pin: str) -> None:
        self._key = (os.path.realpath(module), token_label)
        self._label = token_label
        with _registry:
            shared = _shared.get(self._key)
            if shared is None:
                lock = _module_locks.setdefault(self._key[0], threading.RLock())
                with lock:
                    session = _open(self._key[0], token_label, pin)
                shared = _Shared(session, lock, 0)
                _shared[self._key] = shared
            shared.users += 1
        self._shared: _Shared | None = shared

    @property
    def token_label(self) -> str:
        return self._label

    def run(self, operation: Callable[[Session], T]) -> T:
        """Call ``operation`` with the session, holding the module's lock."""
        shared = self._shared
        if shared is None:
            raise KeystoreError(f"the session on token {self._label!r} is closed")
        with shared.lock:
            return operation(shared.session)

    def close(self) -> None:
        """Let go of the session; the last user closes it (and so logs out)."""
        from pkcs11.exceptions import PKCS11Error

        with _registry:
            shared, self._shared = self._shared, None
            if shared is None:
                return
            shared.users -= 1
            if shared.users > 0:
                return
            del _shared[self._key]
            with shared.lock:
                try:
                    shared.session.close()
                except PKCS11Error:
                    pass  # a token already gone has nothing left to close


def _open(module: str, token_label: str, pin: str) -> Session:
    try:
        import pkcs11
        from pkcs11.exceptions import (
            NoSuchToken,
            PKCS11Error,
            UserAlreadyLoggedIn,
        )
    except ImportError as exc:
        raise KeystoreError(
            "the pkcs11 key provider needs python-pkcs11: pip install 'ketenpoort[hsm]'"
        ) from exc
    try:
        library = pkcs11.lib(module)
    except PKCS11Error as exc:
        raise KeystoreError(f"PKCS#11 module {module} cannot be loaded: {exc}") from None
    try:
        token = library.get_token(token_label=token_label)
    except NoSuchToken:
        raise KeystoreError(f"no PKCS#11 token labelled {token_label!r} in {module}") from None
    except PKCS11Error as exc:
        raise KeystoreError(
            f"PKCS#11 token {token_label!r} cannot be found: {type(exc).__name__}"
        ) from None
    try:
        return token.open(rw=True, user_pin=pin)
    except UserAlreadyLoggedIn:
        # Logged in by another user of the module in this process: the login is shared.
        return token.open(rw=True)
    except PKCS11Error as exc:
        # The exception's class names the cause (PinIncorrect, PinLocked, ...); its text
        # could in principle carry arguments, so only the class is shown.
        raise KeystoreError(
            f"cannot log in to PKCS#11 token {token_label!r}: {type(exc).__name__}"
        ) from None
