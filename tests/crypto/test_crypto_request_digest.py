"""Keyed request digests: equal for equal content, unguessable without the gateway's key."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.crypto import subject_pseudonym
from gateway.crypto.request_digest import request_digest, request_digest_key, same_digest

PSEUDONYM_KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
OP = "ExchangeService/RegisterCase"
CONTENT = ("123456782", "Anna de Vries", "1990-01-02", "", "", "code_rood", "reason", "", "zvh")


def test_the_digest_follows_the_documented_recipe() -> None:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"ketenpoort/v1 request-digest key"
    ).derive(PSEUDONYM_KEY)
    assert request_digest_key(PSEUDONYM_KEY) == key
    fields = ("a", "bc")
    message = b"ketenpoort/v1 request-digest"
    for part in (OP, "2", *fields):
        message += len(part.encode()).to_bytes(4, "big") + part.encode()
    assert request_digest(key, OP, fields) == hmac.new(key, message, hashlib.sha256).digest()


def test_equal_content_gives_equal_digests_and_any_change_another() -> None:
    key = request_digest_key(PSEUDONYM_KEY)
    digest = request_digest(key, OP, CONTENT)
    assert len(digest) == 32
    assert same_digest(digest, request_digest(key, OP, list(CONTENT)))
    changed = [CONTENT[:i] + (CONTENT[i] + "x",) + CONTENT[i + 1 :] for i in range(len(CONTENT))]
    others = {request_digest(key, OP, c) for c in changed}
    others |= {
        request_digest(key, "ExchangeService/AddToCaseFile", CONTENT),
        request_digest(key, OP, CONTENT[:-1]),  # one invitee fewer
        request_digest(key, OP, (*CONTENT, "ggz")),  # one more
        request_digest(request_digest_key(OTHER_KEY), OP, CONTENT),
    }
    assert digest not in others and len(others) == len(changed) + 4
    # Where one field ends and the next begins is part of the content.
    assert request_digest(key, OP, ("ab", "c")) != request_digest(key, OP, ("a", "bc"))


def test_the_digest_cannot_be_found_from_the_bsn_alone() -> None:
    """Neither a plain hash of the content, nor anything the pseudonym key makes directly."""
    key = request_digest_key(PSEUDONYM_KEY)
    assert key != PSEUDONYM_KEY
    digest = request_digest(key, OP, CONTENT)
    plain = hashlib.sha256("".join(CONTENT).encode()).digest()
    with_pseudonym_key = request_digest(PSEUDONYM_KEY, OP, CONTENT)
    assert digest not in (plain, with_pseudonym_key)
    assert digest.hex()[:32] not in subject_pseudonym(PSEUDONYM_KEY, CONTENT[0])


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError):
        request_digest_key(b"short")
