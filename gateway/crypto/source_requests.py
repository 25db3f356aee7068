"""What the gateway asks partners' source systems, sealed to the source partner with HPKE
(RFC 9180, base mode).

A fetch or a triage lookup names one person of the case (of BSN, name, date of birth, address,
postcode and the partner's own reference, only what the policy lets the source's partner type
hold; a case of several persons is one request per person), the fields and the purpose.
Sealed to the source partner's current registered sealing key (the key its disclosures are
sealed to), none of that is readable to a proxy that terminates TLS between
gateway and source. The ``info`` binds the box to the operation, the gateway that sent it, the
source partner it is for, the partner key it was sealed to, the request id and the disclosure
or triage id that travel beside it in clear: a box moved to another request, operation,
partner or disclosure does not open. The suite is that of sealed answers
(:mod:`gateway.crypto.sealing`); the label ``ketenpoort/v1 sealed-source-request`` keeps the
kinds apart. See docs/sealed-answers.md, "Sealed source requests".

The source opens with its partner's private keys, current and earlier, chosen by the key id
the box names, so that requests sealed just before a rotation still open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from gateway.crypto._encoding import length_prefixed
from gateway.crypto.errors import SealOpenError, UnknownRecipientKey
from gateway.crypto.sealing import SEAL_SUITE_NAME, SealedBox, open_with_info, seal_with_info
from gateway.crypto.submissions import check_binding

__all__ = [
    "SOURCE_REQUEST_FORMAT_VERSION",
    "SOURCE_REQUEST_SUITE_NAME",
    "SourceRequestBinding",
    "open_source_request",
    "seal_source_request",
    "source_request_info",
]

SOURCE_REQUEST_FORMAT_VERSION = 1
SOURCE_REQUEST_SUITE_NAME = SEAL_SUITE_NAME

_INFO_LABEL = b"ketenpoort/v1 sealed-source-request"
_OPEN_FAILED = "sealed source request could not be opened"


@dataclass(frozen=True)
class SourceRequestBinding:
    """What a sealed source request is bound to; gateway and source must present the same.

    ``operation`` is "SourceService/Method", ``gateway_id`` the gateway's name as partners
    address it (its token audience, e.g. ``ketenpoort``), ``source_id`` the partner id of the
    source's partner, ``request_id`` the call-unique id and ``reference`` the disclosure id
    (FetchFields) or triage id (LookupSubject), both sent beside the box in clear.
    """

    operation: str
    gateway_id: str
    source_id: str
    request_id: str
    reference: str

    def __post_init__(self) -> None:
        check_binding(self, ("operation", "gateway_id", "source_id", "request_id", "reference"))


def source_request_info(
    binding: SourceRequestBinding, recipient_key_id: str, version: int
) -> bytes:
    """The HPKE ``info``: the label ``ketenpoort/v1 sealed-source-request``, then version,
    operation, gateway id, source partner id, recipient key id, request id and reference, each
    length-prefixed."""
    return length_prefixed(
        _INFO_LABEL,
        str(version),
        binding.operation,
        binding.gateway_id,
        binding.source_id,
        recipient_key_id,
        binding.request_id,
        binding.reference,
    )


def seal_source_request(
    plaintext: bytes, recipient: X25519PublicKey, binding: SourceRequestBinding
) -> SealedBox:
    """Seal a serialised query to the source partner's key ``recipient`` for ``binding``."""
    return seal_with_info(
        plaintext,
        recipient,
        lambda kid: source_request_info(binding, kid, SOURCE_REQUEST_FORMAT_VERSION),
        version=SOURCE_REQUEST_FORMAT_VERSION,
    )


def open_source_request(
    box: SealedBox, keys: Mapping[str, X25519PrivateKey], binding: SourceRequestBinding
) -> bytes:
    """Open a sealed source request with the partner key it names (``keys``: key id -> key).

    Raises :class:`UnknownRecipientKey` when that key is not in ``keys``, and
    :class:`SealOpenError`, with one message for every cause, when the box is of another
    version or suite, was altered, or was sealed for another binding. The binding is the
    source's own expectation (its partner id, the gateway it serves, the operation it was
    called for) plus the ids that came in clear with the request; the key id from the box only
    selects, and it is bound into ``info`` as computed from the key that opens.
    """
    if box.version != SOURCE_REQUEST_FORMAT_VERSION or box.suite != SOURCE_REQUEST_SUITE_NAME:
        raise SealOpenError(_OPEN_FAILED)
    private_key = keys.get(box.recipient_key_id)
    if private_key is None:
        # The id came with the request: it is not echoed, so nothing sent in lands in a message.
        raise UnknownRecipientKey(
            "the request is sealed to a partner key this source does not hold"
        )
    try:
        return open_with_info(
            box,
            private_key,
            lambda kid: source_request_info(binding, kid, SOURCE_REQUEST_FORMAT_VERSION),
            version=SOURCE_REQUEST_FORMAT_VERSION,
        )
    except SealOpenError:
        raise SealOpenError(_OPEN_FAILED) from None
