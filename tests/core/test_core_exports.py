"""The public surface of gateway.core is what we mean it to be."""

from __future__ import annotations

import gateway.core

EXPECTED = {
    # decisions and requests
    "AccessRequest", "Decision", "FieldDecision", "Refusal", "RefusalCode", "Effect",
    # errors
    "PolicyError", "PolicyIssue", "Severity", "RequestError", "UnknownField", "UnknownPartner",
    "UnknownPartnerType", "UnknownPhase", "UnknownPurpose", "UnknownRole", "UnknownApproach",
    "UnknownPersonRole",
    # policy model
    "About", "ApproachGround", "ApproachSpec", "PersonRoleSpec",
    "CategorySpec", "FieldKind", "FieldSpec", "KeyUse", "LegalBasisSpec", "Location",
    "PartnerKeys", "PartnerSpec", "PartnerTypeSpec", "PhaseSpec", "PolicySet", "Purpose",
    "RoleSpec", "Rule", "Special", "Who",
    # loading and deciding
    "CompiledPolicy", "compile_policy", "load_policy", "parse_policy", "apply_transform",
    # explaining
    "Cell", "Explanation", "FieldExplanation", "LostRule", "RuleRef",
    # policy tests
    "FieldExpectation", "PolicyTestCase", "PolicyTestResult", "parse_policy_tests",
    "run_policy_tests",
}


def test_exported_names() -> None:
    assert set(gateway.core.__all__) == EXPECTED
    assert len(gateway.core.__all__) == len(EXPECTED)
    for name in EXPECTED:
        assert getattr(gateway.core, name).__module__.startswith("gateway.core.")
