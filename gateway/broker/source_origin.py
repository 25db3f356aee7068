"""Whether a source's answer comes from the partner the source is configured for.

A source answer is accepted only signed by a token key the partner registry holds, active,
for the partner the gateway asked (docs/sealed-answers.md, "Signed source answers"), and for
the very request it answers. The registry in force is asked on every answer, so a key
registered, rotated or revoked takes effect with the next request.

Deny by default: an unsigned answer (sealed in version 1, or in clear) counts as no answer
unless the operator allowed unsigned answers for that partner's source. A refused answer makes
the source unavailable for the request, so its fields are marked so and the answer incomplete,
never filled with a value nobody vouched for. Log lines name the partner, the operation and
the reason, never a key id or anything else that came with the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.broker.sources import SourceUnavailable
from gateway.crypto.errors import SealOpenError
from gateway.crypto.source_answers import (
    SourceAnswerBinding,
    VerifyingKey,
    verify_source_answer,
)
from gateway.crypto.submissions import (
    SIGNED_SUBMISSION_FORMAT_VERSION,
    SUBMISSION_FORMAT_VERSION,
    SealedSubmission,
)

__all__ = ["AnswerOrigins", "OriginRefused", "RegisteredSigner"]

log = logging.getLogger("ketenpoort.sources")


class RegisteredSigner(Protocol):
    """What the registry holds of a partner for checking its signatures
    (gateway.server.auth.RegisteredPartner is one)."""

    @property
    def token_keys(self) -> Mapping[str, tuple[str, VerifyingKey]]: ...  # active kid -> key

    @property
    def algorithms(self) -> frozenset[str]: ...

    @property
    def active(self) -> bool: ...


class OriginRefused(SourceUnavailable):
    """A source answer without a valid signature of the source's partner: no answer."""


@dataclass(frozen=True)
class AnswerOrigins:
    """Checks source answers against ``partners()`` (partner id -> registered keys; the
    registry in force) as the gateway named ``gateway_id``; ``unsigned_allowed`` are partner ids
    whose source may still answer unsigned (the [[sources]] entry's allow_unsigned_answers)."""

    partners: Callable[[], Mapping[str, RegisteredSigner]]
    gateway_id: str
    unsigned_allowed: frozenset[str] = field(default_factory=frozenset)

    def check(self, box: SealedSubmission | None, binding: SourceAnswerBinding) -> int:
        """The sealed-submission version to open ``box`` with (``box`` None: a clear answer),
        once its origin is proven or an unsigned answer is allowed; raises OriginRefused."""
        partner_id, operation = binding.source_id, binding.operation
        if box is None or box.version != SIGNED_SUBMISSION_FORMAT_VERSION:
            if partner_id in self.unsigned_allowed:
                return SUBMISSION_FORMAT_VERSION
            raise self._refused(binding, "it is not signed, and signed answers are required")
        partner = self.partners().get(partner_id)
        if partner is None or not partner.active:
            raise self._refused(binding, "the partner has no active registry entry")
        registered = partner.token_keys.get(box.signer_key_id)
        if registered is None:
            # Another partner's key, a revoked one, or none at all: not the source's partner.
            raise self._refused(binding, "it is signed with a key not registered to the partner")
        algorithm, key = registered
        if algorithm not in partner.algorithms:
            raise self._refused(binding, "the key's algorithm is not allowed for the partner")
        try:
            verify_source_answer(box, binding, algorithm, key)
        except SealOpenError:
            raise self._refused(binding, "the signature does not verify") from None
        log.debug("the %s answer of %s's source is signed by its partner", operation, partner_id)
        return SIGNED_SUBMISSION_FORMAT_VERSION

    def _refused(self, binding: SourceAnswerBinding, why: str) -> OriginRefused:
        log.warning(
            "the %s answer of %s's source was refused: %s",
            binding.operation, binding.source_id, why,
        )
        return OriginRefused(f"source answer refused: {why}")
