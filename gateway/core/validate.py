"""Semantic checks on a parsed policy: references, duplicates, rule coherence.

Every problem is collected; nothing is raised here. ``declared`` (from the parser) lists ids
of elements that were written but too broken to keep, so that references to them are not
reported a second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Protocol
from urllib.parse import urlsplit

from gateway.core.errors import PolicyIssue
from gateway.core.model import (
    INDEX_CATEGORY,
    ZVH_SOURCE,
    Effect,
    FieldSpec,
    Location,
    PolicySet,
    Purpose,
    Rule,
)
from gateway.core.transforms import TRANSFORMS, check_params
from gateway.core.yamlread import suggest

_URI_SCHEMES = frozenset({"https", "http", "urn"})


class _Element(Protocol):
    @property
    def id(self) -> str: ...

    def at(self, key: str) -> Location: ...


def validate(policy: PolicySet,
             declared: Mapping[str, Set[str]] | None = None) -> list[PolicyIssue]:
    """Every semantic problem in ``policy``, in no particular order."""
    return _Validator(policy, declared or {}).run()


class _Validator:
    def __init__(self, policy: PolicySet, declared: Mapping[str, Set[str]]) -> None:
        self.policy = policy
        self.issues: list[PolicyIssue] = []
        sections: dict[str, Sequence[_Element]] = {
            "categories": policy.categories, "fields": policy.fields,
            "partner_types": policy.partner_types, "roles": policy.roles,
            "partners": policy.partners, "phases": policy.phases,
            "purposes": policy.purposes, "rules": policy.rules,
        }
        parsed = {name: {el.id for el in elements} for name, elements in sections.items()}
        self.known = {name: ids | set(declared.get(name, ())) for name, ids in parsed.items()}
        # A section is complete when nothing written in it was dropped by the parser; only
        # then can "nothing matches" checks trust what they see.
        self.complete = {name: self.known[name] == ids for name, ids in parsed.items()}
        self.sections = sections
        self.fields = {f.id: f for f in policy.fields}
        self.purposes = {p.id: p for p in policy.purposes}

    def report(self, where: Location, message: str) -> None:
        self.issues.append(PolicyIssue(where.file, where.line, where.column, message))

    def run(self) -> list[PolicyIssue]:
        for name, elements in self.sections.items():
            self._duplicates(name, elements)
        for spec in self.policy.fields:
            self._refs(spec, "category", (spec.category,), "categories", "category")
            sources = self.known["partner_types"] | {ZVH_SOURCE}
            if spec.source not in sources:
                self.report(spec.at("source"), f"unknown source {spec.source!r}: use a partner "
                            f"type or {ZVH_SOURCE!r}{suggest(spec.source, sources)}")
        for partner in self.policy.partners:
            self._refs(partner, "type", (partner.type,), "partner_types", "partner type")
            self._refs(partner, "roles", partner.roles, "roles", "role", listed=True)
        for purpose in self.policy.purposes:
            self._purpose(purpose)
        for rule in self.policy.rules:
            self._rule(rule)
        return self.issues

    def _duplicates(self, section: str, elements: Iterable[_Element]) -> None:
        first: dict[str, Location] = {}
        for element in elements:
            where = element.at("id")
            if element.id in first:
                self.report(where, f"duplicate id {element.id!r} in {section} "
                                   f"(first defined at {first[element.id]})")
            else:
                first[element.id] = where

    def _refs(self, element: _Element, key: str, refs: Sequence[str], section: str, kind: str,
              *, listed: bool = False, nonempty: bool = True) -> None:
        if listed and nonempty and not refs:
            self.report(element.at(key), f"{key} must list at least one {kind}")
        known = self.known[section]
        for index, ref in enumerate(refs):
            if ref not in known:
                where = element.at(f"{key}[{index}]" if listed else key)
                self.report(where, f"unknown {kind} {ref!r}{suggest(ref, known)}")

    def _purpose(self, purpose: Purpose) -> None:
        self._refs(purpose, "phases", purpose.phases, "phases", "phase", listed=True)
        self._refs(purpose, "partner_types", purpose.partner_types, "partner_types",
                   "partner type", listed=True)
        uri = urlsplit(purpose.processing_activity)
        if uri.scheme not in _URI_SCHEMES or not (uri.netloc or uri.path) or " " in uri.path:
            self.report(purpose.at("processing_activity"),
                        "processing_activity must be a URI (https://... or urn:...) naming the "
                        "activity in the register of processing activities")
        duration = purpose.max_duration_minutes
        if purpose.break_glass:
            if not purpose.requires_justification:
                self.report(purpose.at("break_glass"), "a break-glass purpose must require a "
                            "written justification (requires_justification: true)")
            if duration is None:
                self.report(purpose.at("break_glass"),
                            "a break-glass purpose needs max_duration_minutes")
        elif duration is not None:
            self.report(purpose.at("max_duration_minutes"),
                        "max_duration_minutes applies only to break-glass purposes")
        if duration is not None and duration < 1:
            self.report(purpose.at("max_duration_minutes"),
                        "max_duration_minutes must be at least 1")

    def _rule(self, rule: Rule) -> None:
        self._refs(rule, "purposes", rule.purposes, "purposes", "purpose", listed=True)
        resolved = [self.purposes[p] for p in rule.purposes if p in self.purposes]
        purposes = resolved if len(resolved) == len(rule.purposes) else []
        self._who(rule, purposes)
        if rule.phases is not None:
            self._refs(rule, "phases", rule.phases, "phases", "phase", listed=True)
            for index, phase in enumerate(rule.phases):
                if purposes and phase in self.known["phases"] and not any(
                        phase in p.phases for p in purposes):
                    self.report(rule.at(f"phases[{index}]"), f"phase {phase!r} is not a phase "
                                "of any purpose of this rule, so the rule never applies there")
        self._refs(rule, "fields", rule.fields, "fields", "field", listed=True, nonempty=False)
        self._refs(rule, "categories", rule.categories, "categories", "category", listed=True,
                   nonempty=False)
        if not rule.fields and not rule.categories:
            self.report(rule.loc, "a rule must name fields or categories")
        self._effect(rule)
        if rule.override and not rule.override_reason.strip():
            self.report(rule.at("override"), "an override needs an override_reason")
        if rule.override_reason and not rule.override:
            self.report(rule.at("override_reason"),
                        "override_reason is given but override is not true")
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
                                f"partner type {pt!r} may not use any purpose of this rule")
        if roles is not None:
            self._refs(rule, "who.roles", roles, "roles", "role", listed=True)
            if not self.complete["partners"]:
                return
            holders = [p for p in self.policy.partners if types is None or p.type in types]
            for index, role in enumerate(roles):
                if role in self.known["roles"] and not any(role in p.roles for p in holders):
                    self.report(rule.at(f"who.roles[{index}]"), f"no partner of the rule's "
                                f"partner types acts in role {role!r}")

    def _effect(self, rule: Rule) -> None:
        if rule.effect is not Effect.MASK:
            if rule.transform is not None:
                self.report(rule.at("transform"), "a transform is used only with effect mask")
            if rule.params:
                self.report(rule.at("params"), "params are used only with effect mask")
            return
        if rule.transform is None:
            self.report(rule.at("effect"), "effect mask needs a transform (one of "
                        f"{', '.join(TRANSFORMS)})")
            return
        transform = TRANSFORMS.get(rule.transform)
        if transform is None:
            self.report(rule.at("transform"), f"unknown transform {rule.transform!r}"
                        f"{suggest(rule.transform, TRANSFORMS)}")
            return
        for param, message in check_params(rule.transform, rule.params):
            self.report(rule.at(f"params.{param}" if param else "params"), message)
        if transform.kinds is None:
            return
        kinds = ", ".join(sorted(transform.kinds))
        for key, spec in self._targets(rule):
            if spec.kind not in transform.kinds:
                self.report(rule.at(key), f"transform {rule.transform!r} applies to fields of "
                            f"kind {kinds}; field {spec.id!r} is {spec.kind}")

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
        for index, field_id in enumerate(rule.fields):
            spec = self.fields.get(field_id)
            if spec is not None and spec.category != INDEX_CATEGORY:
                self.report(rule.at(f"fields[{index}]"),
                            f"{prefix}; field {field_id!r} is in category {spec.category!r}")
        for index, category in enumerate(rule.categories):
            if category != INDEX_CATEGORY:
                self.report(rule.at(f"categories[{index}]"),
                            f"{prefix}, not category {category!r}")
