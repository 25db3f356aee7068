"""The masking transforms, one by one, through apply_transform as the edge calls them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import apply_transform
from gateway.core.transforms import TRANSFORMS

KEY = b"pseudonym key for tests"


def apply(name: str, value: str | None, **params: str | int) -> str:
    return apply_transform(name, tuple(sorted(params.items())), value, pseudonym_key=KEY)


def test_ranks_follow_the_documented_order() -> None:
    by_rank = sorted(TRANSFORMS.values(), key=lambda t: t.rank, reverse=True)
    assert [t.name for t in by_rank] == ["redact", "presence", "pseudonym", "initials",
                                         "year_only", "postcode_area", "truncate"]


@pytest.mark.parametrize("value", ["Jan de Vries", "", None])
def test_redact_hides_even_whether_a_value_exists(value: str | None) -> None:
    assert apply("redact", value) == "[redacted]"


@pytest.mark.parametrize(("value", "shown"), [
    ("suspect", "yes"), ("  x ", "yes"), ("", "no"), ("   ", "no"), (None, "no")])
def test_presence(value: str | None, shown: str) -> None:
    assert apply("presence", value) == shown


def test_pseudonym_is_keyed_hmac_sha256_truncated_to_16_hex() -> None:
    # HMAC-SHA256 test vector: key "key", message "The quick brown fox jumps over the lazy dog".
    fox = "The quick brown fox jumps over the lazy dog"
    assert apply_transform("pseudonym", (), fox, pseudonym_key=b"key") == "f7bc83f430538424"


def test_pseudonym_is_stable_per_key_and_differs_between_keys() -> None:
    first = apply("pseudonym", "123456782")
    assert first == apply("pseudonym", " 123456782 ")
    assert first != apply_transform("pseudonym", (), "123456782", pseudonym_key=b"other")
    assert len(first) == 16 and int(first, 16) >= 0
    assert apply("pseudonym", None) == ""


def test_pseudonym_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError, match="key"):
        apply_transform("pseudonym", (), "123456782", pseudonym_key=b"")


@pytest.mark.parametrize(("name", "initials"), [
    ("Jan de Vries", "J.d.V."),
    ("Anne-Marie van den Berg", "A.-M.v.d.B."),
    ("  Piet   Jansen ", "P.J."),
    ("'t Hart", "t.H."),
    ("Émile Zola", "É.Z."),
    ("", ""),
    (None, ""),
])
def test_initials(name: str | None, initials: str) -> None:
    assert apply("initials", name) == initials


@pytest.mark.parametrize(("date", "year"), [
    ("1984-03-07", "1984"), ("1984-03", "1984"), ("1984", "1984"),
    ("1984-03-07T10:00:00Z", "1984"), (None, "")])
def test_year_only(date: str | None, year: str) -> None:
    assert apply("year_only", date) == year


@pytest.mark.parametrize(("postcode", "area"), [
    ("1234 AB", "1234"), ("1234ab", "1234"), (" 7511  AB ", "7511"), ("7511", "7511"),
    (None, "")])
def test_postcode_area(postcode: str | None, area: str) -> None:
    assert apply("postcode_area", postcode) == area


@pytest.mark.parametrize(("name", "value"), [
    ("year_only", "7 maart 1984"), ("postcode_area", "Hoofdstraat 1, Enschede")])
def test_malformed_values_raise_without_echoing_the_value(name: str, value: str) -> None:
    with pytest.raises(ValueError) as caught:
        apply(name, value)
    assert value not in str(caught.value)
    assert "1984" not in str(caught.value) and "Enschede" not in str(caught.value)


@pytest.mark.parametrize(("value", "length", "shown"), [
    ("Subject was seen at the station", 10, "Subject wa…"),
    ("Subject was seen", 8, "Subject…"),
    ("short", 10, "short"),
    ("exactly", 7, "exactly"),
    (None, 5, ""),
])
def test_truncate(value: str | None, length: int, shown: str) -> None:
    assert apply("truncate", value, length=length) == shown


def test_truncate_needs_a_valid_length() -> None:
    with pytest.raises(ValueError, match="length"):
        apply("truncate", "text")
    with pytest.raises(ValueError, match="length"):
        apply("truncate", "text", length=0)


def test_unknown_transform() -> None:
    with pytest.raises(ValueError, match="unknown transform 'blur'"):
        apply("blur", "x")


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_truncate_never_shows_more_than_asked(value: str, length: int) -> None:
    shown = apply("truncate", value, length=length)
    assert len(shown) <= length + 1
    assert shown == value or shown.endswith("…")


@given(st.one_of(st.none(), st.text()))
def test_presence_and_redact_reveal_at_most_one_bit(value: str | None) -> None:
    assert apply("presence", value) in {"yes", "no"}
    assert apply("redact", value) == "[redacted]"


@given(st.text())
def test_initials_only_use_letters_of_the_name(value: str) -> None:
    shown = apply("initials", value)
    assert set(shown) <= set(value) | {".", "-"}
    initials = shown.replace(".", "").replace("-", "")
    assert len(initials) <= len(value.split()) + value.count("-")
