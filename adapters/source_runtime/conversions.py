"""Turning what a partner's system holds into the catalogue's form of a field.

A field's ``type`` (its catalogue kind) fixes the base conversion; a mapping's ``convert:``
refines it:

- ``text``: whitespace stripped; ``max_length`` (characters) refuses a longer value.
- ``name``: runs of whitespace become one space.
- ``date``: ISO ``YYYY-MM-DD`` out; the system's form in ``format`` (strftime codes,
  "%d-%m-%Y"), ISO when none is given; a date or datetime from a database is taken as it is.
- ``postcode``: a Dutch postcode, normalised to ``1234 AB``.
- ``identifier``: no whitespace inside, printable.
- ``map: {raw: value}``: the system's codes to catalogue values; a code not in the map is an
  error (unless ``default`` is given), never passed through.
- ``join: ", "``: a list (several rows, a JSON array) becomes one value; without it a list is
  an error.

A conversion that fails raises ``ConversionError``: the field is then unavailable for this
answer, never sent with a wrong value. Messages never contain the value itself.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CONVERT_KEYS",
    "Conversion",
    "ConversionError",
    "ConversionSpecError",
    "conversion_from",
    "raw_text",
]

KINDS = ("text", "date", "name", "postcode", "identifier")
CONVERT_KEYS = ("format", "max_length", "map", "default", "join")
# The longest value any field takes unless the mapping says otherwise; keeps a runaway column
# (a whole document in a text field) out of an answer.
DEFAULT_MAX_LENGTH = 4000
_POSTCODE = re.compile(r"^([1-9][0-9]{3})\s?([A-Za-z]{2})$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ConversionError(ValueError):
    """A value that does not convert; the message says why, without the value."""


class ConversionSpecError(ValueError):
    """A ``convert:`` entry that makes no sense; ``key`` names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Conversion:
    kind: str
    format: str | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    mapping: Mapping[str, str] | None = field(default=None)
    default: str | None = None
    join: str | None = None

    def apply(self, raw: Any) -> str | None:
        """The catalogue form of ``raw``; None when the system holds no value (null, empty)."""
        if raw is None:
            return None
        if isinstance(raw, (list, tuple)):
            if self.join is None:
                raise ConversionError(
                    "several values where one was expected (add convert: {join: ', '})"
                )
            parts = [self._one(item) for item in raw]
            kept = [p for p in parts if p is not None]
            return self._limit(self.join.join(kept)) if kept else None
        return self._one(raw)

    def _one(self, raw: Any) -> str | None:
        if raw is None:
            return None
        if self.mapping is not None:
            key = raw_text(raw).strip()
            if key == "":
                return None
            if key in self.mapping:
                raw = self.mapping[key]
            elif self.default is not None:
                raw = self.default
            else:
                raise ConversionError("a code the mapping's map does not list")
        if self.kind == "date":
            return _date(raw, self.format)
        text = raw_text(raw).strip()
        if text == "":
            return None
        if _CONTROL.search(text):
            raise ConversionError("control characters in the value")
        if self.kind == "name":
            text = " ".join(text.split())
        elif self.kind == "postcode":
            match = _POSTCODE.match(text)
            if match is None:
                raise ConversionError("not a Dutch postcode (1234 AB)")
            text = f"{match.group(1)} {match.group(2).upper()}"
        elif self.kind == "identifier":
            if any(c.isspace() for c in text) or not text.isprintable():
                raise ConversionError("an identifier with whitespace or unprintable characters")
        return self._limit(text)

    def _limit(self, text: str) -> str:
        if len(text) > self.max_length:
            raise ConversionError(f"longer than max_length {self.max_length}")
        return text


def raw_text(raw: Any) -> str:
    """A raw value as text, for conversion and for ``source test``'s display."""
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConversionError("bytes that are not UTF-8") from exc
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (dt.datetime, dt.date)):
        return raw.isoformat()
    return str(raw)


def _date(raw: Any, fmt: str | None) -> str | None:
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    text = raw_text(raw).strip()
    if text == "":
        return None
    try:
        parsed = dt.datetime.strptime(text, fmt or "%Y-%m-%d")
    except ValueError:
        raise ConversionError(
            f"not a date in the form {fmt!r}" if fmt else "not an ISO date (YYYY-MM-DD)"
        ) from None
    return parsed.date().isoformat()


def conversion_from(kind: str, spec: Mapping[str, Any] | None) -> Conversion:
    """The conversion for a field of catalogue kind ``kind`` with ``convert:`` entries ``spec``
    (already checked for unknown keys by the mapping reader)."""
    if kind not in KINDS:
        raise ConversionSpecError("type", f"unknown type {kind!r}; one of {', '.join(KINDS)}")
    spec = spec or {}
    fmt = spec.get("format")
    if fmt is not None:
        if not isinstance(fmt, str) or not fmt:
            raise ConversionSpecError("format", "format must be a strftime pattern")
        if kind != "date":
            raise ConversionSpecError("format", "format applies to type date only")
        try:
            dt.date(2001, 2, 3).strftime(fmt)
        except ValueError as exc:
            raise ConversionSpecError("format", f"bad strftime pattern: {exc}") from None
    max_length = spec.get("max_length", DEFAULT_MAX_LENGTH)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ConversionSpecError("max_length", "max_length must be a positive whole number")
    mapping = spec.get("map")
    if mapping is not None:
        if not isinstance(mapping, Mapping) or not mapping:
            raise ConversionSpecError("map", "map must be a mapping of system codes to values")
        mapping = {raw_text(k): raw_text(v) for k, v in mapping.items()}
    default = spec.get("default")
    if default is not None:
        if mapping is None:
            raise ConversionSpecError("default", "default applies only with map")
        default = raw_text(default)
    join = spec.get("join")
    if join is not None and not isinstance(join, str):
        raise ConversionSpecError("join", "join must be the separator text, e.g. ', '")
    return Conversion(kind, fmt, max_length, mapping, default, join)
