"""Deny by default, most restrictive wins, overrides, and the scope of a rule.

Rules that compete at equal specificity are rejected by the rule checks (see
test_core_rule_checks.py); the order in which they resolve is still tested here on policies
compiled without those checks, since the tables must be right whatever the rules say.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.core import AccessRequest, CompiledPolicy, Effect, FieldDecision

Make = Callable[[str], CompiledPolicy]


def decide_field(policy: CompiledPolicy, field: str, *, partner: str = "police-1",
                 role: str = "worker", purpose: str = "meeting", phase: str = "meeting",
                 justification: str = "") -> FieldDecision:
    decision = policy.decide(AccessRequest(partner, role, purpose, phase, True, (field,),
                                           justification))
    (only,) = decision.fields
    return only


def test_a_field_no_rule_grants_is_withheld(make_policy: Make) -> None:
    policy = make_policy("""\
        rules:
          - {id: names, reason: Names., purposes: [meeting], fields: [subject.name],
             effect: disclose}
        """)
    decided = decide_field(policy, "subject.dob")
    assert decided.effect is Effect.WITHHOLD
    assert decided.rule_id is None
    assert decided.reason == "no rule grants this field"
    assert decided.transform is None and decided.params == ()


def test_a_policy_without_rules_releases_nothing(make_policy: Make) -> None:
    policy = make_policy("rules: []\n")
    decision = policy.decide(AccessRequest("care-1", "worker", "meeting", "meeting", True))
    assert {d.effect for d in decision.fields} == {Effect.WITHHOLD}


@pytest.mark.parametrize(("first", "second", "winner"), [
    ("effect: disclose", "effect: mask, transform: truncate, params: {length: 3}", "second"),
    ("effect: mask, transform: truncate, params: {length: 3}", "effect: withhold", "second"),
    ("effect: withhold", "effect: disclose", "first"),
    ("effect: mask, transform: presence", "effect: mask, transform: truncate, "
     "params: {length: 3}", "first"),
    ("effect: mask, transform: presence", "effect: mask, transform: redact", "second"),
])
def test_the_most_restrictive_rule_wins(make_unchecked: Make, first: str, second: str,
                                        winner: str) -> None:
    policy = make_unchecked(f"""\
        rules:
          - {{id: first, reason: First., purposes: [meeting], fields: [case.notes], {first}}}
          - {{id: second, reason: Second., purposes: [meeting], fields: [case.notes], {second}}}
        """)
    assert decide_field(policy, "case.notes").rule_id == winner


@pytest.mark.parametrize("order", [
    ["redact", "presence", "pseudonym", "initials"],
    ["initials", "pseudonym", "presence", "redact"],
])
def test_between_masks_the_higher_ranked_transform_wins(make_unchecked: Make,
                                                         order: list[str]) -> None:
    rules = "".join(
        f"  - {{id: r-{name}, reason: R., purposes: [meeting], fields: [subject.name], "
        f"effect: mask, transform: {name}}}\n" for name in order)
    policy = make_unchecked("rules:\n" + rules)
    decided = decide_field(policy, "subject.name")
    assert (decided.effect, decided.transform, decided.rule_id) == (
        Effect.MASK, "redact", "r-redact")


def test_equally_restrictive_rules_name_the_first_in_policy_order(make_unchecked: Make) -> None:
    policy = make_unchecked("""\
        rules:
          - {id: zz-first, reason: A., purposes: [meeting], fields: [case.notes],
             effect: disclose}
          - {id: aa-second, reason: B., purposes: [meeting], categories: [notes],
             effect: disclose}
        """)
    assert decide_field(policy, "case.notes").rule_id == "zz-first"


def test_an_override_beats_a_stricter_rule_and_says_why(make_policy: Make) -> None:
    policy = make_policy("""\
        rules:
          - {id: no-health, reason: Secrecy., purposes: [meeting, acute],
             categories: [health], effect: withhold}
          - id: acute-health
            reason: Acute danger.
            who: {partner_types: [police]}
            purposes: [acute]
            fields: [care.diagnosis]
            effect: mask
            transform: presence
            override: true
            override_reason: Conflict of duties.
        """)
    meeting = decide_field(policy, "care.diagnosis")
    assert (meeting.effect, meeting.rule_id) == (Effect.WITHHOLD, "no-health")
    acute = decide_field(policy, "care.diagnosis", purpose="acute", justification="danger")
    assert (acute.effect, acute.transform, acute.rule_id) == (
        Effect.MASK, "presence", "acute-health")
    assert acute.reason == "Acute danger. Override: Conflict of duties."


def test_among_overrides_the_most_restrictive_wins(make_unchecked: Make) -> None:
    policy = make_unchecked("""\
        rules:
          - {id: base, reason: A., purposes: [meeting], fields: [case.notes], effect: withhold}
          - {id: open, reason: B., purposes: [meeting], fields: [case.notes], effect: disclose,
             override: true, override_reason: Needed.}
          - {id: short, reason: C., purposes: [meeting], fields: [case.notes], effect: mask,
             transform: truncate, params: {length: 10}, override: true,
             override_reason: Less is enough.}
        """)
    decided = decide_field(policy, "case.notes")
    assert (decided.effect, decided.rule_id, decided.params) == (
        Effect.MASK, "short", (("length", 10),))


def test_rules_apply_only_to_their_partner_types_roles_and_phases(make_policy: Make) -> None:
    policy = make_policy("""\
        rules:
          - {id: directors, reason: A., who: {roles: [director]}, purposes: [meeting],
             fields: [case.notes], effect: disclose}
          - {id: care-names, reason: B., who: {partner_types: [care]}, purposes: [meeting],
             fields: [subject.name], effect: disclose}
          - {id: acute-intake, reason: C., purposes: [acute], phases: [intake],
             fields: [subject.dob], effect: disclose}
        """)
    assert decide_field(policy, "case.notes", role="director").effect is Effect.DISCLOSE
    assert decide_field(policy, "case.notes", role="worker").effect is Effect.WITHHOLD
    assert decide_field(policy, "subject.name", partner="care-1").effect is Effect.DISCLOSE
    assert decide_field(policy, "subject.name").effect is Effect.WITHHOLD
    assert decide_field(policy, "subject.dob", purpose="acute", phase="intake",
                        justification="x").effect is Effect.DISCLOSE
    assert decide_field(policy, "subject.dob", purpose="acute", phase="meeting",
                        justification="x").effect is Effect.WITHHOLD


def test_a_stricter_narrow_rule_beats_a_broad_one_in_a_valid_policy(make_policy: Make) -> None:
    policy = make_policy("""\
        rules:
          - {id: identity, reason: A., purposes: [meeting], categories: [identifying],
             effect: disclose}
          - {id: police-dob, reason: B., who: {partner_types: [police]}, purposes: [meeting],
             fields: [subject.dob], effect: mask, transform: year_only}
        """)
    assert decide_field(policy, "subject.dob").rule_id == "police-dob"
    assert decide_field(policy, "subject.dob", partner="care-1").rule_id == "identity"
    assert decide_field(policy, "subject.name").rule_id == "identity"


def test_a_category_rule_covers_every_field_of_the_category(make_policy: Make) -> None:
    policy = make_policy("""\
        rules:
          - {id: identity, reason: A., purposes: [meeting], categories: [identifying],
             effect: disclose}
        """)
    decision = policy.decide(AccessRequest("care-1", "worker", "meeting", "meeting", True))
    released = {d.field for d in decision.released}
    assert released == {"subject.name", "subject.dob"}


def test_decisions_carry_the_catalogue_facts(make_policy: Make) -> None:
    policy = make_policy("""\
        rules:
          - {id: dx, reason: Care., who: {partner_types: [care]}, purposes: [meeting],
             fields: [care.diagnosis], effect: mask, transform: presence}
        """)
    decided = decide_field(policy, "care.diagnosis", partner="care-1")
    assert decided == FieldDecision(
        field="care.diagnosis", category="health", special="art9", source="care",
        effect=Effect.MASK, transform="presence", params=(), rule_id="dx", reason="Care.")
