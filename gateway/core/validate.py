"""Semantic checks on a parsed policy: references, duplicates, rule coherence.

Every problem is collected; nothing is raised here. ``declared`` (from the parser) lists ids
of elements that were written but too broken to keep, so that references to them are not
reported a second time. The checks that need the whole cell table (shadowed rules,
contradictions) live in ``gateway.core.rulechecks`` and run only once these pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Protocol
from urllib.parse import urlsplit

from gateway.core.errors import PolicyIssue
from gateway.core.model import (
    DEFAULT_PERSON_ROLES,
    GENERAL_APPROACH,
    INDEX_CATEGORY,
    ZVH_SOURCE,
    ApproachSpec,
    Effect,
    FieldSpec,
    Location,
    PolicySet,
    Purpose,
    Rule,
)
from gateway.core.special import special_release_issues
from gateway.core.transforms import TRANSFORMS, check_params
from gateway.core.yamlread import listing, pick_hint, suggest

_URI_SCHEMES = frozenset({"https", "http", "urn"})
_KIND_PLURAL = {
    "category": "categories", "field": "fields", "partner type": "partner types",
    "role": "roles", "phase": "phases", "purpose": "purposes", "legal basis": "legal bases",
    "person role": "person roles", "approach": "approaches",
}


class _Located(Protocol):
    def at(self, key: str) -> Location: ...


class _Element(_Located, Protocol):
    @property
    def id(self) -> str: ...


def validate(policy: PolicySet,
             declared: Mapping[str, Set[str]] | None = None) -> list[PolicyIssue]:
    """Every semantic problem in ``policy``, in no particular order."""
    return _Validator(policy, declared or {}).run()


def _transform_hint(name: str) -> str:
    specs = TRANSFORMS[name].params
    if not specs:
        return f"remove params: transform {name!r} takes none"
    shown = ", ".join(f"{s.name}: <{'whole number' if s.type is int else 'text'}"
                      f"{f', at least {s.minimum}' if s.minimum is not None else ''}>"
                      for s in specs)
    return f"write `params: {{{shown}}}`"


class _Validator:
    def __init__(self, policy: PolicySet, declared: Mapping[str, Set[str]]) -> None:
        self.policy = policy
        self.issues: list[PolicyIssue] = []
        sections: dict[str, Sequence[_Element]] = {
            "categories": policy.categories, "fields": policy.fields,
            "partner_types": policy.partner_types, "roles": policy.roles,
            "partners": policy.partners, "phases": policy.phases,
            "legal_bases": policy.legal_bases, "purposes": policy.purposes,
            "person_roles": policy.person_roles or (), "approaches": policy.approaches or (),
            "rules": policy.rules,
        }
        parsed = {name: {el.id for el in elements} for name, elements in sections.items()}
        self.known = {name: ids | set(declared.get(name, ())) for name, ids in parsed.items()}
        # Absent sections mean their defaults; rules may name those.
        implicit = {"person_roles": DEFAULT_PERSON_ROLES if policy.person_roles is None else (),
                    "approaches": (GENERAL_APPROACH,) if policy.approaches is None else ()}
        for name, ids in implicit.items():
            self.known[name] |= set(ids)
        # In policy order, for hints; sets above are for lookups.
        self.ordered = {name: list(dict.fromkeys(
                            [*(el.id for el in elements), *implicit.get(name, ())]))
                        for name, elements in sections.items()}
        # A section is complete when nothing written in it was dropped by the parser; only
        # then can "nothing matches" checks trust what they see.
        self.complete = {name: self.known[name] == ids | set(implicit.get(name, ()))
                         for name, ids in parsed.items()}
        self.sections = sections
        self.fields = {f.id: f for f in policy.fields}
        self.purposes = {p.id: p for p in policy.purposes}

    def report(self, where: Location, message: str, hint: str) -> None:
        self.issues.append(PolicyIssue(where.file, where.line, where.column, message, hint))

    def run(self) -> list[PolicyIssue]:
        for name, elements in self.sections.items():
            self._duplicates(name, elements)
        sources = self.known["partner_types"] | {ZVH_SOURCE}
        for spec in self.policy.fields:
            self._refs(spec, "category", (spec.category,), "categories", "category")
            if spec.source not in sources:
                self.report(spec.at("source"), f"unknown source {spec.source!r}: use a partner "
                            f"type or {ZVH_SOURCE!r}{suggest(spec.source, sources)}",
                            pick_hint(spec.source, [*self.ordered["partner_types"], ZVH_SOURCE],
                                      "sources"))
        for partner in self.policy.partners:
            self._refs(partner, "type", (partner.type,), "partner_types", "partner type")
            self._refs(partner, "roles", partner.roles, "roles", "role", listed=True)
        for partner_type in self.policy.partner_types:
            if not partner_type.identifiers:
                self.report(partner_type.at("identifiers"), "identifiers must list at least "
                            "one identifier, or be left out (bsn, name, date_of_birth)",
                            "list what a source of this type may be given to find a person, "
                            "e.g. `identifiers: [name, address, postcode]`")
        for purpose in self.policy.purposes:
            self._purpose(purpose)
        if self.policy.approaches is not None:
            self._default_approach(self.policy.approaches)
            for approach in self.policy.approaches:
                self._approach(approach)
        for rule in self.policy.rules:
            self._rule(rule)
        if self.complete["legal_bases"] and self.complete["fields"]:
            self.issues.extend(special_release_issues(self.policy))
        return self.issues

    def _duplicates(self, section: str, elements: Iterable[_Element]) -> None:
        first: dict[str, Location] = {}
        for element in elements:
            where = element.at("id")
            if element.id in first:
                self.report(where, f"duplicate id {element.id!r} in {section} "
                                   f"(first defined at {first[element.id]})",
                            "give one of the two another id, or remove one: ids must be "
                            "unique across all policy files")
            else:
                first[element.id] = where

    def _unknown_hint(self, ref: str, section: str, kind: str) -> str:
        plural = _KIND_PLURAL.get(kind, kind + "s")
        hint = pick_hint(ref, self.ordered[section], plural)
        return f"{hint}; or declare {ref!r} in the {section} section"

    def _refs(self, element: _Located, key: str, refs: Sequence[str], section: str, kind: str,
              *, listed: bool = False, nonempty: bool = True) -> None:
        if listed and nonempty and not refs:
            shown = listing(self.ordered[section]) or "none declared yet"
            self.report(element.at(key), f"{key} must list at least one {kind}",
                        f"write `{key}: [...]` with one or more of: {shown}")
        known = self.known[section]
        for index, ref in enumerate(refs):
            if ref not in known:
                where = element.at(f"{key}[{index}]" if listed else key)
                self.report(where, f"unknown {kind} {ref!r}{suggest(ref, known)}",
                            self._unknown_hint(ref, section, kind))

    def _purpose(self, purpose: Purpose) -> None:
        self._refs(purpose, "phases", purpose.phases, "phases", "phase", listed=True)
        self._refs(purpose, "partner_types", purpose.partner_types, "partner_types",
                   "partner type", listed=True)
        self._refs(purpose, "legal_bases", purpose.legal_bases, "legal_bases", "legal basis",
                   listed=True)
        self._grounds_by_partner_type(purpose)
        uri = urlsplit(purpose.processing_activity)
        if uri.scheme not in _URI_SCHEMES or not (uri.netloc or uri.path) or " " in uri.path:
            self.report(purpose.at("processing_activity"),
                        "processing_activity must be a URI (https://... or urn:...) naming the "
                        "activity in the register of processing activities",
                        "copy the activity's link or URN from the register, e.g. "
                        "`https://zvh.example/register/pa-triage`")
        self._break_glass(purpose)

    def _grounds_by_partner_type(self, purpose: Purpose) -> None:
        key = "legal_bases_by_partner_type"
        for partner_type, grounds in purpose.legal_bases_by_partner_type:
            entry = f"{key}.{partner_type}"
            if partner_type not in self.known["partner_types"]:
                self.report(purpose.at(entry), f"unknown partner type {partner_type!r}"
                            f"{suggest(partner_type, self.known['partner_types'])}",
                            self._unknown_hint(partner_type, "partner_types", "partner type"))
            elif partner_type not in purpose.partner_types:
                self.report(purpose.at(entry), f"partner type {partner_type!r} may not use "
                            f"purpose {purpose.id!r}, so these grounds never apply",
                            f"add {partner_type!r} to the purpose's partner_types, or remove "
                            "this entry")
            self._refs(purpose, entry, grounds, "legal_bases", "legal basis", listed=True)

    def _break_glass(self, purpose: Purpose) -> None:
        duration = purpose.max_duration_minutes
        if purpose.break_glass:
            if not purpose.requires_justification:
                self.report(purpose.at("break_glass"), "a break-glass purpose must require a "
                            "written justification (requires_justification: true)",
                            "add `requires_justification: true` to the purpose")
            if duration is None:
                self.report(purpose.at("break_glass"),
                            "a break-glass purpose needs max_duration_minutes",
                            "add `max_duration_minutes: <minutes>`, e.g. 1440 for a day")
        elif duration is not None:
            self.report(purpose.at("max_duration_minutes"),
                        "max_duration_minutes applies only to break-glass purposes",
                        "remove max_duration_minutes, or set `break_glass: true` if the "
                        "purpose is meant for emergencies")
        if duration is not None and duration < 1:
            self.report(purpose.at("max_duration_minutes"),
                        "max_duration_minutes must be at least 1",
                        "write a number of minutes, 1 or more")

    def _default_approach(self, approaches: Sequence[ApproachSpec]) -> None:
        defaults = [a for a in approaches if a.default]
        if len(defaults) == 1:
            return
        hint = ("mark exactly one approach `default: true`: the one a case without a "
                "specific approach is worked in (usually 'general')")
        if not defaults:
            where = approaches[0].loc if approaches else None
            message = ("the approaches section must mark one approach as the default"
                       if approaches else "the approaches section declares no approach")
            if where is None:
                where = self._first_file_location()
            self.report(where, message, hint)
            return
        for extra in defaults[1:]:
            self.report(extra.at("default"), f"approach {extra.id!r} is a second default "
                        f"approach (the first is {defaults[0].id!r})", hint)

    def _first_file_location(self) -> Location:
        for elements in self.sections.values():
            for element in elements:
                return element.at("id")
        return Location("<policy>", 1, 1)

    def _approach(self, approach: ApproachSpec) -> None:
        if approach.partner_types is not None:
            self._refs(approach, "partner_types", approach.partner_types, "partner_types",
                       "partner type", listed=True)
        if approach.purposes is not None:
            self._refs(approach, "purposes", approach.purposes, "purposes", "purpose",
                       listed=True)
        self._refs(approach, "fields", approach.fields, "fields", "field", listed=True,
                   nonempty=False)
        self._refs(approach, "categories", approach.categories, "categories", "category",
                   listed=True, nonempty=False)
        for ground in approach.legal_bases:
            self._refs(ground, "purposes", ground.purposes, "purposes", "purpose", listed=True)
            if approach.purposes is not None:
                for index, purpose in enumerate(ground.purposes):
                    if purpose in self.known["purposes"] and purpose not in approach.purposes:
                        self.report(ground.at(f"purposes[{index}]"), f"approach "
                                    f"{approach.id!r} does not use purpose {purpose!r}, so "
                                    "these grounds never apply", f"add {purpose!r} to the "
                                    "approach's purposes, or remove it here")
            if ground.partner_types is not None:
                self._refs(ground, "partner_types", ground.partner_types, "partner_types",
                           "partner type", listed=True)
            self._refs(ground, "legal_bases", ground.legal_bases, "legal_bases",
                       "legal basis", listed=True)

    def _rule(self, rule: Rule) -> None:
        self._refs(rule, "purposes", rule.purposes, "purposes", "purpose", listed=True)
        if rule.approaches is not None:
            self._refs(rule, "approaches", rule.approaches, "approaches", "approach",
                       listed=True)
        if rule.persons is not None:
            self._refs(rule, "persons", rule.persons, "person_roles", "person role",
                       listed=True)
        resolved = [self.purposes[p] for p in rule.purposes if p in self.purposes]
        purposes = resolved if len(resolved) == len(rule.purposes) else []
        self._who(rule, purposes)
        if rule.phases is not None:
            self._refs(rule, "phases", rule.phases, "phases", "phase", listed=True)
            for index, phase in enumerate(rule.phases):
                if purposes and phase in self.known["phases"] and not any(
                        phase in p.phases for p in purposes):
                    self.report(rule.at(f"phases[{index}]"), f"phase {phase!r} is not a phase "
                                "of any purpose of this rule, so the rule never applies there",
                                "remove the phase, or add it to the phases of one of the "
                                "rule's purposes")
        self._refs(rule, "fields", rule.fields, "fields", "field", listed=True, nonempty=False)
        self._refs(rule, "categories", rule.categories, "categories", "category", listed=True,
                   nonempty=False)
        if not rule.fields and not rule.categories:
            self.report(rule.loc, "a rule must name fields or categories",
                        "add `fields: [...]` or `categories: [...]` naming what it decides")
        self._effect(rule)
        if rule.override and not rule.override_reason.strip():
            self.report(rule.at("override"), "an override needs an override_reason",
                        "add `override_reason:` saying why the covenant makes this exception")
        if rule.override_reason and not rule.override:
            self.report(rule.at("override_reason"),
                        "override_reason is given but override is not true",
                        "add `override: true`, or remove override_reason")
        if rule.effect is not Effect.WITHHOLD:
            for purpose in purposes:
                if not purpose.requires_participation:
                    self._index_only(rule, purpose)

    def _who(self, rule: Rule, purposes: Sequence[Purpose]) -> None:
        types, roles = rule.who.partner_types, rule.who.roles
        if types is not None:
            self._refs(rule, "who.partner_types", types, "partner_types", "partner type",
                       listed=True)
            for index, pt in enumerate(types):
                if purposes and pt in self.known["partner_types"] and not any(
                        pt in p.partner_types for p in purposes):
                    self.report(rule.at(f"who.partner_types[{index}]"),
                                f"partner type {pt!r} may not use any purpose of this rule",
                                f"remove {pt!r} here, or add it to the partner_types of one "
                                "of the rule's purposes")
        if roles is not None:
            self._refs(rule, "who.roles", roles, "roles", "role", listed=True)
            if not self.complete["partners"]:
                return
            holders = [p for p in self.policy.partners if types is None or p.type in types]
            for index, role in enumerate(roles):
                if role in self.known["roles"] and not any(role in p.roles for p in holders):
                    self.report(rule.at(f"who.roles[{index}]"), f"no partner of the rule's "
                                f"partner types acts in role {role!r}",
                                f"remove {role!r} here, or give a partner of these types the "
                                "role in the partners section")

    def _effect(self, rule: Rule) -> None:
        if rule.effect is not Effect.MASK:
            if rule.transform is not None:
                self.report(rule.at("transform"), "a transform is used only with effect mask",
                            "remove the transform, or set `effect: mask`")
            if rule.params:
                self.report(rule.at("params"), "params are used only with effect mask",
                            "remove params, or set `effect: mask` with a transform")
            return
        if rule.transform is None:
            self.report(rule.at("effect"), "effect mask needs a transform (one of "
                        f"{', '.join(TRANSFORMS)})",
                        "add `transform: <name>`; redact is the most restrictive")
            return
        transform = TRANSFORMS.get(rule.transform)
        if transform is None:
            self.report(rule.at("transform"), f"unknown transform {rule.transform!r}"
                        f"{suggest(rule.transform, TRANSFORMS)}",
                        pick_hint(rule.transform, TRANSFORMS, "transforms"))
            return
        for param, message in check_params(rule.transform, rule.params):
            self.report(rule.at(f"params.{param}" if param else "params"), message,
                        _transform_hint(rule.transform))
        if transform.kinds is None:
            return
        kinds = ", ".join(sorted(transform.kinds))
        for key, spec in self._targets(rule):
            if spec.kind not in transform.kinds:
                self.report(rule.at(key), f"transform {rule.transform!r} applies to fields of "
                            f"kind {kinds}; field {spec.id!r} is {spec.kind}",
                            f"use a transform that fits {spec.kind} fields (redact, presence "
                            "and pseudonym fit any), or leave the field out of this rule")

    def _targets(self, rule: Rule) -> Iterable[tuple[str, FieldSpec]]:
        """Each field a rule reaches, with the key of the list entry that reaches it."""
        for index, field_id in enumerate(rule.fields):
            if field_id in self.fields:
                yield f"fields[{index}]", self.fields[field_id]
        for index, category in enumerate(rule.categories):
            for spec in self.policy.fields:
                if spec.category == category:
                    yield f"categories[{index}]", spec

    def _index_only(self, rule: Rule, purpose: Purpose) -> None:
        prefix = (f"purpose {purpose.id!r} is asked without need-to-know "
                  f"(requires_participation: false) and may only reach category "
                  f"{INDEX_CATEGORY!r}")
        hint = (f"remove the entry from this rule and decide it in a rule without purpose "
                f"{purpose.id!r}, or make this rule withhold")
        for index, field_id in enumerate(rule.fields):
            spec = self.fields.get(field_id)
            if spec is not None and spec.category != INDEX_CATEGORY:
                self.report(rule.at(f"fields[{index}]"),
                            f"{prefix}; field {field_id!r} is in category {spec.category!r}",
                            hint)
        for index, category in enumerate(rule.categories):
            if category != INDEX_CATEGORY:
                self.report(rule.at(f"categories[{index}]"),
                            f"{prefix}, not category {category!r}", hint)
