"""Where sealed submissions are opened: registrations and case-file entries from partners,
and answers from partners' source systems.

The gate opens a box with the gateway's HPKE key ring (the key the box names, so boxes
sealed before a rotation still open), and applies the one rule about clear content: a gateway
configured with ``require_sealed_submissions`` refuses it. Failures become broker errors with
fixed messages; nothing from the box or its plaintext reaches a message or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization

from gateway.broker.errors import GatewayKeyUnknown, InvalidRequest, SealingRequired
from gateway.crypto.errors import SealOpenError, UnknownGatewayKey
from gateway.crypto.provider import HpkeRecipient, KeyRing
from gateway.crypto.submissions import (
    MAX_REQUEST_ID_CHARS,
    SUBMISSION_FORMAT_VERSION,
    SealedSubmission,
    SubmissionBinding,
    open_submission,
)
from gateway.formats.gateway_key_statement import AdvertisedKey

__all__ = [
    "NOT_OPENED",
    "SEALING_REQUIRED",
    "AdvertisedKey",
    "SubmissionGate",
    "advertised_keys",
]

log = logging.getLogger("ketenpoort.submissions")

NOT_OPENED = "the sealed submission could not be opened"
SEALING_REQUIRED = (
    "this gateway accepts this content only sealed to its key (see GetGatewayKeys)"
)


class SubmissionGate:
    """Opens sealed submissions and decides about clear ones.

    ``keys`` is asked for the ring on every use, so a rotation (or a retirement) takes effect
    without a restart.
    """

    def __init__(
        self, keys: Callable[[], KeyRing[HpkeRecipient]], *, require_sealed: bool = False
    ) -> None:
        self._keys = keys
        self._require_sealed = require_sealed

    @property
    def require_sealed(self) -> bool:
        return self._require_sealed

    @property
    def current_key_id(self) -> str:
        """The id of the key senders should seal to now."""
        return self._keys().current_id

    def open(
        self,
        sealed: SealedSubmission,
        *,
        operation: str,
        sender_id: str,
        request_id: str,
        version: int = SUBMISSION_FORMAT_VERSION,
    ) -> bytes:
        """The plaintext of a sealed submission, opened for this operation, sender and request,
        if it is of ``version`` (2 only once the caller checked its signature).

        Raises InvalidRequest (a missing or malformed request id, or a box that does not open:
        one message for every cause) or GatewayKeyUnknown (the box names a key not in use).
        """
        if not request_id or len(request_id) > MAX_REQUEST_ID_CHARS:
            raise InvalidRequest(
                f"request_id is required with sealed content (1..{MAX_REQUEST_ID_CHARS} characters)"
            )
        binding = SubmissionBinding(operation, sender_id, request_id)
        try:
            return open_submission(sealed, self._keys(), binding, version=version)
        except UnknownGatewayKey as exc:
            # Expected for a while after a retirement; the sender refetches the keys.
            log.info("%s from %s was sealed to a gateway key not in use", operation, sender_id)
            raise GatewayKeyUnknown(str(exc)) from None
        except SealOpenError:
            # A box moved from another request, operation or sender, or altered on the way:
            # worth an operator's look. Named by operation and sender only, never its content.
            log.warning("a sealed %s from %s did not open", operation, sender_id)
            raise InvalidRequest(NOT_OPENED) from None

    def admit_clear(self) -> None:
        """Called for content that came in clear: refuses it when sealing is required."""
        if self._require_sealed:
            raise SealingRequired(SEALING_REQUIRED)

    def advertised(self) -> tuple[AdvertisedKey, ...]:
        """The usable keys, the current one first, then the others by id."""
        return advertised_keys(self._keys())


def advertised_keys(ring: KeyRing[HpkeRecipient]) -> tuple[AdvertisedKey, ...]:
    """The keys of ``ring`` as GetGatewayKeys tells them: the current one first, then the
    others by id."""
    ordered = [ring.current_id, *sorted(k for k in ring.keys if k != ring.current_id)]
    return tuple(
        AdvertisedKey(
            key_id=kid,
            public_key=_raw(ring.keys[kid]),
            current=kid == ring.current_id,
        )
        for kid in ordered
    )


def _raw(recipient: HpkeRecipient) -> bytes:
    return recipient.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
