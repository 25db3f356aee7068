"""Errors of the brokering use cases. The gRPC edge maps each to one status code
(gateway/server/status.py); messages are safe to return and hold no personal data.

    BrokerError
    ├── InvalidRequest      malformed input, unknown purpose / phase / field  -> INVALID_ARGUMENT
    ├── CaseNotFound        no such case                                      -> NOT_FOUND
    ├── PhaseMismatch       the case is not in the declared phase             -> FAILED_PRECONDITION
    ├── Refused             the policy refuses; a refusal record was written  -> PERMISSION_DENIED
    └── RecipientKeyMissing no sealing key registered for the caller  -> FAILED_PRECONDITION
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every error a use case raises on purpose."""


class InvalidRequest(BrokerError):
    pass


class CaseNotFound(BrokerError):
    pass


class PhaseMismatch(BrokerError):
    pass


class Refused(BrokerError):
    def __init__(self, code: str, message: str, log_seq: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.log_seq = log_seq


class RecipientKeyMissing(BrokerError):
    """The caller has no registered sealing key, so no answer can be sealed to it."""
