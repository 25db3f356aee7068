"""When a serving gateway looks again at its key-encryption keys.

A key-encryption key (KEK) is rotated while gateways serve (``ketenpoort keys rotate`` in the
shared key directory or token), and retired once no stored data key is wrapped under it any
more. :meth:`Keystore.refresh` loads what changed; this says when to ask it:

- when the current KEK is asked for and the last look is older than ``recheck_s``, so a
  gateway does not go on wrapping new cases under a key that was rotated out;
- at once, at most every ``miss_interval_s``, when a stored key names a KEK that is not
  loaded: another replica may have re-wrapped the case under a key this one has not looked
  for yet, and the request would fail;
- whenever :meth:`LiveKeystore.refresh` is called (the re-wrap task does, every few seconds).

A look may find other keys changed too (the log-signing key): in a gateway it runs
``gateway.runtime.key_refresh.follow_key_changes``, handed in as ``refresh``, which also
moves the checkpoint signer along, so that no change is taken in without it.

A look costs a ``stat`` per key file (or one search in a token); keys are read again only
when these changed. A look that fails (a half-copied file) keeps the keys in force.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gateway.crypto.errors import KeystoreError
from gateway.crypto.keystore import KeyEncryptionKey, Keystore

__all__ = ["DEFAULT_MISS_INTERVAL_S", "DEFAULT_RECHECK_S", "LiveKeystore"]

# Longer than the re-wrap task's look (gateway.runtime.rewrap.KEY_CHECK_S): while the
# task runs, requests never wait for a look; without it, the gateway still follows rotation.
DEFAULT_RECHECK_S = 10.0
DEFAULT_MISS_INTERVAL_S = 1.0

log = logging.getLogger("ketenpoort.keys")


class LiveKeystore:
    """A :class:`Keystore` that looks again on its own (module doc).

    Offers what the case file and the re-wrap use: ``current_kek``, ``kek(id)``, ``kek_ids``,
    ``pseudonym_key`` (never reloaded: pseudonyms under another key would not find a
    subject's earlier cases) and ``refresh()``. Safe to use from several threads.
    """

    def __init__(
        self,
        keystore: Keystore,
        *,
        refresh: Callable[[], bool] | None = None,
        recheck_s: float = DEFAULT_RECHECK_S,
        miss_interval_s: float = DEFAULT_MISS_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keystore = keystore
        # What a look runs: the keystore's own refresh, or one that also moves along what
        # holds other keys of it (the gateway's checkpoint signer), so no change goes unseen.
        self._look = refresh or keystore.refresh
        self._recheck = recheck_s
        self._miss_interval = miss_interval_s
        self._monotonic = monotonic
        self._looked_at = monotonic()
        self._missed_at = float("-inf")

    @property
    def keystore(self) -> Keystore:
        return self._keystore

    @property
    def current_kek(self) -> KeyEncryptionKey:
        """The key that wraps new data keys, as looked up at most ``recheck_s`` ago."""
        if self._monotonic() - self._looked_at >= self._recheck:
            self.refresh()
        return self._keystore.current_kek

    @property
    def kek_ids(self) -> tuple[str, ...]:
        return self._keystore.kek_ids

    def kek(self, kek_id: str) -> KeyEncryptionKey:
        try:
            return self._keystore.kek(kek_id)
        except KeystoreError:
            now = self._monotonic()
            if now - self._missed_at < self._miss_interval:
                raise
            self._missed_at = now
        self.refresh()
        return self._keystore.kek(kek_id)

    @property
    def pseudonym_key(self) -> bytes:
        return self._keystore.pseudonym_key

    def refresh(self) -> bool:
        """Look now; True when the loaded keys or a current key changed."""
        self._looked_at = self._monotonic()
        before = self._keystore.current_kek.kek_id
        try:
            changed = self._look()
        except (KeystoreError, OSError) as exc:
            log.warning("gateway keys not reloaded, the keys in force stay: %s", exc)
            return False
        if changed:
            current = self._keystore.current_kek.kek_id
            log.info(
                "gateway keys reloaded: current key-encryption key %s%s, %d loaded",
                current,
                "" if current == before else f" (was {before})",
                len(self._keystore.kek_ids),
            )
        return changed

    def __repr__(self) -> str:
        return f"LiveKeystore({self._keystore!r})"
