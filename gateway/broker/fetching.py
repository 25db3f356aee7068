"""Asking sources concurrently, each under a deadline. A source that fails or is late
makes its fields unavailable for this request; it never fails the whole request. A source that
answers but names fields it could not supply just now makes exactly those fields unavailable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gateway.broker.sources import (
    FetchContext,
    FetchResult,
    LookupResult,
    Source,
    SourceCircuitOpen,
    SourceTimedOut,
    Subject,
)

T = TypeVar("T")
# One question to one source about one person: (partner type, person id).
Ask = tuple[str, str]

# Called with (partner type, result, seconds); result is "ok", "timeout", "circuit_open" (not
# asked: the source's circuit breaker is open) or "error".
SourceObserver = Callable[[str, str, float], None]


@dataclass(frozen=True)
class FetchOutcome:
    values: dict[str, str]  # field -> raw value, for fields a source holds
    unavailable: frozenset[str]  # partner types that did not answer, or not for every field
    unavailable_fields: frozenset[str] = frozenset()  # fields an answering source could not supply


async def fetch_all(
    sources: Mapping[str, Source],
    wanted: Mapping[str, Sequence[str]],  # partner type -> fields
    subject: Subject,
    ctx: FetchContext,
    deadline_s: float,
    observe: SourceObserver | None = None,
) -> FetchOutcome:
    types = sorted(wanted)

    def call(t: str, source: Source) -> Awaitable[FetchResult]:
        return source.fetch(subject, wanted[t], ctx, timeout_s=deadline_s)

    results = await _gather(sources, types, call, deadline_s, observe)
    values: dict[str, str] = {}
    unavailable: set[str] = set()
    unavailable_fields: set[str] = set()
    for t, result in zip(types, results, strict=True):
        if result is None:
            unavailable.add(t)
            continue
        answer = _asked_only(result, wanted[t])
        values.update(answer.values)
        if answer.unavailable:
            unavailable.add(t)
            unavailable_fields |= answer.unavailable
    return FetchOutcome(values, frozenset(unavailable), frozenset(unavailable_fields))


async def lookup_all(
    sources: Mapping[str, Source],
    subject: Subject,
    triage_id: str,
    deadline_s: float,
    observe: SourceObserver | None = None,
) -> dict[str, LookupResult | None]:
    types = sorted(sources)

    def call(_: str, source: Source) -> Awaitable[LookupResult]:
        return source.lookup(subject, triage_id, timeout_s=deadline_s)

    results = await _gather(sources, types, call, deadline_s, observe)
    return dict(zip(types, results, strict=True))


async def fetch_per_person(
    sources: Mapping[str, Source],
    wanted: Mapping[Ask, Sequence[str]],  # (partner type, person id) -> fields
    subjects: Mapping[Ask, Subject],  # what that source may be given about that person
    ctx: FetchContext,
    deadline_s: float,
    observe: SourceObserver | None = None,
) -> dict[Ask, FetchResult | None]:
    """One fetch per (source, person), all at once under the same deadline: what each
    answered (values and unavailable fields, only of the fields it was asked), or None where
    it did not answer."""
    asks = sorted(wanted)

    def call(ask: Ask, source: Source) -> Awaitable[FetchResult]:
        return source.fetch(subjects[ask], wanted[ask], ctx, timeout_s=deadline_s)

    results = await _gather_asks(sources, asks, call, deadline_s, observe)
    return {
        ask: None if result is None else _asked_only(result, wanted[ask])
        for ask, result in zip(asks, results, strict=True)
    }


def _asked_only(result: FetchResult, asked: Sequence[str]) -> FetchResult:
    """A source answers only for the fields it was asked; anything else is dropped. A field
    both supplied and named unavailable counts as unavailable."""
    allowed = set(asked)
    unavailable = frozenset(f for f in result.unavailable if f in allowed)
    values = {
        f: v
        for f, v in result.values.items()
        if f in allowed and f not in unavailable and isinstance(v, str)
    }
    return FetchResult(values, unavailable)


async def lookup_per_person(
    sources: Mapping[str, Source],
    subjects: Mapping[Ask, Subject],  # (partner type, person id) -> what it may be given
    triage_id: str,
    deadline_s: float,
    observe: SourceObserver | None = None,
) -> dict[Ask, LookupResult | None]:
    """One triage lookup per (source, person), all at once under the same deadline."""
    asks = sorted(subjects)

    def call(ask: Ask, source: Source) -> Awaitable[LookupResult]:
        return source.lookup(subjects[ask], triage_id, timeout_s=deadline_s)

    results = await _gather_asks(sources, asks, call, deadline_s, observe)
    return dict(zip(asks, results, strict=True))


async def _gather_asks(
    sources: Mapping[str, Source],
    asks: Sequence[Ask],
    call: Callable[[Ask, Source], Awaitable[T]],
    deadline_s: float,
    observe: SourceObserver | None,
) -> list[T | None]:
    # Keyed by position: the same source is asked once per person.
    keyed = {str(i): ask for i, ask in enumerate(asks)}
    by_key = {key: sources[ask[0]] for key, ask in keyed.items() if ask[0] in sources}

    def one(key: str, source: Source) -> Awaitable[T]:
        return call(keyed[key], source)

    def type_of(key: str) -> str:
        return keyed[key][0]

    return await _gather(by_key, list(keyed), one, deadline_s, observe, type_of)


async def _gather(
    sources: Mapping[str, Source],
    types: Sequence[str],
    call: Callable[[str, Source], Awaitable[T]],
    deadline_s: float,
    observe: SourceObserver | None,
    type_of: Callable[[str], str] = str,
) -> list[T | None]:
    """Call each key's source; ``type_of`` names a key's partner type for ``observe``."""

    async def one(key: str) -> T | None:
        t = type_of(key)
        source = sources.get(key)
        if source is None:
            _note(observe, t, "error", 0.0)
            return None
        start = time.perf_counter()
        try:
            # The adapter carries the deadline to its transport; this is the backstop. A
            # timeout scope, unlike wait_for, runs the call in this task instead of a new one.
            async with asyncio.timeout(deadline_s + 0.25):
                result = await call(key, source)
        except (TimeoutError, SourceTimedOut):
            _note(observe, t, "timeout", time.perf_counter() - start)
            return None
        except SourceCircuitOpen:
            _note(observe, t, "circuit_open", time.perf_counter() - start)
            return None
        except Exception:  # any failure of a source means: unavailable for this request
            _note(observe, t, "error", time.perf_counter() - start)
            return None
        _note(observe, t, "ok", time.perf_counter() - start)
        return result

    if len(types) == 1:
        # Nothing to run beside it: no task of its own needed.
        return [await one(types[0])]
    return list(await asyncio.gather(*(one(t) for t in types)))


def _note(observe: SourceObserver | None, t: str, result: str, seconds: float) -> None:
    if observe is not None:
        observe(t, result, seconds)
