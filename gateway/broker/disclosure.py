"""The disclosure and triage use cases: decide per field, fetch only what is released,
transform, log durably, then seal the answer to the recipient.

Order matters: the policy decides before any source is asked, so a withheld field is never
fetched; the accountability record is committed before the answer is returned. A break-glass
justification is stored in the case file only after the record that names it (and that
queues it for review) is committed, so no failure on the way leaves a justification without
its record; everything that can fail on the request's content (sources, transforms) runs
before either. Should storing the justification fail after that (the database gone), the
call fails and the review item names an entry the case file lacks: the privacy officer
sees a review without its text, never a justification nobody is asked to review.

A case is about one or more persons. The fields about a person (subject.*, the partners'
systems' fields) are decided once per person, by the person's role in the case; the fields
about the case (case.*) once. A source is asked only about the persons whose fields from it
were released, once per (source, person), with only the identifiers its partner type may
hold. The log gets one record per person the disclosure concerns, all in one commit: the
same disclosure id, that person's pseudonym, that person's field entries and the case-level
ones. A refusal is one record under the case's pseudonym (its first person's): a refusal
before anything is released names no person of the case.

A masking transform that cannot apply to the value held (a date of birth stored before the
gateway took only YYYY-MM-DD, a source's postcode in another form) withholds that field and
says so (availability ``transform_failed``, in the answer and the log); it never fails the
request.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.case_access import NOT_PARTICIPANT, NOT_PROCESREGISSEUR, CaseAccess
from gateway.broker.case_reading import CaseReading, PersonIdentity
from gateway.broker.casefile import ESCALATION_FIELD, JUSTIFICATION_FIELD, CaseFile
from gateway.broker.context import BrokerContext, SealingKey
from gateway.broker.errors import InvalidRequest, PhaseMismatch, RecipientKeyMissing, Refused
from gateway.broker.fetching import Ask, SourceObserver, fetch_per_person, lookup_per_person
from gateway.broker.ids import new_id
from gateway.broker.log_events import FieldEntry, RecordKind, detail_of
from gateway.broker.persons import (
    about_person,
    check_person_ids,
    for_source,
    has_identifier,
)
from gateway.broker.records import OUTCOME_OF_EFFECT, decision_event, event
from gateway.broker.regie import PROCESS_DIRECTOR, effective_role, takes_part
from gateway.broker.sealed_record import ReleasedValue, encode_record
from gateway.broker.sealed_triage import encode_triage_answer
from gateway.broker.sources import FetchContext, Subject
from gateway.core import (
    AccessRequest,
    CompiledPolicy,
    Decision,
    Effect,
    FieldDecision,
    RefusalCode,
    RequestError,
    apply_transform,
)
from gateway.crypto.sealing import (
    MAX_REQUEST_NONCE_BYTES,
    MIN_REQUEST_NONCE_BYTES,
    SealBinding,
    SealedBox,
    TriageBinding,
    seal,
    seal_triage,
)
from gateway.store.cases import CaseRow, CaseSnapshot, EntryRow, IdentifiedBy, PersonRow

log = logging.getLogger("ketenpoort.broker")

ZVH_SOURCE = "zvh"
TRANSFORM_FAILED = "transform_failed"
TRIAGE_FIELD = "triage.role"
MAX_FIELDS_PER_REQUEST = 500
MAX_JUSTIFICATION_CHARS = 4000


@dataclass(frozen=True)
class DisclosureInput:
    case_id: str
    purpose: str
    phase: str
    fields: tuple[str, ...] = ()
    justification: str = ""
    # The client's fresh nonce: the answer is sealed bound to it and the case (version 2).
    request_nonce: bytes = b""
    # The persons asked about; empty: every current person of the case.
    person_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldResult:
    """The decision on one field for one person ("" for a case-level field), and whether
    its value could be obtained. Never a value."""

    person_id: str
    decision: FieldDecision
    availability: str


@dataclass(frozen=True)
class DisclosureResult:
    disclosure_id: str
    fields: tuple[FieldResult, ...]
    sealed: SealedBox
    unavailable_sources: tuple[str, ...]
    policy_version: str
    log_seq: int
    # (person id, role in the case) of the persons the disclosure is about.
    persons: tuple[tuple[str, str], ...] = ()

    @property
    def incomplete(self) -> bool:
        return bool(self.unavailable_sources)

    @property
    def decisions(self) -> tuple[FieldDecision, ...]:
        return tuple(f.decision for f in self.fields)


@dataclass(frozen=True)
class TriageHit:
    """One partner type's answer. ``asked`` is false for a partner type whose fields the
    policy knows but whose source system this gateway has not configured: nobody was asked,
    so its "not known" is no answer (``answered`` false, the triage incomplete)."""

    partner_type: str
    answered: bool
    known: bool
    role: str
    asked: bool = True
    # The person of the case the answer is about.
    person_id: str = ""


@dataclass(frozen=True)
class TriageResult:
    """The triage answer as it may leave: per-partner hits only when the policy discloses
    the triage role; under a mask only whether any partner knows the subject. ``sealed``
    holds the hits and ``known_anywhere`` sealed to the caller; only it leaves the gateway."""

    triage_id: str
    effect: Effect
    hits: tuple[TriageHit, ...]
    policy_version: str
    log_seq: int
    known_anywhere: bool
    incomplete: bool
    sealed: SealedBox


class Disclosures:
    def __init__(
        self,
        ctx: BrokerContext,
        casefile: CaseFile,
        observe: SourceObserver | None = None,
        *,
        require_request_nonce: bool = False,
    ) -> None:
        """``require_request_nonce``: refuse requests without a nonce rather than answer them
        sealed in format version 1, bound to nothing of the request's."""
        self._ctx = ctx
        self._casefile = casefile
        self._reading = CaseReading(ctx)
        self._access = CaseAccess(ctx)
        self._observe = observe
        self._require_nonce = require_request_nonce

    async def request(
        self, who: Principal, trace: TraceContext, inp: DisclosureInput
    ) -> DisclosureResult:
        if len(inp.fields) > MAX_FIELDS_PER_REQUEST:
            raise InvalidRequest(f"at most {MAX_FIELDS_PER_REQUEST} fields per request")
        if len(inp.justification) > MAX_JUSTIFICATION_CHARS:
            raise InvalidRequest(
                f"justification is longer than {MAX_JUSTIFICATION_CHARS} characters"
            )
        _check_nonce(inp.request_nonce, self._require_nonce)
        check_person_ids(inp.person_ids)
        started = self._ctx.clock()
        snap = await self._reading.snapshot(inp.case_id)
        case = snap.case
        policy = self._ctx.policy.current
        await self._access.refuse_if_shredded(who, trace, policy, case)
        purpose = policy.purposes.get(inp.purpose)
        # Only a break-glass purpose has a window; other requests skip the scan of the entries.
        minutes = self._break_glass_minutes(snap) if purpose and purpose.break_glass else None
        # The case-level decision first: it refuses (and logs) what no person changes (not a
        # participant, purpose or phase not allowed), before any person of the case is named.
        decision = await self._decide(
            who, trace, case, policy, inp, break_glass_minutes=minutes, allow_nothing=True
        )
        persons = _chosen_persons(snap, inp.person_ids)
        results = _per_person(policy, decision, persons)
        if not any(r.decision.effect is not Effect.WITHHOLD for r in results):
            seq = await self._refuse(
                who, trace, case, policy, inp, RefusalCode.NOTHING_PERMITTED.value, decision
            )
            raise Refused(
                RefusalCode.NOTHING_PERMITTED.value,
                "the policy releases none of the requested fields for this partner type, "
                "role, purpose and phase",
                seq,
            )
        recipient_key = self._recipient_key(who)
        disclosure_id = new_id("d_")
        values, results, unavailable = await self._gather(
            who, policy, snap, persons, decision, results, disclosure_id
        )
        justification = await self._justification(who, case, decision, inp)
        status = "incomplete" if unavailable else "ok"
        now = self._ctx.clock()
        targets = persons or (_case_level_person(case),)
        records = await self._ctx.log.append_many([
            event(
                RecordKind.DISCLOSURE,
                principal=who,
                trace=trace,
                at=now,
                case_id=case.case_id,
                subject_pseudonym=person.pseudonym,
                subject_id_type=person.subject_id_type,
                phase=inp.phase,
                policy_version=decision.policy_version,
                status=status,
                purpose=decision.purpose,
                legal_basis=decision.legal_basis,
                disclosure_id=disclosure_id,
                justification_ref=justification.entry_id if justification else "",
                fields=_entries(results, person.person_id),
                started_at=started,
                detail=detail_of(person_role=person.role_in_case),
            )
            for person in targets
        ])
        if justification is not None:
            await self._casefile.store_justification(justification)
        person_refs = tuple((p.person_id, p.role_in_case) for p in persons)
        plaintext = encode_record(
            disclosure_id=disclosure_id,
            case_id=case.case_id,
            recipient_id=who.partner_id,
            purpose=inp.purpose,
            phase=inp.phase,
            issued_at=_rfc3339(now),
            policy_version=decision.policy_version,
            values=values,
            persons=person_refs,
        )
        binding = SealBinding(
            disclosure_id=disclosure_id,
            recipient_id=who.partner_id,
            purpose=inp.purpose,
            case_id=case.case_id if inp.request_nonce else "",
            request_nonce=inp.request_nonce,
        )
        return DisclosureResult(
            disclosure_id=disclosure_id,
            fields=tuple(results),
            sealed=seal(plaintext, recipient_key.key, binding),
            unavailable_sources=tuple(sorted(unavailable)),
            policy_version=decision.policy_version,
            log_seq=records[0].seq,
            persons=person_refs,
        )

    async def triage(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        purpose: str,
        request_nonce: bytes = b"",
        partner_types: tuple[str, ...] = (),
        person_ids: tuple[str, ...] = (),
    ) -> TriageResult:
        """Ask the chosen partner types' systems (all with a source when none are chosen)
        whether they know each chosen person (every current one when none are chosen)."""
        _check_nonce(request_nonce, self._require_nonce)
        check_person_ids(person_ids)
        snap = await self._reading.snapshot(case_id)
        case = snap.case
        policy = self._ctx.policy.current
        await self._access.refuse_if_shredded(who, trace, policy, case)
        inp = DisclosureInput(case_id, purpose, case.phase, (TRIAGE_FIELD,))
        await self._require_triage_asker(who, trace, case, policy, inp)
        decision = await self._decide(
            who, trace, case, policy, inp, kind=RecordKind.TRIAGE, allow_nothing=True
        )
        types = _chosen_types(policy, self._ctx.sources, partner_types)
        persons = _chosen_persons(snap, person_ids)
        # The triage role is about a person: decided per person's role; a person for whom
        # it is withheld is not asked about.
        results = [r for r in _per_person(policy, decision, persons)
                   if r.decision.effect is not Effect.WITHHOLD]
        if not results:
            seq = await self._refuse(
                who, trace, case, policy, inp, RefusalCode.NOTHING_PERMITTED.value, decision
            )
            raise Refused(
                RefusalCode.NOTHING_PERMITTED.value,
                "the policy releases no triage answer for this partner type, role, purpose "
                "and phase",
                seq,
            )
        # The most restrictive outcome over the persons: one answer shape for the question.
        effect = (
            Effect.DISCLOSE
            if all(r.decision.effect is Effect.DISCLOSE for r in results)
            else Effect.MASK
        )
        d = next(r.decision for r in results if r.decision.effect is effect)
        # Checked before any source is asked: an answer that cannot be sealed is not gathered.
        recipient_key = self._recipient_key(who)
        triage_id = new_id("t_")
        asked_persons = {r.person_id for r in results}
        chosen = tuple(p for p in persons if p.person_id in asked_persons)
        subjects: dict[Ask, Subject] = {}
        for p in chosen:
            identity = self._reading.person_identity(snap, p, policy)
            for t in types.configured:
                subject = _source_subject(policy, identity, t)
                if has_identifier(subject):
                    subjects[(t, p.person_id)] = subject
        answers = await lookup_per_person(
            self._ctx.sources, subjects, triage_id, self._ctx.source_deadline_s, self._observe
        )
        hits: list[TriageHit] = []
        for p in chosen:
            for t in (*types.configured, *types.missing):
                ask = (t, p.person_id)
                if ask not in answers:
                    # No source of that type here, or nothing it may be given to find the
                    # person by: nobody was asked, which is no "not known".
                    hits.append(TriageHit(t, False, False, "", asked=False,
                                          person_id=p.person_id))
                    continue
                a = answers[ask]
                hits.append(TriageHit(
                    partner_type=t,
                    answered=a is not None,
                    known=bool(a and a.known),
                    role=a.role if a and a.known and effect is Effect.DISCLOSE else "",
                    person_id=p.person_id,
                ))
        complete = all(h.answered for h in hits)
        now = self._ctx.clock()
        records = await self._ctx.log.append_many([
            event(
                RecordKind.TRIAGE,
                principal=who,
                trace=trace,
                at=now,
                case_id=case.case_id,
                subject_pseudonym=p.pseudonym,
                subject_id_type=p.subject_id_type,
                phase=case.phase,
                policy_version=decision.policy_version,
                purpose=decision.purpose,
                legal_basis=decision.legal_basis,
                status="ok" if complete else "incomplete",
                disclosure_id=triage_id,
                # One entry per partner type asked about this person: each lookup is a supply
                # of the person's identifiers to that partner.
                fields=tuple(
                    FieldEntry(
                        field=TRIAGE_FIELD,
                        category=d.category,
                        outcome="disclosed" if effect is Effect.DISCLOSE else "masked",
                        transform=d.transform if effect is Effect.MASK else None,
                        source=h.partner_type,
                        availability=_triage_availability(h),
                    )
                    for h in hits
                    if h.person_id == p.person_id
                ),
                detail=detail_of(person_role=p.role_in_case),
            )
            for p in chosen
        ])
        record = records[0]
        hits_out = tuple(hits)
        # Which partner knows the subject is itself sensitive (a GGZ client, a suspect): a
        # masked answer says only whether anyone does.
        shown = hits_out if effect is Effect.DISCLOSE else ()
        known_anywhere = any(h.known for h in hits_out)
        plaintext = encode_triage_answer(
            triage_id=triage_id,
            recipient_id=who.partner_id,
            purpose=purpose,
            hits=shown,
            known_anywhere=known_anywhere,
        )
        binding = TriageBinding(
            triage_id=triage_id,
            recipient_id=who.partner_id,
            purpose=purpose,
            case_id=case.case_id if request_nonce else "",
            request_nonce=request_nonce,
        )
        return TriageResult(
            triage_id,
            effect,
            shown,
            decision.policy_version,
            record.seq,
            known_anywhere=known_anywhere,
            incomplete=not complete,
            sealed=seal_triage(plaintext, recipient_key.key, binding),
        )

    async def _decide(
        self,
        who: Principal,
        trace: TraceContext,
        case: CaseRow,
        policy: CompiledPolicy,
        inp: DisclosureInput,
        kind: RecordKind = RecordKind.DISCLOSURE,
        break_glass_minutes: int | None = None,
        allow_nothing: bool = False,
    ) -> Decision:
        """The policy's case-level decision, or a logged refusal raised as an error. With
        ``allow_nothing`` a decision that releases nothing is returned rather than refused:
        the persons' decisions may still release something."""
        request = AccessRequest(
            partner_id=who.partner_id,
            # A regie role claim counts only for the case's holder (gateway.broker.regie).
            role=effective_role(case, who),
            purpose=inp.purpose,
            phase=inp.phase,
            participant=takes_part(case, who),
            fields=inp.fields,
            justification=inp.justification,
            break_glass_minutes=break_glass_minutes,
            approach=case.approach,
        )
        try:
            decision = policy.decide(request)
        except RequestError as exc:
            await self._refuse(who, trace, case, policy, inp, _code_of(exc))
            raise InvalidRequest(str(exc)) from exc
        if inp.phase != case.phase:
            seq = await self._refuse(who, trace, case, policy, inp, "phase_mismatch", decision)
            raise PhaseMismatch(
                f"the case is in phase {case.phase!r}, not {inp.phase!r} (log record {seq})"
            )
        if decision.refusal is not None and not (
            allow_nothing and decision.refusal.code is RefusalCode.NOTHING_PERMITTED
        ):
            seq = await self._refuse(
                who, trace, case, policy, inp, decision.refusal.code.value, decision
            )
            raise Refused(decision.refusal.code.value, decision.refusal.message, seq)
        return decision

    async def _require_triage_asker(
        self,
        who: Principal,
        trace: TraceContext,
        case: CaseRow,
        policy: CompiledPolicy,
        inp: DisclosureInput,
    ) -> None:
        """Triage is the procesregisseur's question: it chooses whom to ask, about whom.
        A partner outside the case learns nothing about its persons, not even hit/no-hit;
        another participant is refused too. Both refusals are logged."""
        if not takes_part(case, who):
            code, message = NOT_PARTICIPANT, (
                "partner does not take part in this case; triage about its persons is "
                "answered to its procesregisseur only"
            )
        elif effective_role(case, who) != PROCESS_DIRECTOR:
            code, message = NOT_PROCESREGISSEUR, (
                "only the case's procesregisseur asks triage about its persons"
            )
        else:
            return
        seq = await self._refuse(who, trace, case, policy, inp, code)
        raise Refused(code, message, seq)

    def _break_glass_minutes(self, snap: CaseSnapshot) -> int | None:
        """Whole minutes since the break-glass window of the case opened, if it did.

        Break-glass access is a window for the case, opened by its first justified use
        (whoever made it); the policy's max_duration_minutes closes it. An escalation by the
        procesregisseur (CaseService.Escalate) reopens it: the window then opens again with
        the first justified use after the newest escalation.
        """
        escalated = max(
            (e.created_at for e in snap.entries if e.field == ESCALATION_FIELD), default=None
        )
        first = next(
            (
                e.created_at
                for e in snap.entries
                if e.field == JUSTIFICATION_FIELD
                and (escalated is None or e.created_at >= escalated)
            ),
            None,
        )
        if first is None:
            return None
        if first.tzinfo is None:
            first = first.replace(tzinfo=UTC)
        return max(0, int((self._ctx.clock() - first).total_seconds() // 60))

    async def _refuse(
        self,
        who: Principal,
        trace: TraceContext,
        case: CaseRow,
        policy: CompiledPolicy,
        inp: DisclosureInput,
        code: str,
        decision: Decision | None = None,
    ) -> int:
        now = self._ctx.clock()
        if decision is not None:
            ev = decision_event(
                RecordKind.REFUSAL,
                decision,
                principal=who,
                trace=trace,
                at=now,
                case_id=case.case_id,
                subject_pseudonym=case.subject_pseudonym,
                status="refused",
                availability={},
                refusal_code=code,
            )
        else:
            ev = event(
                RecordKind.REFUSAL,
                principal=who,
                trace=trace,
                at=now,
                case_id=case.case_id,
                subject_pseudonym=case.subject_pseudonym,
                phase=case.phase,
                policy_version=policy.version,
                status="refused",
                purpose_id=inp.purpose[:64],
                refusal_code=code,
            )
        return (await self._ctx.log.append(ev)).seq

    def _recipient_key(self, who: Principal) -> SealingKey:
        key = self._ctx.sealing_keys().get(who.partner_id)
        if key is None:
            raise RecipientKeyMissing(
                f"partner {who.partner_id!r} has no registered sealing key; no answer can be sealed"
            )
        return key

    async def _justification(
        self, who: Principal, case: CaseRow, decision: Decision, inp: DisclosureInput
    ) -> EntryRow | None:
        """The case-file entry of a justification the purpose asks for (the log keeps its
        id), or None."""
        if not inp.justification or not (
            decision.purpose.break_glass or decision.purpose.requires_justification
        ):
            return None
        return await self._casefile.justification_entry(who, case, inp.justification)

    async def _gather(
        self,
        who: Principal,
        policy: CompiledPolicy,
        snap: CaseSnapshot,
        persons: tuple[PersonRow, ...],
        decision: Decision,
        results: list[FieldResult],
        disclosure_id: str,
    ) -> tuple[list[ReleasedValue], list[FieldResult], frozenset[str]]:
        """The released values, the results with their availability, and the partner types
        that did not answer. Each source is asked once per person whose fields from it were
        released, with only the identifiers its partner type may hold."""
        released = [r for r in results if r.decision.effect is not Effect.WITHHOLD]
        zvh: dict[str, list[str]] = defaultdict(list)
        wanted: dict[Ask, list[str]] = defaultdict(list)
        for r in released:
            if r.decision.source == ZVH_SOURCE:
                zvh[r.person_id].append(r.decision.field)
            else:
                wanted[(r.decision.source, r.person_id)].append(r.decision.field)
        raw: dict[tuple[str, str], str] = {}
        for person_id, fields in zvh.items():
            for f, v in self._reading.values(
                snap, fields, person_id, recipient=who.partner_id
            ).items():
                raw[(person_id, f)] = v
        unavailable: set[str] = set()
        failed: set[Ask] = set()
        # (person id, field) a source answered for but could not supply just now.
        not_supplied: set[tuple[str, str]] = set()
        if wanted:
            identities = {p.person_id: self._reading.person_identity(snap, p, policy)
                          for p in persons}
            subjects = {ask: _source_subject(policy, identities[ask[1]], ask[0])
                        for ask in wanted}
            # A source that may be given nothing to find the person by is not asked: it
            # could only answer "not known".
            asks = {ask: f for ask, f in wanted.items() if has_identifier(subjects[ask])}
            ctx = FetchContext(decision.purpose.id, disclosure_id, who.partner_id)
            answers = await fetch_per_person(
                self._ctx.sources, asks, subjects, ctx, self._ctx.source_deadline_s,
                self._observe,
            )
            for (source, person_id), answer in answers.items():
                if answer is None:
                    unavailable.add(source)
                    failed.add((source, person_id))
                    continue
                for f, v in answer.values.items():
                    raw[(person_id, f)] = v
                if answer.unavailable:
                    # As if the source were down for exactly these fields.
                    unavailable.add(source)
                    not_supplied.update((person_id, f) for f in answer.unavailable)
        key = self._ctx.keystore.pseudonym_key
        values: list[ReleasedValue] = []
        shaped: list[FieldResult] = []
        for r in results:
            d = r.decision
            if d.effect is Effect.WITHHOLD:
                shaped.append(r)
                continue
            if (d.source, r.person_id) in failed or (r.person_id, d.field) in not_supplied:
                state, value = "source_unavailable", ""
            else:
                state, value = _shape(d, raw.get((r.person_id, d.field)), key)
            if state == TRANSFORM_FAILED:
                values.append(ReleasedValue(d.field, Effect.WITHHOLD, None, "", state,
                                            r.person_id))
                d = replace(d, effect=Effect.WITHHOLD, transform=None, params=(),
                            reason=TRANSFORM_FAILED)
            else:
                values.append(ReleasedValue(d.field, d.effect, d.transform, value, state,
                                            r.person_id))
            shaped.append(FieldResult(r.person_id, d, state))
        return values, shaped, frozenset(unavailable)


def _case_level_person(case: CaseRow) -> PersonRow:
    """The one person of a case registered before cases had persons: its identity entries
    are case-level (person id ""), its pseudonym the case's."""
    return PersonRow(
        case_id=case.case_id,
        person_id="",
        role_in_case="subject",
        pseudonym=case.subject_pseudonym,
        identified_by=IdentifiedBy.BSN,
        added_by=case.registered_by,
        added_at=case.created_at,
    )


def _chosen_persons(snap: CaseSnapshot, person_ids: tuple[str, ...]) -> tuple[PersonRow, ...]:
    """The current persons the request names (all when it names none), in case order."""
    if not snap.persons:
        if person_ids:
            raise InvalidRequest("person_ids[0] is not a current person of the case")
        return (_case_level_person(snap.case),)
    current = snap.current_persons
    if not person_ids:
        return current
    by_id = {p.person_id: p for p in current}
    for i, person_id in enumerate(person_ids):
        if person_id not in by_id:
            raise InvalidRequest(f"person_ids[{i}] is not a current person of the case")
    wanted = set(person_ids)
    return tuple(p for p in current if p.person_id in wanted)


def _per_person(
    policy: CompiledPolicy, decision: Decision, persons: tuple[PersonRow, ...]
) -> list[FieldResult]:
    """The case-level fields from ``decision`` once, and the fields about persons once per
    person, decided for the person's role in the case (one decision per distinct role), in
    the order the fields were decided."""
    by_role: dict[str, Decision] = {}
    for p in persons:
        if p.role_in_case not in by_role:
            by_role[p.role_in_case] = policy.decide(
                replace(decision.request, person_role=p.role_in_case)
            )
    results: list[FieldResult] = []
    for i, d in enumerate(decision.fields):
        if not about_person(policy.field(d.field)):
            results.append(FieldResult("", d, "not_requested"))
            continue
        for p in persons:
            person_decision = by_role[p.role_in_case].fields[i]
            results.append(FieldResult(p.person_id, person_decision, "not_requested"))
    return results


def _source_subject(policy: CompiledPolicy, identity: PersonIdentity, source: str) -> Subject:
    return for_source(
        identity.subject,
        policy.identifiers_for(source),
        own_reference=identity.reference_type == source,
    )


def _entries(results: list[FieldResult], person_id: str) -> tuple[FieldEntry, ...]:
    """The log entries of one person's record: the case-level fields and that person's."""
    return tuple(
        FieldEntry(
            field=r.decision.field,
            category=r.decision.category,
            outcome=OUTCOME_OF_EFFECT[r.decision.effect],
            transform=r.decision.transform,
            source=r.decision.source,
            availability=r.availability,
        )
        for r in results
        if r.person_id in ("", person_id)
    )


@dataclass(frozen=True)
class _TriageTypes:
    """The partner types a triage asks (``configured``: a source system is configured here)
    and those it would ask but cannot (``missing``: the policy's source types without one).

    A question nobody was asked has no "no hit" for an answer: a missing type counts as not
    answered, as a disclosure counts its fields unavailable, so the triage is incomplete."""

    configured: tuple[str, ...]
    missing: tuple[str, ...]


def _chosen_types(
    policy: CompiledPolicy, sources: Mapping[str, object], chosen: tuple[str, ...]
) -> _TriageTypes:
    """The partner types the process director chose (every type with a source when none),
    refused by name when one holds no field of the record."""
    if len(chosen) > 100:
        raise InvalidRequest("at most 100 partner_types")
    known = set(policy.source_types) | set(sources)
    for i, t in enumerate(chosen):
        if t not in known:
            raise InvalidRequest(
                f"partner_types[{i}] is not a partner type whose systems hold fields of the "
                "record"
            )
    if chosen:
        wanted = sorted(set(chosen))
        return _TriageTypes(
            tuple(t for t in wanted if t in sources),
            tuple(t for t in wanted if t not in sources),
        )
    return _TriageTypes(
        tuple(sorted(sources)),
        tuple(t for t in policy.source_types if t not in sources),
    )


def _triage_availability(hit: TriageHit) -> str:
    if not hit.asked:
        return "not_asked"
    return "available" if hit.answered else "source_unavailable"


def _shape(d: FieldDecision, raw: str | None, key: bytes) -> tuple[str, str]:
    if d.effect is Effect.MASK and d.transform is not None:
        if raw is None and d.transform != "presence":
            return "not_held", ""
        try:
            return "available", apply_transform(d.transform, d.params, raw, pseudonym_key=key)
        except ValueError:
            # The message never holds the value; the field and transform are enough to look.
            log.warning("transform %s cannot apply to the value of %s; the field is withheld",
                        d.transform, d.field)
            return TRANSFORM_FAILED, ""
    if raw is None:
        return "not_held", ""
    return "available", raw


def _code_of(exc: RequestError) -> str:
    name = type(exc).__name__  # UnknownPurpose -> unknown_purpose
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _check_nonce(request_nonce: bytes, required: bool) -> None:
    # Checked before anything is decided or logged: a nonce that cannot be bound is bad input.
    if required and not request_nonce:
        raise InvalidRequest(
            "this gateway answers only requests with a request_nonce "
            f"({MIN_REQUEST_NONCE_BYTES} to {MAX_REQUEST_NONCE_BYTES} fresh random bytes)"
        )
    if request_nonce and not (
        MIN_REQUEST_NONCE_BYTES <= len(request_nonce) <= MAX_REQUEST_NONCE_BYTES
    ):
        raise InvalidRequest(
            f"request_nonce must be {MIN_REQUEST_NONCE_BYTES} to {MAX_REQUEST_NONCE_BYTES} bytes"
        )
