"""`ketenpoort keys pins`: the pins a privacy officer writes under a partner's `keys:`.

Reads the partners' public keys from a key directory and prints, per partner, the YAML to
paste into partners.yaml. Only public keys are read; a pin reveals nothing secret.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.crypto._pem import load_certificate
from gateway.crypto.devkeys import load_partner_public_keys
from gateway.crypto.errors import CryptoError
from gateway.crypto.keyids import key_pin
from gateway.crypto.layout import PartnerKeyPaths


def partner_pins(keys_dir: Path, partner_id: str) -> dict[str, str]:
    """The token, sealing and (when a client certificate is there) TLS pins of a partner."""
    keys = load_partner_public_keys(keys_dir, partner_id)
    pins = {"token": key_pin(keys.token_key), "sealing": key_pin(keys.hpke_key)}
    cert_path = PartnerKeyPaths.under(keys_dir, partner_id).tls_cert
    if cert_path.exists():
        pins["tls"] = key_pin(load_certificate(cert_path).public_key())
    return pins


def print_pins(keys_dir: Path, partner_ids: Sequence[str]) -> int:
    """Print a `keys:` block per partner; exit 1 if any partner's keys cannot be read."""
    failed = False
    for partner_id in partner_ids:
        try:
            pins = partner_pins(keys_dir, partner_id)
        except (CryptoError, OSError, ValueError) as exc:
            print(f"ketenpoort keys pins: {partner_id}: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"  - id: {partner_id}")
        print("    keys:")
        for use, pin in pins.items():
            print(f"      {use}: {pin}")
    return 1 if failed else 0
