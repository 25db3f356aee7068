"""The client library a partner system uses to call the gateway.

It authenticates with short-lived tokens signed by the partner's key, speaks mutual TLS,
and opens sealed answers with the partner's HPKE key. A gateway run as several replicas is
given as the list of their addresses: a call that finds one unavailable moves on to the next
(docs/partners/failover.md)::

    creds = PartnerCredentials.from_key_dir(keys_dir, "police")
    replicas = ["gw-a.zvh.example:443", "gw-b.zvh.example:443"]
    async with PartnerClient(replicas, creds, role="case_director") as client:
        case = await client.register_case(subject, "code_rood", reason="...", invitees=["ggz"])
        answer = await client.request_disclosure(case.case_id, "analysis_and_plan", "case_meeting")
        print(answer.values)
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from grpc import aio

from adapters.case_client import CaseClient
from adapters.channels import TlsMaterial, open_channel
from adapters.gateway_keys import GatewayKeys
from adapters.gateway_trust import DEFAULT_LOG_ORIGIN, GatewayTrust, gateway_signing_pins
from adapters.log_witness import LogWitness, Witnessed
from adapters.resending import (
    DEFAULT_ATTEMPTS,
    FailoverInterceptor,
    GatewayAddresses,
    resend_until_answered,
    retry_when_limited,
    retry_while_unavailable,
)
from adapters.sealed import OpenedTriage, open_disclosure, open_triage
from adapters.submitting import SubmissionSealer, new_request_id
from adapters.tokens import TokenSource, certificate_thumbprint
from gateway.api.v1 import (
    accountability_pb2,
    accountability_pb2_grpc,
    common_pb2,
    exchange_pb2,
    exchange_pb2_grpc,
)
from gateway.crypto.devkeys import load_partner_private_keys
from gateway.crypto.errors import KeystoreError

R = TypeVar("R")
DEFAULT_AUDIENCE = "ketenpoort"
# Fresh random bytes per disclosure or triage request; the answer is sealed bound to them.
REQUEST_NONCE_BYTES = 16
DEFAULT_TIMEOUT_S = 10.0
# A whole export stream; a long one that is cut off resumes with after_seq.
DEFAULT_EXPORT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class PartnerCredentials:
    partner_id: str
    token_key: Ed25519PrivateKey
    token_key_id: str
    hpke_key: X25519PrivateKey
    hpke_key_id: str
    tls: TlsMaterial | None
    # What the gateway's key list (GetGatewayKeys) is verified with; without pins, fetched
    # keys are refused (adapters.gateway_trust).
    gateway_trust: GatewayTrust = GatewayTrust()

    @classmethod
    def from_key_dir(
        cls,
        keys_dir: Path,
        partner_id: str,
        *,
        tls: bool = True,
        gateway_origin: str = DEFAULT_LOG_ORIGIN,
    ) -> PartnerCredentials:
        """The partner's keys in ``keys_dir``; the gateway's log-signing public keys there
        (``gateway/signing.pub.pem``, ``gateway/signing/*.pub.pem``), when present, are the
        pins its key statements are verified with, for the gateway whose log origin is
        ``gateway_origin``."""
        keys = load_partner_private_keys(keys_dir, partner_id)
        material = (
            TlsMaterial(ca_pem=keys.ca_pem, cert_pem=keys.tls_cert_pem, key_pem=keys.tls_key_pem)
            if tls
            else None
        )
        return cls(
            partner_id=partner_id,
            token_key=keys.token_key,
            token_key_id=keys.token_key_id,
            hpke_key=keys.hpke_key,
            hpke_key_id=keys.hpke_key_id,
            tls=material,
            gateway_trust=GatewayTrust.from_key_dir(keys_dir, origin=gateway_origin),
        )

    def __repr__(self) -> str:
        return f"PartnerCredentials(partner_id={self.partner_id!r}, keys=<hidden>)"


@dataclass(frozen=True)
class OpenedDisclosure:
    """A disclosure answer with its sealed record opened."""

    response: exchange_pb2.DisclosureResponse
    record: common_pb2.DisclosedRecord

    @property
    def values(self) -> dict[str, str]:
        """Field id -> value (or masked value) for the fields that are available."""
        return {
            f.field: f.value
            for f in self.record.fields
            if f.availability == common_pb2.AVAILABILITY_AVAILABLE
        }

    @property
    def outcomes(self) -> dict[str, common_pb2.FieldOutcome]:
        """Field id -> outcome; for a case of several persons see ``outcomes_of``."""
        return {f.field: f for f in self.response.fields}

    def outcomes_of(self, person_id: str) -> dict[str, common_pb2.FieldOutcome]:
        """Field id -> outcome for one person of the case ("" for the case-level fields)."""
        return {f.field: f for f in self.response.fields if f.person_id == person_id}

    def values_of(self, person_id: str) -> dict[str, str]:
        """As ``values``, for one person of the case ("" for the case-level fields)."""
        return {
            f.field: f.value
            for f in self.record.fields
            if f.availability == common_pb2.AVAILABILITY_AVAILABLE and f.person_id == person_id
        }


class PartnerClient:
    def __init__(
        self,
        address: str | Sequence[str],
        credentials: PartnerCredentials,
        *,
        role: str,
        user_ref: str = "",
        audience: str = DEFAULT_AUDIENCE,
        seal_submissions: bool = True,
        gateway_keys: GatewayKeys | None = None,
        resend_attempts: int = DEFAULT_ATTEMPTS,
        witness_state: Path | None = None,
    ) -> None:
        """``address`` is the gateway's ``host:port``, or the addresses of its replicas (one
        gateway on one database): calls go to the first until one ends UNAVAILABLE there
        (refused, draining), then to the next (``addresses``; docs/partners/failover.md).

        Registrations and case-file entries are sealed to the gateway's key unless
        ``seal_submissions`` is False; ``gateway_keys`` defaults to fetching them from the
        gateway (GetGatewayKeys) once and caching them, taking them only from its signed
        statement as ``credentials.gateway_trust`` verifies it.

        Each registration and case-file entry carries a request id, fresh per call unless
        the caller gives one, and is sent up to ``resend_attempts`` times with that same id
        when its answer does not arrive (``adapters.resending``): the gateway does the work
        of a request id once, so a resend never makes a second case or entry.

        With ``witness_state`` (a file of the partner's choosing) the client witnesses the
        gateway's log (``adapters.log_witness``) each time it fetches the gateway's keys: a
        gateway whose log went back behind a checkpoint this partner saw is refused
        (LogRolledBack, LogRewritten) before anything is sealed to it."""
        if resend_attempts < 1:
            raise ValueError("resend_attempts must be 1 or more")
        self._resend_attempts = resend_attempts
        self.credentials = credentials
        self._tokens = TokenSource(
            partner_id=credentials.partner_id,
            key=credentials.token_key,
            key_id=credentials.token_key_id,
            audience=audience,
            role=role,
            user_ref=user_ref,
            certificate=(
                certificate_thumbprint(credentials.tls.cert_pem)
                if credentials.tls is not None and credentials.tls.cert_pem
                else ""
            ),
        )
        self.addresses = GatewayAddresses(address)
        # A channel per address; each moves the client on when a call there is UNAVAILABLE.
        self._channels = [
            open_channel(a, credentials.tls, interceptors=[FailoverInterceptor(self.addresses, i)])
            for i, a in enumerate(self.addresses.addresses)
        ]
        self._exchanges = [
            exchange_pb2_grpc.ExchangeServiceStub(c)  # type: ignore[no-untyped-call]
            for c in self._channels
        ]
        self._accountabilities = [
            accountability_pb2_grpc.AccountabilityServiceStub(c)  # type: ignore[no-untyped-call]
            for c in self._channels
        ]
        # The work surface on cases (CaseService), on the same channels and tokens.
        self.cases = CaseClient(self._channels, self.metadata, self.addresses)
        self._gateway_keys = (
            gateway_keys or GatewayKeys(self.gateway_keys, trust=credentials.gateway_trust)
        )
        self._sealer = (
            SubmissionSealer(credentials.partner_id, self._gateway_keys)
            if seal_submissions
            else None
        )
        self._witness = (
            None
            if witness_state is None
            else LogWitness(
                witness_state,
                name=credentials.partner_id,
                key=credentials.token_key,
                trusted=self._log_signing_keys,
                origin=credentials.gateway_trust.origin,
            )
        )

    async def __aenter__(self) -> PartnerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)

    @property
    def _channel(self) -> aio.Channel:
        return self._channels[self.addresses.position]

    @property
    def _exchange(self) -> exchange_pb2_grpc.ExchangeServiceStub:
        # Looked up on every (re)send: the stub of the address calls go to now.
        return self._exchanges[self.addresses.position]

    @property
    def _accountability(self) -> accountability_pb2_grpc.AccountabilityServiceStub:
        return self._accountabilities[self.addresses.position]

    def metadata(self, traceparent: str = "") -> tuple[tuple[str, str], ...]:
        md: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {self._tokens.token()}"),)
        return md + ((("traceparent", traceparent),) if traceparent else ())

    async def register_case(
        self,
        subject: common_pb2.SubjectIdentity | None,
        case_type: str,
        *,
        reason: str,
        goal: str = "",
        invitees: Sequence[str] = (),
        timeout: float = DEFAULT_TIMEOUT_S,
        request_id: str = "",
        persons: Sequence[common_pb2.PersonInput] = (),
        approach: str = "",
        casusregie_partner: str = "",
    ) -> exchange_pb2.RegisterCaseResponse:
        """Register a case about ``persons`` (or the one ``subject``; give None with persons).
        ``request_id`` names this registration (a fresh one when empty): give the same id to
        register the same case again after, say, a restart of the calling system, and the
        gateway answers with the case it registered the first time. The answer lists the
        persons with their ids. ``case_type`` is the deprecated alias of ``approach`` (pass ""
        and use ``approach``)."""
        rid = request_id or new_request_id()
        content = exchange_pb2.RegisterCaseContent(
            case_type=case_type, reason=reason, goal=goal, invitees=list(invitees),
            persons=list(persons), approach=approach, casusregie_partner=casusregie_partner,
        )
        if subject is not None:
            content.subject.CopyFrom(subject)
        if self._sealer is None:
            request = exchange_pb2.RegisterCaseRequest(
                case_type=case_type,
                reason=reason,
                goal=goal,
                invitees=list(invitees),
                request_id=rid,
                persons=list(persons),
                approach=approach,
                casusregie_partner=casusregie_partner,
            )
            if subject is not None:
                request.subject.CopyFrom(subject)
            return await self._resending(lambda: self.register_case_raw(request, timeout=timeout))
        sealer = self._sealer

        async def send(
            sealed: common_pb2.SealedSubmission, request_id: str
        ) -> exchange_pb2.RegisterCaseResponse:
            request = exchange_pb2.RegisterCaseRequest(sealed=sealed, request_id=request_id)
            return await self.register_case_raw(request, timeout=timeout)

        return await self._resending(
            lambda: sealer.send("ExchangeService/RegisterCase", content, send, request_id=rid)
        )

    async def register_case_raw(
        self, request: exchange_pb2.RegisterCaseRequest, *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> exchange_pb2.RegisterCaseResponse:
        """Send a registration as given (clear or already sealed)."""
        response: exchange_pb2.RegisterCaseResponse = await self._exchange.RegisterCase(
            request, metadata=self.metadata(), timeout=timeout
        )
        return response

    async def gateway_keys(self) -> exchange_pb2.GetGatewayKeysResponse:
        """The gateway's answer as received, unverified: its HPKE public keys, the current one
        first, and the signed statement of them (verified by GatewayKeys before use)."""
        request = exchange_pb2.GetGatewayKeysRequest()
        response: exchange_pb2.GetGatewayKeysResponse = await self._retrying(
            lambda: self._exchange.GetGatewayKeys(
                request, metadata=self.metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        if self._witness is not None:
            await self.witness_log()
        return response

    async def witness_log(self, state_file: Path | None = None) -> Witnessed:
        """Witness the gateway's log once (``adapters.log_witness``), keeping the newest
        checkpoint in ``state_file`` (default: this client's ``witness_state``). Raises
        LogRolledBack or LogRewritten when the log went back or changed."""
        witness = self._witness
        if state_file is not None:
            witness = LogWitness(
                state_file,
                name=self.credentials.partner_id,
                key=self.credentials.token_key,
                trusted=self._log_signing_keys,
                origin=self.credentials.gateway_trust.origin,
            )
        if witness is None:
            raise ValueError("give a state file (or witness_state when making the client)")
        return await witness.witness(self.checkpoint_to_witness, self.witness_checkpoint)

    async def checkpoint_to_witness(self, old_size: int) -> exchange_pb2.CheckpointToWitness:
        """The gateway's newest checkpoint with a consistency proof from ``old_size``
        (unverified: LogWitness checks it)."""
        response: exchange_pb2.CheckpointToWitness = await self._exchange.GetCheckpointToWitness(
            exchange_pb2.GetCheckpointToWitnessRequest(old_size=old_size),
            metadata=self.metadata(),
            timeout=DEFAULT_TIMEOUT_S,
        )
        return response

    async def witness_checkpoint(
        self, cosigned_note: str
    ) -> exchange_pb2.WitnessCheckpointResponse:
        """Hand the gateway a checkpoint this partner cosigned."""
        response: exchange_pb2.WitnessCheckpointResponse = await self._exchange.WitnessCheckpoint(
            exchange_pb2.WitnessCheckpointRequest(cosigned_note=cosigned_note),
            metadata=self.metadata(),
            timeout=DEFAULT_TIMEOUT_S,
        )
        return response

    def _log_signing_keys(self) -> tuple[Ed25519PublicKey, ...]:
        """The gateway's log-signing keys this partner trusts: its pins, those a verified key
        statement carried it over to, and pins found again in its key directory."""
        trust = self.credentials.gateway_trust
        keys = [*trust.signing_keys, *self._gateway_keys.statements.trusted]
        if trust.key_dir is not None:
            # An unreadable pin file only means fewer keys to check with.
            with suppress(KeystoreError, OSError):
                keys += gateway_signing_pins(trust.key_dir)
        return tuple(keys)

    async def invite(self, case_id: str, partner_id: str) -> exchange_pb2.InvitePartnerResponse:
        request = exchange_pb2.InvitePartnerRequest(case_id=case_id, partner_id=partner_id)
        response: exchange_pb2.InvitePartnerResponse = await self._limited(
            lambda: self._exchange.InvitePartner(
                request, metadata=self.metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        return response

    async def add_to_case_file(
        self,
        case_id: str,
        field: str,
        text: str,
        *,
        request_id: str = "",
        classification: str = "",
        person_id: str = "",
    ) -> str:
        """Add an entry to the case file; its entry id. ``request_id`` names this entry (a
        fresh one when empty), as for ``register_case``. ``classification`` (ordinary,
        health, criminal, confidential) says what kind of data the text holds."""
        rid = request_id or new_request_id()
        if self._sealer is None:
            request = exchange_pb2.AddToCaseFileRequest(
                case_id=case_id, field=field, text=text, request_id=rid,
                classification=classification, person_id=person_id,
            )
            return (await self._resending(lambda: self.add_to_case_file_raw(request))).entry_id
        sealer = self._sealer
        content = exchange_pb2.AddToCaseFileContent(
            case_id=case_id, field=field, text=text, classification=classification,
            person_id=person_id,
        )

        async def send(
            sealed: common_pb2.SealedSubmission, request_id: str
        ) -> exchange_pb2.AddToCaseFileResponse:
            request = exchange_pb2.AddToCaseFileRequest(sealed=sealed, request_id=request_id)
            return await self.add_to_case_file_raw(request)

        response = await self._resending(
            lambda: sealer.send("ExchangeService/AddToCaseFile", content, send, request_id=rid)
        )
        return response.entry_id

    async def add_person(
        self, case_id: str, person: common_pb2.PersonInput, *, request_id: str = ""
    ) -> exchange_pb2.AddPersonResponse:
        """Add a person to a case: its id and role, and the log record's seq. ``request_id``
        names this addition (a fresh one when empty), as for ``register_case``."""
        rid = request_id or new_request_id()
        if self._sealer is None:
            request = exchange_pb2.AddPersonRequest(case_id=case_id, person=person, request_id=rid)
            return await self._resending(lambda: self._add_person_raw(request))
        sealer = self._sealer
        content = exchange_pb2.AddPersonContent(case_id=case_id, person=person)

        async def send(
            sealed: common_pb2.SealedSubmission, request_id: str
        ) -> exchange_pb2.AddPersonResponse:
            request = exchange_pb2.AddPersonRequest(sealed=sealed, request_id=request_id)
            return await self._add_person_raw(request)

        return await self._resending(
            lambda: sealer.send("ExchangeService/AddPerson", content, send, request_id=rid)
        )

    async def _add_person_raw(
        self, request: exchange_pb2.AddPersonRequest
    ) -> exchange_pb2.AddPersonResponse:
        response: exchange_pb2.AddPersonResponse = await self._exchange.AddPerson(
            request, metadata=self.metadata(), timeout=DEFAULT_TIMEOUT_S
        )
        return response

    async def remove_person(self, case_id: str, person_id: str) -> int:
        """Remove a person from a case (softly); the seq of the log record."""
        request = exchange_pb2.RemovePersonRequest(case_id=case_id, person_id=person_id)
        response: exchange_pb2.RemovePersonResponse = await self._exchange.RemovePerson(
            request, metadata=self.metadata(), timeout=DEFAULT_TIMEOUT_S
        )
        return response.log_seq

    async def identify_person(self, case_id: str, person_id: str, bsn: str) -> int:
        """Record the BSN of a person registered without one; the seq of the log record."""
        request = exchange_pb2.IdentifyPersonRequest(
            case_id=case_id, person_id=person_id, bsn=bsn
        )
        response: exchange_pb2.IdentifyPersonResponse = await self._exchange.IdentifyPerson(
            request, metadata=self.metadata(), timeout=DEFAULT_TIMEOUT_S
        )
        return response.log_seq

    async def _resending(self, call: Callable[[], Awaitable[R]]) -> R:
        # Safe only for calls that carry the same request id every time.
        return await resend_until_answered(
            call, attempts=self._resend_attempts, failover=self.addresses
        )

    async def _retrying(self, call: Callable[[], Awaitable[R]]) -> R:
        # For calls that change nothing but the log: sent again after UNAVAILABLE, with a
        # fresh token each time (the gateway takes a token once).
        return await retry_while_unavailable(
            call, attempts=self._resend_attempts, failover=self.addresses
        )

    async def _limited(self, call: Callable[[], Awaitable[R]]) -> R:
        # For calls that change a case without a request id: sent again only after the call
        # limits turned them away, never after UNAVAILABLE (not even at another address).
        return await retry_when_limited(call, failover=self.addresses)

    async def add_to_case_file_raw(
        self, request: exchange_pb2.AddToCaseFileRequest
    ) -> exchange_pb2.AddToCaseFileResponse:
        """Send a case-file entry as given (clear or already sealed)."""
        response: exchange_pb2.AddToCaseFileResponse = await self._exchange.AddToCaseFile(
            request, metadata=self.metadata(), timeout=DEFAULT_TIMEOUT_S
        )
        return response

    async def change_phase(self, case_id: str, from_phase: str, to_phase: str) -> str:
        request = exchange_pb2.ChangePhaseRequest(
            case_id=case_id, from_phase=from_phase, to_phase=to_phase
        )
        response: exchange_pb2.ChangePhaseResponse = await self._limited(
            lambda: self._exchange.ChangePhase(
                request, metadata=self.metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        return response.phase

    async def request_disclosure(
        self,
        case_id: str,
        purpose: str,
        phase: str,
        *,
        fields: Sequence[str] = (),
        justification: str = "",
        traceparent: str = "",
        timeout: float = DEFAULT_TIMEOUT_S,
        person_ids: Sequence[str] = (),
    ) -> OpenedDisclosure:
        """Ask for the case record and open the sealed answer with this partner's key.

        The request carries a fresh nonce, and only an answer sealed bound to that nonce and
        this case opens (SealOpenError otherwise): a relay cannot pass off another request's
        answer as this one's."""
        nonce = new_request_nonce()
        request = exchange_pb2.DisclosureRequest(
            case_id=case_id, purpose=purpose, phase=phase, fields=list(fields),
            justification=justification, request_nonce=nonce, person_ids=list(person_ids),
        )
        response = await self.request_disclosure_raw(
            request, traceparent=traceparent, timeout=timeout
        )
        record = open_disclosure(
            response, self.credentials.hpke_key,
            recipient_id=self.credentials.partner_id, purpose=purpose,
            case_id=case_id, request_nonce=nonce,
        )
        return OpenedDisclosure(response, record)

    async def request_disclosure_raw(
        self,
        request: exchange_pb2.DisclosureRequest,
        *,
        traceparent: str = "",
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> exchange_pb2.DisclosureResponse:
        """The answer without opening it (for tools that store sealed answers)."""
        response: exchange_pb2.DisclosureResponse = await self._retrying(
            lambda: self._exchange.RequestDisclosure(
                request, metadata=self.metadata(traceparent), timeout=timeout
            )
        )
        return response

    async def triage(
        self,
        case_id: str,
        purpose: str = "triage",
        *,
        partner_types: Sequence[str] = (),
        person_ids: Sequence[str] = (),
    ) -> OpenedTriage:
        """Ask hit/no-hit and open the sealed answer with this partner's key; bound to a fresh
        nonce as for ``request_disclosure``. ``partner_types`` and ``person_ids`` choose whom
        to ask about whom (empty: every partner type with a source, every current person)."""
        nonce = new_request_nonce()
        response = await self.triage_raw(
            case_id, purpose, request_nonce=nonce, partner_types=partner_types,
            person_ids=person_ids,
        )
        answer = open_triage(
            response, self.credentials.hpke_key,
            recipient_id=self.credentials.partner_id, purpose=purpose,
            case_id=case_id, request_nonce=nonce,
        )
        return OpenedTriage(response, answer)

    async def triage_raw(
        self,
        case_id: str,
        purpose: str = "triage",
        *,
        request_nonce: bytes = b"",
        partner_types: Sequence[str] = (),
        person_ids: Sequence[str] = (),
    ) -> exchange_pb2.TriageResponse:
        """The triage answer without opening it (sealed in version 2 when ``request_nonce``
        is given, else in version 1)."""
        request = exchange_pb2.TriageRequest(
            case_id=case_id, purpose=purpose, request_nonce=request_nonce,
            partner_types=list(partner_types), person_ids=list(person_ids),
        )
        response: exchange_pb2.TriageResponse = await self._retrying(
            lambda: self._exchange.Triage(
                request, metadata=self.metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        return response

    async def export_pages(
        self,
        *,
        role: str = "recipient",
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        after_seq: int = 0,
        page_size: int = 0,
        timeout: float | None = DEFAULT_EXPORT_TIMEOUT_S,
    ) -> AsyncIterator[exchange_pb2.ExportPage]:
        """This partner's own disclosures in [since, until), page by page.

        ``role`` is "recipient" (disclosures made to this partner) or "source" (disclosures
        of fields this partner's system supplied). Times are aware datetimes or RFC 3339
        text. The last page has ``done`` set; its ``last_seq`` is where a later export of
        newer records starts (``after_seq``).
        """
        request = exchange_pb2.ExportDisclosuresRequest(
            role=role,
            since=_rfc3339(since),
            until=_rfc3339(until),
            after_seq=after_seq,
            page_size=page_size,
        )
        call = self._exchange.ExportDisclosures(request, metadata=self.metadata(), timeout=timeout)
        async for page in call:
            yield page

    async def export_disclosures(
        self,
        *,
        role: str = "recipient",
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        after_seq: int = 0,
        page_size: int = 0,
        timeout: float | None = DEFAULT_EXPORT_TIMEOUT_S,
    ) -> AsyncIterator[exchange_pb2.ExportedDisclosure]:
        """The entries of ``export_pages``, oldest first. After a cut-off stream, call again
        with ``after_seq`` set to the seq of the last entry received."""
        pages = self.export_pages(
            role=role,
            since=since,
            until=until,
            after_seq=after_seq,
            page_size=page_size,
            timeout=timeout,
        )
        async for page in pages:
            for entry in page.disclosures:
                yield entry

    async def list_break_glass_reviews(
        self, *, status: str = "open", after_seq: int = 0, page_size: int = 0
    ) -> accountability_pb2.ListBreakGlassReviewsResponse:
        """Break-glass disclosures and their reviews (the privacy officer role)."""
        request = accountability_pb2.ListBreakGlassReviewsRequest(
            status=status, after_seq=after_seq, page_size=page_size
        )
        response: accountability_pb2.ListBreakGlassReviewsResponse = (
            await self._accountability.ListBreakGlassReviews(
                request, metadata=self.metadata(), timeout=30.0
            )
        )
        return response

    async def subject_access_report(
        self, bsn: str, *, format: str = "json", language: str = "nl"
    ) -> accountability_pb2.SubjectAccessReportResponse:
        """The AVG art. 15 report for one subject (the privacy officer role)."""
        request = accountability_pb2.SubjectAccessReportRequest(
            bsn=bsn, format=format, language=language
        )
        response: accountability_pb2.SubjectAccessReportResponse = (
            await self._accountability.SubjectAccessReport(
                request, metadata=self.metadata(), timeout=60.0
            )
        )
        return response

    async def close_break_glass_review(
        self, disclosure_seq: int, verdict: str, comment: str
    ) -> accountability_pb2.BreakGlassReview:
        """Close the review of one break-glass disclosure (the privacy officer role)."""
        request = accountability_pb2.CloseBreakGlassReviewRequest(
            disclosure_seq=disclosure_seq, verdict=verdict, comment=comment
        )
        response: accountability_pb2.BreakGlassReview = (
            await self._accountability.CloseBreakGlassReview(
                request, metadata=self.metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        return response

    async def list_disclosures(
        self,
        *,
        partner_id: str = "",
        case_id: str = "",
        kinds: Sequence[str] = (),
        after_seq: int = 0,
        page_size: int = 0,
    ) -> accountability_pb2.ListDisclosuresResponse:
        request = accountability_pb2.ListDisclosuresRequest(
            partner_id=partner_id, case_id=case_id, kinds=list(kinds),
            after_seq=after_seq, page_size=page_size,
        )
        response: accountability_pb2.ListDisclosuresResponse = await self._retrying(
            lambda: self._accountability.ListDisclosures(
                request, metadata=self.metadata(), timeout=30.0
            )
        )
        return response

    async def verify_log(self) -> accountability_pb2.VerifyLogResponse:
        response: accountability_pb2.VerifyLogResponse = await self._accountability.VerifyLog(
            accountability_pb2.VerifyLogRequest(), metadata=self.metadata(), timeout=300.0
        )
        return response

    async def get_checkpoint(self) -> accountability_pb2.Checkpoint:
        response: accountability_pb2.Checkpoint = await self._accountability.GetCheckpoint(
            accountability_pb2.GetCheckpointRequest(), metadata=self.metadata(), timeout=30.0
        )
        return response

    async def prove_inclusion(
        self, seq: int, tree_size: int = 0
    ) -> accountability_pb2.InclusionProof:
        response: accountability_pb2.InclusionProof = await self._accountability.ProveInclusion(
            accountability_pb2.ProveInclusionRequest(seq=seq, tree_size=tree_size),
            metadata=self.metadata(),
            timeout=30.0,
        )
        return response

    async def prove_consistency(
        self, old_size: int, new_size: int
    ) -> accountability_pb2.ConsistencyProof:
        response: accountability_pb2.ConsistencyProof = (
            await self._accountability.ProveConsistency(
                accountability_pb2.ProveConsistencyRequest(old_size=old_size, new_size=new_size),
                metadata=self.metadata(),
                timeout=30.0,
            )
        )
        return response


def new_request_nonce() -> bytes:
    """A fresh request nonce: 16 random bytes from the operating system."""
    return secrets.token_bytes(REQUEST_NONCE_BYTES)


def _rfc3339(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("give an aware datetime (with a time zone)")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
