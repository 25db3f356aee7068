"""Where each key lives in a key directory (the layout ``ketenpoort keys init`` creates).

::

    DIR/README.txt
    DIR/ca/ca.pem, ca.key.pem
    DIR/gateway/tls.pem, tls.key.pem, signing.key.pem, signing.pub.pem,
                hpke.key.pem, hpke.pub.pem, pseudonym.key, kek/<kek_id>.key, kek/current
    DIR/partners/<id>/tls.pem, tls.key.pem, token.key.pem, token.pub.pem,
                      hpke.key.pem, hpke.pub.pem
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

    @classmethod
    def under(cls, root: Path) -> GatewayKeyPaths:
        d = root / "gateway"
        return cls(
            directory=d,
            tls_cert=d / "tls.pem",
            tls_key=d / "tls.key.pem",
            signing_key=d / "signing.key.pem",
            signing_pub=d / "signing.pub.pem",
            hpke_key=d / "hpke.key.pem",
            hpke_pub=d / "hpke.pub.pem",
            pseudonym_key=d / "pseudonym.key",
            kek_dir=d / "kek",
            kek_current=d / "kek" / "current",
        )

    def kek_file(self, kek_id: str) -> Path:
        return self.kek_dir / f"{kek_id}.key"


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
