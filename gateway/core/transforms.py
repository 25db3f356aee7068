"""Masking transforms: pure functions from a value (or its absence) to what a partner sees.

A transform receives ``None`` when the source holds no value. Transforms ranked above
``presence`` hide even whether a value exists; the others reveal absence as an empty string.

Restrictiveness rank, most restrictive first::

    redact > presence > pseudonym > initials > year_only > postcode_area > truncate

When rules conflict, the transform with the higher rank wins.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.core.model import FieldKind, Params

REDACTED = "[redacted]"
PRESENT = "yes"
ABSENT = "no"
ELLIPSIS = "…"
PSEUDONYM_LENGTH = 16

_YEAR = re.compile(r"(\d{4})(?:-\d{2}(?:-\d{2}(?:[T ].*)?)?)?")
_POSTCODE = re.compile(r"\s*(\d{4})\s*(?:[A-Za-z]{2})?\s*")


def redact(value: str | None) -> str:
    # Absence is redacted too: telling "nothing held" apart would leak presence.
    return REDACTED


def presence(value: str | None) -> str:
    return PRESENT if value is not None and value.strip() else ABSENT


def pseudonym(value: str | None, key: bytes) -> str:
    """Keyed HMAC-SHA256 of the value (surrounding blanks ignored), first 16 hex characters."""
    if not key:
        raise ValueError("pseudonym key must not be empty")
    if value is None:
        return ""
    digest = hmac.new(key, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_LENGTH]


def initials(value: str | None) -> str:
    """Initials of every name part, each followed by a dot, case kept.

    Words are separated by blanks and their initials written without spaces; the parts of
    a hyphenated word keep their hyphen: "Jan de Vries" -> "J.d.V.",
    "Anne-Marie van den Berg" -> "A.-M.v.d.B.". A part without letters or digits is skipped.
    """
    if value is None:
        return ""
    words = []
    for word in value.split():
        parts = [_initial(part) for part in word.split("-")]
        kept = [part for part in parts if part]
        if kept:
            words.append("-".join(kept))
    return "".join(words)


def _initial(part: str) -> str:
    for char in part:
        if char.isalnum():
            return char + "."
    return ""


def year_only(value: str | None) -> str:
    """The year of an ISO 8601 date ("1984-03-07" -> "1984")."""
    if value is None:
        return ""
    match = _YEAR.fullmatch(value.strip())
    if match is None:
        raise ValueError("year_only expects an ISO 8601 date (YYYY-MM-DD)")
    return match.group(1)


def postcode_area(value: str | None) -> str:
    """The four digits of a Dutch postcode ("1234 AB" -> "1234")."""
    if value is None:
        return ""
    match = _POSTCODE.fullmatch(value)
    if match is None:
        raise ValueError("postcode_area expects a Dutch postcode (1234 AB)")
    return match.group(1)


def truncate(value: str | None, length: int) -> str:
    """The first ``length`` characters, with an ellipsis when anything was cut."""
    if length < 1:
        raise ValueError("truncate length must be at least 1")
    if value is None:
        return ""
    if len(value) <= length:
        return value
    return value[:length].rstrip() + ELLIPSIS


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    type: type[int] | type[str]
    required: bool = True
    minimum: int | None = None


_Apply = Callable[[str | None, Mapping[str, str | int], bytes], str]


@dataclass(frozen=True, slots=True)
class Transform:
    """A named transform. ``kinds`` lists the field kinds it applies to; ``None`` means any."""

    name: str
    rank: int
    description: str
    apply: _Apply
    params: tuple[ParamSpec, ...] = ()
    kinds: frozenset[FieldKind] | None = None


def _length(params: Mapping[str, str | int]) -> int:
    length = params.get("length")
    if not isinstance(length, int) or isinstance(length, bool):
        raise ValueError("truncate needs an integer parameter 'length'")
    return length


TRANSFORMS: Mapping[str, Transform] = {
    t.name: t
    for t in (
        Transform("redact", 7, "replaced by [redacted]; not even presence shows",
                  lambda v, p, k: redact(v)),
        Transform("presence", 6, "only whether a value exists: yes or no",
                  lambda v, p, k: presence(v)),
        Transform("pseudonym", 5, "keyed HMAC-SHA256, 16 hex characters; stable per key",
                  lambda v, p, k: pseudonym(v, k)),
        Transform("initials", 4, "initials of the name parts (Jan de Vries -> J.d.V.)",
                  lambda v, p, k: initials(v), kinds=frozenset({FieldKind.NAME})),
        Transform("year_only", 3, "the year of a date (1984-03-07 -> 1984)",
                  lambda v, p, k: year_only(v), kinds=frozenset({FieldKind.DATE})),
        Transform("postcode_area", 2, "the digits of a postcode (1234 AB -> 1234)",
                  lambda v, p, k: postcode_area(v), kinds=frozenset({FieldKind.POSTCODE})),
        Transform("truncate", 1, "the first `length` characters, then an ellipsis",
                  lambda v, p, k: truncate(v, _length(p)),
                  params=(ParamSpec("length", int, minimum=1),),
                  kinds=frozenset({FieldKind.TEXT})),
    )
}


def check_params(name: str, params: Params) -> list[tuple[str | None, str]]:
    """Problems with ``params`` for transform ``name``, as (parameter or None, message)."""
    transform = TRANSFORMS[name]
    specs = {spec.name: spec for spec in transform.params}
    problems: list[tuple[str | None, str]] = []
    given = dict(params)
    for key, value in params:
        spec = specs.get(key)
        if spec is None:
            allowed = ", ".join(sorted(specs)) or "none"
            problems.append((key, f"transform {name!r} has no parameter {key!r} "
                                  f"(parameters: {allowed})"))
        elif spec.type is int and (not isinstance(value, int) or isinstance(value, bool)):
            problems.append((key, f"parameter {key!r} of {name!r} must be an integer"))
        elif spec.type is str and not isinstance(value, str):
            problems.append((key, f"parameter {key!r} of {name!r} must be text"))
        elif spec.minimum is not None and isinstance(value, int) and value < spec.minimum:
            problems.append((key, f"parameter {key!r} of {name!r} must be at least "
                                  f"{spec.minimum}"))
    for spec in transform.params:
        if spec.required and spec.name not in given:
            problems.append((None, f"transform {name!r} needs parameter {spec.name!r}"))
    return problems


def apply_transform(name: str, params: Params, value: str | None, *,
                    pseudonym_key: bytes) -> str:
    """Apply the named transform. Raises ValueError for an unknown transform, bad parameters
    or a value of the wrong shape; the message never contains the value."""
    transform = TRANSFORMS.get(name)
    if transform is None:
        raise ValueError(f"unknown transform {name!r}")
    return transform.apply(value, dict(params), pseudonym_key)
