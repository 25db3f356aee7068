"""Explanations, the cell table, single outcomes and the legal basis of decisions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.core import (
    AccessRequest,
    CompiledPolicy,
    Effect,
    RefusalCode,
    RequestError,
    UnknownField,
    UnknownPartnerType,
    UnknownPhase,
    UnknownPurpose,
    UnknownRole,
)
from gateway.core.explain import EQUALLY_RESTRICTIVE, LESS_RESTRICTIVE, LOST_TO_OVERRIDE

Make = Callable[[str], CompiledPolicy]

RULES = """\
    rules:
      - {id: role, reason: Triage., purposes: [triage], fields: [triage.role], effect: mask,
         transform: presence}
      - {id: names, reason: Names., purposes: [meeting, acute],
         fields: [subject.name, subject.dob], effect: disclose}
      - {id: identity-and-notes, reason: Identity., purposes: [meeting],
         categories: [identifying, notes], effect: disclose}
      - {id: police-dob, reason: Year., who: {partner_types: [police]},
         purposes: [meeting, acute], fields: [subject.dob], effect: mask, transform: year_only}
      - {id: no-health, reason: Secrecy., purposes: [meeting, acute], categories: [health],
         effect: withhold}
      - id: acute-health
        reason: Acute danger.
        who: {partner_types: [police]}
        purposes: [acute]
        fields: [care.diagnosis]
        effect: mask
        transform: presence
        override: true
        override_reason: Conflict of duties.
    """


@pytest.fixture
def policy(make_policy: Make) -> CompiledPolicy:
    return make_policy(RULES)


def test_the_example_policy_is_clean(policy: CompiledPolicy) -> None:
    assert policy.warnings == ()


def test_explain_names_the_winner_and_why_each_other_rule_lost(policy: CompiledPolicy) -> None:
    explanation = policy.explain("police", "worker", "meeting", "meeting")
    assert (explanation.partner_type, explanation.role, explanation.purpose,
            explanation.phase, explanation.refusal) == (
        "police", "worker", "meeting", "meeting", None)
    by_field = {e.field: e for e in explanation.fields}
    assert list(by_field) == [f.id for f in policy.fields]

    name = by_field["subject.name"]
    assert name.winner is not None and name.winner.id == "names"
    assert [(lost.rule.id, lost.why) for lost in name.losers] == [
        ("identity-and-notes", EQUALLY_RESTRICTIVE)]

    dob = by_field["subject.dob"]
    assert (dob.effect, dob.transform, dob.params) == (Effect.MASK, "year_only", ())
    assert dob.winner is not None
    assert (dob.winner.id, dob.winner.effect, dob.winner.transform) == (
        "police-dob", Effect.MASK, "year_only")
    assert (dob.winner.loc.file, dob.winner.loc.line) == ("rules/test.yaml", 8)
    assert dob.winner.reason == "Year." and not dob.winner.override
    assert [(lost.rule.id, lost.why) for lost in dob.losers] == [
        ("names", LESS_RESTRICTIVE), ("identity-and-notes", LESS_RESTRICTIVE)]

    diagnosis = by_field["care.diagnosis"]
    assert (diagnosis.category, diagnosis.special, diagnosis.effect) == (
        "health", "art9", Effect.WITHHOLD)
    assert diagnosis.winner is not None and diagnosis.winner.id == "no-health"
    assert diagnosis.losers == ()


def test_an_override_explains_what_it_set_aside(policy: CompiledPolicy) -> None:
    explanation = policy.explain("police", "director", "acute", "intake", field="care.diagnosis")
    (diagnosis,) = explanation.fields
    assert diagnosis.winner is not None
    assert (diagnosis.winner.id, diagnosis.winner.override) == ("acute-health", True)
    assert (diagnosis.effect, diagnosis.transform) == (Effect.MASK, "presence")
    assert [(lost.rule.id, lost.why) for lost in diagnosis.losers] == [
        ("no-health", LOST_TO_OVERRIDE)]


def test_a_field_no_rule_matches_is_withheld_by_default(policy: CompiledPolicy) -> None:
    (role,) = policy.explain("care", "worker", "meeting", "meeting", field="triage.role").fields
    assert (role.field, role.effect, role.transform, role.params) == (
        "triage.role", Effect.WITHHOLD, None, ())
    assert role.winner is None and role.losers == ()


def test_the_field_filter_explains_only_that_field(policy: CompiledPolicy) -> None:
    explanation = policy.explain("zvh", "director", "triage", "intake", field="triage.role")
    assert [e.field for e in explanation.fields] == ["triage.role"]
    assert explanation.fields[0].effect is Effect.MASK


@pytest.mark.parametrize(("cell", "code", "fragment"), [
    (("care", "director", "meeting", "meeting"), RefusalCode.ROLE_NOT_ALLOWED,
     "no partner of type 'care' acts in role 'director'"),
    (("care", "worker", "acute", "meeting"), RefusalCode.PURPOSE_NOT_ALLOWED,
     "type 'care' may not ask for purpose 'acute'"),
    (("police", "worker", "meeting", "intake"), RefusalCode.PHASE_NOT_ALLOWED,
     "purpose 'meeting' does not apply in phase 'intake'"),
])
def test_a_cell_the_policy_does_not_allow_is_refused(
        policy: CompiledPolicy, cell: tuple[str, str, str, str], code: RefusalCode,
        fragment: str) -> None:
    explanation = policy.explain(*cell)
    assert explanation.refusal is not None
    assert explanation.refusal.code is code
    assert fragment in explanation.refusal.message
    assert explanation.fields == ()
    assert policy.outcome(*cell, "subject.name") is None


@pytest.mark.parametrize(("args", "error"), [
    (("fire", "worker", "meeting", "meeting"), UnknownPartnerType),
    (("care", "boss", "meeting", "meeting"), UnknownRole),
    (("care", "worker", "gossip", "meeting"), UnknownPurpose),
    (("care", "worker", "meeting", "later"), UnknownPhase),
    (("care", "worker", "meeting", "meeting", "subject.shoe_size"), UnknownField),
])
def test_explain_raises_for_unknown_ids(policy: CompiledPolicy, args: tuple[str, ...],
                                        error: type[RequestError]) -> None:
    with pytest.raises(error):
        policy.explain(*args)


def test_cells_cover_every_allowed_combination_in_policy_order(policy: CompiledPolicy) -> None:
    keys = [(c.partner_type, c.role, c.purpose, c.phase) for c in policy.cells()]
    assert keys == [
        ("care", "worker", "triage", "intake"), ("care", "worker", "meeting", "meeting"),
        *((("police", role, purpose, phase) for role in ("worker", "director")
           for purpose, phase in (("triage", "intake"), ("meeting", "meeting"),
                                  ("acute", "intake"), ("acute", "meeting")))),
        ("zvh", "director", "triage", "intake"), ("zvh", "director", "meeting", "meeting"),
    ]


def test_cells_outcomes_and_explanations_agree_with_decide(policy: CompiledPolicy) -> None:
    partner_of = {"care": "care-1", "police": "police-1", "zvh": "zvh"}
    for cell in policy.cells():
        decision = policy.decide(AccessRequest(partner_of[cell.partner_type], cell.role,
                                               cell.purpose, cell.phase, True,
                                               justification="danger"))
        assert decision.fields == cell.fields
        explained = policy.explain(cell.partner_type, cell.role, cell.purpose, cell.phase)
        for decided, why in zip(cell.fields, explained.fields, strict=True):
            assert policy.outcome(cell.partner_type, cell.role, cell.purpose, cell.phase,
                                  decided.field) == decided
            assert (why.field, why.effect, why.transform, why.params) == (
                decided.field, decided.effect, decided.transform, decided.params)
            assert (why.winner.id if why.winner else None) == decided.rule_id


def test_outcome_of_one_field(policy: CompiledPolicy) -> None:
    decided = policy.outcome("police", "director", "meeting", "meeting", "subject.dob")
    assert decided is not None
    assert (decided.effect, decided.transform, decided.rule_id) == (
        Effect.MASK, "year_only", "police-dob")
    # Ids the policy does not know are no cell either: a past record may name them.
    assert policy.outcome("fire", "worker", "meeting", "meeting", "subject.dob") is None
    assert policy.outcome("care", "worker", "gone", "meeting", "subject.dob") is None
    with pytest.raises(UnknownField):
        policy.outcome("care", "worker", "meeting", "meeting", "subject.shoe_size")


def test_roles_of_a_partner_type_in_policy_order(policy: CompiledPolicy) -> None:
    assert policy.roles_of("police") == ("worker", "director")
    assert policy.roles_of("care") == ("worker",)
    assert policy.roles_of("zvh") == ("director",)
    with pytest.raises(UnknownPartnerType):
        policy.roles_of("fire")


@pytest.mark.parametrize(("partner", "role", "purpose", "phase", "legal_basis"), [
    ("care-1", "worker", "meeting", "meeting", "wgs, avg-6-1-e, avg-9-2-h"),
    ("police-1", "worker", "meeting", "meeting", "wgs, avg-6-1-e"),
    ("police-1", "worker", "acute", "intake", "avg-9-2-c"),
    # A refused request still records the grounds it was asked under.
    ("care-1", "worker", "acute", "intake", "avg-9-2-c"),
    ("police-1", "worker", "triage", "meeting", "wgs, avg-6-1-e"),
])
def test_a_decision_names_the_grounds_for_the_partner_type(
        policy: CompiledPolicy, partner: str, role: str, purpose: str, phase: str,
        legal_basis: str) -> None:
    decision = policy.decide(AccessRequest(partner, role, purpose, phase, True,
                                           justification="danger"))
    assert decision.legal_basis == legal_basis
