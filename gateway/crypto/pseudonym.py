"""Keyed subject pseudonyms: the case index links cases by person without storing a BSN.

Without the pseudonym key, a pseudonym cannot be recomputed from a BSN, so the ~10^8
possible BSNs cannot be tried one by one against a leaked index.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = [
    "PSEUDONYM_PREFIX",
    "is_valid_bsn",
    "normalise_bsn",
    "person_pseudonym",
    "subject_pseudonym",
]

PSEUDONYM_PREFIX = "ps_"
_PSEUDONYM_HEX_CHARS = 32
_MIN_KEY_BYTES = 32
# Written forms people use: "123456782", "1234.56.782", "123 456 782", "12345678".
_SEPARATORS = re.compile(r"[\s.\-]")
_DIGITS = re.compile(r"[0-9]{8,9}\Z")
_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
# Domain separation: a BSN's HMAC input is nine digits, a person id's starts with this label,
# so a person pseudonym never equals the pseudonym of any BSN.
_PERSON_LABEL = b"ketenpoort/v1 person-id\n"


def normalise_bsn(bsn: str) -> str:
    """The nine-digit form of ``bsn``: separators dropped, an 8-digit BSN left-padded with 0.

    Raises ValueError (without the BSN in the message) for anything that is not a valid BSN.
    """
    digits = _SEPARATORS.sub("", bsn)
    if not _DIGITS.match(digits):
        raise ValueError("not a BSN: expected 8 or 9 digits")
    digits = digits.zfill(9)
    if digits == "000000000":
        raise ValueError("not a BSN: all zeros")
    if sum(int(d) * w for d, w in zip(digits, _WEIGHTS, strict=True)) % 11 != 0:
        raise ValueError("not a BSN: fails the eleven test (elfproef)")
    return digits


def is_valid_bsn(bsn: str) -> bool:
    """Whether ``bsn`` is a well-formed BSN that passes the eleven test."""
    try:
        normalise_bsn(bsn)
    except ValueError:
        return False
    return True


def subject_pseudonym(key: bytes, bsn: str) -> str:
    """``"ps_"`` + the first 32 hex characters of HMAC-SHA256(key, normalised BSN)."""
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the pseudonym key must be at least {_MIN_KEY_BYTES} bytes")
    normalised = normalise_bsn(bsn)
    digest = hmac.new(key, normalised.encode("ascii"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:_PSEUDONYM_HEX_CHARS]


def person_pseudonym(key: bytes, person_id: str) -> str:
    """The pseudonym of a person registered without a BSN: ``"ps_"`` + the first 32 hex
    characters of HMAC-SHA256(key, label || person id), under a label no BSN input carries.

    Fixed when the person is added: a BSN learnt later is kept beside it (case_persons
    bsn_pseudonym), so the person's earlier records keep their pseudonym."""
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the pseudonym key must be at least {_MIN_KEY_BYTES} bytes")
    if not person_id:
        raise ValueError("a person id is required")
    message = _PERSON_LABEL + person_id.encode("utf-8")
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:_PSEUDONYM_HEX_CHARS]
