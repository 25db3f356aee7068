"""The source seam: how the gateway asks a partner's own system for that partner's fields.

A source adapter is anything with these three coroutines. The gRPC source contract
(gateway.sources.grpc_source) is one; partners connect REST, FHIR, SQL-view and CSV systems
through it with the partner-side source runtime. The broker gives every call a deadline and
treats any exception as the source being unavailable for that request; a source that answers
may still name fields it could not supply just now (``FetchResult.unavailable``), which are
then unavailable exactly as if the source were down for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Subject:
    """Identifying data a source needs to find one person of a case in its own system.

    Any of it may be empty: a person without a BSN, or a partner type the policy gives no
    BSN. ``date_of_birth`` may be partial (YYYY or YYYY-MM); ``reference`` is set only for
    the source of the partner type whose own reference it is. A source that cannot find the
    person answers as for a person it does not know."""

    bsn: str
    name: str
    date_of_birth: str
    address: str = ""
    postcode: str = ""
    reference: str = ""


@dataclass(frozen=True)
class FetchContext:
    """Why a source is asked: it may keep its own record of what it supplied."""

    purpose: str
    disclosure_id: str
    recipient_id: str


@dataclass(frozen=True)
class LookupResult:
    known: bool
    role: str = ""


@dataclass(frozen=True)
class FetchResult:
    """A source's answer to a fetch: the values of the asked fields it holds (a field it does
    not hold is absent), and the asked fields it could not supply just now (a timeout or
    error in part of its system, a value it could not convert). A field in both counts as
    unavailable."""

    values: Mapping[str, str] = field(default_factory=dict)
    unavailable: frozenset[str] = frozenset()


class SourceUnavailable(Exception):
    """A source did not answer in time or answered with an error."""


class SourceNotAnswering(SourceUnavailable):
    """The source could not be reached or did not answer within its deadline: what the
    gateway's circuit breaker per source counts (gateway.sources.breaker)."""


class SourceTimedOut(SourceNotAnswering):
    """The source's deadline passed before it answered."""


class SourceCircuitOpen(SourceUnavailable):
    """The source was not asked: its circuit breaker is open after it stopped answering."""


class Source(Protocol):
    async def fetch(
        self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *, timeout_s: float
    ) -> FetchResult:
        """Values of the named fields the source holds (absent fields are not held), and the
        fields it could not supply just now."""
        ...

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        """Triage: is the subject known here, and in what role?"""
        ...

    async def close(self) -> None: ...
