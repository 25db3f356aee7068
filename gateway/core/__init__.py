"""The pure policy core of Ketenpoort.

Parse the covenant's policy files, check them, compile them into lookup tables and decide,
per field, what a partner may see for a purpose in a case phase. No I/O, no clock, no
network: callers hand in file texts and get plain frozen data back.
"""

from gateway.core.compiler import CompiledPolicy, compile_policy, load_policy
from gateway.core.decisions import (
    AccessRequest,
    Decision,
    FieldDecision,
    Refusal,
    RefusalCode,
)
from gateway.core.errors import (
    PolicyError,
    PolicyIssue,
    RequestError,
    Severity,
    UnknownField,
    UnknownPartner,
    UnknownPartnerType,
    UnknownPhase,
    UnknownPurpose,
    UnknownRole,
)
from gateway.core.explain import Cell, Explanation, FieldExplanation, LostRule, RuleRef
from gateway.core.model import (
    CategorySpec,
    Effect,
    FieldKind,
    FieldSpec,
    KeyUse,
    LegalBasisSpec,
    Location,
    PartnerKeys,
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
from gateway.core.parser import parse_policy
from gateway.core.policytests import (
    FieldExpectation,
    PolicyTestCase,
    PolicyTestResult,
    parse_policy_tests,
    run_policy_tests,
)
from gateway.core.transforms import apply_transform

__all__ = [
    "AccessRequest",
    "CategorySpec",
    "Cell",
    "CompiledPolicy",
    "Decision",
    "Effect",
    "Explanation",
    "FieldDecision",
    "FieldExpectation",
    "FieldExplanation",
    "FieldKind",
    "FieldSpec",
    "KeyUse",
    "LegalBasisSpec",
    "Location",
    "LostRule",
    "PartnerKeys",
    "PartnerSpec",
    "PartnerTypeSpec",
    "PhaseSpec",
    "PolicyError",
    "PolicyIssue",
    "PolicySet",
    "PolicyTestCase",
    "PolicyTestResult",
    "Purpose",
    "Refusal",
    "RefusalCode",
    "RequestError",
    "RoleSpec",
    "Rule",
    "RuleRef",
    "Severity",
    "Special",
    "UnknownField",
    "UnknownPartner",
    "UnknownPartnerType",
    "UnknownPhase",
    "UnknownPurpose",
    "UnknownRole",
    "Who",
    "apply_transform",
    "compile_policy",
    "load_policy",
    "parse_policy",
    "parse_policy_tests",
    "run_policy_tests",
]
