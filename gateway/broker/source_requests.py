"""Whether and how the gateway seals what it asks a partner's source system.

A query (the subject's identity, the fields, the purpose, the recipient) is sealed to the
current sealing key the partner registry holds for the partner that runs the source, so that
a proxy terminating TLS on the way reads none of it (docs/sealed-answers.md, "Sealed source
requests"). The registry is asked on every call: a rotation or a reload takes effect with the
next request.

Deny by default: a source partner without a registered sealing key is not asked at all (the
source counts as unavailable for the request) unless the operator allowed clear requests for
that partner; with ``seal_source_requests`` off every source is asked in clear. Log lines and
metrics name the partner and the reason, never anything of the query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from google.protobuf.message import Message

from gateway.api.v1 import source_pb2
from gateway.broker.context import SealingKey
from gateway.broker.sources import SourceUnavailable
from gateway.crypto.source_requests import SourceRequestBinding, seal_source_request
from gateway.formats.sealed_content import sealed_query_message

__all__ = [
    "RequestSealer",
    "RequestSealing",
    "SealingKeyMissing",
    "SourceRequestPolicy",
]

log = logging.getLogger("ketenpoort.sources")


class RequestSealing(StrEnum):
    """How one request to a source went out (the ``sealing`` label of
    ``ketenpoort_source_requests_total``)."""

    SEALED = "sealed"
    # The partner has no registered sealing key and the operator allowed clear requests.
    CLEAR_ALLOWED = "clear_allowed"
    # seal_source_requests is off: every source is asked in clear.
    CLEAR_CONFIGURED = "clear_configured"
    # The partner has no registered sealing key and may not be asked in clear: not asked.
    NO_SEALING_KEY = "no_sealing_key"


class SealingKeyMissing(SourceUnavailable):
    """The source's partner has no registered sealing key, and clear requests to it are not
    allowed: the source is not asked and counts as unavailable for the request."""


@dataclass(frozen=True)
class SourceRequestPolicy:
    """``seal``: seal every request to the partner's current registered key (the
    ``seal_source_requests`` setting); ``clear_allowed``: partner ids whose source may be asked
    in clear while the partner has no registered sealing key."""

    seal: bool = True
    clear_allowed: frozenset[str] = field(default_factory=frozenset)


class RequestSealer:
    """Seals queries to source partners as ``gateway_id`` (the gateway's name as partners
    address it), to the keys ``keys()`` returns (partner id -> current sealing key; the
    gateway's view of the registry, asked on every call)."""

    def __init__(
        self,
        keys: Callable[[], Mapping[str, SealingKey]],
        *,
        gateway_id: str,
        policy: SourceRequestPolicy | None = None,
        on_request: Callable[[str, str], None] | None = None,
    ) -> None:
        if not gateway_id:
            raise ValueError("a request sealer needs the gateway's id")
        self._keys = keys
        self._gateway_id = gateway_id
        self._policy = policy or SourceRequestPolicy()
        self._on_request = on_request
        self._warned_clear: set[str] = set()

    @property
    def gateway_id(self) -> str:
        return self._gateway_id

    def seal(
        self,
        partner_id: str,
        operation: str,
        *,
        request_id: str,
        reference: str,
        query: Message,
    ) -> source_pb2.SealedQuery | None:
        """``query`` sealed for ``partner_id``'s source, or None where it goes in clear.

        Raises :class:`SealingKeyMissing` where the partner has no registered sealing key and
        may not be asked in clear.
        """
        if not self._policy.seal:
            self._count(partner_id, RequestSealing.CLEAR_CONFIGURED)
            return None
        key = self._keys().get(partner_id)
        if key is None:
            self._without_key(partner_id, operation)
            return None
        binding = SourceRequestBinding(
            operation, self._gateway_id, partner_id, request_id, reference
        )
        box = seal_source_request(query.SerializeToString(deterministic=True), key.key, binding)
        self._count(partner_id, RequestSealing.SEALED)
        return sealed_query_message(box)

    def _without_key(self, partner_id: str, operation: str) -> None:
        # Returns where the request may go in clear; raises where it may not go at all.
        if partner_id in self._policy.clear_allowed:
            self._count(partner_id, RequestSealing.CLEAR_ALLOWED)
            if partner_id not in self._warned_clear:
                # Once per partner: the operator chose this, the metric counts every request.
                self._warned_clear.add(partner_id)
                log.warning(
                    "the source of %s is asked in clear: no registered sealing key, and clear "
                    "requests are allowed for it", partner_id,
                )
            return
        self._count(partner_id, RequestSealing.NO_SEALING_KEY)
        log.warning(
            "the source of %s was not asked (%s): no registered sealing key, and clear requests "
            "are not allowed for it", partner_id, operation,
        )
        raise SealingKeyMissing(f"partner {partner_id} has no registered sealing key")

    def _count(self, partner_id: str, sealing: RequestSealing) -> None:
        if self._on_request is not None:
            self._on_request(partner_id, sealing.value)
