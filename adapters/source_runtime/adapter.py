"""What the source runtime asks of an adapter to a partner's own system.

An adapter asks its system ONLY for the asked fields' groups, honours the deadline it is given,
and maps every failure to ``NotKnown`` (the system does not know this person),
``SystemUnavailable`` (the system could not answer at all) or ``Found.unavailable`` (these
fields could not be supplied just now): never an exception of its own escaping, never a wrong
value. Values come back converted to the catalogue's form (adapters.source_runtime.conversions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "FieldReading",
    "Found",
    "NotKnown",
    "Person",
    "SystemAdapter",
    "SystemUnavailable",
]


@dataclass(frozen=True)
class Person:
    """Only the identifiers the gateway gave (the policy decides which a partner type gets);
    an identifier not given is the empty string."""

    bsn: str = ""
    name: str = ""
    date_of_birth: str = ""
    address: str = ""
    postcode: str = ""
    reference: str = ""

    def __repr__(self) -> str:
        # Identifiers are personal data: a Person in a traceback or log line shows only which
        # identifiers it carries.
        given = [name for name in IDENTIFIER_NAMES if getattr(self, name)]
        return f"Person(<{', '.join(given) or 'no identifiers'}>)"

    __str__ = __repr__

    def given(self) -> dict[str, str]:
        """The identifiers that were given, by name."""
        return {name: getattr(self, name) for name in IDENTIFIER_NAMES if getattr(self, name)}


IDENTIFIER_NAMES = ("bsn", "name", "date_of_birth", "address", "postcode", "reference")


class NotKnown(Exception):
    """The system does not know this person."""


class SystemUnavailable(Exception):
    """The system could not answer (timeout, 5xx, refused, malformed whole answer). The message
    says what went wrong in general terms and never carries a value or an identifier."""


@dataclass(frozen=True)
class FieldReading:
    """For ``ketenpoort source test`` only: what the system held for one field (``raw``), what
    it converted to (``value``), and the problem when it did not convert or was not read."""

    field: str
    raw: str | None
    value: str | None
    problem: str = ""


@dataclass(frozen=True)
class Found:
    """The system knows the person. ``values``: asked fields it holds, converted to catalogue
    form (an asked field it does not hold is absent). ``unavailable``: asked fields this answer
    could not supply (a field group's query failed, a value did not convert). ``readings``:
    filled only when asked with ``explain=True``."""

    values: Mapping[str, str]
    unavailable: frozenset[str] = frozenset()
    readings: tuple[FieldReading, ...] = ()


class SystemAdapter(Protocol):
    async def fetch(
        self, person: Person, fields: Sequence[str], *, deadline_s: float, explain: bool = False
    ) -> Found:
        """The asked ``fields`` of ``person``, within ``deadline_s`` seconds; raises NotKnown or
        SystemUnavailable."""
        ...

    async def lookup(self, person: Person, *, deadline_s: float) -> tuple[bool, str]:
        """(known, role) of ``person``, within ``deadline_s`` seconds; raises SystemUnavailable."""
        ...

    async def close(self) -> None: ...
