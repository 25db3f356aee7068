"""The demo's checks: each answer a partner gets is compared with what the policy says.

A disclosure is checked per person: every field's outcome (FieldOutcome.person_id) and every
opened value, against the outcome the policy gives for that person's role and the value the
ZVH's case file or the partner's own system holds, in the form the policy's transform makes of
it; and each source must have been asked for exactly the released fields it holds, once per
person it can find. A triage is checked per partner type and person, a refusal by its status
code and reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from adapters.client import OpenedDisclosure, PartnerClient
from adapters.source_server import InMemoryBackend, RunningSource
from gateway.api.v1 import common_pb2
from gateway.cli.demo_plan import PlanCalls
from gateway.cli.demo_views import (
    IDENTITY_FIELDS,
    CaseView,
    PersonView,
    expected_outcomes,
    source_identity,
    source_record,
    symbol_of,
)
from gateway.core import AccessRequest, CompiledPolicy, Effect, FieldDecision, apply_transform
from gateway.server.app import Gateway

if TYPE_CHECKING:
    from gateway.cli.demo_sources import RuntimeSources

_UNAVAILABLE = common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE
_EFFECTS: dict[int, Effect] = {
    common_pb2.OUTCOME_DISCLOSED: Effect.DISCLOSE,
    common_pb2.OUTCOME_MASKED: Effect.MASK,
    common_pb2.OUTCOME_WITHHELD: Effect.WITHHOLD,
}


@dataclass
class Checks:
    results: list[tuple[bool, str]] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> bool:
        self.results.append((ok, what))
        print(f"  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
        return ok

    @property
    def all_ok(self) -> bool:
        return all(ok for ok, _ in self.results)


@dataclass
class Demo:
    """A running gateway, the partner systems around it and the clients that call it."""

    gateway: Gateway
    # The policy the demo's expectations come from (the gateway runs the shipped one; a test
    # hands in another to see the demo fail).
    policy: CompiledPolicy
    clients: dict[str, PartnerClient]
    claims: dict[str, str]
    plan: dict[str, PlanCalls]
    sources: dict[str, RunningSource]
    backends: dict[str, InMemoryBackend]
    down_partner: str
    pseudonym_key: bytes
    # The partners whose systems answer through the source runtime (the rest: in memory).
    runtimes: RuntimeSources
    checks: Checks = field(default_factory=Checks)
    cases: list[CaseView] = field(default_factory=list)

    @property
    def down_type(self) -> str:
        return self.policy.partner(self.down_partner).type

    def source_of_type(self, partner_type: str) -> RunningSource | None:
        for partner_id, running in self.sources.items():
            if self.policy.partner(partner_id).type == partner_type:
                return running
        return None

    def request_of(
        self, case: CaseView, partner: str, purpose: str, phase: str, justification: str = ""
    ) -> AccessRequest:
        return AccessRequest(
            partner_id=partner,
            role=case.role_of(partner, self.claims[partner]),
            purpose=purpose,
            phase=phase,
            participant=True,
            justification=justification,
            approach=case.approach,
        )


async def disclose(
    demo: Demo,
    case: CaseView,
    partner: str,
    purpose: str,
    phase: str,
    *,
    justification: str = "",
    persons: Sequence[str] = (),
    column: str = "",
) -> OpenedDisclosure:
    """Ask as ``partner`` for the record of ``persons`` (labels; all when empty) and check the
    answer against the policy, person by person; ``column`` names it in the summary table
    (default partner/purpose, with the persons when chosen)."""
    chosen = [case.person(label) for label in persons] or list(case.persons.values())
    answer = await demo.clients[partner].request_disclosure(
        case.case_id, purpose, phase, justification=justification,
        person_ids=[p.person_id for p in chosen] if persons else (),
    )
    case.disclosures += 1
    request = demo.request_of(case, partner, purpose, phase, justification)
    expected = expected_outcomes(demo.policy, request, chosen)
    labels = {p.person_id: p.label for p in chosen} | {"": ""}
    by_id = {p.person_id: p for p in chosen}
    problems: list[str] = []
    cells: dict[str, dict[str, str]] = {}
    for pid, fields in expected.items():
        person = by_id.get(pid)
        for problem in _check_fields(demo, case, partner, person, fields, answer, cells):
            problems.append(f"{labels[pid] or 'case'} {problem}")
    problems += _check_sources(demo, answer, expected, by_id)
    if answer.response.incomplete != _expect_incomplete(demo, expected, by_id):
        problems.append("incomplete or not other than expected")
    name = column or f"{partner}/{purpose}" + (f" ({', '.join(persons)})" if persons else "")
    case.table[name] = cells
    released = sum(
        d.effect is not Effect.WITHHOLD for fields in expected.values() for d in fields.values()
    )
    total = sum(len(fields) for fields in expected.values())
    suffix = (
        f"; incomplete: {', '.join(answer.response.unavailable_sources)} down"
        if answer.response.incomplete
        else ""
    )
    demo.checks.check(
        not problems,
        f"{partner} / {purpose}: {released} of {total} field outcomes over {len(chosen)} "
        f"person(s) released, each as the policy says for the person's role{suffix}"
        + ("" if not problems else " — " + "; ".join(problems[:4])),
    )
    return answer


def _check_fields(
    demo: Demo,
    case: CaseView,
    recipient: str,
    person: PersonView | None,
    fields: dict[str, FieldDecision],
    answer: OpenedDisclosure,
    cells: dict[str, dict[str, str]],
) -> list[str]:
    """The outcomes and opened values of one person's fields (``person`` None: the case's),
    noted in ``cells`` for the summary table."""
    pid = person.person_id if person is not None else ""
    label = person.label if person is not None else ""
    got = answer.outcomes_of(pid)
    values = {f.field: f for f in answer.record.fields if f.person_id == pid}
    problems = [] if set(got) == set(fields) else ["other fields than the policy's"]
    for field_id, d in fields.items():
        outcome = got.get(field_id)
        if (
            outcome is None
            or _EFFECTS.get(outcome.outcome) is not d.effect
            or outcome.transform != (d.transform or "")
        ):
            problems.append(f"{field_id}: outcome differs")
            continue
        cells.setdefault(field_id, {})[label] = symbol_of(d)
        if d.effect is Effect.WITHHOLD:
            if field_id in values:
                problems.append(f"{field_id}: withheld but in the sealed record")
            continue
        raw = _raw_value(demo, case, recipient, person, d)
        problem = _check_value(demo, d, raw, values.get(field_id))
        if problem:
            problems.append(problem)
        elif values[field_id].availability == _UNAVAILABLE:
            cells[field_id][label] += "!"
    return problems


def _expect_incomplete(
    demo: Demo, expected: dict[str, dict[str, FieldDecision]], persons: dict[str, PersonView]
) -> bool:
    """Whether the down system must have been asked: a field of it released about a person
    it could be given something to find by."""
    down = demo.down_type
    return any(
        d.source == down
        and d.effect is not Effect.WITHHOLD
        and source_identity(demo.policy, person, down) is not None
        for pid, person in persons.items()
        for d in expected[pid].values()
    )


def _raw_value(
    demo: Demo, case: CaseView, recipient: str, person: PersonView | None, d: FieldDecision
) -> str | None:
    """What the case file or the partner's system holds for the field (None: nothing)."""
    if person is None:
        return case.case_value(d.field, recipient)
    if d.field in IDENTITY_FIELDS:
        return getattr(person.identity, IDENTITY_FIELDS[d.field]) or None
    record = source_record(
        demo.backends.get(d.source), source_identity(demo.policy, person, d.source)
    )
    return None if record is None else record.fields.get(d.field)


def _check_value(
    demo: Demo, d: FieldDecision, raw: str | None, got: common_pb2.DisclosedField | None
) -> str:
    if got is None:
        return f"{d.field}: released but missing from the sealed record"
    if got.availability == _UNAVAILABLE:
        return "" if d.source == demo.down_type else f"{d.field}: unavailable, its source is up"
    if raw is None and d.transform != "presence":
        return "" if got.availability == common_pb2.AVAILABILITY_NOT_HELD else f"{d.field}: held?"
    want = (
        apply_transform(d.transform, d.params, raw, pseudonym_key=demo.pseudonym_key)
        if d.effect is Effect.MASK and d.transform
        else raw or ""
    )
    return "" if got.value == want else f"{d.field}: value is not the policy's form"


def _check_sources(
    demo: Demo,
    answer: OpenedDisclosure,
    expected: dict[str, dict[str, FieldDecision]],
    persons: dict[str, PersonView],
) -> list[str]:
    """Each source was asked once per person it can find whose fields from it were released,
    for exactly those fields: never a withheld one, never about a person it cannot know."""
    wanted: dict[str, Counter[frozenset[str]]] = {}
    for pid, person in persons.items():
        per_source: dict[str, set[str]] = {}
        for d in expected[pid].values():
            if d.effect is not Effect.WITHHOLD and d.source in demo.backends:
                per_source.setdefault(d.source, set()).add(d.field)
        for source, names in per_source.items():
            if source_identity(demo.policy, person, source) is not None:
                wanted.setdefault(source, Counter())[frozenset(names)] += 1
    problems = []
    for partner_type in demo.backends:
        running = demo.source_of_type(partner_type)
        if running is None:
            continue
        asked = Counter(
            frozenset(seen.fields)
            for seen in running.servicer.seen
            if seen.disclosure_id == answer.response.disclosure_id
        )
        if asked != wanted.get(partner_type, Counter()):
            problems.append(f"{partner_type} source was asked other than released")
    return problems


async def expect_refusal(
    demo: Demo,
    case: CaseView,
    partner: str,
    purpose: str,
    phase: str,
    code: grpc.StatusCode,
    what: str,
    reason: str = "",
) -> None:
    """The request is refused with ``code``; ``reason`` is the refusal code the log record
    must show (checked with the case's log)."""
    try:
        await demo.clients[partner].request_disclosure(case.case_id, purpose, phase)
    except grpc.aio.AioRpcError as exc:
        case.refusals += 1
        if reason:
            case.refusal_codes.append(reason)
        demo.checks.check(exc.code() == code, f"{what}: {exc.code().name}: {exc.details()}")
        return
    demo.checks.check(False, f"{what}: the request was answered")


async def expect_status(
    demo: Demo, call: object, code: grpc.StatusCode, what: str
) -> None:
    """Any call: refused with ``code``."""
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        demo.checks.check(exc.code() == code, f"{what}: {exc.code().name}: {exc.details()}")
        return
    demo.checks.check(False, f"{what}: it was done")
