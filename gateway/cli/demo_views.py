"""What the demo knows about a case it plays, and what it expects a partner to see of it.

The demo keeps its own account of each case: the persons with their roles and identities as
registered (and identified later), the case-file entries it wrote, and which partner holds
which regie. From that account, the shipped policy and the partner systems' data it computes
the answer a partner must get: the outcome of every field for every person (the fields about
a person decided for that person's role, the fields about the case once) and the value of
every released one. Nothing here asks the gateway how it decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from adapters.source_server import InMemoryBackend, SubjectRecord
from gateway.api.v1 import common_pb2
from gateway.core import About, AccessRequest, CompiledPolicy, Effect, FieldDecision

# The identity fields of a person in the ZVH's case file, and where the registration has them.
IDENTITY_FIELDS = {
    "subject.bsn": "bsn",
    "subject.name": "name",
    "subject.date_of_birth": "date_of_birth",
    "subject.address": "address",
    "subject.postcode": "postcode",
    "subject.reference": "reference",
    "subject.description": "description",
}
# Log-like fields of the case file: a partner gets all their entries, oldest first; of the
# other fields it gets the newest (docs/case-plan.md).
_ACCUMULATING = ("case.notes", "case.meeting_minutes", "case.plan_actions", "case.action_owners")
# How a role claim counts on a case: only for the holder of the matching regie.
_REGIE_CLAIMS = ("process_director", "case_director")


@dataclass
class PersonView:
    person_id: str
    label: str
    role: str
    identity: common_pb2.PersonInput


@dataclass(frozen=True)
class Entry:
    field: str
    text: str
    author: str


@dataclass
class CaseView:
    """One case as the demo played it."""

    title: str
    case_id: str
    approach: str
    persons: dict[str, PersonView] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    procesregie: str = ""
    casusregie: str = ""
    # What the demo asked of the gateway for this case, to be found again in the log.
    disclosures: int = 0
    refusals: int = 0
    triages: int = 0
    # The refusal codes the log must show for the refusals the demo expects to be logged.
    refusal_codes: list[str] = field(default_factory=list)
    # column (partner / purpose) -> field -> person label ("" for the case) -> outcome symbol
    table: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def person(self, label: str) -> PersonView:
        return next(p for p in self.persons.values() if p.label == label)

    def write(self, field_id: str, text: str, author: str) -> None:
        self.entries.append(Entry(field_id, text, author))

    def role_of(self, partner: str, claim: str) -> str:
        """The role the policy decides with: a regie claim counts only for its holder."""
        if claim == "process_director" and partner == self.procesregie:
            return claim
        if claim == "case_director" and partner == self.casusregie:
            return claim
        return "chain_partner" if claim in _REGIE_CLAIMS else claim

    def case_value(self, field_id: str, recipient: str) -> str | None:
        """The case-file value of a case-level field for ``recipient``: a confidential
        entry reaches only its author."""
        texts = [
            e.text
            for e in self.entries
            if e.field == field_id
            and (not field_id.endswith(".confidential") or e.author == recipient)
        ]
        if not texts:
            return None
        accumulating = any(
            field_id == f or field_id.startswith(f + ".") for f in _ACCUMULATING
        )
        return "\n".join(texts) if accumulating else texts[-1]


def expected_outcomes(
    policy: CompiledPolicy,
    request: AccessRequest,
    persons: list[PersonView],
) -> dict[str, dict[str, FieldDecision]]:
    """Person id ("" for the case) -> field -> what the policy says: the fields about a person
    decided for that person's role, the fields about the case once without a person role."""
    out: dict[str, dict[str, FieldDecision]] = {
        "": {
            d.field: d
            for d in policy.decide(request).fields
            if policy.field(d.field).about is not About.PERSON
        }
    }
    for person in persons:
        decided = policy.decide(replace(request, person_role=person.role)).fields
        out[person.person_id] = {
            d.field: d for d in decided if policy.field(d.field).about is About.PERSON
        }
    return out


def source_identity(
    policy: CompiledPolicy, person: PersonView, partner_type: str
) -> common_pb2.SubjectIdentity | None:
    """What a source of ``partner_type`` may be given about the person (its partner type's
    identifiers), or None when that is nothing it could find a person by. The demo's
    persons carry no partner reference (which would go only to the partner type that gave
    it)."""
    allowed = policy.identifiers_for(partner_type)
    ident = person.identity
    subject = common_pb2.SubjectIdentity(
        **{
            name: getattr(ident, name)
            for name in ("bsn", "name", "date_of_birth", "address", "postcode")
            if name in allowed
        }
    )
    findable = subject.bsn or (
        subject.name and (subject.date_of_birth or subject.postcode)
    )
    return subject if findable else None


def source_record(
    backend: InMemoryBackend | None, identity: common_pb2.SubjectIdentity | None
) -> SubjectRecord | None:
    """The partner system's record of the person, as its system finds it."""
    if backend is None or identity is None:
        return None
    return backend.find(identity)


SYMBOL = {Effect.DISCLOSE: "D", Effect.MASK: "M", Effect.WITHHOLD: "·"}


def symbol_of(d: FieldDecision) -> str:
    return SYMBOL[d.effect] + (f"({d.transform})" if d.transform else "")
