"""Gateway keys inside a PKCS#11 token: the hardware side of the key-provider contract.

Every key is generated in the token, as a token object that is sensitive and not extractable
(``CKA_SENSITIVE`` true, ``CKA_EXTRACTABLE`` false), and is used through the token only:

- log signing: Ed25519 (``CKM_EC_EDWARDS_KEY_PAIR_GEN``, curve id-Ed25519) and ``CKM_EDDSA``;
- HPKE: X25519, of which the token does the Diffie-Hellman step (``CKM_ECDH1_DERIVE``, no
  KDF); the derived secret is returned to the gateway as a session object it may read, and
  the rest of RFC 9180 is done by :mod:`gateway.crypto.hpke_base`. SoftHSM2 2.6 knows no
  ``CKK_EC_MONTGOMERY``: it makes X25519 keys with the Edwards key-pair mechanism and the
  id-X25519 curve, as a ``CKK_EC_EDWARDS`` key, and derives with them; that is what is done
  here;
- key-encryption keys: AES-256, ``CKM_AES_GCM`` with a 12-byte random nonce and the data
  key's binding as AAD, in the same blob layout as file KEKs (nonce || ciphertext || tag).
  Data keys are bytes, not token objects, so they are encrypted (``C_Encrypt``), not
  ``C_WrapKey``-ed; the KEK may encrypt and decrypt and nothing else.

Objects are labelled ``<namespace>/<kind>/<key_id>`` (``CKA_ID`` is the key id). Which key
is current is kept in the token as well, so that every gateway using the token agrees on it:
each rotation adds a private data object labelled ``<namespace>/<kind>/rotation`` with the
value ``<sequence> <key_id> <created>``, and the current key is the one with the highest
sequence whose key is still there. Adding that one object is the atomic step of a rotation;
a key generated without it (a rotation that stopped half-way) is never used. Retirement
destroys the key, then its record.

Public halves are also written to the key directory (:mod:`gateway.crypto.public_exports`),
so that verifiers and partners do not need the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from gateway.crypto.errors import KeystoreError, NoKeyError
from gateway.crypto.keyids import key_id
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.local_keys import new_kek_id
from gateway.crypto.pkcs11_keys import Pkcs11HpkeRecipient, Pkcs11Kek, Pkcs11SigningKey
from gateway.crypto.pkcs11_token import TokenSession
from gateway.crypto.provider import (
    HpkeRecipient,
    KeyInfo,
    KeyKind,
    KeyRing,
    KeyWrappingKey,
    LogSigningKey,
)
from gateway.crypto.provider_settings import Pkcs11Settings
from gateway.crypto.public_exports import (
    drop_public,
    export_current,
    export_public,
    keep_retired_signing_key,
)

if TYPE_CHECKING:
    from pkcs11.types import Session

__all__ = ["Pkcs11KeyProvider"]

_ED25519_OID = "1.3.101.112"
_X25519_OID = "1.3.101.110"
_APPLICATION = "ketenpoort"
_PROBE = b"ketenpoort/v1 key check"


@dataclass(frozen=True)
class _Record:
    seq: int
    key_id: str
    created: str
    handle: Any  # the data object, for retirement


class Pkcs11KeyProvider:
    """Key rings in a PKCS#11 token (module docstring)."""

    def __init__(
        self, settings: Pkcs11Settings, keys_dir: Path, *, pin: str | None = None
    ) -> None:
        self._settings = settings
        self._paths = GatewayKeyPaths.under(keys_dir)
        self._token = TokenSession(
            settings.module, settings.token_label, pin if pin is not None else settings.read_pin()
        )

    @property
    def name(self) -> str:
        return "pkcs11"

    # -- rings ----------------------------------------------------------------------------

    def signing_keys(self) -> KeyRing[LogSigningKey]:
        def load(session: Session) -> KeyRing[LogSigningKey]:
            keys: dict[str, LogSigningKey] = {}
            current = ""
            for record in self._records(session, KeyKind.SIGNING):
                found = self._pair(session, KeyKind.SIGNING, record.key_id)
                if found is not None:
                    private, point = found
                    keys[record.key_id] = Pkcs11SigningKey(
                        self._token, private, Ed25519PublicKey.from_public_bytes(point)
                    )
                    current = record.key_id
            return self._ring(KeyKind.SIGNING, current, keys)

        return self._token.run(load)

    def hpke_keys(self) -> KeyRing[HpkeRecipient]:
        def load(session: Session) -> KeyRing[HpkeRecipient]:
            keys: dict[str, HpkeRecipient] = {}
            current = ""
            for record in self._records(session, KeyKind.HPKE):
                found = self._pair(session, KeyKind.HPKE, record.key_id)
                if found is not None:
                    private, point = found
                    keys[record.key_id] = Pkcs11HpkeRecipient(
                        self._token, private, X25519PublicKey.from_public_bytes(point)
                    )
                    current = record.key_id
            return self._ring(KeyKind.HPKE, current, keys)

        return self._token.run(load)

    def keks(self) -> KeyRing[KeyWrappingKey]:
        def load(session: Session) -> KeyRing[KeyWrappingKey]:
            keys: dict[str, KeyWrappingKey] = {}
            current = ""
            for record in self._records(session, KeyKind.KEK):
                secret = self._object(session, KeyKind.KEK, record.key_id, "SECRET_KEY")
                if secret is not None:
                    keys[record.key_id] = Pkcs11Kek(self._token, secret, record.key_id)
                    current = record.key_id
            return self._ring(KeyKind.KEK, current, keys)

        return self._token.run(load)

    # -- change ---------------------------------------------------------------------------

    def rotate(self, kind: KeyKind) -> str:
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        def make(session: Session) -> tuple[str, bytes | None]:
            records = self._records(session, kind)
            seq = records[-1].seq + 1 if records else 1
            if kind is KeyKind.KEK:
                new_id, point = self._generate_kek(session), None
            else:
                new_id, point = self._generate_pair(session, kind)
                # The public half is on disk before the key can sign or be sealed to.
                export_public(self._paths, kind, new_id, _public(kind, point))
            self._add_record(session, kind, seq, new_id, created)
            return new_id, point

        new_id, point = self._token.run(make)
        if point is not None:
            export_current(self._paths, kind, _public(kind, point))
        return new_id

    def retire(self, kind: KeyKind, key_id: str) -> None:
        def remove(session: Session) -> None:
            records = self._records(session, kind)
            usable = [
                r for r in records if self._object(session, kind, r.key_id, _CLASS[kind])
                is not None
            ]
            if usable and usable[-1].key_id == key_id:
                raise KeystoreError(
                    f"{key_id} is the current {kind} key; rotate first, then retire it"
                )
            record = next((r for r in records if r.key_id == key_id), None)
            if record is None:
                raise KeystoreError(f"no {kind} key with id {key_id!r}")
            if kind is KeyKind.SIGNING:
                found = self._pair(session, kind, key_id)
                if found is not None:
                    keep_retired_signing_key(
                        self._paths, key_id, Ed25519PublicKey.from_public_bytes(found[1])
                    )
            for obj in self._objects(session, kind, key_id):
                obj.destroy()
            record.handle.destroy()

        self._token.run(remove)
        if kind is not KeyKind.KEK:
            drop_public(self._paths, kind, key_id)

    # -- looking --------------------------------------------------------------------------

    def stamp(self, kind: KeyKind) -> object:
        """The rotation records of ``kind``: they change with every rotation and retirement."""
        return self._token.run(
            lambda session: tuple((r.seq, r.key_id) for r in self._records(session, kind))
        )

    def list_keys(self, kind: KeyKind) -> list[KeyInfo]:
        def look(session: Session) -> list[KeyInfo]:
            usable = [
                r for r in self._records(session, kind)
                if self._object(session, kind, r.key_id, _CLASS[kind]) is not None
            ]
            return [
                KeyInfo(kind, r.key_id, r is usable[-1], r.created) for r in usable
            ]

        return self._token.run(look)

    def close(self) -> None:
        self._token.close()

    def __repr__(self) -> str:
        return f"Pkcs11KeyProvider({self._settings!r})"

    # -- token objects --------------------------------------------------------------------

    def _label(self, kind: KeyKind, name: str) -> str:
        return f"{self._settings.namespace}/{kind.value}/{name}"

    def _records(self, session: Session, kind: KeyKind) -> list[_Record]:
        """The rotation records of ``kind``, oldest first."""
        from pkcs11.constants import Attribute, ObjectClass

        label = self._label(kind, "rotation")
        records: list[_Record] = []
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: label}):
            try:
                seq_text, kid, created = bytes(obj[Attribute.VALUE]).decode("ascii").split(" ")
                seq = int(seq_text)
            except (UnicodeDecodeError, ValueError):
                raise KeystoreError(f"token object {label!r} is not a rotation record") from None
            records.append(_Record(seq, kid, created, obj))
        # Two rotations at once get the same sequence; the key id decides between them.
        return sorted(records, key=lambda r: (r.seq, r.key_id))

    def _objects(self, session: Session, kind: KeyKind, kid: str) -> list[Any]:
        from pkcs11.constants import Attribute

        return list(session.get_objects({Attribute.LABEL: self._label(kind, kid)}))

    def _object(self, session: Session, kind: KeyKind, kid: str, object_class: str) -> Any:
        from pkcs11.constants import Attribute, ObjectClass

        label = self._label(kind, kid)
        template = {Attribute.CLASS: ObjectClass[object_class], Attribute.LABEL: label}
        found = list(session.get_objects(template))
        if len(found) > 1:
            raise KeystoreError(f"token holds {len(found)} objects labelled {label!r}")
        return found[0] if found else None

    def _pair(self, session: Session, kind: KeyKind, kid: str) -> tuple[Any, bytes] | None:
        """The private key object and the raw 32-byte public key, or None when retired."""
        from pkcs11.constants import Attribute

        private = self._object(session, kind, kid, "PRIVATE_KEY")
        public = self._object(session, kind, kid, "PUBLIC_KEY")
        if private is None or public is None:
            return None
        point = _raw_point(bytes(public[Attribute.EC_POINT]))
        if key_id(_public(kind, point)) != kid:
            raise KeystoreError(f"token key {self._label(kind, kid)!r} is not the key its id names")
        return private, point

    def _ring(self, kind: KeyKind, current: str, keys: dict[str, Any]) -> KeyRing[Any]:
        if not keys:
            raise NoKeyError(
                f"no {kind} key in token {self._settings.token_label!r} yet "
                f"(ketenpoort keys rotate {kind.value})"
            )
        return KeyRing(current, keys)

    def _generate_pair(self, session: Session, kind: KeyKind) -> tuple[str, bytes]:
        from pkcs11.constants import Attribute, MechanismFlag
        from pkcs11.mechanisms import KeyType, Mechanism
        from pkcs11.util.ec import encode_named_curve_parameters

        signing = kind is KeyKind.SIGNING
        use = MechanismFlag.SIGN if signing else MechanismFlag.DERIVE
        public, private = session.generate_keypair(
            KeyType.EC_EDWARDS,
            0,
            store=True,
            capabilities=use | (MechanismFlag.VERIFY if signing else MechanismFlag(0)),
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            public_template={
                Attribute.EC_PARAMS: encode_named_curve_parameters(
                    _ED25519_OID if signing else _X25519_OID
                ),
                Attribute.PRIVATE: False,
            },
            private_template=_private_template(sign=signing, derive=not signing),
        )
        try:
            point = _raw_point(bytes(public[Attribute.EC_POINT]))
            kid = key_id(_public(kind, point))
            for obj in (public, private):
                obj[Attribute.LABEL] = self._label(kind, kid)
                obj[Attribute.ID] = kid.encode("ascii")
            self._check_pair(kind, private, point)
        except BaseException:
            # A key that failed its check must not linger unlabelled in the token.
            for obj in (public, private):
                obj.destroy()
            raise
        return kid, point

    def _check_pair(self, kind: KeyKind, private: Any, point: bytes) -> None:
        """Use a fresh key once and check the result against its public half, so a token that
        encodes keys differently is found at rotation, not at the first checkpoint."""
        from pkcs11.constants import Attribute
        from pkcs11.mechanisms import KDF, KeyType, Mechanism

        if kind is KeyKind.SIGNING:
            signature = bytes(private.sign(_PROBE, mechanism=Mechanism.EDDSA))
            try:
                Ed25519PublicKey.from_public_bytes(point).verify(signature, _PROBE)
            except InvalidSignature:
                raise KeystoreError(
                    "the token's Ed25519 signature does not verify under its public key"
                ) from None
            return
        peer = X25519PrivateKey.generate()
        peer_raw = peer.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        secret = private.derive_key(
            KeyType.GENERIC_SECRET,
            256,
            mechanism=Mechanism.ECDH1_DERIVE,
            mechanism_param=(KDF.NULL, None, peer_raw),
            template={Attribute.TOKEN: False, Attribute.SENSITIVE: False,
                      Attribute.EXTRACTABLE: True},
        )
        try:
            shared = bytes(secret[Attribute.VALUE])
        finally:
            secret.destroy()
        if shared != peer.exchange(X25519PublicKey.from_public_bytes(point)):
            raise KeystoreError("the token's X25519 result does not match its public key")

    def _generate_kek(self, session: Session) -> str:
        from pkcs11.constants import Attribute, MechanismFlag
        from pkcs11.mechanisms import KeyType

        kek_id = new_kek_id()
        session.generate_key(
            KeyType.AES,
            256,
            id=kek_id.encode("ascii"),
            label=self._label(KeyKind.KEK, kek_id),
            store=True,
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
            template={
                **_private_template(sign=False, derive=False),
                Attribute.ENCRYPT: True,
                Attribute.DECRYPT: True,
                Attribute.WRAP: False,
                Attribute.UNWRAP: False,
            },
        )
        return kek_id

    def _add_record(
        self, session: Session, kind: KeyKind, seq: int, kid: str, created: str
    ) -> None:
        from pkcs11.constants import Attribute, ObjectClass

        session.create_object(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.TOKEN: True,
                # Only a logged-in user may add one: a record moves the current key.
                Attribute.PRIVATE: True,
                Attribute.APPLICATION: _APPLICATION,
                Attribute.LABEL: self._label(kind, "rotation"),
                Attribute.VALUE: f"{seq} {kid} {created}".encode("ascii"),
            }
        )


_CLASS = {KeyKind.SIGNING: "PRIVATE_KEY", KeyKind.HPKE: "PRIVATE_KEY", KeyKind.KEK: "SECRET_KEY"}


def _private_template(*, sign: bool, derive: bool) -> dict[Any, Any]:
    from pkcs11.constants import Attribute

    return {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.SIGN: sign,
        Attribute.DERIVE: derive,
        Attribute.DECRYPT: False,
        Attribute.UNWRAP: False,
    }


def _raw_point(ec_point: bytes) -> bytes:
    """The 32 raw bytes of an Edwards or Montgomery public key: a DER OCTET STRING (as
    PKCS#11 3.0 and SoftHSM2 give it) or the bare bytes (as some tokens do)."""
    if len(ec_point) == 34 and ec_point[:2] == b"\x04\x20":
        return ec_point[2:]
    if len(ec_point) == 32:
        return ec_point
    raise KeystoreError("the token gave a public key in an unknown encoding")


def _public(kind: KeyKind, point: bytes) -> Ed25519PublicKey | X25519PublicKey:
    if kind is KeyKind.SIGNING:
        return Ed25519PublicKey.from_public_bytes(point)
    return X25519PublicKey.from_public_bytes(point)
