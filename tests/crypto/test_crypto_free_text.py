"""Keyed digests and bindings of free texts (gateway.crypto.free_text)."""

from __future__ import annotations

import hashlib
import os

import pytest

from gateway.crypto.envelope import DataKey
from gateway.crypto.errors import EnvelopeError
from gateway.crypto.free_text import (
    KeyScope,
    TextClass,
    TextKind,
    text_aad,
    text_digest,
    text_digest_key,
    text_key_id,
)
from gateway.crypto.request_digest import request_digest_key

PSEUDONYM_KEY = bytes(range(32))


def test_the_digest_is_keyed_and_no_plain_hash_of_the_text() -> None:
    key = text_digest_key(PSEUDONYM_KEY)
    digest = text_digest(key, TextKind.HOLD_REASON, "onderzoek")
    assert digest.startswith("hmac-sha256:") and len(digest) == len("hmac-sha256:") + 64
    assert hashlib.sha256(b"onderzoek").hexdigest() not in digest
    # Without the gateway's key a guess cannot be checked: another key, another digest.
    other = text_digest_key(os.urandom(32))
    assert text_digest(other, TextKind.HOLD_REASON, "onderzoek") != digest
    # The same text as another kind is another digest; the same inputs the same digest.
    assert text_digest(key, TextKind.REVIEW_COMMENT, "onderzoek") != digest
    assert text_digest(key, TextKind.HOLD_REASON, "onderzoek") == digest


def test_the_digest_key_is_its_own_derivation() -> None:
    key = text_digest_key(PSEUDONYM_KEY)
    assert key not in (PSEUDONYM_KEY, request_digest_key(PSEUDONYM_KEY))
    with pytest.raises(ValueError):
        text_digest_key(b"short")


def test_key_ids_and_bindings() -> None:
    assert text_key_id(TextClass.PRIVACY_OFFICER, KeyScope.CASE, "c_1") == (
        "privacy_officer/case/c_1"
    )
    assert text_key_id(TextClass.HOLD_REASON, KeyScope.HOLD, "h_1") == "hold_reason/hold/h_1"
    with pytest.raises(ValueError):
        text_key_id(TextClass.HOLD_REASON, KeyScope.HOLD, "")
    key = DataKey.generate()
    token = key.encrypt(b"tekst", text_aad("k", TextKind.HOLD_REASON, "h_1"))
    assert key.decrypt(token, text_aad("k", TextKind.HOLD_REASON, "h_1")) == b"tekst"
    for aad in (
        text_aad("k", TextKind.HOLD_REASON, "h_2"),
        text_aad("k", TextKind.REVIEW_COMMENT, "h_1"),
        text_aad("k2", TextKind.HOLD_REASON, "h_1"),
    ):
        with pytest.raises(EnvelopeError):
            key.decrypt(token, aad)
