"""Partner side of sealed source requests: reading what the gateway asks a source system.

The gateway seals each query (subject, fields, purpose, recipient) to the current sealing key
the partner registry holds for the partner that runs the source (docs/sealed-answers.md,
"Sealed source requests"). The source opens it with its partner's private sealing keys, the
same keys that open the disclosures sealed to that partner, kept in a `SourceKeyRing`: after
a rotation the new key is added before the new public key is registered, and the old one is
removed once no request has named it for a while (`SourceKeyRing.last_used` tells when one
last did).

A request that does not open is refused with a fixed message and a reason in the trailing
metadata ``ketenpoort-reason``; nothing of the request reaches a message or a log line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import grpc
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf.message import DecodeError

from adapters.client import DEFAULT_AUDIENCE, PartnerCredentials
from gateway.api.v1 import source_pb2
from gateway.crypto.errors import SealOpenError, UnknownRecipientKey
from gateway.crypto.keyids import key_id
from gateway.crypto.sealing import SealedBox
from gateway.crypto.source_requests import SourceRequestBinding, open_source_request
from gateway.crypto.submissions import MAX_REQUEST_ID_CHARS
from gateway.formats.sealed_content import sealed_query_box

__all__ = [
    "BOTH_GIVEN",
    "REQUEST_NOT_OPENED",
    "SEALED_NOT_SUPPORTED",
    "SEALING_REQUIRED",
    "SOURCE_KEY_UNKNOWN",
    "SOURCE_REQUEST_REASONS",
    "RequestOpening",
    "RequestRefused",
    "SourceKeyRing",
    "fetch_query",
    "lookup_query",
]

Q = TypeVar("Q", source_pb2.FetchFieldsQuery, source_pb2.LookupSubjectQuery)
log = logging.getLogger("ketenpoort.source")

FETCH_FIELDS = "SourceService/FetchFields"
LOOKUP_SUBJECT = "SourceService/LookupSubject"

# Values of the trailing metadata ``ketenpoort-reason`` on a refused request.
SOURCE_KEY_UNKNOWN = "source_key_unknown"
REQUEST_NOT_OPENED = "request_not_opened"
SEALING_REQUIRED = "sealing_required"
SEALED_NOT_SUPPORTED = "sealed_requests_not_supported"
BOTH_GIVEN = "both_given"
SOURCE_REQUEST_REASONS = frozenset(
    {SOURCE_KEY_UNKNOWN, REQUEST_NOT_OPENED, SEALING_REQUIRED, SEALED_NOT_SUPPORTED, BOTH_GIVEN}
)


class RequestRefused(Exception):
    """A request the source does not answer: the status code, a fixed reason for the trailing
    metadata and a fixed message. Nothing of the request is in either."""

    def __init__(self, code: grpc.StatusCode, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


class SourceKeyRing:
    """A partner's private sealing keys as its source system holds them, by key id.

    Thread-safe, so keys can be added and removed while the source serves. ``clock`` gives the
    time recorded when a request opens with a key (seconds; ``time.time`` by default).
    """

    def __init__(
        self, keys: Iterable[X25519PrivateKey] = (), *, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, X25519PrivateKey] = {}
        self._last_used: dict[str, float] = {}
        for key in keys:
            self.add(key)

    def __repr__(self) -> str:
        return f"SourceKeyRing(key_ids={self.key_ids!r})"

    @property
    def key_ids(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._keys))

    def add(self, key: X25519PrivateKey) -> str:
        """Hold ``key`` (before its public key is registered as the partner's current one);
        returns its key id."""
        kid = key_id(key.public_key())
        with self._lock:
            self._keys[kid] = key
        return kid

    def remove(self, kid: str) -> None:
        """Drop a key no request names any more; requests still sealed to it are refused as
        sealed to an unknown key."""
        with self._lock:
            self._keys.pop(kid, None)

    def last_used(self, kid: str) -> float | None:
        """When a request sealed to ``kid`` last opened here, or None if none has."""
        with self._lock:
            return self._last_used.get(kid)

    def open(self, box: SealedBox, binding: SourceRequestBinding) -> bytes:
        """Open ``box`` with the key it names (UnknownRecipientKey, SealOpenError)."""
        with self._lock:
            keys: Mapping[str, X25519PrivateKey] = dict(self._keys)
        plaintext = open_source_request(box, keys, binding)
        with self._lock:
            self._last_used[box.recipient_key_id] = self._clock()
        return plaintext


@dataclass(frozen=True)
class RequestOpening:
    """How a source opens sealed requests: as the source of ``partner_id`` (the partner id the
    gateway's configuration names for it), with that partner's private sealing keys, for the
    gateway named ``gateway_id`` (its token audience). A source that opens sealed requests
    refuses clear ones unless ``accept_clear`` is set."""

    partner_id: str
    keys: SourceKeyRing
    gateway_id: str = DEFAULT_AUDIENCE
    accept_clear: bool = False

    @classmethod
    def from_credentials(
        cls,
        credentials: PartnerCredentials,
        *,
        gateway_id: str = DEFAULT_AUDIENCE,
        accept_clear: bool = False,
    ) -> RequestOpening:
        """The opening of the partner whose credentials these are, with its current key."""
        return cls(
            credentials.partner_id,
            SourceKeyRing([credentials.hpke_key]),
            gateway_id=gateway_id,
            accept_clear=accept_clear,
        )


def fetch_query(
    request: source_pb2.FetchFieldsRequest, opening: RequestOpening | None
) -> source_pb2.FetchFieldsQuery:
    """The query of a FetchFields request, opened or read from the clear fields
    (RequestRefused when it cannot be used)."""
    clear = source_pb2.FetchFieldsQuery(
        fields=request.fields, purpose=request.purpose, recipient_id=request.recipient_id
    )
    if request.HasField("subject"):
        clear.subject.CopyFrom(request.subject)
    sealed = request.sealed if request.HasField("sealed") else None
    return _query(
        opening, FETCH_FIELDS, request.request_id, request.disclosure_id, sealed, clear
    )


def lookup_query(
    request: source_pb2.LookupSubjectRequest, opening: RequestOpening | None
) -> source_pb2.LookupSubjectQuery:
    """The query of a LookupSubject request, as :func:`fetch_query`."""
    clear = source_pb2.LookupSubjectQuery()
    if request.HasField("subject"):
        clear.subject.CopyFrom(request.subject)
    sealed = request.sealed if request.HasField("sealed") else None
    return _query(opening, LOOKUP_SUBJECT, request.request_id, request.triage_id, sealed, clear)


def _query(
    opening: RequestOpening | None,
    operation: str,
    request_id: str,
    reference: str,
    sealed: source_pb2.SealedQuery | None,
    clear: Q,
) -> Q:
    if sealed is None:
        if opening is not None and not opening.accept_clear:
            # Answering would put the subject on the path once more; a refusal shows the
            # operator a gateway that does not seal to this partner.
            raise RequestRefused(
                grpc.StatusCode.FAILED_PRECONDITION,
                SEALING_REQUIRED,
                "this source is asked only sealed to its partner's registered sealing key",
            )
        return clear
    if clear.ByteSize():
        raise RequestRefused(
            grpc.StatusCode.INVALID_ARGUMENT,
            BOTH_GIVEN,
            "give the query either in clear or sealed, not both",
        )
    if opening is None:
        raise RequestRefused(
            grpc.StatusCode.FAILED_PRECONDITION,
            SEALED_NOT_SUPPORTED,
            "this source opens no sealed requests",
        )
    if not request_id or len(request_id) > MAX_REQUEST_ID_CHARS or not reference:
        raise RequestRefused(
            grpc.StatusCode.INVALID_ARGUMENT,
            REQUEST_NOT_OPENED,
            "a sealed query needs the request's request_id and its disclosure or triage id",
        )
    binding = SourceRequestBinding(
        operation, opening.gateway_id, opening.partner_id, request_id, reference
    )
    try:
        plaintext = opening.keys.open(sealed_query_box(sealed), binding)
    except UnknownRecipientKey:
        log.warning("a %s request was sealed to a key this source does not hold", operation)
        raise RequestRefused(
            grpc.StatusCode.FAILED_PRECONDITION,
            SOURCE_KEY_UNKNOWN,
            "the request is sealed to a partner key this source does not hold",
        ) from None
    except SealOpenError:
        # Moved from another request, operation or partner, or altered on the way: worth an
        # operator's look. Named by operation only, never by content.
        log.warning("a sealed %s request did not open", operation)
        raise RequestRefused(
            grpc.StatusCode.INVALID_ARGUMENT,
            REQUEST_NOT_OPENED,
            "the sealed request could not be opened",
        ) from None
    query = type(clear)()
    try:
        query.ParseFromString(plaintext)
    except DecodeError:
        raise RequestRefused(
            grpc.StatusCode.INVALID_ARGUMENT,
            REQUEST_NOT_OPENED,
            f"the sealed query is not a {query.DESCRIPTOR.name}",
        ) from None
    return query
