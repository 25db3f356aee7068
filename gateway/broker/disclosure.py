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
from gateway.broker.casefile import JUSTIFICATION_FIELD, CaseFile
from gateway.broker.context import BrokerContext, SealingKey
from gateway.broker.errors import InvalidRequest, PhaseMismatch, RecipientKeyMissing, Refused
from gateway.broker.fetching import SourceObserver, fetch_all, lookup_all
from gateway.broker.ids import new_id
from gateway.broker.records import decision_event, event
from gateway.broker.regie import effective_role
from gateway.broker.sealed_record import ReleasedValue, encode_record
from gateway.broker.sealed_triage import encode_triage_answer
from gateway.broker.sources import FetchContext
from gateway.core import (
    AccessRequest,
    CompiledPolicy,
    Decision,
    Effect,
    FieldDecision,
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
from gateway.store.audit_log import FieldEntry, RecordKind
from gateway.store.cases import CaseRow, CaseSnapshot, EntryRow

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


@dataclass(frozen=True)
class DisclosureResult:
    disclosure_id: str
    decisions: tuple[FieldDecision, ...]
    availability: dict[str, str]
    sealed: SealedBox
    unavailable_sources: tuple[str, ...]
    policy_version: str
    log_seq: int

    @property
    def incomplete(self) -> bool:
        return bool(self.unavailable_sources)


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
        started = self._ctx.clock()
        snap = await self._casefile.snapshot(inp.case_id)
        case = snap.case
        policy = self._ctx.policy.current
        await self._casefile.refuse_if_shredded(who, trace, policy, case)
        purpose = policy.purposes.get(inp.purpose)
        # Only a break-glass purpose has a window; other requests skip the scan of the entries.
        minutes = self._break_glass_minutes(snap) if purpose and purpose.break_glass else None
        decision = await self._decide(
            who, trace, case, policy, inp, break_glass_minutes=minutes
        )
        recipient_key = self._recipient_key(who)
        disclosure_id = new_id("d_")
        values, availability, unavailable = await self._gather(who, snap, decision, disclosure_id)
        decision = _withhold_failed(decision, availability)
        justification = await self._justification(who, case, decision, inp)
        status = "incomplete" if unavailable else "ok"
        now = self._ctx.clock()
        record = await self._ctx.log.append(
            decision_event(
                RecordKind.DISCLOSURE,
                decision,
                principal=who,
                trace=trace,
                at=now,
                case_id=case.case_id,
                subject_pseudonym=case.subject_pseudonym,
                status=status,
                availability=availability,
                disclosure_id=disclosure_id,
                justification_ref=justification.entry_id if justification else "",
                started_at=started,
            )
        )
        if justification is not None:
            await self._casefile.store_justification(justification)
        plaintext = encode_record(
            disclosure_id=disclosure_id,
            case_id=case.case_id,
            recipient_id=who.partner_id,
            purpose=inp.purpose,
            phase=inp.phase,
            issued_at=_rfc3339(now),
            policy_version=decision.policy_version,
            values=values,
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
            decisions=decision.fields,
            availability=availability,
            sealed=seal(plaintext, recipient_key.key, binding),
            unavailable_sources=tuple(sorted(unavailable)),
            policy_version=decision.policy_version,
            log_seq=record.seq,
        )

    async def triage(
        self,
        who: Principal,
        trace: TraceContext,
        case_id: str,
        purpose: str,
        request_nonce: bytes = b"",
    ) -> TriageResult:
        _check_nonce(request_nonce, self._require_nonce)
        snap = await self._casefile.snapshot(case_id)
        case = snap.case
        policy = self._ctx.policy.current
        await self._casefile.refuse_if_shredded(who, trace, policy, case)
        inp = DisclosureInput(case_id, purpose, case.phase, (TRIAGE_FIELD,))
        decision = await self._decide(who, trace, case, policy, inp, kind=RecordKind.TRIAGE)
        # Checked before any source is asked: an answer that cannot be sealed is not gathered.
        recipient_key = self._recipient_key(who)
        effect = decision.fields[0].effect
        triage_id = new_id("t_")
        subject = self._casefile.subject(snap)
        answers = await lookup_all(
            self._ctx.sources, subject, triage_id, self._ctx.source_deadline_s, self._observe
        )
        asked = tuple(
            TriageHit(
                partner_type=t,
                answered=a is not None,
                known=bool(a and a.known),
                role=a.role if a and a.known and effect is Effect.DISCLOSE else "",
            )
            for t, a in answers.items()
        )
        hits = asked + _not_asked(policy, answers)
        d = decision.fields[0]
        entries = tuple(
            FieldEntry(
                field=TRIAGE_FIELD,
                category=d.category,
                outcome="disclosed" if effect is Effect.DISCLOSE else "masked",
                transform=d.transform,
                source=h.partner_type,
                availability=_triage_availability(h),
            )
            for h in hits
        )
        record = await self._ctx.log.append(
            event(
                RecordKind.TRIAGE,
                principal=who,
                trace=trace,
                at=self._ctx.clock(),
                case_id=case.case_id,
                subject_pseudonym=case.subject_pseudonym,
                phase=case.phase,
                policy_version=decision.policy_version,
                purpose=decision.purpose,
                legal_basis=decision.legal_basis,
                status="ok" if all(h.answered for h in hits) else "incomplete",
                disclosure_id=triage_id,
                fields=entries,
            )
        )
        # Which partner knows the subject is itself sensitive (a GGZ client, a suspect): a
        # masked answer says only whether anyone does.
        shown = hits if effect is Effect.DISCLOSE else ()
        known_anywhere = any(h.known for h in hits)
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
            incomplete=not all(h.answered for h in hits),
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
    ) -> Decision:
        """The policy's decision, or a logged refusal raised as an error."""
        request = AccessRequest(
            partner_id=who.partner_id,
            # A regie role claim counts only for the case's holder (gateway.broker.regie).
            role=effective_role(case, who),
            purpose=inp.purpose,
            phase=inp.phase,
            participant=who.partner_id in case.participants,
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
        if decision.refusal is not None:
            seq = await self._refuse(
                who, trace, case, policy, inp, decision.refusal.code.value, decision
            )
            raise Refused(decision.refusal.code.value, decision.refusal.message, seq)
        return decision

    def _break_glass_minutes(self, snap: CaseSnapshot) -> int | None:
        """Whole minutes since the case's first break-glass justification, if it has one.

        Break-glass access is a window for the case, opened by its first justified use
        (whoever made it); the policy's max_duration_minutes closes it.
        """
        first = next((e.created_at for e in snap.entries if e.field == JUSTIFICATION_FIELD),
                     None)
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
        self, who: Principal, snap: CaseSnapshot, decision: Decision, disclosure_id: str
    ) -> tuple[list[ReleasedValue], dict[str, str], frozenset[str]]:
        released = decision.released
        by_source: dict[str, list[str]] = defaultdict(list)
        for d in released:
            by_source[d.source].append(d.field)
        zvh_fields = by_source.pop(ZVH_SOURCE, [])
        raw = self._casefile.values(snap, zvh_fields)
        unavailable: frozenset[str] = frozenset()
        if by_source:
            subject = self._casefile.subject(snap)
            ctx = FetchContext(decision.purpose.id, disclosure_id, who.partner_id)
            outcome = await fetch_all(
                self._ctx.sources,
                by_source,
                subject,
                ctx,
                self._ctx.source_deadline_s,
                self._observe,
            )
            raw.update(outcome.values)
            unavailable = outcome.unavailable
        key = self._ctx.keystore.pseudonym_key
        values: list[ReleasedValue] = []
        availability: dict[str, str] = {}
        for d in released:
            if d.source in unavailable:
                state, value = "source_unavailable", ""
            else:
                state, value = _shape(d, raw.get(d.field), key)
            availability[d.field] = state
            if state == TRANSFORM_FAILED:
                values.append(ReleasedValue(d.field, Effect.WITHHOLD, None, "", state))
            else:
                values.append(ReleasedValue(d.field, d.effect, d.transform, value, state))
        return values, availability, unavailable


def _not_asked(
    policy: CompiledPolicy, answers: Mapping[str, object]
) -> tuple[TriageHit, ...]:
    """The partner types whose systems hold fields of the record but have no source here.

    A question nobody was asked has no "no hit" for an answer: such a type counts as not
    answered, as a disclosure counts its fields unavailable, so the triage is incomplete."""
    return tuple(
        TriageHit(partner_type=t, answered=False, known=False, role="", asked=False)
        for t in policy.source_types
        if t not in answers
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


def _withhold_failed(decision: Decision, availability: dict[str, str]) -> Decision:
    """``decision`` with every field whose transform failed withheld (what the log records
    and the answer's outcomes say)."""
    failed = {f for f, state in availability.items() if state == TRANSFORM_FAILED}
    if not failed:
        return decision
    return replace(
        decision,
        fields=tuple(
            replace(d, effect=Effect.WITHHOLD, transform=None, params=(),
                    reason=TRANSFORM_FAILED)
            if d.field in failed else d
            for d in decision.fields
        ),
    )


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
