"""Why a partner system believes the gateway's keys: its signed key statement, checked against
the gateway's log-signing keys the partner trusts (pins).

A GetGatewayKeys answer over TLS alone is what any proxy terminating TLS can forge. So a client
takes keys only from the answer's statement (:mod:`gateway.formats.gateway_key_statement`), after
a signature by a pinned key verified, the statement names the expected gateway (its log origin)
and is younger than ``max_age_s``; and only when the clear key list, if any, is the same.

Pins are the gateway's usable log-signing public keys, the ones that also verify its log:
``gateway/signing.pub.pem`` and ``gateway/signing/<key_id>.pub.pem`` of the gateway's key
directory, or copies an operator handed out. A verified statement lists the gateway's usable
signing keys; from then on the client trusts those (and no longer a pin the statement leaves
out), in memory, as a TUF client takes up a new root: a rotation that a client sees while old
and new key both sign carries it over to the new key. A client that missed that overlap (or a
restarted one, whose pins are the configured ones again) needs the new public key; with pins read
from a key directory the directory is read again when no trusted key signed, so an operator's
updated copy is taken up without a restart.

Deny by default: without pins a client takes no fetched key, unless it was configured with
:meth:`GatewayTrust.insecure_tls_alone`, which trusts the clear list over TLS as before and is
unsafe wherever TLS may be terminated before the gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.api.v1 import exchange_pb2
from gateway.crypto._pem import load_ed25519_public_key
from gateway.crypto.errors import KeystoreError
from gateway.crypto.layout import GatewayKeyPaths
from gateway.formats.gateway_key_statement import (
    DEFAULT_MAX_CLOCK_SKEW_S,
    DEFAULT_MAX_STATEMENT_AGE_S,
    KeyStatementError,
    OpenedKeyStatement,
    UntrustedStatement,
    open_key_statement,
)
from gateway.formats.log_origin import DEFAULT_LOG_ORIGIN

__all__ = [
    "DEFAULT_LOG_ORIGIN",
    "DEFAULT_STATEMENT_MAX_AGE_S",
    "GatewayKeysError",
    "GatewayTrust",
    "TrustedStatements",
    "gateway_signing_pins",
]

DEFAULT_STATEMENT_MAX_AGE_S = DEFAULT_MAX_STATEMENT_AGE_S
_NO_PINS = (
    "the gateway's keys cannot be verified: no gateway log-signing public key is configured to "
    "trust. Give the gateway's signing.pub.pem (GatewayTrust.pinned, or a key directory with "
    "gateway/signing.pub.pem), or choose GatewayTrust.insecure_tls_alone() to trust TLS alone, "
    "which is unsafe behind a proxy that terminates TLS"
)


class GatewayKeysError(Exception):
    """The gateway's keys could not be had, could not be verified, or none is one this
    library can seal to."""


@dataclass(frozen=True)
class GatewayTrust:
    """What a client trusts the gateway's key list by (module doc).

    ``signing_keys`` are the pins; ``key_dir`` a gateway key directory read again for pins
    when no trusted key signed a statement; ``origin`` the gateway's log origin (``log_origin``
    in its configuration)."""

    signing_keys: tuple[Ed25519PublicKey, ...] = ()
    origin: str = DEFAULT_LOG_ORIGIN
    key_dir: Path | None = None
    max_age_s: float = DEFAULT_STATEMENT_MAX_AGE_S
    max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
    insecure_trust_tls_alone: bool = False

    @classmethod
    def pinned(
        cls, signing_keys: Iterable[Ed25519PublicKey], *, origin: str = DEFAULT_LOG_ORIGIN
    ) -> GatewayTrust:
        """Trust statements signed by one of ``signing_keys`` for the gateway ``origin``."""
        return cls(signing_keys=tuple(signing_keys), origin=origin)

    @classmethod
    def from_key_dir(cls, keys_dir: Path, *, origin: str = DEFAULT_LOG_ORIGIN) -> GatewayTrust:
        """Pins from the key directory ``keys_dir`` (:func:`gateway_signing_pins`; none when it
        holds no gateway keys), read again there when they no longer suffice. Raises
        KeystoreError for a file that is not an Ed25519 public key."""
        return cls(signing_keys=gateway_signing_pins(keys_dir), origin=origin, key_dir=keys_dir)

    @classmethod
    def insecure_tls_alone(cls) -> GatewayTrust:
        """Take the clear key list on the strength of TLS alone, as clients did before the
        gateway signed its keys. UNSAFE wherever TLS may end before the gateway (a proxy or
        load balancer that terminates it): whoever terminates TLS can hand out its own key and
        read every submission sealed to it."""
        return cls(insecure_trust_tls_alone=True)


def gateway_signing_pins(keys_dir: Path) -> tuple[Ed25519PublicKey, ...]:
    """The gateway's usable log-signing public keys in the key directory ``keys_dir``:
    ``gateway/signing.pub.pem`` and ``gateway/signing/*.pub.pem``, each once; retired keys
    (``signing/retired/``) are not pins. Empty when there are none."""
    paths = GatewayKeyPaths.under(keys_dir)
    files = [paths.signing_pub] if paths.signing_pub.is_file() else []
    if paths.signing_dir.is_dir():
        files += sorted(paths.signing_dir.glob("*.pub.pem"))
    return _unique(load_ed25519_public_key(f) for f in files)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TrustedStatements:
    """Checks GetGatewayKeys answers against a :class:`GatewayTrust`, carrying the trusted
    signing keys along from one verified statement to the next (in memory only)."""

    def __init__(self, trust: GatewayTrust, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._trust = trust
        self._clock = clock
        self._trusted = trust.signing_keys
        # Trust moves only to a statement at least as new as the one it came from, so an
        # older answer replayed cannot bring back a key since dropped.
        self._trusted_since = datetime.min.replace(tzinfo=UTC)

    @property
    def trusted(self) -> tuple[Ed25519PublicKey, ...]:
        """The signing keys a statement is checked against now."""
        return self._trusted

    def keys(
        self, response: exchange_pb2.GetGatewayKeysResponse
    ) -> tuple[exchange_pb2.GatewayKey, ...]:
        """The gateway keys of ``response`` this client may seal to; raises GatewayKeysError
        when the answer does not verify (never falls back to its clear keys)."""
        if self._trust.insecure_trust_tls_alone:
            return tuple(response.keys)
        opened = self._open(response)
        if response.keys and tuple(response.keys) != opened.keys:
            raise GatewayKeysError(
                "the gateway's clear key list differs from its signed statement: the answer "
                "was altered on the way; no key of it is used"
            )
        if opened.issued_at >= self._trusted_since:
            self._trusted, self._trusted_since = opened.signing_keys, opened.issued_at
        return opened.keys

    def _open(self, response: exchange_pb2.GetGatewayKeysResponse) -> OpenedKeyStatement:
        if not self._trusted:
            self._trusted = self._reread_pins()
        if not self._trusted:
            raise GatewayKeysError(_NO_PINS)
        try:
            try:
                return self._open_with(response, self._trusted)
            except UntrustedStatement:
                more = self._reread_pins()
                if not more:
                    raise
                self._trusted = _unique([*self._trusted, *more])
                return self._open_with(response, self._trusted)
        except KeyStatementError as exc:
            raise GatewayKeysError(f"the gateway's keys are not taken: {exc}") from None

    def _open_with(
        self, response: exchange_pb2.GetGatewayKeysResponse, trusted: tuple[Ed25519PublicKey, ...]
    ) -> OpenedKeyStatement:
        return open_key_statement(
            response.statement,
            response.signatures,
            trusted,
            origin=self._trust.origin,
            now=self._clock(),
            max_age_s=self._trust.max_age_s,
            max_skew_s=self._trust.max_skew_s,
        )

    def _reread_pins(self) -> tuple[Ed25519PublicKey, ...]:
        """Pins in the configured key directory that are not trusted yet."""
        if self._trust.key_dir is None:
            return ()
        try:
            pins = gateway_signing_pins(self._trust.key_dir)
        except (KeystoreError, OSError) as exc:
            raise GatewayKeysError(
                f"the gateway's signing public keys in {self._trust.key_dir} cannot be read: {exc}"
            ) from None
        known = {_raw(k) for k in self._trusted}
        return tuple(k for k in pins if _raw(k) not in known)


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _unique(keys: Iterable[Ed25519PublicKey]) -> tuple[Ed25519PublicKey, ...]:
    seen: set[bytes] = set()
    out: list[Ed25519PublicKey] = []
    for key in keys:
        raw = _raw(key)
        if raw not in seen:
            seen.add(raw)
            out.append(key)
    return tuple(out)
