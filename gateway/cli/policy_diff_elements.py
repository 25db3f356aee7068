"""What a policy change changes besides outcomes: purposes, partners, fields, legal bases.

A privacy officer signs off on the grounds and conditions of each purpose, on who the
partners are and which keys they are known by, on what a field is (its special regime, its
source, its category) and on what each legal basis permits. Outcomes can stay the same while
any of these change, so each change is listed on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.core import CompiledPolicy
from gateway.core.model import KeyUse, LegalBasisSpec, PartnerSpec, PartnerTypeSpec, Purpose

# A value as the JSON report writes it, and the text report shows it.
Value = str | int | bool | list[str] | None


@dataclass(frozen=True, slots=True)
class ElementChange:
    """One element added, removed, or one of its attributes changed (``attribute`` set)."""

    kind: str  # purpose, partner, field, legal basis
    id: str
    change: str  # added, removed, changed
    attribute: str = ""
    old: Value = None
    new: Value = None

    def __str__(self) -> str:
        if self.change != "changed":
            return f"{self.kind} {self.id} {self.change}"
        return f"{self.kind} {self.id}: {self.attribute} {_shown(self.old)} -> {_shown(self.new)}"

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"kind": self.kind, "id": self.id, "change": self.change}
        if self.change == "changed":
            shown.update(attribute=self.attribute, old=self.old, new=self.new)
        return shown


def _shown(value: Value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value) if value else "(none)"
    return str(value)


Attributes = Mapping[str, Value]
T = TypeVar("T")


def _purpose(purpose: Purpose) -> Attributes:
    return {
        "legal_bases": list(purpose.legal_bases),
        **{f"legal_bases_by_partner_type[{partner_type}]": list(ids)
           for partner_type, ids in purpose.legal_bases_by_partner_type},
        "requires_participation": purpose.requires_participation,
        "requires_justification": purpose.requires_justification,
        "break_glass": purpose.break_glass,
        "max_duration_minutes": purpose.max_duration_minutes,
        "processing_activity": purpose.processing_activity,
        "phases": list(purpose.phases),
        "partner_types": list(purpose.partner_types),
    }


def _partner(partner: PartnerSpec) -> Attributes:
    # Key pins are fingerprints of public keys, no secret.
    return {"type": partner.type, "roles": list(partner.roles),
            **{f"key pin {use.value}": partner.keys.pin(use) for use in KeyUse}}


def _partner_type(partner_type: PartnerTypeSpec) -> Attributes:
    # Who may keep disclosures out of a subject's access report.
    return {"may_place_holds": partner_type.may_place_holds}


def _legal_basis(basis: LegalBasisSpec) -> Attributes:
    return {"permits": [str(p) for p in basis.permits]}


def _fields(policy: CompiledPolicy) -> dict[str, Attributes]:
    specials = policy.policy.specials()
    return {f.id: {"special": str(specials[f.id]), "source": f.source, "category": f.category}
            for f in policy.fields}


def _compare(kind: str, old: Mapping[str, Attributes],
             new: Mapping[str, Attributes], *, added_removed: bool = True
             ) -> Iterator[ElementChange]:
    for element_id, after in new.items():
        before = old.get(element_id)
        if before is None:
            if added_removed:
                yield ElementChange(kind, element_id, "added")
            continue
        for attribute in dict.fromkeys([*before, *after]):
            was, now = before.get(attribute), after.get(attribute)
            if was != now:
                yield ElementChange(kind, element_id, "changed", attribute, was, now)
    if added_removed:
        for element_id in old:
            if element_id not in new:
                yield ElementChange(kind, element_id, "removed")


def _by_id(items: Sequence[T], id_of: Callable[[T], str],
              attributes: Callable[[T], Attributes]) -> dict[str, Attributes]:
    return {id_of(item): attributes(item) for item in items}


def element_changes(old: CompiledPolicy, new: CompiledPolicy) -> tuple[ElementChange, ...]:
    """Every change to purposes, partners, partner types' hold rights, fields and legal
    bases, in the new policy's order.

    Fields added or removed are reported with their outcomes elsewhere; here only the
    fields kept are compared.
    """
    before, after = old.policy, new.policy
    return (
        *_compare("purpose", _by_id(before.purposes, lambda p: p.id, _purpose),
                  _by_id(after.purposes, lambda p: p.id, _purpose)),
        *_compare("partner", _by_id(before.partners, lambda p: p.id, _partner),
                  _by_id(after.partners, lambda p: p.id, _partner)),
        *_compare("partner type",
                  _by_id(before.partner_types, lambda t: t.id, _partner_type),
                  _by_id(after.partner_types, lambda t: t.id, _partner_type),
                  added_removed=False),
        *_compare("field", _fields(old), _fields(new), added_removed=False),
        *_compare("legal basis", _by_id(before.legal_bases, lambda b: b.id, _legal_basis),
                  _by_id(after.legal_bases, lambda b: b.id, _legal_basis)),
    )
