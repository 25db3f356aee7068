"""Errors raised by the policy core.

::

    Exception
    ├── PolicyError            the policy (or a policy test file) is invalid; carries every issue
    └── ValueError
        └── RequestError       a request names something the policy does not know
            ├── UnknownPartner
            ├── UnknownRole
            ├── UnknownPurpose
            ├── UnknownPhase
            └── UnknownField

Messages name policy ids only, never a field value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# A request id is echoed in the message so an operator can see what was asked; the cap keeps
# an oversized or abusive id from flooding a log line.
_MAX_ECHOED_ID = 64


@dataclass(frozen=True, slots=True, order=True)
class PolicyIssue:
    """One problem in a policy file, located so an editor can jump to it."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PolicyError(Exception):
    """The policy could not be loaded. ``issues`` lists every problem found, sorted by place."""

    def __init__(self, issues: Iterable[PolicyIssue]) -> None:
        self.issues: tuple[PolicyIssue, ...] = tuple(sorted(set(issues)))
        count = len(self.issues)
        head = f"{count} policy error{'s' if count != 1 else ''}"
        super().__init__("\n".join([head, *(str(issue) for issue in self.issues)]))


def _echo(ref: str) -> str:
    if len(ref) > _MAX_ECHOED_ID:
        return repr(ref[:_MAX_ECHOED_ID] + "…")
    return repr(ref)


class RequestError(ValueError):
    """A request refers to an id the loaded policy does not define."""

    kind = "reference"

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"unknown {self.kind} {_echo(ref)}")


class UnknownPartner(RequestError):
    kind = "partner"


class UnknownRole(RequestError):
    kind = "role"


class UnknownPurpose(RequestError):
    kind = "purpose"


class UnknownPhase(RequestError):
    kind = "phase"


class UnknownField(RequestError):
    kind = "field"
