"""The person an access report or a confidentiality hold is about: named by BSN, or by case
id and person id for a person without one (a trafficking victim, a child not yet identified).

Either way the person becomes the set of pseudonyms it stands under in the log:

- by BSN: the BSN's keyed pseudonym, and the pseudonym of every case person with that BSN,
  whether the BSN was known when the person was added (its pseudonym is the BSN's) or learnt
  later (``case_persons.bsn_pseudonym``);
- by case and person: that person's pseudonym, and, once its BSN is known, everything the
  BSN reaches as above (the same human, so the same report).

The BSN goes no further than ``bsn_pseudonym``; messages never repeat it. An unknown case and
an unknown person in a known case get the same NOT_FOUND, so the answer tells neither apart.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from gateway.broker.errors import CaseNotFound, InvalidRequest
from gateway.broker.log_events import PERSON_ID_TYPE, SUBJECT_ID_TYPE
from gateway.crypto.pseudonym import subject_pseudonym
from gateway.store.persons import PersonLink, pseudonyms_of

__all__ = [
    "MAX_ID_CHARS",
    "PERSON_ID_TYPE",
    "NamedBy",
    "PersonRole",
    "Subject",
    "Subjects",
    "check_person_ids",
]

MAX_ID_CHARS = 64
NO_SUCH_PERSON = "no such person in this case"
BAD_BSN = "bsn is not a valid BSN (nine digits passing the 11-test)"


class NamedBy:
    """How a request named its subject (the values of the report record's ``named_by``)."""

    BSN = "bsn"
    PERSON = "person"


@dataclass(frozen=True)
class PersonRole:
    """A person of a case the subject is, with its role id there."""

    case_id: str
    person_id: str
    role_in_case: str


@dataclass(frozen=True)
class Subject:
    # Every pseudonym the person stands under in the log, the named one first.
    pseudonyms: tuple[str, ...]
    # Kind of identifier of the first pseudonym.
    id_type: str
    # The case persons the subject is, by case and person id.
    persons: tuple[PersonRole, ...]
    named_by: str
    # The case the request named the person in ("" when named by BSN).
    case_id: str = ""

    @property
    def pseudonym(self) -> str:
        return self.pseudonyms[0]

    def in_case(self, case_id: str) -> bool:
        return any(p.case_id == case_id for p in self.persons)


def check_person_ids(case_id: str, person_id: str) -> None:
    """Both ids given, each 1..MAX_ID_CHARS characters without NUL (PostgreSQL refuses NUL
    in a query, and no stored id holds one)."""
    for name, value in (("case_id", case_id), ("person_id", person_id)):
        if not value or len(value) > MAX_ID_CHARS or "\x00" in value:
            raise InvalidRequest(
                f"{name} is required with a person: 1..{MAX_ID_CHARS} characters, no NUL"
            )


class PersonLinks(Protocol):
    """Which persons of which cases a pseudonym names (``gateway.store.persons``). Blocking."""

    def linked_to(self, pseudonyms: Collection[str]) -> list[PersonLink]: ...

    def person(self, case_id: str, person_id: str) -> PersonLink | None: ...


class Subjects:
    """Resolves a BSN or a case person to a ``Subject`` (blocking: reads ``case_persons``)."""

    def __init__(self, directory: PersonLinks, pseudonym_key: bytes) -> None:
        self._directory = directory
        self._key = pseudonym_key

    def bsn_pseudonym(self, bsn: str) -> str:
        """The BSN's keyed pseudonym; InvalidRequest (without the number) for a bad one."""
        try:
            return subject_pseudonym(self._key, bsn)
        except ValueError:
            raise InvalidRequest(BAD_BSN) from None

    def by_bsn_pseudonym(self, bsn_pseudonym: str) -> Subject:
        links = self._directory.linked_to([bsn_pseudonym])
        return Subject(
            pseudonyms=tuple(dict.fromkeys([bsn_pseudonym, *pseudonyms_of(links)])),
            id_type=SUBJECT_ID_TYPE,
            persons=_roles(links),
            named_by=NamedBy.BSN,
        )

    def by_person(self, case_id: str, person_id: str) -> Subject:
        check_person_ids(case_id, person_id)
        person = self._directory.person(case_id, person_id)
        if person is None:
            raise CaseNotFound(NO_SUCH_PERSON)
        seeds = [person.pseudonym]
        if person.bsn_pseudonym:
            seeds.append(person.bsn_pseudonym)
        links = self._directory.linked_to(seeds)
        return Subject(
            pseudonyms=tuple(dict.fromkeys([*seeds, *pseudonyms_of(links)])),
            id_type=SUBJECT_ID_TYPE if _keyed_on_bsn(person) else PERSON_ID_TYPE,
            persons=_roles(links),
            named_by=NamedBy.PERSON,
            case_id=case_id,
        )

    def reach(self, pseudonyms: Collection[str]) -> dict[str, frozenset[str]]:
        """For each pseudonym a hold is stored on, the pseudonyms it reaches: itself and those
        of the case persons linked to it (for a BSN's pseudonym: every person with that BSN,
        including those whose BSN was learnt after the hold was placed)."""
        links = self._directory.linked_to(pseudonyms)
        reach: dict[str, frozenset[str]] = {}
        for held in pseudonyms:
            linked = {
                link.pseudonym for link in links if held in (link.pseudonym, link.bsn_pseudonym)
            }
            reach[held] = frozenset({held, *linked})
        return reach


def _keyed_on_bsn(person: PersonLink) -> bool:
    """Whether the person's pseudonym is its BSN's: the BSN was known when it was added."""
    if person.bsn_pseudonym is not None:
        return person.bsn_pseudonym == person.pseudonym
    return person.identified_by == "bsn"


def _roles(links: Collection[PersonLink]) -> tuple[PersonRole, ...]:
    return tuple(PersonRole(p.case_id, p.person_id, p.role_in_case) for p in links)
