"""Gateway side of the gRPC source contract: asks a partner's own system for its fields.

Implements gateway.broker.sources.Source. The deadline travels as the gRPC deadline, so the
partner's system can stop working on a request nobody waits for any more. Fields the source
names as unavailable (FetchFieldsContent.unavailable) come back as FetchResult.unavailable.

Every call carries a fresh ``request_id`` and the id of the gateway's current HPKE key. A
source that seals its answer to the gateway (docs/sealed-answers.md, "Sealed submissions")
binds it to that id, to the operation and to its
own partner id; the answer is opened here with the gateway's submission gate, expecting the
partner id this source was configured for. An answer that does not open, or a clear answer
where the gate requires sealing, counts as no answer: the source is unavailable for the request.

The question goes sealed as well (docs/sealed-answers.md, "Sealed source requests"): the
subject, fields, purpose and recipient in a query sealed by the gateway's request sealer to
the source partner's current registered sealing key; only the disclosure or triage id, the
request id and the gateway's key id stay in clear. Where the sealer says the request goes in
clear (the operator allowed it), the same query fills the deprecated clear fields instead;
never both.

The answer must prove its origin (docs/sealed-answers.md, "Signed source answers"): with
``origins`` (gateway.broker.source_origin) an answer is opened only once its signature by a
token key registered to the source's partner, over this very request, verifies; an unsigned
one counts as no answer unless the operator allowed it for that partner. With ``certificates``
(gateway.sources.source_certificates) the connection itself trusts only a certificate registered to
that partner, so a system presenting another partner's certificate is not even asked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeVar

import grpc
from grpc import aio

from adapters.channels import TlsMaterial, open_channel
from adapters.source_requests import SOURCE_REQUEST_REASONS
from adapters.submitting import REASON_METADATA_KEY
from gateway.api.v1 import common_pb2, source_pb2, source_pb2_grpc
from gateway.broker.errors import BrokerError
from gateway.broker.ids import new_id
from gateway.broker.opened_content import opened_content
from gateway.broker.source_origin import AnswerOrigins
from gateway.broker.source_requests import RequestSealer
from gateway.broker.sources import (
    FetchContext,
    FetchResult,
    LookupResult,
    SourceNotAnswering,
    SourceTimedOut,
    SourceUnavailable,
    Subject,
)
from gateway.broker.submission_gate import SubmissionGate
from gateway.crypto.source_answers import SourceAnswerBinding
from gateway.crypto.submissions import SUBMISSION_FORMAT_VERSION
from gateway.formats.sealed_content import sealed_submission
from gateway.sources.source_certificates import PinnedChannel, SourceCertificates

C = TypeVar("C", source_pb2.FetchFieldsContent, source_pb2.LookupSubjectContent)
log = logging.getLogger("ketenpoort.sources")

FETCH_FIELDS = "SourceService/FetchFields"
LOOKUP_SUBJECT = "SourceService/LookupSubject"


class GrpcSource:
    """A partner's source system over gRPC.

    ``partner_id`` is the partner whose system answers at ``address``; with ``answers`` (the
    gateway's submission gate) sealed answers are opened, and clear ones admitted only as the
    gate allows. Without ``answers`` only clear answers are understood.

    With ``requests`` (the gateway's request sealer) each query is sealed to the partner's
    registered key, or sent in clear where the sealer allows it; a source asked in clear
    regardless must say ``clear_requests=True``, so that asking in clear is a choice.
    """

    def __init__(
        self,
        address: str,
        tls: TlsMaterial | None = None,
        *,
        partner_id: str = "",
        answers: SubmissionGate | None = None,
        requests: RequestSealer | None = None,
        clear_requests: bool = False,
        origins: AnswerOrigins | None = None,
        certificates: SourceCertificates | None = None,
    ) -> None:
        if certificates is not None and (tls is None or not partner_id):
            raise ValueError("a source whose certificate is pinned needs TLS and its partner id")
        if origins is not None and answers is None:
            raise ValueError("answers whose origin is checked are opened: give answers as well")
        if answers is not None and not partner_id:
            raise ValueError("a source whose answers are opened needs the partner id it belongs to")
        if requests is None and not clear_requests:
            raise ValueError(
                "a source is asked sealed: give requests=RequestSealer(...), "
                "or clear_requests=True to ask it in clear"
            )
        if requests is not None and clear_requests:
            raise ValueError("give requests or clear_requests=True, not both")
        if requests is not None and not partner_id:
            raise ValueError("a source asked sealed needs the partner id it belongs to")
        # Pinned: a channel per certificate the source's partner registered, opened on demand;
        # otherwise one channel trusting the CA.
        self._pinned = (
            PinnedChannel(address, tls, partner_id, certificates)
            if certificates is not None and tls is not None
            else None
        )
        self._channel = open_channel(address, tls) if self._pinned is None else None
        self._stub_channel = self._channel
        self._stub_of_channel = (
            source_pb2_grpc.SourceServiceStub(self._channel)  # type: ignore[no-untyped-call]
            if self._channel is not None
            else None
        )
        self._partner_id = partner_id
        self._answers = answers
        self._requests = requests
        self._origins = origins

    @property
    def pinned_certificate(self) -> str:
        """The thumbprint (x5t#S256) of the certificate this source's connection trusts, or ""
        (not pinned, or not yet looked at)."""
        return self._pinned.thumbprint if self._pinned is not None else ""

    async def fetch(
        self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *, timeout_s: float
    ) -> FetchResult:
        query = source_pb2.FetchFieldsQuery(
            subject=_identity(subject),
            fields=list(fields),
            purpose=ctx.purpose,
            recipient_id=ctx.recipient_id,
        )
        request = source_pb2.FetchFieldsRequest(
            disclosure_id=ctx.disclosure_id,
            request_id=new_id("f_"),
            gateway_key_id=self._seal_to(),
        )
        sealed = self._sealed(FETCH_FIELDS, request.request_id, ctx.disclosure_id, query)
        if sealed is None:
            request.subject.CopyFrom(query.subject)
            request.fields.extend(query.fields)
            request.purpose = query.purpose
            request.recipient_id = query.recipient_id
        else:
            request.sealed.CopyFrom(sealed)
        stub = await self._stub()
        try:
            response = await stub.FetchFields(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise self._unavailable(FETCH_FIELDS, exc) from exc
        content = self._content(
            FETCH_FIELDS,
            request.request_id,
            ctx.disclosure_id,
            response.sealed if response.HasField("sealed") else None,
            source_pb2.FetchFieldsContent(
                values=dict(response.values), unavailable=list(response.unavailable)
            ),
        )
        return FetchResult(dict(content.values), frozenset(content.unavailable))

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        query = source_pb2.LookupSubjectQuery(subject=_identity(subject))
        request = source_pb2.LookupSubjectRequest(
            triage_id=triage_id,
            request_id=new_id("l_"),
            gateway_key_id=self._seal_to(),
        )
        sealed = self._sealed(LOOKUP_SUBJECT, request.request_id, triage_id, query)
        if sealed is None:
            request.subject.CopyFrom(query.subject)
        else:
            request.sealed.CopyFrom(sealed)
        stub = await self._stub()
        try:
            response = await stub.LookupSubject(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise self._unavailable(LOOKUP_SUBJECT, exc) from exc
        content = self._content(
            LOOKUP_SUBJECT,
            request.request_id,
            triage_id,
            response.sealed if response.HasField("sealed") else None,
            source_pb2.LookupSubjectContent(known=response.known, role=response.role),
        )
        return LookupResult(known=content.known, role=content.role)

    def _sealed(
        self,
        operation: str,
        request_id: str,
        reference: str,
        query: source_pb2.FetchFieldsQuery | source_pb2.LookupSubjectQuery,
    ) -> source_pb2.SealedQuery | None:
        # None: in clear. A partner that may not be asked in clear raises SealingKeyMissing
        # (a SourceUnavailable): nothing is sent.
        if self._requests is None:
            return None
        return self._requests.seal(
            self._partner_id, operation, request_id=request_id, reference=reference, query=query
        )

    async def _stub(self) -> source_pb2_grpc.SourceServiceStub:
        if self._pinned is not None:
            channel = await self._pinned.get()
            if channel is not self._stub_channel:
                self._stub_channel = channel
                self._stub_of_channel = source_pb2_grpc.SourceServiceStub(channel)  # type: ignore[no-untyped-call]
        assert self._stub_of_channel is not None
        return self._stub_of_channel

    def _unavailable(self, operation: str, exc: grpc.RpcError) -> SourceUnavailable:
        if (
            self._pinned is not None
            and isinstance(exc, aio.AioRpcError)
            and exc.code() == grpc.StatusCode.UNAVAILABLE
        ):
            # Perhaps the source moved to another certificate: look again on the next call.
            self._pinned.forget()
        reason = _request_refusal(exc)
        if reason:
            # A source that refuses the request as sealed wants an operator: a key it lacks
            # after a rotation, a gateway that asks it in clear. Partner and reason only.
            log.warning(
                "the source of %s refused a %s request: %s", self._partner_id, operation, reason
            )
        code = exc.code() if isinstance(exc, aio.AioRpcError) else None
        # Not reached or not answered in time: what the gateway's circuit breaker counts. Any
        # other status is an answer, if a refusing one.
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return SourceTimedOut(_describe(exc))
        if code == grpc.StatusCode.UNAVAILABLE:
            return SourceNotAnswering(_describe(exc))
        return SourceUnavailable(_describe(exc))

    def _seal_to(self) -> str:
        # Named on every call so that a source follows a rotation before the old key is
        # retired; empty where this gateway opens no sealed answers.
        return self._answers.current_key_id if self._answers is not None else ""

    def _content(
        self,
        operation: str,
        request_id: str,
        reference: str,
        sealed: common_pb2.SealedSubmission | None,
        clear: C,
    ) -> C:
        if self._answers is None:
            if sealed is not None:
                raise SourceUnavailable("sealed answer, but no gateway keys to open it")
            return clear
        version = self._origin_checked(operation, request_id, reference, sealed)
        try:
            return opened_content(
                self._answers,
                operation=operation,
                sender_id=self._partner_id,
                request_id=request_id,
                sealed=sealed,
                clear=clear,
                version=version,
            )
        except BrokerError as exc:
            # Named by partner, operation and the kind of refusal; nothing of the answer.
            log.warning(
                "the %s answer of %s's source was refused: %s",
                operation, self._partner_id, type(exc).__name__,
            )
            raise SourceUnavailable(f"source answer refused: {type(exc).__name__}") from None

    def _origin_checked(
        self,
        operation: str,
        request_id: str,
        reference: str,
        sealed: common_pb2.SealedSubmission | None,
    ) -> int:
        # The sealed-submission version to open with: 2 once the signature verified, 1 only
        # where unsigned answers are allowed (or no origin is checked). Raises OriginRefused.
        if self._origins is None:
            return SUBMISSION_FORMAT_VERSION
        binding = SourceAnswerBinding(
            operation, self._origins.gateway_id, self._partner_id, request_id, reference
        )
        box = sealed_submission(sealed) if sealed is not None else None
        return self._origins.check(box, binding)

    async def close(self) -> None:
        if self._pinned is not None:
            await self._pinned.close()
        if self._channel is not None:
            await self._channel.close(None)


def _identity(subject: Subject) -> common_pb2.SubjectIdentity:
    return common_pb2.SubjectIdentity(
        bsn=subject.bsn,
        name=subject.name,
        date_of_birth=subject.date_of_birth,
        address=subject.address,
        postcode=subject.postcode,
        reference=subject.reference,
    )


def _describe(exc: grpc.RpcError) -> str:
    code = exc.code() if isinstance(exc, aio.AioRpcError) else None
    described = f"source call failed: {code.name if code else 'unknown'}"
    reason = _request_refusal(exc)
    return f"{described} ({reason})" if reason else described


def _request_refusal(exc: grpc.RpcError) -> str:
    # Only the fixed reasons of a source refusing a request (a key it does not hold after a
    # rotation, say) are named: the trailing metadata is the source's text, not ours.
    if not isinstance(exc, aio.AioRpcError):
        return ""
    trailing: object = exc.trailing_metadata()
    if not isinstance(trailing, aio.Metadata):
        return ""
    for value in trailing.get_all(REASON_METADATA_KEY):
        if value in SOURCE_REQUEST_REASONS:
            return str(value)
    return ""
