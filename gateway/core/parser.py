"""Parse policy documents (file name -> YAML text) into a PolicySet.

Structure only: types, required and unknown keys, allowed values. Whether the ids refer
to each other correctly is the validator's job (``gateway.core.validate``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from yaml.nodes import Node

from gateway.core.elements import Element
from gateway.core.errors import PolicyError, PolicyIssue
from gateway.core.model import (
    IDENTIFIERS,
    About,
    ApproachGround,
    ApproachSpec,
    CategorySpec,
    Effect,
    FieldKind,
    FieldSpec,
    KeyUse,
    LegalBasisSpec,
    PartnerKeys,
    PartnerSpec,
    PartnerTypeSpec,
    PersonRoleSpec,
    PhaseSpec,
    PolicySet,
    Purpose,
    RoleSpec,
    Rule,
    Special,
    Who,
)
from gateway.core.yamlread import Reader, pick_hint, suggest

SECTIONS = ("categories", "fields", "partner_types", "roles", "partners", "phases",
            "legal_bases", "purposes", "person_roles", "approaches", "rules")

_D = TypeVar("_D", RoleSpec, PhaseSpec, PersonRoleSpec)
# Legal-basis ids are written into every log record; one plain spelling keeps them greppable.
_LEGAL_BASIS_ID = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_REGIMES = (Special.ART9, Special.ART10)


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
    legal_bases: list[LegalBasisSpec] = field(default_factory=list)
    person_roles: list[PersonRoleSpec] = field(default_factory=list)
    approaches: list[ApproachSpec] = field(default_factory=list)
    # Sections written in some file: an absent person_roles or approaches section means
    # the defaults, an empty one means none.
    seen: set[str] = field(default_factory=set)
    declared: dict[str, set[str]] = field(default_factory=lambda: {s: set() for s in SECTIONS})


def _start(r: Reader, node: Node, sink: _Sink, section: str, what: str,
           allowed: Collection[str], required: Collection[str],
           replaced: Mapping[str, str] | None = None) -> tuple[Element, str | None]:
    el = Element(r, node, what, allowed, required, replaced)
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
                       ("id", "category", "source", "description", "kind", "special", "about"),
                       ("id", "category", "source", "description"))
    category = el.ident("category")
    source = el.ident("source")
    description = el.text("description")
    kind = el.choice("kind", FieldKind, FieldKind.TEXT)
    special = el.choice("special", Special)
    about = el.choice("about", About, About.PERSON)
    if el.ok and ident and category and source and description and kind and about:
        sink.fields.append(FieldSpec(ident, category, source, description, kind, special,
                                     about, el.loc, tuple(el.marks)))


def _described(section: str, what: str, build: Callable[..., _D],
               target: Callable[[_Sink], list[_D]]) -> Callable[[Reader, Node, _Sink], None]:
    def parse(r: Reader, node: Node, sink: _Sink) -> None:
        el, ident = _start(r, node, sink, section, what, ("id", "description"),
                           ("id", "description"))
        description = el.text("description")
        if el.ok and ident and description:
            target(sink).append(build(ident, description, el.loc, tuple(el.marks)))
    return parse


def _partner_type(r: Reader, node: Node, sink: _Sink) -> None:
    el, ident = _start(r, node, sink, "partner_types", "partner type",
                       ("id", "description", "may_place_holds", "identifiers"),
                       ("id", "description"))
    description = el.text("description")
    may_place_holds = el.flag("may_place_holds", False)
    identifiers = el.words("identifiers", IDENTIFIERS)
    if el.ok and ident and description:
        spec = PartnerTypeSpec(ident, description, may_place_holds, loc=el.loc,
                               marks=tuple(el.marks))
        if identifiers is not None:
            spec = PartnerTypeSpec(ident, description, may_place_holds,
                                   tuple(dict.fromkeys(identifiers)), el.loc, tuple(el.marks))
        sink.partner_types.append(spec)


def _partner(r: Reader, node: Node, sink: _Sink) -> None:
    el, ident = _start(r, node, sink, "partners", "partner",
                       ("id", "type", "display_name", "roles", "keys"),
                       ("id", "type", "display_name", "roles"))
    partner_type = el.ident("type")
    display_name = el.text("display_name")
    roles = el.ids("roles")
    pins = el.pins("keys", [use.value for use in KeyUse])
    keys = PartnerKeys(**pins)
    if el.ok and ident and partner_type and display_name and roles is not None:
        sink.partners.append(PartnerSpec(ident, partner_type, display_name, roles, keys,
                                         el.loc, tuple(el.marks)))


def _legal_basis(r: Reader, node: Node, sink: _Sink) -> None:
    el, ident = _start(r, node, sink, "legal_bases", "legal basis",
                       ("id", "title", "description", "permits"), ("id", "title"))
    if ident is not None and _LEGAL_BASIS_ID.fullmatch(ident) is None:
        el.ok = False
        plain = re.sub(r"[^a-z0-9_.-]", "-", ident.lower())
        r.report(el.at("id"), f"legal basis id {ident!r} may hold only lower-case letters, "
                 "digits, '-', '_' and '.'", hint=f"write it as {plain!r}")
    title = el.text("title")
    description = el.text("description", "") or ""
    permits = el.choices("permits", _REGIMES)
    if el.ok and ident and title:
        sink.legal_bases.append(LegalBasisSpec(ident, title, description, permits, el.loc,
                                               tuple(el.marks)))


_PURPOSE_KEYS = ("id", "description", "legal_bases", "processing_activity", "phases",
                 "partner_types", "requires_participation", "requires_justification",
                 "break_glass", "max_duration_minutes", "legal_bases_by_partner_type")
# Keys of the earlier format, with what replaced them.
_PURPOSE_REPLACED = {
    "legal_basis": "a purpose names its grounds by id now: declare each ground in the "
                   "legal_bases section and list their ids under `legal_bases: [...]`",
}


def _purpose(r: Reader, node: Node, sink: _Sink) -> None:
    el, ident = _start(r, node, sink, "purposes", "purpose", _PURPOSE_KEYS, _PURPOSE_KEYS[:6],
                       _PURPOSE_REPLACED)
    description = el.text("description")
    legal_bases = el.ids("legal_bases")
    activity = el.text("processing_activity")
    phases = el.ids("phases")
    partner_types = el.ids("partner_types")
    participation = el.flag("requires_participation", True)
    justification = el.flag("requires_justification", False)
    break_glass = el.flag("break_glass", False)
    duration = el.integer("max_duration_minutes")
    by_partner_type = el.id_lists("legal_bases_by_partner_type")
    if (el.ok and ident and description and legal_bases is not None and activity
            and phases is not None and partner_types is not None):
        sink.purposes.append(Purpose(
            ident, description, legal_bases, activity, phases, partner_types,
            requires_participation=participation, requires_justification=justification,
            break_glass=break_glass, max_duration_minutes=duration,
            legal_bases_by_partner_type=by_partner_type, loc=el.loc, marks=tuple(el.marks)))


_APPROACH_KEYS = ("id", "description", "default", "partner_types", "purposes", "fields",
                  "categories", "bsn_required", "extra_legal_bases")


def _approach_ground(r: Reader, node: Node) -> ApproachGround | None:
    el = Element(r, node, "approach extra legal basis", ("purposes", "partner_types",
                                                         "legal_bases"),
                 ("purposes", "legal_bases"))
    purposes = el.ids("purposes")
    legal_bases = el.ids("legal_bases")
    partner_types = el.ids("partner_types")
    if not el.ok or purposes is None or legal_bases is None:
        return None
    return ApproachGround(purposes, legal_bases, partner_types, el.loc, tuple(el.marks))


def _approach(r: Reader, node: Node, sink: _Sink) -> None:
    el, ident = _start(r, node, sink, "approaches", "approach", _APPROACH_KEYS,
                       ("id", "description"))
    description = el.text("description")
    default = el.flag("default", False)
    partner_types = el.ids("partner_types")
    purposes = el.ids("purposes")
    fields = el.ids("fields") or ()
    categories = el.ids("categories") or ()
    bsn_required = el.flag("bsn_required", False)
    grounds: list[ApproachGround] = []
    for item in el.nodes("extra_legal_bases"):
        ground = _approach_ground(r, item)
        if ground is None:
            el.ok = False
        else:
            grounds.append(ground)
    if el.ok and ident and description:
        sink.approaches.append(ApproachSpec(
            ident, description, default=default, partner_types=partner_types,
            purposes=purposes, fields=fields, categories=categories,
            bsn_required=bsn_required, legal_bases=tuple(grounds), loc=el.loc,
            marks=tuple(el.marks)))


_RULE_KEYS = ("id", "reason", "who", "purposes", "phases", "fields", "categories", "effect",
              "transform", "params", "override", "override_reason", "approaches", "persons")


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
    approaches = el.ids("approaches")
    persons = el.ids("persons")
    if el.ok and ident and reason and purposes is not None and effect:
        sink.rules.append(Rule(
            ident, reason, purposes, effect, who=who, phases=phases, fields=fields,
            categories=categories, transform=transform, params=params, override=override,
            override_reason=override_reason, approaches=approaches, persons=persons,
            loc=el.loc, marks=tuple(el.marks)))


_PARSERS: Mapping[str, Callable[[Reader, Node, _Sink], None]] = {
    "categories": _category,
    "fields": _field,
    "partner_types": _partner_type,
    "roles": _described("roles", "role", RoleSpec,
                        lambda s: s.roles),
    "partners": _partner,
    "phases": _described("phases", "phase", PhaseSpec,
                         lambda s: s.phases),
    "legal_bases": _legal_basis,
    "purposes": _purpose,
    "person_roles": _described("person_roles", "person role", PersonRoleSpec,
                               lambda s: s.person_roles),
    "approaches": _approach,
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
                reader.report(key_node, f"unknown section {key!r}{suggest(key, SECTIONS)}",
                              hint=pick_hint(key, SECTIONS, "sections"))
                continue
            sink.seen.add(key)
            items = reader.items(value_node, f"section {key!r}")
            for item in items or ():
                parse(reader, item, sink)
    policy = PolicySet(
        version=policy_version(documents),
        categories=tuple(sink.categories), fields=tuple(sink.fields),
        partner_types=tuple(sink.partner_types), roles=tuple(sink.roles),
        partners=tuple(sink.partners), phases=tuple(sink.phases),
        purposes=tuple(sink.purposes), rules=tuple(sink.rules),
        legal_bases=tuple(sink.legal_bases),
        person_roles=tuple(sink.person_roles) if "person_roles" in sink.seen else None,
        approaches=tuple(sink.approaches) if "approaches" in sink.seen else None)
    return ParseResult(policy, issues, sink.declared)


def parse_policy(documents: Mapping[str, str]) -> PolicySet:
    """Parse policy documents (relative file name -> YAML text). Raises PolicyError."""
    result = parse_documents(documents)
    if result.issues:
        raise PolicyError(result.issues)
    return result.policy
