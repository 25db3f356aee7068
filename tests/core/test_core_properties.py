"""Properties of the decision over generated policies and requests (hypothesis).

Every generated policy is a complete set of policy files (catalogue, partners, purposes,
legal bases and random rules) parsed by the real parser and compiled by the real compiler.
Three things must hold for every request:

* nothing withheld is released, and a refused request releases nothing;
* the outcome per field is what the covenant's resolution says: deny by default, overrides
  set the other rules aside, the most restrictive rule wins — checked against a direct
  evaluation of the rules written here, independent of the compiled tables;
* the explanation names a winning rule whose effect and transform are the outcome given,
  and no rule at all exactly when the field is withheld by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core import (
    AccessRequest,
    CompiledPolicy,
    Decision,
    Effect,
    parse_policy,
)

TYPES = ("t0", "t1", "t2")
ROLES = ("r0", "r1")
PHASES = ("ph0", "ph1", "ph2")
PURPOSES = ("u0", "u1")
CATEGORIES = ("c0", "c1", "c2")
# Transforms that fit a text field; `truncate` carries a parameter.
TEXT_TRANSFORMS = ("redact", "presence", "pseudonym", "truncate")
_EFFECT_RANK = {"disclose": 0, "mask": 1, "withhold": 2}
# The covenant's order of masks, most restrictive first, written out here rather than read
# from the core so that a wrong order there is caught.
_MASK_ORDER = ("redact", "presence", "pseudonym", "initials", "year_only", "postcode_area",
               "truncate")


@dataclass(frozen=True)
class GenRule:
    id: str
    types: tuple[str, ...] | None
    roles: tuple[str, ...] | None
    purposes: tuple[str, ...]
    phases: tuple[str, ...] | None
    fields: tuple[str, ...]
    categories: tuple[str, ...]
    effect: str
    transform: str | None
    length: int
    override: bool

    def document(self) -> dict[str, object]:
        doc: dict[str, object] = {"id": self.id, "reason": f"Generated rule {self.id}.",
                                  "purposes": list(self.purposes), "effect": self.effect}
        who: dict[str, list[str]] = {}
        if self.types is not None:
            who["partner_types"] = list(self.types)
        if self.roles is not None:
            who["roles"] = list(self.roles)
        if who:
            doc["who"] = who
        if self.phases is not None:
            doc["phases"] = list(self.phases)
        if self.fields:
            doc["fields"] = list(self.fields)
        if self.categories:
            doc["categories"] = list(self.categories)
        if self.transform is not None:
            doc["transform"] = self.transform
            if self.transform == "truncate":
                doc["params"] = {"length": self.length}
        if self.override:
            doc.update(override=True, override_reason="Generated exception.")
        return doc

    def params(self) -> tuple[tuple[str, str | int], ...]:
        return (("length", self.length),) if self.transform == "truncate" else ()


@dataclass(frozen=True)
class GenPolicy:
    field_categories: tuple[str, ...]  # category of field f<i>
    partners: tuple[tuple[str, tuple[str, ...]], ...]  # (type, roles) of partner p<i>
    purposes: tuple[tuple[tuple[str, ...], tuple[str, ...], bool], ...]  # phases, types, just.
    rules: tuple[GenRule, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f"f{i}" for i in range(len(self.field_categories)))

    def documents(self) -> dict[str, str]:
        catalogue = {
            "categories": [{"id": c, "description": f"Category {c}."} for c in CATEGORIES],
            "fields": [{"id": f, "category": c, "source": "zvh", "description": f"Field {f}."}
                       for f, c in zip(self.fields, self.field_categories, strict=True)],
        }
        partners = {
            "partner_types": [{"id": t, "description": f"Type {t}."} for t in TYPES],
            "roles": [{"id": r, "description": f"Role {r}."} for r in ROLES],
            "partners": [{"id": f"p{i}", "type": t, "display_name": f"Partner {i}",
                          "roles": list(roles)} for i, (t, roles) in enumerate(self.partners)],
        }
        purposes = {
            "legal_bases": [{"id": "lb", "title": "A ground for ordinary data."}],
            "phases": [{"id": p, "description": f"Phase {p}."} for p in PHASES],
            "purposes": [
                {"id": PURPOSES[i], "description": "Generated purpose.",
                 "legal_bases": ["lb"],
                 "processing_activity": f"urn:register:{PURPOSES[i]}",
                 "phases": list(phases), "partner_types": list(types),
                 "requires_justification": justified}
                for i, (phases, types, justified) in enumerate(self.purposes)],
        }
        rules = {"rules": [rule.document() for rule in self.rules]}
        return {name: yaml.safe_dump(doc, sort_keys=False) for name, doc in (
            ("catalogue.yaml", catalogue), ("partners.yaml", partners),
            ("purposes.yaml", purposes), ("rules.yaml", rules))}


def _subset(items: Sequence[str], *, min_size: int = 1) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(items), min_size=min_size, max_size=len(items),
                    unique=True).map(tuple)


@st.composite
def rules(draw: st.DrawFn, index: int, fields: tuple[str, ...]) -> GenRule:
    effect = draw(st.sampled_from(("disclose", "mask", "withhold")))
    named = draw(_subset(fields, min_size=0))
    categories = draw(_subset(CATEGORIES, min_size=0 if named else 1))
    return GenRule(
        id=f"rule-{index}",
        types=draw(st.none() | _subset(TYPES)),
        roles=draw(st.none() | _subset(ROLES)),
        purposes=draw(_subset(PURPOSES)),
        phases=draw(st.none() | _subset(PHASES)),
        fields=named,
        categories=categories,
        effect=effect,
        transform=draw(st.sampled_from(TEXT_TRANSFORMS)) if effect == "mask" else None,
        length=draw(st.integers(1, 40)),
        override=draw(st.booleans()),
    )


@st.composite
def policies(draw: st.DrawFn) -> GenPolicy:
    categories = tuple(draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=8)))
    fields = tuple(f"f{i}" for i in range(len(categories)))
    partners = tuple(draw(st.lists(st.tuples(st.sampled_from(TYPES), _subset(ROLES)),
                                   min_size=1, max_size=4)))
    purposes = tuple(draw(st.tuples(_subset(PHASES), _subset(TYPES), st.booleans()))
                     for _ in PURPOSES)
    count = draw(st.integers(0, 10))
    return GenPolicy(categories, partners, purposes,
                     tuple(draw(rules(i, fields)) for i in range(count)))


@st.composite
def requests(draw: st.DrawFn, policy: GenPolicy) -> AccessRequest:
    partner = draw(st.integers(0, len(policy.partners) - 1))
    return AccessRequest(
        partner_id=f"p{partner}",
        role=draw(st.sampled_from(ROLES)),
        purpose=draw(st.sampled_from(PURPOSES)),
        phase=draw(st.sampled_from(PHASES)),
        participant=draw(st.booleans()),
        fields=draw(_subset(policy.fields, min_size=0)),
        justification=draw(st.sampled_from(("", "Acute danger to the children."))),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[GenPolicy, list[AccessRequest]]:
    # Parsing dominates the cost of an example, so each policy answers several requests.
    policy = draw(policies())
    return policy, draw(st.lists(requests(policy), min_size=1, max_size=8))


def _compile(policy: GenPolicy) -> CompiledPolicy:
    # The constructor, not compile_policy(): generated rules may well shadow or contradict
    # each other, which `policy check` rejects, but the tables must still be right for them.
    return CompiledPolicy(parse_policy(policy.documents()))


def _strictness(rule: GenRule) -> tuple[int, int, int]:
    if rule.effect != "mask" or rule.transform is None:
        return _EFFECT_RANK[rule.effect], 0, 0
    rank = len(_MASK_ORDER) - _MASK_ORDER.index(rule.transform)
    # Of two truncations the shorter shows less.
    shown = -rule.length if rule.transform == "truncate" else 0
    return _EFFECT_RANK[rule.effect], rank, shown


def _expected(policy: GenPolicy, partner_type: str, request: AccessRequest,
              field: str) -> tuple[str, str | None, tuple[tuple[str, str | int], ...]]:
    """The covenant's resolution, evaluated rule by rule."""
    category = policy.field_categories[policy.fields.index(field)]
    matching = [
        r for r in policy.rules
        if request.purpose in r.purposes
        and (r.types is None or partner_type in r.types)
        and (r.roles is None or request.role in r.roles)
        and (r.phases is None or request.phase in r.phases)
        and (field in r.fields or category in r.categories)
    ]
    pool = [r for r in matching if r.override] or matching
    if not pool:
        return "withhold", None, ()
    best = pool[0]
    for rule in pool[1:]:
        if _strictness(rule) > _strictness(best):
            best = rule
    if best.effect == "mask":
        return "mask", best.transform, best.params()
    return best.effect, None, ()


def _refused(policy: GenPolicy, partner: tuple[str, tuple[str, ...]],
             request: AccessRequest) -> bool:
    phases, types, justified = policy.purposes[PURPOSES.index(request.purpose)]
    partner_type, roles = partner
    return (request.role not in roles or partner_type not in types
            or request.phase not in phases or not request.participant
            or (justified and not request.justification))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_decisions_hold_for_generated_policies(
        case: tuple[GenPolicy, list[AccessRequest]]) -> None:
    policy, asked = case
    compiled = _compile(policy)
    for request in asked:
        decision = compiled.decide(request)
        _check_nothing_withheld_is_released(decision)
        _check_resolution(policy, request, decision)
        _check_explanation(policy, compiled, request)


def _check_nothing_withheld_is_released(decision: Decision) -> None:
    withheld = {d.field for d in decision.fields if d.effect is Effect.WITHHOLD}
    released = {d.field for d in decision.released}
    assert not withheld & released
    assert released | withheld == {d.field for d in decision.fields}
    if not decision.permitted:
        assert not released


def _check_resolution(policy: GenPolicy, request: AccessRequest, decision: Decision) -> None:
    partner = policy.partners[int(request.partner_id[1:])]
    asked = request.fields or policy.fields
    assert [d.field for d in decision.fields] == list(asked)
    if _refused(policy, partner, request):
        assert decision.refusal is not None
        assert decision.refusal.code != "nothing_permitted"
        assert all(d.effect is Effect.WITHHOLD for d in decision.fields)
        return
    expected = [_expected(policy, partner[0], request, d.field) for d in decision.fields]
    assert [(str(d.effect), d.transform, d.params) for d in decision.fields] == expected
    # A request the policy lets through but that releases nothing is refused as a whole.
    nothing = all(effect == "withhold" for effect, _, _ in expected)
    assert decision.permitted is not nothing
    if nothing:
        assert decision.refusal is not None and decision.refusal.code == "nothing_permitted"


def _check_explanation(policy: GenPolicy, compiled: CompiledPolicy,
                       request: AccessRequest) -> None:
    partner_type = policy.partners[int(request.partner_id[1:])][0]
    explanation = compiled.explain(partner_type, request.role, request.purpose, request.phase)
    outcome = compiled.outcome(partner_type, request.role, request.purpose, request.phase,
                               policy.fields[0])
    if explanation.refusal is not None:
        assert outcome is None
        return
    assert outcome is not None
    assert [e.field for e in explanation.fields] == list(policy.fields)
    for explained in explanation.fields:
        effect, transform, params = _expected(policy, partner_type, request, explained.field)
        assert (str(explained.effect), explained.transform, explained.params) == (
            effect, transform, params)
        winner = explained.winner
        if winner is None:
            assert explained.effect is Effect.WITHHOLD
            assert not explained.losers
            continue
        assert winner.effect is explained.effect
        if explained.effect is Effect.MASK:
            assert (winner.transform, winner.params) == (explained.transform, explained.params)
        rules = {r.id: r for r in policy.rules}
        assert winner.id in rules
        for lost in explained.losers:
            assert lost.rule.id != winner.id
            assert lost.why
        # The winner and the losers are exactly the rules that match.
        named = {winner.id, *(lost.rule.id for lost in explained.losers)}
        category = policy.field_categories[policy.fields.index(explained.field)]
        assert named == {
            r.id for r in policy.rules
            if request.purpose in r.purposes
            and (r.types is None or partner_type in r.types)
            and (r.roles is None or request.role in r.roles)
            and (r.phases is None or request.phase in r.phases)
            and (explained.field in r.fields or category in r.categories)}
