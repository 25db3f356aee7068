"""Partner side of the source contract: serve a partner's own fields to the gateway.

A partner wraps its system in a `SourceBackend` (two small methods) and serves it with
`serve_source`. `InMemoryBackend` holds records in a dict; the demo's simulated partner
systems and the tests use it. Every request is remembered (field ids only) so a partner
can account for what it supplied.

Answers are sealed to the gateway's HPKE key (docs/sealed-answers.md, "Sealed submissions")
so that a proxy terminating TLS between gateway and source reads no values: `serve_source`
takes the partner id and the gateway's keys (`AnswerSealing`), and serves clear answers only
when told so explicitly (`clear_answers=True`). A sealing source refuses a request without a
request id (FAILED_PRECONDITION) rather than answer it in clear.

Requests come sealed to the partner's own sealing key (docs/sealed-answers.md, "Sealed source
requests"): `serve_source` takes the partner's private keys (`RequestOpening`, see
adapters.source_requests) and then refuses clear requests unless told otherwise; without it
only clear requests are understood. Neither the subject nor anything else of a request is
logged.

A person need not come with a BSN: the gateway gives a source only the identifiers the policy
lets its partner type hold (a BSN, a name with a possibly partial date of birth, this
partner's own reference). A backend with ``fetch_person``/``lookup_person`` (``PersonBackend``)
gets the whole identity; an older ``SourceBackend`` is asked by BSN only, and a person without
one is then "not known". A person the system cannot find is "not known": no values, known false.
A backend whose system could not supply some asked fields just now returns a ``FieldsAnswer``
naming them: the gateway marks exactly those fields "source unavailable".

A backend may be asynchronous (its methods return awaitables), and a ``CallBackend``
(``fetch_fields``/``lookup_subject``, as the partner-side source runtime has) is given the call
too: the disclosure or triage id and the time left before the gateway's deadline. Such a
backend may answer a fetch with ``FieldsAnswer``, naming fields its system could not supply just
now (``unavailable``: the gateway marks exactly those source-unavailable). A backend that raises
``SystemUnavailable`` (adapters.source_runtime.adapter) makes the call fail with UNAVAILABLE, one
that raises ``TimeoutError`` with DEADLINE_EXCEEDED; neither message says anything of the
request.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, runtime_checkable

import grpc
from google.protobuf.message import Message
from grpc import aio

from adapters.channels import DEFAULT_MAX_MESSAGE_BYTES
from adapters.client import DEFAULT_AUDIENCE, PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.source_requests import RequestOpening, RequestRefused, fetch_query, lookup_query
from adapters.source_runtime.adapter import SystemUnavailable
from adapters.submitting import REASON_METADATA_KEY
from gateway.api.v1 import common_pb2, source_pb2, source_pb2_grpc
from gateway.crypto.source_answers import SourceAnswerBinding, SourceAnswerSigner
from gateway.crypto.submissions import (
    MAX_REQUEST_ID_CHARS,
    SIGNED_SUBMISSION_FORMAT_VERSION,
    SubmissionBinding,
    seal_submission,
)
from gateway.formats.sealed_content import sealed_submission_message

FETCH_FIELDS = "SourceService/FetchFields"
LOOKUP_SUBJECT = "SourceService/LookupSubject"


@dataclass(frozen=True)
class SubjectRecord:
    """What one partner system holds about one person; ``name`` with ``date_of_birth`` (full)
    or ``postcode``, and ``reference`` (this partner's own number) find a person asked about
    without a BSN."""

    bsn: str
    role: str
    fields: Mapping[str, str]
    name: str = ""
    date_of_birth: str = ""
    reference: str = ""
    postcode: str = ""


# The identifiers a SubjectIdentity can carry, by name.
IDENTIFIERS = ("bsn", "name", "date_of_birth", "address", "postcode", "reference")


def identifiers_of(identity: common_pb2.SubjectIdentity) -> tuple[str, ...]:
    """The names of the identifiers a request carried (never their values)."""
    return tuple(name for name in IDENTIFIERS if getattr(identity, name))


@dataclass(frozen=True)
class FetchSeen:
    """A fetch the source answered: which fields for which disclosure, and which kinds of
    identifier came with it (never values)."""

    disclosure_id: str
    purpose: str
    recipient_id: str
    fields: tuple[str, ...]
    identifiers: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnswerSealing:
    """How a source seals its answers: as ``partner_id`` (the partner whose system this is,
    as the gateway's configuration names it), to the gateway's keys.

    With ``signer`` (the partner's token signing key and its registered kid) each answer is
    also signed, over the request it answers, for the gateway named ``gateway_id`` (its token
    audience): a gateway that requires signed source answers (the default) accepts no other
    (docs/sealed-answers.md, "Signed source answers")."""

    partner_id: str
    gateway_keys: GatewayKeys
    signer: SourceAnswerSigner | None = None
    gateway_id: str = DEFAULT_AUDIENCE

    @classmethod
    def from_credentials(
        cls,
        credentials: PartnerCredentials,
        gateway_keys: GatewayKeys,
        *,
        gateway_id: str = DEFAULT_AUDIENCE,
    ) -> AnswerSealing:
        """Sealing and signing as the partner whose credentials these are, with its token key."""
        return cls(
            credentials.partner_id,
            gateway_keys,
            SourceAnswerSigner(credentials.token_key, credentials.token_key_id),
            gateway_id,
        )

    async def seal(
        self,
        operation: str,
        request_id: str,
        content: Message,
        seal_to: str = "",
        reference: str = "",
    ) -> common_pb2.SealedSubmission:
        """Seal ``content`` as this source's answer to ``request_id`` (for the disclosure or triage
        id ``reference``), and sign it when this sealing has a signer; ``seal_to`` is the key id
        the request names as the gateway's current one (followed, see GatewayKeys.follow)."""
        key = await self.gateway_keys.follow(seal_to)
        binding = SubmissionBinding(operation, self.partner_id, request_id)
        plaintext = content.SerializeToString(deterministic=True)
        if self.signer is None:
            return sealed_submission_message(seal_submission(plaintext, key, binding))
        box = seal_submission(
            plaintext, key, binding, version=SIGNED_SUBMISSION_FORMAT_VERSION
        )
        request = SourceAnswerBinding(
            operation, self.gateway_id, self.partner_id, request_id, reference
        )
        return sealed_submission_message(self.signer.sign(box, request))


@dataclass(frozen=True)
class SourceCall:
    """The call a CallBackend answers: which operation, for which disclosure or triage id
    (``reference``), the purpose and recipient of a fetch, the kinds of identifier that came
    (never values), and ``time_remaining``: seconds left before the gateway's deadline (None
    when the gateway set none)."""

    operation: str
    reference: str
    identifiers: tuple[str, ...]
    time_remaining: float | None
    purpose: str = ""
    recipient_id: str = ""


@dataclass(frozen=True)
class FieldsAnswer:
    """What a backend's ``fetch`` may return instead of a bare mapping: the values, and the
    asked fields the system could not supply just now (a part of it timed out or failed, a
    value did not convert). The gateway marks exactly those fields "source unavailable"."""

    values: Mapping[str, str]
    unavailable: frozenset[str] = frozenset()


@runtime_checkable
class CallBackend(Protocol):
    """A backend that is given the whole call (the source runtime's service)."""

    async def fetch_fields(
        self, identity: common_pb2.SubjectIdentity, fields: Sequence[str], call: SourceCall
    ) -> FieldsAnswer: ...

    async def lookup_subject(
        self, identity: common_pb2.SubjectIdentity, call: SourceCall
    ) -> tuple[bool, str]: ...


class SourceBackend(Protocol):
    def fetch(self, bsn: str, fields: Sequence[str]) -> Mapping[str, str] | FieldsAnswer: ...

    def lookup(self, bsn: str) -> tuple[bool, str]: ...


class PersonBackend(SourceBackend, Protocol):
    """A backend that finds a person by whatever identifiers came (no BSN, perhaps)."""

    def fetch_person(
        self, identity: common_pb2.SubjectIdentity, fields: Sequence[str]
    ) -> Mapping[str, str] | FieldsAnswer: ...

    def lookup_person(self, identity: common_pb2.SubjectIdentity) -> tuple[bool, str]: ...


@dataclass
class InMemoryBackend:
    records: dict[str, SubjectRecord] = field(default_factory=dict)
    # Fields this system cannot supply just now (as if that part of it were down): named
    # unavailable whenever asked, whoever the person.
    unavailable: set[str] = field(default_factory=set)

    def add(self, record: SubjectRecord) -> None:
        # Keyed by BSN, or by reference or name for a person the system knows without one.
        self.records[record.bsn or record.reference or record.name] = record

    def fetch(self, bsn: str, fields: Sequence[str]) -> Mapping[str, str]:
        record = self.records.get(bsn) if bsn else None
        if record is None:
            return {}
        return {f: record.fields[f] for f in fields if f in record.fields}

    def lookup(self, bsn: str) -> tuple[bool, str]:
        record = self.records.get(bsn) if bsn else None
        return (True, record.role) if record else (False, "")

    def fetch_person(
        self, identity: common_pb2.SubjectIdentity, fields: Sequence[str]
    ) -> Mapping[str, str] | FieldsAnswer:
        record = self.find(identity)
        held = record.fields if record is not None else {}
        values = {f: held[f] for f in fields if f in held}
        down = frozenset(f for f in fields if f in self.unavailable)
        if not down:
            return values
        return FieldsAnswer({f: v for f, v in values.items() if f not in down}, down)

    def lookup_person(self, identity: common_pb2.SubjectIdentity) -> tuple[bool, str]:
        record = self.find(identity)
        return (True, record.role) if record else (False, "")

    def find(self, identity: common_pb2.SubjectIdentity) -> SubjectRecord | None:
        """By BSN when one came; else by this partner's own reference; else by name and a
        date of birth that agrees as far as it goes (1984 matches 1984-03-07); else by name
        and postcode (a landlord knows its tenants by name and address, not by BSN)."""
        if identity.bsn:
            return self.records.get(identity.bsn)
        for record in self.records.values():
            if identity.reference and record.reference == identity.reference:
                return record
        if not identity.name:
            return None
        name = identity.name.casefold()
        for record in self.records.values():
            if record.name.casefold() != name:
                continue
            if identity.date_of_birth and record.date_of_birth.startswith(
                identity.date_of_birth
            ):
                return record
            if identity.postcode and record.postcode and _postcode(record.postcode) == _postcode(
                identity.postcode
            ):
                return record
        return None


def _postcode(text: str) -> str:
    return "".join(text.split()).upper()


class SourceServicer(source_pb2_grpc.SourceServiceServicer):
    """Serves ``backend``; answers sealed with ``sealing``, or in clear without it; opens
    sealed requests with ``requests``, or understands clear ones only without it."""

    def __init__(
        self,
        backend: SourceBackend | CallBackend,
        sealing: AnswerSealing | None = None,
        requests: RequestOpening | None = None,
    ) -> None:
        self.backend = backend
        self.sealing = sealing
        self.requests = requests
        self.seen: list[FetchSeen] = []
        self.lookups = 0
        # Per lookup, which kinds of identifier came with it (never values).
        self.lookups_seen: list[tuple[str, ...]] = []

    async def FetchFields(  # noqa: N802 (gRPC method name)
        self, request: source_pb2.FetchFieldsRequest, context: aio.ServicerContext[Any, Any]
    ) -> source_pb2.FetchFieldsResponse:
        try:
            query = fetch_query(request, self.requests)
        except RequestRefused as refused:
            await _refuse(refused, context)
        identifiers = identifiers_of(query.subject)
        if not identifiers:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "subject has no identifier")
        if self.sealing is not None:
            await _require_request_id(request.request_id, context)
            await _require_reference(self.sealing, request.disclosure_id, context)
        self.seen.append(
            FetchSeen(
                request.disclosure_id,
                query.purpose,
                query.recipient_id,
                tuple(query.fields),
                identifiers,
            )
        )
        call = SourceCall(
            FETCH_FIELDS, request.disclosure_id, identifiers, context.time_remaining(),
            query.purpose, query.recipient_id,
        )
        answer = await _answer_or_abort(self._fetch(query.subject, list(query.fields), call),
                                        context)
        asked = set(query.fields)
        # Only asked fields go out; a field the system could not supply goes out without a
        # value, whatever the backend put beside it.
        unavailable = [f for f in dict.fromkeys(query.fields) if f in answer.unavailable]
        values = {k: v for k, v in answer.values.items() if k in asked and k not in unavailable}
        content = source_pb2.FetchFieldsContent(values=values, unavailable=unavailable)
        if self.sealing is None:
            return source_pb2.FetchFieldsResponse(values=values, unavailable=unavailable)
        sealed = await self.sealing.seal(
            FETCH_FIELDS, request.request_id, content, request.gateway_key_id,
            request.disclosure_id,
        )
        return source_pb2.FetchFieldsResponse(sealed=sealed)

    async def LookupSubject(  # noqa: N802
        self, request: source_pb2.LookupSubjectRequest, context: aio.ServicerContext[Any, Any]
    ) -> source_pb2.LookupSubjectResponse:
        try:
            query = lookup_query(request, self.requests)
        except RequestRefused as refused:
            await _refuse(refused, context)
        identifiers = identifiers_of(query.subject)
        if not identifiers:
            # Not "unknown": an empty subject is a request gone wrong, not a triage answer.
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "subject has no identifier")
        if self.sealing is not None:
            await _require_request_id(request.request_id, context)
            await _require_reference(self.sealing, request.triage_id, context)
        self.lookups += 1
        self.lookups_seen.append(identifiers)
        call = SourceCall(LOOKUP_SUBJECT, request.triage_id, identifiers, context.time_remaining())
        known, role = await _answer_or_abort(self._lookup(query.subject, call), context)
        if self.sealing is None:
            return source_pb2.LookupSubjectResponse(known=known, role=role)
        content = source_pb2.LookupSubjectContent(known=known, role=role)
        sealed = await self.sealing.seal(
            LOOKUP_SUBJECT, request.request_id, content, request.gateway_key_id,
            request.triage_id,
        )
        return source_pb2.LookupSubjectResponse(sealed=sealed)


    async def _fetch(
        self, identity: common_pb2.SubjectIdentity, fields: list[str], call: SourceCall
    ) -> FieldsAnswer:
        if isinstance(self.backend, CallBackend):
            return await self.backend.fetch_fields(identity, fields, call)
        fetch_person = getattr(self.backend, "fetch_person", None)
        if fetch_person is not None:
            found = await _maybe_await(fetch_person(identity, fields))
        elif identity.bsn:
            found = await _maybe_await(self.backend.fetch(identity.bsn, fields))
        else:
            # An older backend finds people by BSN only: without one, the person is not known.
            found = {}
        if isinstance(found, FieldsAnswer):
            return found
        return FieldsAnswer(dict(found))

    async def _lookup(
        self, identity: common_pb2.SubjectIdentity, call: SourceCall
    ) -> tuple[bool, str]:
        if isinstance(self.backend, CallBackend):
            return await self.backend.lookup_subject(identity, call)
        lookup_person = getattr(self.backend, "lookup_person", None)
        if lookup_person is not None:
            answer: tuple[bool, str] = await _maybe_await(lookup_person(identity))
            return answer
        if not identity.bsn:
            return (False, "")
        known: tuple[bool, str] = await _maybe_await(self.backend.lookup(identity.bsn))
        return known


async def _maybe_await(value: Any) -> Any:
    # A backend's methods may be plain or coroutines; both are served.
    return await value if inspect.isawaitable(value) else value


async def _answer_or_abort(pending: Any, context: aio.ServicerContext[Any, Any]) -> Any:
    """The backend's answer, or the call ended with UNAVAILABLE (the system could not answer)
    or DEADLINE_EXCEEDED (it did not answer in time). The messages are fixed: nothing of the
    request or of the system's own error goes back to the gateway."""
    try:
        return await pending
    except SystemUnavailable:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the source system is unavailable")
    except TimeoutError:
        await context.abort(
            grpc.StatusCode.DEADLINE_EXCEEDED, "the source system did not answer in time"
        )


async def _refuse(refused: RequestRefused, context: aio.ServicerContext[Any, Any]) -> NoReturn:
    context.set_trailing_metadata(((REASON_METADATA_KEY, refused.reason),))
    await context.abort(refused.code, refused.message)
    raise AssertionError("abort returned")  # context.abort always raises


async def _require_request_id(request_id: str, context: aio.ServicerContext[Any, Any]) -> None:
    # Without an id there is nothing to bind the seal to; answering in clear instead would
    # let anything on the path that strips the id turn sealing off.
    if not request_id or len(request_id) > MAX_REQUEST_ID_CHARS:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            "this source seals its answers and needs the request's request_id",
        )


async def _require_reference(
    sealing: AnswerSealing, reference: str, context: aio.ServicerContext[Any, Any]
) -> None:
    # A signed answer names the disclosure or triage it answers; without one there is nothing
    # to sign for, and an unsigned answer would not be accepted.
    if sealing.signer is not None and not reference:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            "this source signs its answers and needs the request's disclosure or triage id",
        )


@dataclass
class RunningSource:
    server: aio.Server
    servicer: SourceServicer
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        await self.server.stop(grace)


async def serve_source(
    backend: SourceBackend | CallBackend,
    address: str = "127.0.0.1:0",
    *,
    credentials: grpc.ServerCredentials | None = None,
    sealing: AnswerSealing | None = None,
    clear_answers: bool = False,
    requests: RequestOpening | None = None,
    interceptors: Sequence[aio.ServerInterceptor[Any, Any]] = (),
) -> RunningSource:
    """Serve ``backend`` as a source system. Answers are sealed with ``sealing``; a source
    without it must say ``clear_answers=True``, so that answering in clear is a choice.
    Sealed requests are opened with ``requests`` (the partner's private sealing keys);
    ``interceptors`` run before the servicer, as in any grpc.aio server."""
    if sealing is None and not clear_answers:
        raise ValueError(
            "a source seals its answers: give sealing=AnswerSealing(...), "
            "or clear_answers=True to answer in clear"
        )
    if sealing is not None and clear_answers:
        raise ValueError("give sealing or clear_answers=True, not both")
    server = aio.server(
        interceptors=list(interceptors),
        options=[
            ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        ]
    )
    servicer = SourceServicer(backend, sealing, requests)
    source_pb2_grpc.add_SourceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    await server.start()
    return RunningSource(server, servicer, port)
