"""The policy model: what the YAML files say, as plain frozen data.

Every element remembers where it was written (``loc``) and where each of its keys and list
items were written (``marks``), so that later stages can report ``file:line:column``.
Locations take no part in equality: two policies that say the same thing are equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# Field source for the ZVH's own case file kept by the gateway itself.
ZVH_SOURCE = "zvh"
# The only category a purpose without need-to-know (triage) may ever reach.
INDEX_CATEGORY = "index"
# The partner type of the ZVH itself: on the standing table of every approach.
ZVH_PARTNER_TYPE = "zvh"
# What a source may be given to find a person in its own system.
IDENTIFIERS = ("bsn", "name", "date_of_birth", "address", "postcode", "reference")
DEFAULT_IDENTIFIERS = ("bsn", "name", "date_of_birth")
# The approach a policy without an ``approaches`` section has, and the default's usual id.
GENERAL_APPROACH = "general"
# Person roles of a policy without a ``person_roles`` section: the ones every ZVH uses.
DEFAULT_PERSON_ROLES = ("subject", "alleged_perpetrator", "victim", "child", "parent",
                        "household_member")

Params = tuple[tuple[str, str | int], ...]


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# Elements built in code rather than parsed from a file have no place to point at.
NOWHERE = Location("<policy>", 0, 0)

Marks = tuple[tuple[str, Location], ...]


class Effect(StrEnum):
    DISCLOSE = "disclose"
    MASK = "mask"
    WITHHOLD = "withhold"


class Special(StrEnum):
    """Special regime of a category under the AVG."""

    NONE = "none"
    ART9 = "art9"
    ART10 = "art10"


class About(StrEnum):
    """Whom a field of the case record is about: one person of the case, or the case itself."""

    PERSON = "person"
    CASE = "case"


class FieldKind(StrEnum):
    """Shape of a field's value; decides which transforms make sense for it."""

    TEXT = "text"
    DATE = "date"
    NAME = "name"
    POSTCODE = "postcode"
    IDENTIFIER = "identifier"


class _Marked:
    __slots__ = ()
    loc: Location
    marks: Marks

    def at(self, key: str) -> Location:
        """Where ``key`` (or a list item such as ``"fields[2]"``) was written, else the element."""
        for name, location in self.marks:
            if name == key:
                return location
        # Fall back to the enclosing key: "who.roles[1]" -> "who.roles" -> "who".
        if key.endswith("]"):
            return self.at(key[: key.rindex("[")])
        if "." in key:
            return self.at(key[: key.rindex(".")])
        return self.loc


def _loc() -> Location:
    return field(default=NOWHERE, compare=False, repr=False)


def _marks() -> Marks:
    return field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CategorySpec(_Marked):
    id: str
    description: str
    special: Special = Special.NONE
    loc: Location = _loc()
    marks: Marks = _marks()


@dataclass(frozen=True, slots=True)
class FieldSpec(_Marked):
    """A field of the case record. ``special`` set on the field overrides its category's."""

    id: str
    category: str
    source: str
    description: str
    kind: FieldKind = FieldKind.TEXT
    special: Special | None = None
    about: About = About.PERSON
    loc: Location = _loc()
    marks: Marks = _marks()


@dataclass(frozen=True, slots=True)
class PartnerTypeSpec(_Marked):
    """A kind of partner. ``may_place_holds``: its partners may place confidentiality holds
    (AVG art. 23, Wpg) that keep disclosures out of a subject's access report for a while.
    ``identifiers``: what a source of this type may be given to find a person in its own
    system (a subset of ``IDENTIFIERS``)."""

    id: str
    description: str
    may_place_holds: bool = False
    identifiers: tuple[str, ...] = DEFAULT_IDENTIFIERS
    loc: Location = _loc()
    marks: Marks = _marks()


@dataclass(frozen=True, slots=True)
class RoleSpec(_Marked):
    id: str
    description: str
    loc: Location = _loc()
    marks: Marks = _marks()


class KeyUse(StrEnum):
    """What a partner's pinned public key is used for."""

    TOKEN = "token"      # verifies the partner's signed JWTs
    SEALING = "sealing"  # HPKE X25519 key answers are sealed to
    TLS = "tls"          # key of the partner's client certificate


@dataclass(frozen=True, slots=True)
class PartnerKeys:
    """Pins of a partner's public keys: ``sha256:<64 hex>`` over the DER SubjectPublicKeyInfo.

    The core checks only the format; the edge compares the pins with the keys on disk.
    """

    token: str | None = None
    sealing: str | None = None
    tls: str | None = None

    def pin(self, use: KeyUse) -> str | None:
        pinned: str | None = getattr(self, use.value)
        return pinned


@dataclass(frozen=True, slots=True)
class PartnerSpec(_Marked):
    id: str
    type: str
    display_name: str
    roles: tuple[str, ...]
    keys: PartnerKeys = PartnerKeys()
    loc: Location = _loc()
    marks: Marks = _marks()


@dataclass(frozen=True, slots=True)
class PhaseSpec(_Marked):
    id: str
    description: str
    loc: Location = _loc()
    marks: Marks = _marks()


@dataclass(frozen=True, slots=True)
class LegalBasisSpec(_Marked):
    """A legal ground a purpose can rest on, and the special regimes it allows."""

    id: str
    title: str
    description: str = ""
    permits: tuple[Special, ...] = ()
    loc: Location = _loc()
    marks: Marks = _marks()


@dataclass(frozen=True, slots=True)
class Purpose(_Marked):
    """A purpose a partner can declare.

    ``legal_bases`` hold for every recipient; ``legal_bases_by_partner_type`` adds grounds
    for one recipient partner type (partner type -> ground ids).
    """

    id: str
    description: str
    legal_bases: tuple[str, ...]
    processing_activity: str
    phases: tuple[str, ...]
    partner_types: tuple[str, ...]
    requires_participation: bool = True
    requires_justification: bool = False
    break_glass: bool = False
    max_duration_minutes: int | None = None
    legal_bases_by_partner_type: tuple[tuple[str, tuple[str, ...]], ...] = ()
    loc: Location = _loc()
    marks: Marks = _marks()

    def grounds(self, partner_type: str) -> tuple[str, ...]:
        """The ground ids for a recipient of ``partner_type``, each once, in policy order."""
        extra = [ids for pt, ids in self.legal_bases_by_partner_type if pt == partner_type]
        return tuple(dict.fromkeys([*self.legal_bases, *(g for ids in extra for g in ids)]))


@dataclass(frozen=True, slots=True)
class PersonRoleSpec(_Marked):
    """A role a person can have in a case (subject, victim, child ...)."""

    id: str
    description: str
    loc: Location = _loc()
    marks: Marks = _marks()


@dataclass(frozen=True, slots=True)
class ApproachGround(_Marked):
    """Extra legal grounds an approach adds to some of its purposes, for some recipient
    partner types (``partner_types`` None: every type on the approach's table)."""

    purposes: tuple[str, ...]
    legal_bases: tuple[str, ...]
    partner_types: tuple[str, ...] | None = None
    loc: Location = _loc()
    marks: Marks = _marks()


@dataclass(frozen=True, slots=True)
class ApproachSpec(_Marked):
    """An approach (aanpak) a case is worked in: its standing table, the purposes it uses,
    the fields that apply to it and the extra grounds it rests on.

    As parsed, ``partner_types`` and ``purposes`` None mean every one, and ``fields`` and
    ``categories`` empty mean every field. A compiled policy holds the resolved form: every
    id listed (the ZVH's partner type always on the table), ``fields`` the catalogue fields
    that apply, in catalogue order.
    """

    id: str
    description: str
    default: bool = False
    partner_types: tuple[str, ...] | None = None
    purposes: tuple[str, ...] | None = None
    fields: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    bsn_required: bool = False
    legal_bases: tuple[ApproachGround, ...] = ()
    loc: Location = _loc()
    marks: Marks = _marks()

    def on_table(self, partner_type: str) -> bool:
        """Whether partners of the type take part in cases of this approach."""
        return (partner_type == ZVH_PARTNER_TYPE or self.partner_types is None
                or partner_type in self.partner_types)

    def uses(self, purpose: str) -> bool:
        """Whether the purpose is used in this approach."""
        return self.purposes is None or purpose in self.purposes

    def grounds(self, purpose: str, partner_type: str) -> tuple[str, ...]:
        """The extra ground ids for (purpose, recipient partner type), in policy order."""
        return tuple(dict.fromkeys(
            g for entry in self.legal_bases if purpose in entry.purposes
            and (entry.partner_types is None or partner_type in entry.partner_types)
            for g in entry.legal_bases))


@dataclass(frozen=True, slots=True)
class Who:
    """Whom a rule speaks to; ``None`` means any."""

    partner_types: tuple[str, ...] | None = None
    roles: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Rule(_Marked):
    id: str
    reason: str
    purposes: tuple[str, ...]
    effect: Effect
    who: Who = Who()
    phases: tuple[str, ...] | None = None
    fields: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    transform: str | None = None
    params: Params = ()
    override: bool = False
    override_reason: str = ""
    # None: every approach / every person role and the case level. A rule with ``persons``
    # never applies to case-level requests (person role "").
    approaches: tuple[str, ...] | None = None
    persons: tuple[str, ...] | None = None
    loc: Location = _loc()
    marks: Marks = _marks()


@dataclass(frozen=True, slots=True)
class PolicySet:
    """A whole policy: every section merged over all files, in file-name then file order."""

    version: str
    categories: tuple[CategorySpec, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    partner_types: tuple[PartnerTypeSpec, ...] = ()
    roles: tuple[RoleSpec, ...] = ()
    partners: tuple[PartnerSpec, ...] = ()
    phases: tuple[PhaseSpec, ...] = ()
    purposes: tuple[Purpose, ...] = ()
    rules: tuple[Rule, ...] = ()
    legal_bases: tuple[LegalBasisSpec, ...] = ()
    # None: the section is absent (the defaults apply: DEFAULT_PERSON_ROLES, and one
    # general approach over every partner type, purpose and field).
    person_roles: tuple[PersonRoleSpec, ...] | None = None
    approaches: tuple[ApproachSpec, ...] | None = None

    def specials(self) -> dict[str, Special]:
        """The special regime of every field: its own, else its category's (field id -> regime)."""
        by_category = {c.id: c.special for c in self.categories}
        return {f.id: f.special if f.special is not None
                else by_category.get(f.category, Special.NONE) for f in self.fields}
