"""Free text people write about a case at rest: hold reasons, break-glass justifications and
the privacy officer's review comments.

Such text can say anything about a person, so it is encrypted like case data (AES-256-GCM
under a data key wrapped by the key-encryption key), and the log keeps only a keyed digest
of it: a plain SHA-256 would let anyone who can read the log confirm a guessed text.

Keys by class, not by case
    Each text belongs to a class that says who may read it (``TextClass``), and each class
    has its own data keys, apart from the case's key that every use case of the case file
    opens. A later rights feature can then hand a class's texts to one role only (the
    privacy officer reads break-glass justifications and reviews) without opening the case
    file, and nothing else ever decrypts them. A key is per class and case
    (``<class>/case/<case id>``), shredded with the case at the end of its retention; a hold
    on all of a subject's cases has no case, so its reason gets a key of its own
    (``hold_reason/hold/<hold id>``), as does a hold placed on a case already shredded (its
    log records still reach the access report), and so does the comment on a review closed after its
    case was shredded (``privacy_officer/review/<seq>``). The wrapped keys live in the
    ``text_keys`` table, and a key-encryption-key rotation re-wraps them with the cases'
    keys.

The digest
    ``hmac-sha256:<hex>`` of HMAC-SHA256 under a key derived from the pseudonym key with
    HKDF-SHA256 and its own label (like the request digests of
    ``gateway.crypto.request_digest``, domain-separated from them and from pseudonyms),
    over the text's kind and the text, length-prefixed. It proves a stored text unchanged
    since its record was written, to whoever holds the gateway's keys, and nothing to
    anyone else.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.crypto._encoding import length_prefixed

__all__ = [
    "TEXT_DIGEST_PREFIX",
    "KeyScope",
    "TextClass",
    "TextKind",
    "text_aad",
    "text_digest",
    "text_digest_key",
    "text_key_id",
]

TEXT_DIGEST_PREFIX = "hmac-sha256:"
_KEY_INFO = b"ketenpoort/v1 free-text-digest key"
_DIGEST_LABEL = b"ketenpoort/v1 free-text-digest"
_TEXT_LABEL = b"ketenpoort/v1 free-text"
_MIN_SECRET_BYTES = 32


class TextClass(StrEnum):
    """Who a free text is for; each class has data keys of its own."""

    # Break-glass justifications and the privacy officer's review comments: for the privacy
    # officer, who reviews every break-glass use.
    PRIVACY_OFFICER = "privacy_officer"
    # Why a confidentiality hold was placed: for the partner that placed it (and the privacy
    # officer, who answers the subject's access request).
    HOLD_REASON = "hold_reason"


class TextKind(StrEnum):
    """What a text is; bound into its encryption and its digest, so a text of one kind
    never passes for another."""

    HOLD_REASON = "hold_reason"
    REVIEW_COMMENT = "review_comment"
    JUSTIFICATION = "justification"
    # Why an operator cleared the log alarm by override (only its digest is kept).
    ALARM_OVERRIDE_REASON = "alarm_override_reason"
    # Why an operator restored a backup older than a witnessed checkpoint (digest only).
    ROLLBACK_REASON = "rollback_reason"


class KeyScope(StrEnum):
    """What one text key is for."""

    # Every text of the class about one case; shredded with the case.
    CASE = "case"
    # One hold on all of a subject's cases: there is no case key to share.
    HOLD = "hold"
    # One review of a disclosure whose case was shredded before the review was closed.
    REVIEW = "review"


def text_key_id(text_class: TextClass, scope: KeyScope, scope_id: str) -> str:
    """``<class>/<scope>/<id>``: the id of the data key for texts of ``text_class`` in
    ``scope``."""
    if not scope_id:
        raise ValueError("a text key needs the id of what it is for")
    return f"{text_class.value}/{scope.value}/{scope_id}"


def text_aad(key_id: str, kind: TextKind, row_id: str) -> bytes:
    """Associated data of one text: its key, its kind and the row that holds it, so a
    ciphertext copied to another row or kind does not open there."""
    return length_prefixed(_TEXT_LABEL, key_id, kind.value, row_id)


def text_digest_key(pseudonym_key: bytes) -> bytes:
    """HKDF-SHA256 over the pseudonym key, info ``ketenpoort/v1 free-text-digest key``, no
    salt (the input is already a uniformly random key)."""
    if len(pseudonym_key) < _MIN_SECRET_BYTES:
        raise ValueError(f"the pseudonym key must be at least {_MIN_SECRET_BYTES} bytes")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO)
    return hkdf.derive(pseudonym_key)


def text_digest(key: bytes, kind: TextKind, text: str) -> str:
    """``hmac-sha256:<hex>`` over the label, the kind and the UTF-8 text, length-prefixed."""
    message = length_prefixed(_DIGEST_LABEL, kind.value, text)
    return TEXT_DIGEST_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()
