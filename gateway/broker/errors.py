"""Errors of the brokering use cases. The gRPC edge maps each to one status code
(gateway/server/status.py); messages are safe to return and hold no personal data.

    BrokerError
    ├── InvalidRequest      malformed input, unknown purpose / phase / field  -> INVALID_ARGUMENT
    ├── CaseNotFound        no such case                                      -> NOT_FOUND
    ├── HoldNotFound        no such confidentiality hold                      -> NOT_FOUND
    ├── PhaseMismatch       the case is not in the declared phase             -> FAILED_PRECONDITION
    ├── CaseShredded        its data was deleted when its retention ended     -> FAILED_PRECONDITION
    ├── Refused             the policy refuses; a refusal record was written  -> PERMISSION_DENIED
    ├── AlreadyEnded        the thing acted on has ended (a lifted hold)      -> FAILED_PRECONDITION
    ├── StateChanged        the case changed since it was read / was decided  -> FAILED_PRECONDITION
    ├── NoZvhPartner        the policy names no ZVH partner to take part      -> FAILED_PRECONDITION
    ├── RecipientKeyMissing no sealing key registered for the caller  -> FAILED_PRECONDITION
    ├── GatewayKeyUnknown   sealed to a gateway key not in use            -> FAILED_PRECONDITION
    ├── SealingRequired     clear content where sealing is required       -> FAILED_PRECONDITION
    ├── RequestIdReused     a request id sent again with other content    -> ALREADY_EXISTS
    └── RequestInProgress   the first call with this request id is not done -> UNAVAILABLE

A sealed submission that does not open is an InvalidRequest with one fixed message. Errors
with a ``reason`` say it in trailing metadata too, so a client can act on it without parsing
the message (a client refetches the gateway's keys on ``gateway_key_unknown``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

_Choice = TypeVar("_Choice", bound=StrEnum)


class BrokerError(Exception):
    """Base of every error a use case raises on purpose."""

    # A stable, machine-readable name for errors a client acts on; empty for the others.
    reason: str = ""


class InvalidRequest(BrokerError):
    pass


def choice_of(kind: type[_Choice], name: str, text: str, default: _Choice | None = None) -> _Choice:
    """The member of the string enum ``kind`` spelled ``text`` (``default`` when empty), or
    ``InvalidRequest`` listing the choices."""
    if not text and default is not None:
        return default
    try:
        return kind(text)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be one of {', '.join(kind)}") from exc


class CaseNotFound(BrokerError):
    pass


class HoldNotFound(BrokerError):
    pass


class PersonNotFound(BrokerError):
    """The case has no person with the given id."""


class PersonStateConflict(BrokerError):
    """The person is not in a state the action applies to (removed, or already has a BSN)."""


class PhaseMismatch(BrokerError):
    pass


class CaseShredded(BrokerError):
    """The case's data was deleted at the end of its retention period.

    FAILED_PRECONDITION rather than NOT_FOUND: the id is right and the case is known (its
    records stay in the log), but it is in a state no request can change, so the caller
    learns why instead of doubting the id, and does not retry.
    """

    def __init__(self, message: str, log_seq: int | None = None) -> None:
        super().__init__(message)
        self.log_seq = log_seq


class Refused(BrokerError):
    """Refused, with a refusal record; the refusal code (``not_participant``,
    ``not_procesregisseur``, a policy refusal such as ``purpose_not_allowed``) is also the
    reason the client sees, so it can act on it without parsing the message."""

    def __init__(self, code: str, message: str, log_seq: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = code
        self.log_seq = log_seq


class AlreadyEnded(BrokerError):
    """The action needs something still in force that has ended (a hold lifted or expired)."""


class StateChanged(BrokerError):
    """The case is no longer in the state the action needs: its intake was decided, the regie
    changed hands meanwhile, there is no earlier holder to return a regie to. Read the case
    again (CaseService.GetCase) before deciding anew."""

    reason = "case_state_changed"


class NoZvhPartner(BrokerError):
    """The policy names no partner of type zvh, so no case can be registered: the ZVH takes
    part in every case and decides its intake."""


class RecipientKeyMissing(BrokerError):
    """The caller has no registered sealing key, so no answer can be sealed to it."""


class GatewayKeyUnknown(BrokerError):
    """A sealed submission was sealed to a gateway key that is not (or no longer) in use: the
    sender fetches the gateway's keys again and seals anew."""

    reason = "gateway_key_unknown"


class SealingRequired(BrokerError):
    """The gateway takes submissions only sealed, and this one came in clear."""

    reason = "sealing_required"


class RequestIdReused(BrokerError):
    """The caller already used this request id for another request (other content, or
    another operation) within the retention window: nothing was done. A new request needs a
    new id."""

    reason = "request_id_reused"


class RequestInProgress(BrokerError):
    """A call with this request id was accepted but its first call has not finished yet:
    send the same request again a little later."""

    reason = "request_in_progress"
