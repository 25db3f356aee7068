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
    UnknownField,
    UnknownPartner,
    UnknownPhase,
    UnknownPurpose,
    UnknownRole,
)
from gateway.core.model import (
    CategorySpec,
    Effect,
    FieldKind,
    FieldSpec,
    Location,
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
    "CompiledPolicy",
    "Decision",
    "Effect",
    "FieldDecision",
    "FieldExpectation",
    "FieldKind",
    "FieldSpec",
    "Location",
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
    "Special",
    "UnknownField",
    "UnknownPartner",
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
