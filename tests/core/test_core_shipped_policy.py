"""The shipped policy set: it loads, its policy tests pass, and key promises hold."""

from __future__ import annotations

import pytest

from gateway.core import (
    AccessRequest,
    CompiledPolicy,
    Effect,
    parse_policy_tests,
    run_policy_tests,
)
from gateway.core.model import INDEX_CATEGORY

PARTNER_TYPES = {"police", "municipality", "ggz", "veilig_thuis", "probation", "zvh"}


def decide(policy: CompiledPolicy, partner: str, role: str, purpose: str, phase: str,
           fields: tuple[str, ...] = ()) -> dict[str, tuple[Effect, str | None]]:
    decision = policy.decide(AccessRequest(partner, role, purpose, phase, True, fields,
                                           "written justification"))
    return {d.field: (d.effect, d.transform) for d in decision.fields}


def test_the_shipped_policy_names_what_the_covenant_names(shipped: CompiledPolicy) -> None:
    policy = shipped.policy
    assert {p.id for p in policy.partners} == {
        "police", "municipality", "ggz", "veilig-thuis", "probation", "zvh"}
    assert {t.id for t in policy.partner_types} == PARTNER_TYPES
    assert {r.id for r in policy.roles} == {
        "chain_partner", "case_director", "process_director", "privacy_officer"}
    assert shipped.partner("zvh").roles == ("process_director", "privacy_officer")
    assert shipped.phases == ("registration", "triage", "case_meeting", "plan", "monitoring",
                              "closure")
    assert {p.id for p in policy.purposes} == {"triage", "case_meeting", "acute_safety"}
    assert {c.id: c.special for c in policy.categories if c.special != "none"} == {
        "criminal_justice": "art10", "supervision": "art10", "health": "art9"}
    assert len(shipped.fields) == 24


def test_purposes_carry_legal_basis_and_register_entry(shipped: CompiledPolicy) -> None:
    for purpose in shipped.purposes.values():
        assert purpose.legal_basis.strip()
        assert purpose.processing_activity.startswith("https://zvh.example/register/pa-")
    triage = shipped.purpose("triage")
    assert not triage.requires_participation and set(triage.partner_types) == PARTNER_TYPES
    acute = shipped.purpose("acute_safety")
    assert acute.break_glass and acute.requires_justification
    assert acute.max_duration_minutes == 1440


def test_every_rule_gives_a_reason(shipped: CompiledPolicy) -> None:
    for rule in shipped.policy.rules:
        assert len(rule.reason.split()) >= 5, rule.id
        assert not rule.override or len(rule.override_reason.split()) >= 5, rule.id


def test_the_shipped_policy_tests_pass(shipped: CompiledPolicy,
                                       shipped_test_docs: dict[str, str]) -> None:
    cases = parse_policy_tests(shipped_test_docs)
    results = run_policy_tests(shipped, cases)
    failed = [str(r) for r in results if not r.passed]
    assert not failed, "\n".join(failed)
    tested = {case.request.purpose for case in cases}
    assert tested == set(shipped.purposes)


def test_triage_reaches_only_the_index_for_anyone(shipped: CompiledPolicy) -> None:
    for partner in shipped.partners.values():
        for role in partner.roles:
            decision = shipped.decide(AccessRequest(partner.id, role, "triage", "triage", False))
            for released in decision.released:
                assert released.category == INDEX_CATEGORY


@pytest.mark.parametrize("partner", ["police", "municipality"])
@pytest.mark.parametrize("purpose", ["case_meeting", "acute_safety"])
def test_diagnosis_never_reaches_police_or_municipality(shipped: CompiledPolicy, partner: str,
                                                        purpose: str) -> None:
    for phase in shipped.purpose(purpose).phases:
        for role in ("chain_partner", "case_director"):
            outcome = decide(shipped, partner, role, purpose, phase, ("ggz.diagnosis",))
            assert outcome["ggz.diagnosis"][0] is Effect.WITHHOLD


def test_process_director_sees_diagnosis_presence_only(shipped: CompiledPolicy) -> None:
    outcome = decide(shipped, "zvh", "process_director", "case_meeting", "case_meeting")
    assert outcome["ggz.diagnosis"] == (Effect.MASK, "presence")


def test_triage_role_label_only_for_the_process_director(shipped: CompiledPolicy) -> None:
    assert decide(shipped, "zvh", "process_director", "triage", "triage")["triage.role"] == (
        Effect.DISCLOSE, None)
    for partner in ("police", "municipality", "ggz", "veilig-thuis", "probation"):
        outcome = decide(shipped, partner, "chain_partner", "triage", "triage")
        assert outcome["triage.role"] == (Effect.MASK, "presence")


def test_code_rood_opens_weapons_and_children_to_police_and_veilig_thuis(
        shipped: CompiledPolicy) -> None:
    fields = ("police.weapon_flag", "vt.children_in_household")
    for partner in ("police", "veilig-thuis"):
        before = decide(shipped, partner, "chain_partner", "case_meeting", "plan", fields)
        during = decide(shipped, partner, "chain_partner", "acute_safety", "plan", fields)
        assert during == {f: (Effect.DISCLOSE, None) for f in fields}
        assert before != during


def test_police_get_a_bsn_pseudonym(shipped: CompiledPolicy) -> None:
    for purpose, phase in (("case_meeting", "case_meeting"), ("acute_safety", "registration")):
        outcome = decide(shipped, "police", "case_director", purpose, phase, ("subject.bsn",))
        assert outcome["subject.bsn"] == (Effect.MASK, "pseudonym")


def test_the_privacy_officer_sees_no_case_content(shipped: CompiledPolicy) -> None:
    for purpose in shipped.purposes.values():
        for phase in purpose.phases:
            decision = shipped.decide(AccessRequest(
                "zvh", "privacy_officer", purpose.id, phase, True, (), "review"))
            assert decision.released == ()


def test_no_case_data_is_exchanged_after_closure(shipped: CompiledPolicy) -> None:
    for purpose in shipped.purposes.values():
        assert "closure" not in purpose.phases
