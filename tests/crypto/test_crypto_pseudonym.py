from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.crypto import is_valid_bsn, normalise_bsn, subject_pseudonym

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))

# Pass the eleven test: 9*1+8*1+7*1+6*2+5*2+4*2+3*3+2*3-1*3 = 66, and so on.
VALID = ["111222333", "123456782", "999999990", "012345672"]
INVALID = ["111222334", "123456789", "000000000", "12345", "1234567890", "12a456782", "", "   "]


@pytest.mark.parametrize("bsn", VALID)
def test_valid_bsns_pass(bsn: str) -> None:
    assert is_valid_bsn(bsn)


@pytest.mark.parametrize("bsn", INVALID)
def test_invalid_bsns_fail(bsn: str) -> None:
    assert not is_valid_bsn(bsn)


def test_normalisation_drops_separators_and_pads_to_nine_digits() -> None:
    assert normalise_bsn("1234.56.782") == "123456782"
    assert normalise_bsn(" 123 456 782 ") == "123456782"
    assert normalise_bsn("12345672") == "012345672"


def test_pseudonym_matches_the_documented_recipe() -> None:
    digest = hmac.new(KEY, b"123456782", hashlib.sha256).hexdigest()
    assert subject_pseudonym(KEY, "123456782") == "ps_" + digest[:32]


def test_pseudonym_is_stable_across_written_forms() -> None:
    assert subject_pseudonym(KEY, "123456782") == subject_pseudonym(KEY, "1234.56.782")
    assert subject_pseudonym(KEY, "12345672") == subject_pseudonym(KEY, "012345672")


def test_pseudonym_is_keyed() -> None:
    assert subject_pseudonym(KEY, "123456782") != subject_pseudonym(OTHER_KEY, "123456782")
    assert subject_pseudonym(KEY, "123456782") != subject_pseudonym(KEY, "111222333")


def test_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        subject_pseudonym(b"short", "123456782")


@pytest.mark.parametrize("bsn", ["123456789", "987654321", "0000.00.000", "12x456782"])
def test_invalid_bsn_is_rejected_without_echoing_it(bsn: str) -> None:
    with pytest.raises(ValueError) as caught:
        subject_pseudonym(KEY, bsn)
    message = str(caught.value)
    digits = "".join(c for c in bsn if c.isdigit())
    assert bsn not in message
    assert digits not in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def _with_check_digit(first_eight: str) -> str | None:
    total = sum(int(d) * w for d, w in zip(first_eight, range(9, 1, -1), strict=True))
    check = total % 11
    return None if check == 10 else first_eight + str(check)


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_any_single_digit_error_is_detected(first_eight: str) -> None:
    bsn = _with_check_digit(first_eight)
    if bsn is None or bsn == "000000000":
        return
    assert is_valid_bsn(bsn)
    for position in range(9):
        for digit in "0123456789":
            if digit != bsn[position]:
                assert not is_valid_bsn(bsn[:position] + digit + bsn[position + 1 :])


def test_pseudonyms_of_many_bsns_do_not_collide() -> None:
    key = os.urandom(32)
    bsns = {b for b in (_with_check_digit(f"{n:08d}") for n in range(1, 3000)) if b}
    assert len({subject_pseudonym(key, b) for b in bsns}) == len(bsns)
