"""Requests and decisions: the data that crosses from the edge into the core and back."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.core.model import Effect, Params, Purpose

# Reason given for a field no rule grants (deny by default).
NO_RULE_REASON = "no rule grants this field"


def outside_approach_reason(approach: str) -> str:
    """Reason given for a field that does not apply under the case's approach."""
    return f"field does not apply under approach {approach!r}"


class RefusalCode(StrEnum):
    NOT_PARTICIPANT = "not_participant"
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed"
    PHASE_NOT_ALLOWED = "phase_not_allowed"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    JUSTIFICATION_REQUIRED = "justification_required"
    BREAK_GLASS_EXPIRED = "break_glass_expired"
    NOTHING_PERMITTED = "nothing_permitted"
    # The partner's type is not on the standing table of the case's approach.
    NOT_ON_APPROACH_TABLE = "not_on_approach_table"
    # The case's approach does not use the purpose.
    PURPOSE_NOT_IN_APPROACH = "purpose_not_in_approach"


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A partner asks for case data, acting in a role, for a purpose, in a case phase.

    ``participant`` is established by the edge from the case file. An empty ``fields``
    asks for every field of the catalogue. ``break_glass_minutes`` is how long ago
    break-glass access to the case was first used (whole minutes), or None when it has not
    been: a break-glass purpose is open only for its ``max_duration_minutes`` from then on.

    ``approach`` is the case's approach; empty means the policy's default approach.
    ``person_role`` is the role in the case of the one person the decided fields are about
    (subject, victim, child ...): rules with a ``persons:`` selector apply only when it is one
    of theirs. Empty means a case-level request: only rules without ``persons:`` apply, so a
    field about a person gets the outcome the policy gives regardless of who the person is.
    A caller deciding a case with several persons decides once per person (keeping the
    fields about a person) and once with an empty role (keeping the fields about the case).
    """

    partner_id: str
    role: str
    purpose: str
    phase: str
    participant: bool
    fields: tuple[str, ...] = ()
    justification: str = ""
    break_glass_minutes: int | None = None
    # The case's approach (a policy approach id); empty: the policy's general approach.
    approach: str = ""
    # The role in the case of the person the fields are about; empty: case-level fields.
    person_role: str = ""


@dataclass(frozen=True, slots=True)
class FieldDecision:
    """What happens to one field, and which rule said so. Never holds a value."""

    field: str
    category: str
    special: str
    source: str
    effect: Effect
    transform: str | None
    params: Params
    rule_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Refusal:
    code: RefusalCode
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for a whole request.

    ``fields`` lists every requested field, released or not, so the accountability log can
    name what was asked. A refused decision withholds them all. ``legal_basis`` names the
    grounds of the purpose for the asking partner's type, as ids joined by ", ".
    """

    request: AccessRequest
    partner_type: str
    purpose: Purpose
    policy_version: str
    refusal: Refusal | None
    fields: tuple[FieldDecision, ...]
    legal_basis: str

    @property
    def permitted(self) -> bool:
        return self.refusal is None

    @property
    def released(self) -> tuple[FieldDecision, ...]:
        return tuple(d for d in self.fields if d.effect is not Effect.WITHHOLD)
