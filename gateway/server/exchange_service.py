"""gRPC face of the partner exchange: translates messages to use-case calls and back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio

from gateway.api.v1 import common_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.broker.case_persons import CasePersons
from gateway.broker.casefile import CaseFile, PersonRef, Registration
from gateway.broker.disclosure import DisclosureInput, DisclosureResult, Disclosures, TriageResult
from gateway.broker.disclosure_export import DisclosureExports, ExportRequest
from gateway.broker.errors import InvalidRequest
from gateway.broker.holds import ConfidentialityHolds, HoldRequest
from gateway.broker.opened_content import opened_content
from gateway.broker.persons import MAX_PERSONS, PersonInput
from gateway.broker.records import OUTCOME_OF_EFFECT
from gateway.broker.request_ids import ADD_PERSON, ADD_TO_CASE_FILE, REGISTER_CASE
from gateway.broker.sealed_record import AVAILABILITY, OUTCOME
from gateway.broker.signed_gateway_keys import SignedGatewayKeys
from gateway.broker.sources import Subject
from gateway.broker.submission_gate import SubmissionGate
from gateway.formats.sealed_content import sealed_record_message
from gateway.server import request_context
from gateway.server.export_messages import export_page
from gateway.server.metrics import Metrics
from gateway.server.status import serve_call
from gateway.server.streaming import serve_stream
from gateway.server.witness_desk import WitnessDesk, WitnessRejected

Ctx = aio.ServicerContext[Any, Any]
MAX_INVITEES = 50


class ExchangeService(exchange_pb2_grpc.ExchangeServiceServicer):
    def __init__(
        self,
        casefile: CaseFile,
        disclosures: Disclosures,
        metrics: Metrics,
        *,
        persons: CasePersons | None = None,
        holds: ConfidentialityHolds | None = None,
        exports: DisclosureExports | None = None,
        submissions: SubmissionGate | None = None,
        signed_keys: SignedGatewayKeys | None = None,
        witnesses: WitnessDesk | None = None,
    ) -> None:
        """``signed_keys`` answers GetGatewayKeys with the keys' signed statement; without it
        the keys go in clear only, which verifying partners refuse."""
        self._casefile = casefile
        self._disclosures = disclosures
        self._metrics = metrics
        self._persons = persons
        self._holds = holds
        self._exports = exports
        self._submissions = submissions
        self._signed_keys = signed_keys
        self._witnesses = witnesses

    async def GetCheckpointToWitness(  # noqa: N802 (gRPC method name)
        self, request: exchange_pb2.GetCheckpointToWitnessRequest, context: Ctx
    ) -> exchange_pb2.CheckpointToWitness:
        desk = await self._witnesses_or_abort(context)

        async def work() -> exchange_pb2.CheckpointToWitness:
            try:
                return await desk.offer(request.old_size)
            except WitnessRejected as exc:
                await context.abort(exc.code, str(exc))
                raise

        return await serve_call("GetCheckpointToWitness", context, self._metrics, work)

    async def WitnessCheckpoint(  # noqa: N802
        self, request: exchange_pb2.WitnessCheckpointRequest, context: Ctx
    ) -> exchange_pb2.WitnessCheckpointResponse:
        desk = await self._witnesses_or_abort(context)

        async def work() -> exchange_pb2.WitnessCheckpointResponse:
            partner_id = request_context.current().principal.partner_id
            try:
                return await desk.cosign(partner_id, request.cosigned_note)
            except WitnessRejected as exc:
                await context.abort(exc.code, str(exc))
                raise

        return await serve_call("WitnessCheckpoint", context, self._metrics, work)

    async def _witnesses_or_abort(self, context: Ctx) -> WitnessDesk:
        if self._witnesses is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "witnessing is not served here")
            raise AssertionError("unreachable: abort raises")
        return self._witnesses

    async def GetGatewayKeys(  # noqa: N802 (gRPC method name)
        self, request: exchange_pb2.GetGatewayKeysRequest, context: Ctx
    ) -> exchange_pb2.GetGatewayKeysResponse:
        gate = await self._submissions_or_abort(context)

        async def work() -> exchange_pb2.GetGatewayKeysResponse:
            if self._signed_keys is not None:
                return await self._signed_keys.response()
            return exchange_pb2.GetGatewayKeysResponse(
                keys=[
                    exchange_pb2.GatewayKey(
                        key_id=k.key_id,
                        public_key=k.public_key,
                        current=k.current,
                        suite=k.suite,
                        format_version=k.format_version,
                    )
                    for k in gate.advertised()
                ]
            )

        return await serve_call("GetGatewayKeys", context, self._metrics, work)

    async def RegisterCase(  # noqa: N802 (gRPC method name)
        self, request: exchange_pb2.RegisterCaseRequest, context: Ctx
    ) -> exchange_pb2.RegisterCaseResponse:
        gate = await self._submissions_or_abort(context)

        async def work() -> exchange_pb2.RegisterCaseResponse:
            rc = request_context.current()
            content = opened_content(
                gate,
                operation=REGISTER_CASE,
                sender_id=rc.principal.partner_id,
                request_id=request.request_id,
                sealed=request.sealed if request.HasField("sealed") else None,
                clear=_clear_registration(request),
            )
            if len(content.invitees) > MAX_INVITEES:
                raise InvalidRequest(f"at most {MAX_INVITEES} invitees")
            if len(content.persons) > MAX_PERSONS:
                raise InvalidRequest(f"at most {MAX_PERSONS} persons per case")
            if content.HasField("subject") and content.persons:
                raise InvalidRequest("give persons or subject, not both")
            s = content.subject
            reg = Registration(
                subject=None if content.persons else Subject(
                    bsn=s.bsn,
                    name=s.name,
                    date_of_birth=s.date_of_birth,
                    address=s.address,
                    postcode=s.postcode,
                    reference=s.reference,
                ),
                case_type=content.case_type,
                reason=content.reason,
                goal=content.goal,
                invitees=tuple(dict.fromkeys(content.invitees)),
                persons=tuple(_person_input(p) for p in content.persons),
                reason_classification=content.reason_classification,
                concerns=content.concerns,
                concerns_classification=content.concerns_classification,
                approach=content.approach,
                casusregie_partner=content.casusregie_partner,
            )
            # With a request id, a resent registration gets the first call's answer.
            view = await self._casefile.register(rc.principal, rc.trace, reg, request.request_id)
            return exchange_pb2.RegisterCaseResponse(
                case_id=view.case_id,
                phase=view.phase,
                participants=view.participants,
                persons=[_person_ref(p) for p in view.persons],
            )

        return await serve_call("RegisterCase", context, self._metrics, work)

    async def InvitePartner(  # noqa: N802
        self, request: exchange_pb2.InvitePartnerRequest, context: Ctx
    ) -> exchange_pb2.InvitePartnerResponse:
        async def work() -> exchange_pb2.InvitePartnerResponse:
            rc = request_context.current()
            view = await self._casefile.invite(
                rc.principal, rc.trace, request.case_id, request.partner_id
            )
            return exchange_pb2.InvitePartnerResponse(participants=view.participants)

        return await serve_call("InvitePartner", context, self._metrics, work)

    async def AddPerson(  # noqa: N802
        self, request: exchange_pb2.AddPersonRequest, context: Ctx
    ) -> exchange_pb2.AddPersonResponse:
        gate = await self._submissions_or_abort(context)
        persons = await self._persons_or_abort(context)

        async def work() -> exchange_pb2.AddPersonResponse:
            rc = request_context.current()
            clear = exchange_pb2.AddPersonContent(case_id=request.case_id)
            if request.HasField("person"):
                clear.person.CopyFrom(request.person)
            content = opened_content(
                gate,
                operation=ADD_PERSON,
                sender_id=rc.principal.partner_id,
                request_id=request.request_id,
                sealed=request.sealed if request.HasField("sealed") else None,
                clear=clear,
            )
            ref, seq = await persons.add(
                rc.principal,
                rc.trace,
                content.case_id,
                _person_input(content.person),
                request.request_id,
            )
            return exchange_pb2.AddPersonResponse(person=_person_ref(ref), log_seq=seq)

        return await serve_call("AddPerson", context, self._metrics, work)

    async def RemovePerson(  # noqa: N802
        self, request: exchange_pb2.RemovePersonRequest, context: Ctx
    ) -> exchange_pb2.RemovePersonResponse:
        persons = await self._persons_or_abort(context)

        async def work() -> exchange_pb2.RemovePersonResponse:
            rc = request_context.current()
            seq = await persons.remove(
                rc.principal, rc.trace, request.case_id, request.person_id
            )
            return exchange_pb2.RemovePersonResponse(log_seq=seq)

        return await serve_call("RemovePerson", context, self._metrics, work)

    async def IdentifyPerson(  # noqa: N802
        self, request: exchange_pb2.IdentifyPersonRequest, context: Ctx
    ) -> exchange_pb2.IdentifyPersonResponse:
        persons = await self._persons_or_abort(context)

        async def work() -> exchange_pb2.IdentifyPersonResponse:
            rc = request_context.current()
            seq = await persons.identify(
                rc.principal, rc.trace, request.case_id, request.person_id, request.bsn
            )
            return exchange_pb2.IdentifyPersonResponse(log_seq=seq)

        return await serve_call("IdentifyPerson", context, self._metrics, work)

    async def _persons_or_abort(self, context: Ctx) -> CasePersons:
        if self._persons is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "persons are not served here")
            raise AssertionError("unreachable: abort raises")
        return self._persons

    async def AddToCaseFile(  # noqa: N802
        self, request: exchange_pb2.AddToCaseFileRequest, context: Ctx
    ) -> exchange_pb2.AddToCaseFileResponse:
        gate = await self._submissions_or_abort(context)

        async def work() -> exchange_pb2.AddToCaseFileResponse:
            rc = request_context.current()
            content = opened_content(
                gate,
                operation=ADD_TO_CASE_FILE,
                sender_id=rc.principal.partner_id,
                request_id=request.request_id,
                sealed=request.sealed if request.HasField("sealed") else None,
                clear=exchange_pb2.AddToCaseFileContent(
                    case_id=request.case_id,
                    field=request.field,
                    text=request.text,
                    classification=request.classification,
                    person_id=request.person_id,
                ),
            )
            entry_id, _ = await self._casefile.add_entry(
                rc.principal,
                rc.trace,
                content.case_id,
                content.field,
                content.text,
                request.request_id,
                classification=content.classification,
                person_id=content.person_id,
            )
            return exchange_pb2.AddToCaseFileResponse(entry_id=entry_id)

        return await serve_call("AddToCaseFile", context, self._metrics, work)

    async def ChangePhase(  # noqa: N802
        self, request: exchange_pb2.ChangePhaseRequest, context: Ctx
    ) -> exchange_pb2.ChangePhaseResponse:
        async def work() -> exchange_pb2.ChangePhaseResponse:
            rc = request_context.current()
            view = await self._casefile.change_phase(
                rc.principal, rc.trace, request.case_id, request.from_phase, request.to_phase
            )
            return exchange_pb2.ChangePhaseResponse(phase=view.phase)

        return await serve_call("ChangePhase", context, self._metrics, work)

    async def RequestDisclosure(  # noqa: N802
        self, request: exchange_pb2.DisclosureRequest, context: Ctx
    ) -> exchange_pb2.DisclosureResponse:
        async def work() -> exchange_pb2.DisclosureResponse:
            rc = request_context.current()
            inp = DisclosureInput(
                case_id=request.case_id,
                purpose=request.purpose,
                phase=request.phase,
                fields=tuple(dict.fromkeys(request.fields)),
                justification=request.justification,
                request_nonce=request.request_nonce,
                person_ids=tuple(dict.fromkeys(request.person_ids)),
            )
            result = await self._disclosures.request(rc.principal, rc.trace, inp)
            self._count(result)
            return disclosure_response(result)

        return await serve_call("RequestDisclosure", context, self._metrics, work)

    async def Triage(  # noqa: N802
        self, request: exchange_pb2.TriageRequest, context: Ctx
    ) -> exchange_pb2.TriageResponse:
        async def work() -> exchange_pb2.TriageResponse:
            rc = request_context.current()
            result = await self._disclosures.triage(
                rc.principal,
                rc.trace,
                request.case_id,
                request.purpose,
                request.request_nonce,
                partner_types=tuple(dict.fromkeys(request.partner_types)),
                person_ids=tuple(dict.fromkeys(request.person_ids)),
            )
            return triage_response(result)

        return await serve_call("Triage", context, self._metrics, work)

    async def PlaceConfidentialityHold(  # noqa: N802
        self, request: exchange_pb2.PlaceHoldRequest, context: Ctx
    ) -> exchange_pb2.PlaceHoldResponse:
        holds = await self._holds_or_abort(context)

        async def work() -> exchange_pb2.PlaceHoldResponse:
            rc = request_context.current()
            req = HoldRequest(
                bsn=request.bsn,
                case_id=request.case_id,
                reason=request.reason,
                until=request.until,
                person_id=request.person_id,
            )
            placed = await holds.place(rc.principal, rc.trace, req)
            return exchange_pb2.PlaceHoldResponse(
                hold_id=placed.hold_id, record_seq=placed.record_seq
            )

        return await serve_call("PlaceConfidentialityHold", context, self._metrics, work)

    async def LiftConfidentialityHold(  # noqa: N802
        self, request: exchange_pb2.LiftHoldRequest, context: Ctx
    ) -> exchange_pb2.LiftHoldResponse:
        holds = await self._holds_or_abort(context)

        async def work() -> exchange_pb2.LiftHoldResponse:
            rc = request_context.current()
            seq = await holds.lift(rc.principal, rc.trace, request.hold_id)
            return exchange_pb2.LiftHoldResponse(record_seq=seq)

        return await serve_call("LiftConfidentialityHold", context, self._metrics, work)

    async def _submissions_or_abort(self, context: Ctx) -> SubmissionGate:
        if self._submissions is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "submissions are not served here"
            )
            raise AssertionError("unreachable: abort raises")
        return self._submissions

    async def _holds_or_abort(self, context: Ctx) -> ConfidentialityHolds:
        if self._holds is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "holds are not served here")
            raise AssertionError("unreachable: abort raises")
        return self._holds

    async def ExportDisclosures(  # noqa: N802
        self, request: exchange_pb2.ExportDisclosuresRequest, context: Ctx
    ) -> AsyncIterator[exchange_pb2.ExportPage]:
        exports = self._exports
        if exports is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "exports are not served here")
            return

        async def work() -> AsyncIterator[exchange_pb2.ExportPage]:
            rc = request_context.current()
            req = ExportRequest(
                role=request.role,
                since=request.since,
                until=request.until,
                after_seq=request.after_seq,
                page_size=request.page_size,
            )
            export = await exports.start(rc.principal, rc.trace, req)
            async for page in export.pages():
                yield export_page(page)

        async for page in serve_stream("ExportDisclosures", context, self._metrics, work):
            yield page

    def _count(self, result: DisclosureResult) -> None:
        for d in result.decisions:
            self._metrics.field_decision(OUTCOME_OF_EFFECT[d.effect], d.category)


def disclosure_response(result: DisclosureResult) -> exchange_pb2.DisclosureResponse:
    box = result.sealed
    return exchange_pb2.DisclosureResponse(
        disclosure_id=result.disclosure_id,
        sealed=common_pb2.SealedRecord(
            format_version=box.version,
            suite=box.suite,
            recipient_key_id=box.recipient_key_id,
            ciphertext=box.ciphertext,
        ),
        fields=[
            common_pb2.FieldOutcome(
                field=f.decision.field,
                category=f.decision.category,
                outcome=OUTCOME[f.decision.effect],
                transform=f.decision.transform or "",
                rule_id=f.decision.rule_id or "",
                availability=AVAILABILITY[f.availability],
                source=f.decision.source,
                person_id=f.person_id,
            )
            for f in result.fields
        ],
        incomplete=result.incomplete,
        unavailable_sources=result.unavailable_sources,
        policy_version=result.policy_version,
        log_seq=result.log_seq,
    )


def triage_response(result: TriageResult) -> exchange_pb2.TriageResponse:
    # The answer (hits, known anywhere) travels only sealed; the clear fields stay empty.
    return exchange_pb2.TriageResponse(
        triage_id=result.triage_id,
        outcome=OUTCOME[result.effect],
        policy_version=result.policy_version,
        log_seq=result.log_seq,
        incomplete=result.incomplete,
        sealed=sealed_record_message(result.sealed),
    )


def _person_input(p: common_pb2.PersonInput) -> PersonInput:
    return PersonInput(
        role_in_case=p.role_in_case,
        bsn=p.bsn,
        name=p.name,
        date_of_birth=p.date_of_birth,
        address=p.address,
        postcode=p.postcode,
        reference=p.reference,
        description=p.description,
    )


def _person_ref(ref: PersonRef) -> common_pb2.CasePersonRef:
    return common_pb2.CasePersonRef(person_id=ref.person_id, role_in_case=ref.role_in_case)


def _clear_registration(
    request: exchange_pb2.RegisterCaseRequest,
) -> exchange_pb2.RegisterCaseContent:
    content = exchange_pb2.RegisterCaseContent(
        case_type=request.case_type,
        reason=request.reason,
        goal=request.goal,
        invitees=list(request.invitees),
        persons=list(request.persons),
        reason_classification=request.reason_classification,
        concerns=request.concerns,
        concerns_classification=request.concerns_classification,
        approach=request.approach,
        casusregie_partner=request.casusregie_partner,
    )
    if request.HasField("subject"):
        # Copied only when present: an empty subject set explicitly would count as content.
        content.subject.CopyFrom(request.subject)
    return content
