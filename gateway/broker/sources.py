"""The source seam: how the gateway asks a partner's own system for that partner's fields.

A source adapter is anything with these three coroutines. The gRPC source contract
(gateway.sources.grpc_source) is one; REST, FHIR, SQL-view and CSV adapters implement the same
protocol. The broker gives every call a deadline and treats any exception as the source
being unavailable for that request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


class SourceUnavailable(Exception):
    """A source did not answer in time or answered with an error."""


class Source(Protocol):
    async def fetch(
        self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *, timeout_s: float
    ) -> Mapping[str, str]:
        """Values of the named fields the source holds; absent fields are not held."""
        ...

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        """Triage: is the subject known here, and in what role?"""
        ...

    async def close(self) -> None: ...
