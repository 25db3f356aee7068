"""Errors raised by the policy core.

::

    Exception
    ├── PolicyError            the policy (or a policy test file) is invalid; carries every error
    └── ValueError
        └── RequestError       a request names something the policy does not know
            ├── UnknownPartner
            ├── UnknownPartnerType
            ├── UnknownRole
            ├── UnknownPurpose
            ├── UnknownPhase
            ├── UnknownField
            ├── UnknownApproach
            └── UnknownPersonRole

Messages name policy ids only, never a field value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

# A request id is echoed in the message so an operator can see what was asked; the cap keeps
# an oversized or abusive id from flooding a log line.
_MAX_ECHOED_ID = 64


class Severity(StrEnum):
    """An error stops the policy from loading; a warning is reported and the policy loads."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, order=True)
class PolicyIssue:
    """One problem in a policy file, located so an editor can jump to it.

    ``hint`` says how to mend it; it is shown on its own line under the message.
    """

    file: str
    line: int
    column: int
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


class PolicyError(Exception):
    """The policy could not be loaded. ``issues`` lists every error found, sorted by place.

    Warnings handed in are dropped: they never stop a policy, so they travel with the
    compiled policy (``CompiledPolicy.warnings``) instead.
    """

    def __init__(self, issues: Iterable[PolicyIssue]) -> None:
        self.issues: tuple[PolicyIssue, ...] = tuple(sorted(
            {issue for issue in issues if issue.is_error}))
        count = len(self.issues)
        lines = [f"{count} policy error{'s' if count != 1 else ''}"]
        for issue in self.issues:
            lines.append(str(issue))
            if issue.hint:
                lines.append(f"    hint: {issue.hint}")
        super().__init__("\n".join(lines))


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


class UnknownPartnerType(RequestError):
    kind = "partner type"


class UnknownRole(RequestError):
    kind = "role"


class UnknownPurpose(RequestError):
    kind = "purpose"


class UnknownPhase(RequestError):
    kind = "phase"


class UnknownField(RequestError):
    kind = "field"


class UnknownApproach(RequestError):
    kind = "approach"


class UnknownPersonRole(RequestError):
    kind = "person role"
