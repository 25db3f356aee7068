"""Where each key lives in a key directory (the layout ``ketenpoort keys init`` creates).

::

    DIR/README.txt
    DIR/ca/ca.pem, ca.key.pem
    DIR/gateway/tls.pem, tls.key.pem, pseudonym.key,
                signing/<key_id>.key.pem, <key_id>.pub.pem, current, retired/<key_id>.pub.pem,
                hpke/<key_id>.key.pem, <key_id>.pub.pem, current,
                kek/<kek_id>.key, current,
                signing.pub.pem, hpke.pub.pem
    DIR/partners/<id>/tls.pem, tls.key.pem, token.key.pem, token.pub.pem,
                      hpke.key.pem, hpke.pub.pem

Each gateway key kind is a ring (see :mod:`gateway.crypto.file_provider`): its keys, and
``current`` naming the one that signs, is advertised or wraps. ``signing.pub.pem`` and
``hpke.pub.pem`` are copies of the current public keys for verifiers and partners; with a
PKCS#11 provider the private halves live in the token and the key directory holds only
these public files. ``signing/retired/`` keeps the public half of every retired log-signing
key, so checkpoints it signed still verify. A key directory of an earlier layout, with a
single ``signing.key.pem`` and ``hpke.key.pem``, is read as a ring of one key each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CaPaths",
    "DevKeyPaths",
    "GatewayKeyPaths",
    "PartnerKeyPaths",
    "validate_partner_id",
]

# Partner ids become directory names and certificate common names: keep them to a
# portable, unambiguous alphabet that cannot climb out of the partners directory.
_PARTNER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


def validate_partner_id(partner_id: str) -> str:
    if not _PARTNER_ID.match(partner_id):
        raise ValueError(
            f"partner id {partner_id!r} must be 1-64 characters of letters, digits, '_', '.' "
            "or '-', starting with a letter or digit"
        )
    return partner_id


@dataclass(frozen=True)
class CaPaths:
    directory: Path
    cert: Path
    key: Path

    @classmethod
    def under(cls, root: Path) -> CaPaths:
        directory = root / "ca"
        return cls(directory, directory / "ca.pem", directory / "ca.key.pem")


@dataclass(frozen=True)
class GatewayKeyPaths:
    directory: Path
    tls_cert: Path
    tls_key: Path
    signing_key: Path
    signing_pub: Path
    hpke_key: Path
    hpke_pub: Path
    pseudonym_key: Path
    kek_dir: Path
    kek_current: Path
    signing_dir: Path
    signing_current: Path
    signing_retired_dir: Path
    hpke_dir: Path
    hpke_current: Path

    @classmethod
    def under(cls, root: Path) -> GatewayKeyPaths:
        d = root / "gateway"
        return cls(
            directory=d,
            tls_cert=d / "tls.pem",
            tls_key=d / "tls.key.pem",
            # A single-key directory of the earlier layout; read as a ring of one.
            signing_key=d / "signing.key.pem",
            # The current log-signing public key, for verifiers (``--public-key``).
            signing_pub=d / "signing.pub.pem",
            hpke_key=d / "hpke.key.pem",
            # The current HPKE public key, what partners seal submissions to.
            hpke_pub=d / "hpke.pub.pem",
            pseudonym_key=d / "pseudonym.key",
            kek_dir=d / "kek",
            kek_current=d / "kek" / "current",
            signing_dir=d / "signing",
            signing_current=d / "signing" / "current",
            signing_retired_dir=d / "signing" / "retired",
            hpke_dir=d / "hpke",
            hpke_current=d / "hpke" / "current",
        )

    def kek_file(self, kek_id: str) -> Path:
        return self.kek_dir / f"{kek_id}.key"

    def signing_file(self, key_id: str) -> Path:
        return self.signing_dir / f"{key_id}.key.pem"

    def signing_pub_file(self, key_id: str) -> Path:
        return self.signing_dir / f"{key_id}.pub.pem"

    def retired_signing_pub_file(self, key_id: str) -> Path:
        return self.signing_retired_dir / f"{key_id}.pub.pem"

    def hpke_file(self, key_id: str) -> Path:
        return self.hpke_dir / f"{key_id}.key.pem"

    def hpke_pub_file(self, key_id: str) -> Path:
        return self.hpke_dir / f"{key_id}.pub.pem"


@dataclass(frozen=True)
class PartnerKeyPaths:
    partner_id: str
    directory: Path
    tls_cert: Path
    tls_key: Path
    token_key: Path
    token_pub: Path
    hpke_key: Path
    hpke_pub: Path

    @classmethod
    def under(cls, root: Path, partner_id: str) -> PartnerKeyPaths:
        d = root / "partners" / validate_partner_id(partner_id)
        return cls(
            partner_id=partner_id,
            directory=d,
            tls_cert=d / "tls.pem",
            tls_key=d / "tls.key.pem",
            token_key=d / "token.key.pem",
            token_pub=d / "token.pub.pem",
            hpke_key=d / "hpke.key.pem",
            hpke_pub=d / "hpke.pub.pem",
        )


@dataclass(frozen=True)
class DevKeyPaths:
    """The files of one key directory, and which of them the last run created."""

    root: Path
    readme: Path
    ca: CaPaths
    gateway: GatewayKeyPaths
    partners: tuple[PartnerKeyPaths, ...]
    created: tuple[Path, ...] = ()

    def partner(self, partner_id: str) -> PartnerKeyPaths:
        for paths in self.partners:
            if paths.partner_id == partner_id:
                return paths
        raise KeyError(partner_id)
