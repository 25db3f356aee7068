"""Parse policy documents (file name -> YAML text) into a PolicySet.

Structure only: types, required and unknown keys, allowed values. Whether the ids refer
to each other correctly is the validator's job (``gateway.core.validate``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from yaml.nodes import Node

from gateway.core.errors import PolicyError, PolicyIssue
from gateway.core.model import (
    CategorySpec,
    Effect,
    FieldKind,
    FieldSpec,
    Location,
    Params,
    PartnerSpec,
    PartnerTypeSpec,
    PhaseSpec,
    PolicySet,
    Purpose,
    RoleSpec,
    Rule,
    Special,
    Who,
)
from gateway.core.yamlread import Entries, Reader, suggest

SECTIONS = ("categories", "fields", "partner_types", "roles", "partners", "phases",
            "purposes", "rules")

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")
_D = TypeVar("_D", PartnerTypeSpec, RoleSpec, PhaseSpec)


def policy_version(documents: Mapping[str, str]) -> str:
    """Content hash of the policy: SHA-256 over the documents sorted by file name.

    Each document contributes ``len(name):name len(text):text`` (lengths in UTF-8 bytes,
    written in decimal), so no two different sets of documents share an input.
    """
    digest = hashlib.sha256()
    for name in sorted(documents):
        for part in (name.encode("utf-8"), documents[name].encode("utf-8")):
            digest.update(b"%d:" % len(part))
            digest.update(part)
    return "sha256:" + digest.hexdigest()


@dataclass
class ParseResult:
    """A best-effort policy with every problem found.

    ``declared`` holds, per section, the ids of every element that was written, including
    elements too broken to keep, so that references to them do not cause follow-on errors.
    """

    policy: PolicySet
    issues: list[PolicyIssue]
    declared: dict[str, set[str]]


@dataclass
class _Sink:
    categories: list[CategorySpec] = field(default_factory=list)
    fields: list[FieldSpec] = field(default_factory=list)
    partner_types: list[PartnerTypeSpec] = field(default_factory=list)
    roles: list[RoleSpec] = field(default_factory=list)
    partners: list[PartnerSpec] = field(default_factory=list)
    phases: list[PhaseSpec] = field(default_factory=list)
    purposes: list[Purpose] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    declared: dict[str, set[str]] = field(default_factory=lambda: {s: set() for s in SECTIONS})


class _Element:
    """One mapping in a list section; getters record marks and whether the element is usable."""

    def __init__(self, reader: Reader, node: Node, what: str, allowed: Collection[str],
                 required: Collection[str]) -> None:
        self.r = reader
        self.node = node
        self.what = what
        self.loc = reader.loc(node)
        self.marks: list[tuple[str, Location]] = []
        entries = reader.entries(node, what)
        self.entries: Entries = entries or {}
        self.ok = entries is not None and reader.check_keys(
            self.entries, node, what, allowed, required)

    def _value(self, key: str) -> Node | None:
        pair = self.entries.get(key)
        if pair is None:
            return None
        self.marks.append((key, self.r.loc(pair[1])))
        return pair[1]

    def _checked(self, value: _T | None) -> _T | None:
        if value is None:
            self.ok = False
        return value

    def ident(self, key: str = "id") -> str | None:
        node = self._value(key)
        return None if node is None else self._checked(self.r.ident(node, f"{self.what} {key}"))

    def text(self, key: str, default: str | None = None) -> str | None:
        node = self._value(key)
        if node is None:
            return default
        return self._checked(self.r.text(node, f"{self.what} {key}"))

    def flag(self, key: str, default: bool) -> bool:
        node = self._value(key)
        if node is None:
            return default
        value = self._checked(self.r.flag(node, f"{self.what} {key}"))
        return default if value is None else value

    def integer(self, key: str) -> int | None:
        node = self._value(key)
        return None if node is None else self._checked(self.r.integer(node, f"{self.what} {key}"))

    def choice(self, key: str, enum: type[_E], default: _E | None = None) -> _E | None:
        node = self._value(key)
        if node is None:
            return default
        value = self.r.choice(node, f"{self.what} {key}", [member.value for member in enum])
        return self._checked(None if value is None else enum(value))

    def ids(self, key: str, node: Node | None = None) -> tuple[str, ...] | None:
        """A list of ids under ``key`` (of ``node`` when given, else of this element)."""
        if node is None:
            node = self._value(key)
        else:
            self.marks.append((key, self.r.loc(node)))
        if node is None:
            return None
        items = self.r.items(node, f"{self.what} {key}")
        if items is None:
            self.ok = False
            return None
        values: list[str] = []
        for index, item in enumerate(items):
            self.marks.append((f"{key}[{index}]", self.r.loc(item)))
            value = self._checked(self.r.ident(item, f"{self.what} {key} entry"))
            if value is not None:
                values.append(value)
        return tuple(values)

    def params(self) -> Params:
        node = self._value("params")
        if node is None:
            return ()
        entries = self.r.entries(node, f"{self.what} params")
        if entries is None:
            self.ok = False
            return ()
        values: list[tuple[str, str | int]] = []
        for key, (_, value_node) in sorted(entries.items()):
            self.marks.append((f"params.{key}", self.r.loc(value_node)))
            value = self.r.scalar(value_node, f"{self.what} param {key!r}")
            if value is None:
                self.ok = False
            else:
                values.append((key, value))
        return tuple(values)

    def mapping(self, key: str, allowed: Collection[str]) -> Entries | None:
        node = self._value(key)
        if node is None:
            return None
        entries = self.r.entries(node, f"{self.what} {key}")
        if entries is None:
            self.ok = False
            return None
        self.r.check_keys(entries, node, f"{self.what} {key}", allowed, ())
        return entries


def _start(r: Reader, node: Node, sink: _Sink, section: str, what: str,
           allowed: Collection[str], required: Collection[str]) -> tuple[_Element, str | None]:
    el = _Element(r, node, what, allowed, required)
    ident = el.ident()
    if ident is not None:
        sink.declared[section].add(ident)
    return el, ident


def _category(r: Reader, node: Node, sink: _Sink) -> None:
    el, ident = _start(r, node, sink, "categories", "category",
                       ("id", "description", "special"), ("id", "description"))
    description = el.text("description")
    special = el.choice("special", Special, Special.NONE)
    if el.ok and ident and description and special:
        sink.categories.append(CategorySpec(ident, description, special, el.loc,
                                            tuple(el.marks)))


def _field(r: Reader, node: Node, sink: _Sink) -> None:
    el, ident = _start(r, node, sink, "fields", "field",
                       ("id", "category", "source", "description", "kind"),
                       ("id", "category", "source", "description"))
    category = el.ident("category")
    source = el.ident("source")
    description = el.text("description")
    kind = el.choice("kind", FieldKind, FieldKind.TEXT)
    if el.ok and ident and category and source and description and kind:
        sink.fields.append(FieldSpec(ident, category, source, description, kind, el.loc,
                                     tuple(el.marks)))


def _described(section: str, what: str, build: Callable[..., _D],
               target: Callable[[_Sink], list[_D]]) -> Callable[[Reader, Node, _Sink], None]:
    def parse(r: Reader, node: Node, sink: _Sink) -> None:
        el, ident = _start(r, node, sink, section, what, ("id", "description"),
                           ("id", "description"))
        description = el.text("description")
        if el.ok and ident and description:
            target(sink).append(build(ident, description, el.loc, tuple(el.marks)))
    return parse


def _partner(r: Reader, node: Node, sink: _Sink) -> None:
    el, ident = _start(r, node, sink, "partners", "partner",
                       ("id", "type", "display_name", "roles"),
                       ("id", "type", "display_name", "roles"))
    partner_type = el.ident("type")
    display_name = el.text("display_name")
    roles = el.ids("roles")
    if el.ok and ident and partner_type and display_name and roles is not None:
        sink.partners.append(PartnerSpec(ident, partner_type, display_name, roles, el.loc,
                                         tuple(el.marks)))


_PURPOSE_KEYS = ("id", "description", "legal_basis", "processing_activity", "phases",
                 "partner_types", "requires_participation", "requires_justification",
                 "break_glass", "max_duration_minutes")


def _purpose(r: Reader, node: Node, sink: _Sink) -> None:
    el, ident = _start(r, node, sink, "purposes", "purpose", _PURPOSE_KEYS, _PURPOSE_KEYS[:6])
    description = el.text("description")
    legal_basis = el.text("legal_basis")
    activity = el.text("processing_activity")
    phases = el.ids("phases")
    partner_types = el.ids("partner_types")
    participation = el.flag("requires_participation", True)
    justification = el.flag("requires_justification", False)
    break_glass = el.flag("break_glass", False)
    duration = el.integer("max_duration_minutes")
    if (el.ok and ident and description and legal_basis and activity and phases is not None
            and partner_types is not None):
        sink.purposes.append(Purpose(
            ident, description, legal_basis, activity, phases, partner_types,
            requires_participation=participation, requires_justification=justification,
            break_glass=break_glass, max_duration_minutes=duration,
            loc=el.loc, marks=tuple(el.marks)))


_RULE_KEYS = ("id", "reason", "who", "purposes", "phases", "fields", "categories", "effect",
              "transform", "params", "override", "override_reason")


def _rule(r: Reader, node: Node, sink: _Sink) -> None:
    el, ident = _start(r, node, sink, "rules", "rule", _RULE_KEYS,
                       ("id", "reason", "purposes", "effect"))
    reason = el.text("reason")
    who = Who()
    who_entries = el.mapping("who", ("partner_types", "roles"))
    if who_entries is not None:
        types_pair, roles_pair = who_entries.get("partner_types"), who_entries.get("roles")
        who = Who(partner_types=el.ids("who.partner_types", types_pair[1])
                  if types_pair else None,
                  roles=el.ids("who.roles", roles_pair[1]) if roles_pair else None)
    purposes = el.ids("purposes")
    phases = el.ids("phases")
    fields = el.ids("fields") or ()
    categories = el.ids("categories") or ()
    effect = el.choice("effect", Effect)
    transform = el.ident("transform")
    params = el.params()
    override = el.flag("override", False)
    override_reason = el.text("override_reason", "") or ""
    if el.ok and ident and reason and purposes is not None and effect:
        sink.rules.append(Rule(
            ident, reason, purposes, effect, who=who, phases=phases, fields=fields,
            categories=categories, transform=transform, params=params, override=override,
            override_reason=override_reason, loc=el.loc, marks=tuple(el.marks)))


_PARSERS: Mapping[str, Callable[[Reader, Node, _Sink], None]] = {
    "categories": _category,
    "fields": _field,
    "partner_types": _described("partner_types", "partner type", PartnerTypeSpec,
                                lambda s: s.partner_types),
    "roles": _described("roles", "role", RoleSpec,
                        lambda s: s.roles),
    "partners": _partner,
    "phases": _described("phases", "phase", PhaseSpec,
                         lambda s: s.phases),
    "purposes": _purpose,
    "rules": _rule,
}


def parse_documents(documents: Mapping[str, str]) -> ParseResult:
    """Parse every document, in file-name order, collecting all problems instead of raising."""
    issues: list[PolicyIssue] = []
    sink = _Sink()
    for name in sorted(documents):
        reader = Reader(name, issues)
        root = reader.compose(documents[name])
        if root is None:
            continue
        top = reader.entries(root, "a policy file")
        if top is None:
            continue
        for key, (key_node, value_node) in top.items():
            parse = _PARSERS.get(key)
            if parse is None:
                reader.report(key_node, f"unknown section {key!r}{suggest(key, SECTIONS)}")
                continue
            items = reader.items(value_node, f"section {key!r}")
            for item in items or ():
                parse(reader, item, sink)
    policy = PolicySet(
        version=policy_version(documents),
        categories=tuple(sink.categories), fields=tuple(sink.fields),
        partner_types=tuple(sink.partner_types), roles=tuple(sink.roles),
        partners=tuple(sink.partners), phases=tuple(sink.phases),
        purposes=tuple(sink.purposes), rules=tuple(sink.rules))
    return ParseResult(policy, issues, sink.declared)


def parse_policy(documents: Mapping[str, str]) -> PolicySet:
    """Parse policy documents (relative file name -> YAML text). Raises PolicyError."""
    result = parse_documents(documents)
    if result.issues:
        raise PolicyError(result.issues)
    return result.policy
