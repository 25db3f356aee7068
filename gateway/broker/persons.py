"""The persons of a case: what a partner gives to name one, how it is checked, and the
policy questions the broker asks per person.

A case is about a situation, often a household: several persons, each with a role in the case
(alleged perpetrator, victim, child ...). Many have no BSN (a trafficking victim, someone not
yet identified), so a BSN is never required: a person is identified by BSN, by name with a
(possibly partial) date of birth, by the registering partner's own reference, or is
unidentified and described. Each person gets a gateway id (``p_...``) and a pseudonym that
every log record about it carries (:func:`gateway.crypto.pseudonym.person_pseudonym` when no
BSN is known at the start).

The policy vocabulary for persons (person roles, which identifiers a partner type may hold,
whether a field is about a person or the case) is read through the small functions here, so
that a policy without it (before the policy model knows persons) still works with the shipped
defaults.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date

from gateway.broker.errors import InvalidRequest
from gateway.broker.sources import Subject
from gateway.core import About, CompiledPolicy, FieldSpec
from gateway.crypto.pseudonym import is_valid_bsn
from gateway.store.cases import IdentifiedBy

MAX_PERSONS = 20
MAX_NAME_CHARS = 200
MAX_ADDRESS_CHARS = 500
MAX_POSTCODE_CHARS = 16
MAX_REFERENCE_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_PERSON_ID_CHARS = 64
SUBJECT_ROLE = "subject"
# The case-file fields that hold a person's identity (entries with the person's id).
PERSON_FIELDS = {
    "bsn": "subject.bsn",
    "name": "subject.name",
    "date_of_birth": "subject.date_of_birth",
    "address": "subject.address",
    "postcode": "subject.postcode",
    "reference": "subject.reference",
    "description": "subject.description",
}
# YYYY, YYYY-MM or YYYY-MM-DD: a date of birth as precise as it is known.
_PARTIAL_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?\Z")


@dataclass(frozen=True)
class PersonInput:
    """One person as a partner gives it (proto PersonInput); ``reference`` is the caller's."""

    role_in_case: str
    bsn: str = ""
    name: str = ""
    date_of_birth: str = ""
    address: str = ""
    postcode: str = ""
    reference: str = ""
    description: str = ""

    @classmethod
    def of_subject(cls, subject: Subject) -> PersonInput:
        """The single subject of the older registration form: one person, role "subject"."""
        return cls(
            role_in_case=SUBJECT_ROLE,
            bsn=subject.bsn,
            name=subject.name,
            date_of_birth=subject.date_of_birth,
            address=subject.address,
            postcode=subject.postcode,
            reference=subject.reference,
        )

    def values(self) -> dict[str, str]:
        """The identity as case-file fields; empty ones left out."""
        given = {
            "bsn": self.bsn,
            "name": self.name,
            "date_of_birth": self.date_of_birth,
            "address": self.address,
            "postcode": self.postcode,
            "reference": self.reference,
            "description": self.description,
        }
        return {PERSON_FIELDS[k]: v for k, v in given.items() if v}

    def content(self) -> tuple[str, ...]:
        """What makes two inputs the same request: every value, as given."""
        return (
            self.role_in_case, self.bsn, self.name, self.date_of_birth, self.address,
            self.postcode, self.reference, self.description,
        )


def about_person(spec: FieldSpec) -> bool:
    """Whether a catalogue field is about a person of the case (decided once per person's
    role) rather than about the case (decided once)."""
    return spec.about is About.PERSON


def for_source(
    subject: Subject, allowed: Collection[str], *, own_reference: bool
) -> Subject:
    """``subject`` with only the identifiers a source may be given: those in ``allowed``, and
    the reference only when it is that source partner type's own (``own_reference``)."""
    def keep(name: str, value: str) -> str:
        return value if name in allowed else ""

    return replace(
        subject,
        bsn=keep("bsn", subject.bsn),
        name=keep("name", subject.name),
        date_of_birth=keep("date_of_birth", subject.date_of_birth),
        address=keep("address", subject.address),
        postcode=keep("postcode", subject.postcode),
        reference=subject.reference if own_reference and "reference" in allowed else "",
    )


def has_identifier(subject: Subject) -> bool:
    """Whether a source could look for the person at all with what it may be given: a BSN,
    its own reference, or a name with a date of birth or a postcode."""
    return bool(
        subject.bsn
        or subject.reference
        or (subject.name and (subject.date_of_birth or subject.postcode))
    )


def identified_by(person: PersonInput) -> IdentifiedBy:
    if person.bsn:
        return IdentifiedBy.BSN
    if person.name and person.date_of_birth:
        return IdentifiedBy.NAME_AND_BIRTH
    if person.reference:
        return IdentifiedBy.REFERENCE
    return IdentifiedBy.UNIDENTIFIED


def validate_persons(policy: CompiledPolicy, persons: tuple[PersonInput, ...]) -> None:
    if not persons:
        raise InvalidRequest("a case needs at least one person: give persons or subject")
    if len(persons) > MAX_PERSONS:
        raise InvalidRequest(f"at most {MAX_PERSONS} persons per case")
    for i, person in enumerate(persons):
        validate_person(policy, person, f"persons[{i}]")


def validate_person(policy: CompiledPolicy, p: PersonInput, label: str) -> None:
    """Refuse a person that cannot be stored as given, naming ``label.field``; never a value."""
    roles = policy.person_roles
    if p.role_in_case not in roles:
        raise InvalidRequest(f"{label}.role_in_case must be one of {', '.join(roles)}")
    if p.bsn and not is_valid_bsn(p.bsn):
        raise InvalidRequest(
            f"{label}.bsn is not a valid BSN (nine digits passing the 11-test)"
        )
    _length(label, "name", p.name, MAX_NAME_CHARS)
    _length(label, "address", p.address, MAX_ADDRESS_CHARS)
    _length(label, "postcode", p.postcode, MAX_POSTCODE_CHARS)
    _length(label, "reference", p.reference, MAX_REFERENCE_CHARS)
    _length(label, "description", p.description, MAX_DESCRIPTION_CHARS)
    if p.date_of_birth and not is_partial_date(p.date_of_birth):
        raise InvalidRequest(
            f"{label}.date_of_birth must be a real date written YYYY-MM-DD, YYYY-MM or YYYY"
        )
    if p.name and not p.name.strip():
        raise InvalidRequest(f"{label}.name must not be blank")
    if identified_by(p) is IdentifiedBy.UNIDENTIFIED and not p.description.strip():
        raise InvalidRequest(
            f"{label} is not identified: give bsn, name with date_of_birth, reference, "
            "or a description of the person"
        )


def check_person_ids(person_ids: tuple[str, ...]) -> None:
    if len(person_ids) > MAX_PERSONS:
        raise InvalidRequest(f"at most {MAX_PERSONS} person_ids")
    for i, person_id in enumerate(person_ids):
        if not person_id or len(person_id) > MAX_PERSON_ID_CHARS or "\x00" in person_id:
            raise InvalidRequest(
                f"person_ids[{i}] must be 1..{MAX_PERSON_ID_CHARS} characters, no NUL"
            )


def is_partial_date(text: str) -> bool:
    """True for ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` naming a year, month or day that
    exists (no 1984-13, no 1984-02-30), and nothing else."""
    match = _PARTIAL_DATE.match(text)
    if match is None:
        return False
    year, month, day = match.groups()
    try:
        date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return False
    return int(year) >= 1


def _length(label: str, name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidRequest(f"{label}.{name} is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidRequest(f"{label}.{name} must not contain NUL")
