"""Approaches and person roles: dimensions of a decision, with their refusals and checks."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from gateway.core import (
    About,
    AccessRequest,
    CompiledPolicy,
    Effect,
    PolicyError,
    PolicyIssue,
    RefusalCode,
    UnknownApproach,
    UnknownPartnerType,
    UnknownPersonRole,
    load_policy,
)
from gateway.core.model import DEFAULT_PERSON_ROLES

Docs = Callable[[str], dict[str, str]]

RULES = """\
    rules:
      - {id: identity, reason: Identify., purposes: [meeting, acute],
         categories: [identifying], effect: disclose}
      - {id: triage-hit, reason: Hit., purposes: [triage], fields: [triage.role],
         effect: mask, transform: presence}
      - {id: notes, reason: Notes., purposes: [meeting], fields: [case.notes],
         effect: disclose}
      - {id: care-own, reason: Own care data., who: {partner_types: [care]},
         purposes: [meeting], fields: [care.diagnosis], effect: disclose}
    """

APPROACHES = """\
    person_roles:
      - {id: subject, description: The subject.}
      - {id: victim, description: A victim.}
      - {id: child, description: A child.}
    approaches:
      - {id: general, description: Every case., default: true}
      - id: acute_only
        description: Acute cases, police and ZVH only.
        partner_types: [police]
        purposes: [acute, meeting]
        categories: [identifying, notes]
        extra_legal_bases:
          - {purposes: [meeting], partner_types: [police], legal_bases: [avg-9-2-c]}
    """


def _docs(mini_docs: Docs, rules: str = RULES, approaches: str = APPROACHES
          ) -> dict[str, str]:
    docs = mini_docs(rules)
    if approaches:
        docs["approaches.yaml"] = textwrap.dedent(approaches)
    return docs


def _request(partner: str = "police-1", role: str = "worker", purpose: str = "meeting",
             phase: str = "meeting", **kwargs: str) -> AccessRequest:
    return AccessRequest(partner, role, purpose, phase, True, (), "why", **kwargs)


def _errors(documents: dict[str, str]) -> tuple[PolicyIssue, ...]:
    with pytest.raises(PolicyError) as caught:
        load_policy(documents)
    return caught.value.issues


def _only(issues: tuple[PolicyIssue, ...], fragment: str) -> PolicyIssue:
    found = [i for i in issues if fragment in i.message]
    assert len(found) == 1, (fragment, [str(i) for i in issues])
    return found[0]


@pytest.fixture
def policy(mini_docs: Docs) -> CompiledPolicy:
    return load_policy(_docs(mini_docs))


def _fields(policy: CompiledPolicy, request: AccessRequest) -> dict[str, Effect]:
    return {d.field: d.effect for d in policy.decide(request).fields}


# ---- defaults ------------------------------------------------------------------------------

def test_a_policy_without_the_sections_has_one_general_approach_and_the_usual_roles(
        mini_docs: Docs) -> None:
    policy = load_policy(_docs(mini_docs, approaches=""))
    assert policy.default_approach == "general"
    assert list(policy.approaches) == ["general"]
    general = policy.approaches["general"]
    assert general.default and not general.bsn_required
    assert general.partner_types == ("care", "police", "zvh")
    assert general.purposes == ("triage", "meeting", "acute")
    assert general.fields == tuple(f.id for f in policy.fields)
    assert policy.person_roles == DEFAULT_PERSON_ROLES
    plain = policy.decide(_request())
    assert plain.permitted
    assert policy.decide(_request(approach="general", person_role="victim")).fields == (
        plain.fields)


def test_fields_are_about_a_person_unless_they_say_case(mini_docs: Docs) -> None:
    docs = _docs(mini_docs)
    docs["catalogue.yaml"] = docs["catalogue.yaml"].replace(
        "  - id: case.notes\n    category: notes\n",
        "  - id: case.notes\n    category: notes\n    about: case\n")
    policy = load_policy(docs)
    assert policy.field("case.notes").about is About.CASE
    assert policy.field("subject.name").about is About.PERSON


def test_identifiers_default_to_bsn_name_and_date_of_birth(mini_docs: Docs) -> None:
    docs = _docs(mini_docs)
    docs["parties.yaml"] = docs["parties.yaml"].replace(
        "- {id: care, description: Care.}",
        "- {id: care, description: Care., identifiers: [name, address, postcode]}")
    policy = load_policy(docs)
    assert policy.identifiers_for("care") == frozenset({"name", "address", "postcode"})
    assert policy.identifiers_for("police") == frozenset({"bsn", "name", "date_of_birth"})
    with pytest.raises(UnknownPartnerType):
        policy.identifiers_for("fire")


# ---- refusals and requests -----------------------------------------------------------------

def test_a_partner_type_off_the_approach_table_is_refused(policy: CompiledPolicy) -> None:
    decision = policy.decide(_request("care-1", approach="acute_only"))
    assert decision.refusal is not None
    assert decision.refusal.code is RefusalCode.NOT_ON_APPROACH_TABLE
    assert all(d.effect is Effect.WITHHOLD for d in decision.fields)


def test_a_purpose_the_approach_does_not_use_is_refused(policy: CompiledPolicy) -> None:
    decision = policy.decide(_request(purpose="triage", phase="intake", approach="acute_only"))
    assert decision.refusal is not None
    assert decision.refusal.code is RefusalCode.PURPOSE_NOT_IN_APPROACH


def test_the_zvh_is_on_every_table(policy: CompiledPolicy) -> None:
    acute = policy.approaches["acute_only"]
    assert acute.partner_types == ("police", "zvh")
    assert acute.on_table("zvh") and acute.on_table("police") and not acute.on_table("care")
    assert acute.uses("meeting") and not acute.uses("triage")
    decision = policy.decide(_request("zvh", "director", approach="acute_only"))
    assert decision.permitted


def test_fields_outside_the_approach_are_withheld_with_the_reason(
        policy: CompiledPolicy) -> None:
    # The police get care.diagnosis from no rule anyway; the approach withholds triage.role
    # and care.diagnosis whatever the rules say, and says so.
    decided = {d.field: d for d in policy.decide(_request(approach="acute_only")).fields}
    assert decided["subject.name"].effect is Effect.DISCLOSE
    assert decided["triage.role"].effect is Effect.WITHHOLD
    assert decided["triage.role"].reason == "field does not apply under approach 'acute_only'"
    assert decided["triage.role"].rule_id is None
    assert policy.approaches["acute_only"].fields == ("subject.name", "subject.dob",
                                                      "case.notes")


def test_the_logged_legal_basis_adds_the_approach_grounds(policy: CompiledPolicy) -> None:
    assert policy.decide(_request()).legal_basis == "wgs, avg-6-1-e"
    assert policy.decide(_request(approach="acute_only")).legal_basis == (
        "wgs, avg-6-1-e, avg-9-2-c")
    # Only for the partner types the extra ground names.
    assert policy.decide(_request("zvh", "director", approach="acute_only")).legal_basis == (
        "wgs, avg-6-1-e")


def test_an_empty_approach_is_the_default_one(policy: CompiledPolicy) -> None:
    assert policy.default_approach == "general"
    assert policy.decide(_request()).fields == policy.decide(_request(approach="general")).fields


def test_unknown_approach_and_person_role_are_request_errors(policy: CompiledPolicy) -> None:
    with pytest.raises(UnknownApproach, match="unknown approach 'nope'"):
        policy.decide(_request(approach="nope"))
    with pytest.raises(UnknownPersonRole, match="unknown person role 'uncle'"):
        policy.decide(_request(person_role="uncle"))
    with pytest.raises(ValueError):
        policy.explain("police", "worker", "meeting", "meeting", approach="nope")


# ---- selectors ----------------------------------------------------------------------------

def test_a_persons_rule_applies_to_its_roles_only_never_at_case_level(
        mini_docs: Docs) -> None:
    policy = load_policy(_docs(mini_docs, RULES.rstrip(" ") + """\
      - {id: child-name-withheld, reason: Protect children., persons: [child],
         purposes: [meeting], fields: [subject.name], effect: withhold}
    """))
    assert _fields(policy, _request(person_role="child"))["subject.name"] is Effect.WITHHOLD
    assert _fields(policy, _request(person_role="victim"))["subject.name"] is Effect.DISCLOSE
    assert _fields(policy, _request())["subject.name"] is Effect.DISCLOSE


def test_a_persons_rule_that_opens_does_not_open_at_case_level(mini_docs: Docs) -> None:
    policy = load_policy(_docs(mini_docs, RULES.rstrip(" ") + """\
      - {id: victim-diagnosis, reason: Care for the victim., persons: [victim],
         who: {partner_types: [care]}, purposes: [meeting], fields: [care.diagnosis],
         effect: mask, transform: presence}
    """))
    care = _request("care-1")
    assert _fields(policy, care)["care.diagnosis"] is Effect.DISCLOSE
    decided = {d.field: d for d in policy.decide(
        _request("care-1", person_role="victim")).fields}
    # Mask is stricter than the general disclose: the persons rule decides for victims only.
    assert decided["care.diagnosis"].effect is Effect.MASK
    assert decided["care.diagnosis"].rule_id == "victim-diagnosis"


def test_an_approaches_rule_applies_in_its_approaches_only(mini_docs: Docs) -> None:
    policy = load_policy(_docs(mini_docs, RULES.rstrip(" ") + """\
      - {id: acute-notes-withheld, reason: Not in acute cases., approaches: [acute_only],
         who: {partner_types: [police]}, purposes: [meeting], fields: [case.notes],
         effect: withhold}
    """))
    assert _fields(policy, _request())["case.notes"] is Effect.DISCLOSE
    assert _fields(policy, _request(approach="acute_only"))["case.notes"] is Effect.WITHHOLD


def test_cells_cover_every_approach_and_person_role_and_share_groups(
        policy: CompiledPolicy) -> None:
    everything = list(policy.cells(approach=None, person_role=None))
    keys = {c.key for c in everything}
    assert len(keys) == len(everything)
    assert {c.approach for c in everything} == {"general", "acute_only"}
    assert {c.person_role for c in everything} == {"", "subject", "victim", "child"}
    assert all(c.approach == "general" and c.person_role == "" for c in policy.cells())
    # No rule names persons here: every person role shares its case-level group.
    analysis = policy._analysis
    assert len(analysis.groups) < len(everything) / 4


def test_outcome_and_explain_take_the_approach_and_person_role(
        policy: CompiledPolicy) -> None:
    decided = policy.outcome("police", "worker", "meeting", "meeting", "triage.role",
                             approach="acute_only", person_role="victim")
    assert decided is not None and decided.effect is Effect.WITHHOLD
    assert policy.outcome("care", "worker", "meeting", "meeting", "subject.name",
                          approach="acute_only") is None
    explained = policy.explain("police", "worker", "meeting", "meeting", "triage.role",
                               approach="acute_only")
    assert explained.approach == "acute_only" and explained.fields[0].outside_approach
    refused = policy.explain("care", "worker", "meeting", "meeting", approach="acute_only")
    assert refused.refusal is not None
    assert refused.refusal.code is RefusalCode.NOT_ON_APPROACH_TABLE


# ---- checks --------------------------------------------------------------------------------

def test_unknown_ids_in_an_approach_are_errors_with_their_place(mini_docs: Docs) -> None:
    issues = _errors(_docs(mini_docs, approaches="""\
        approaches:
          - id: general
            description: Every case.
            default: true
            partner_types: [police, fire]
            purposes: [meeting, picnic]
            fields: [subject.shoe_size]
            categories: [gossip]
            extra_legal_bases:
              - {purposes: [triage], legal_bases: [magna-carta]}
        """))
    assert (_only(issues, "unknown partner type 'fire'").line,
            _only(issues, "unknown partner type 'fire'").column) == (5, 29)
    assert _only(issues, "unknown purpose 'picnic'").file == "approaches.yaml"
    assert _only(issues, "unknown purpose 'picnic'").line == 6
    assert _only(issues, "unknown field 'subject.shoe_size'").line == 7
    assert _only(issues, "unknown category 'gossip'").line == 8
    assert _only(issues, "unknown legal basis 'magna-carta'").line == 10
    assert _only(issues, "does not use purpose 'triage'").line == 10


def test_exactly_one_approach_is_the_default(mini_docs: Docs) -> None:
    none = _errors(_docs(mini_docs, approaches="""\
        approaches:
          - {id: general, description: Every case.}
        """))
    assert _only(none, "must mark one approach as the default").line == 2
    two = _errors(_docs(mini_docs, approaches="""\
        approaches:
          - {id: general, description: Every case., default: true}
          - {id: other, description: Another., default: true}
        """))
    issue = _only(two, "approach 'other' is a second default approach")
    assert (issue.file, issue.line) == ("approaches.yaml", 3)


def test_unknown_approaches_and_person_roles_in_rules_are_errors(mini_docs: Docs) -> None:
    issues = _errors(_docs(mini_docs, RULES.rstrip(" ") + """\
      - id: odd
        reason: Odd.
        approaches: [code_blauw]
        persons: [uncle]
        purposes: [meeting]
        fields: [case.notes]
        effect: withhold
    """))
    approach = _only(issues, "unknown approach 'code_blauw'")
    assert (approach.file, approach.line, approach.column) == ("rules/test.yaml", 12, 18)
    person = _only(issues, "unknown person role 'uncle'")
    assert (person.line, person.column) == (13, 15)
    assert "approaches" in approach.hint


def test_a_bad_identifier_is_an_error(mini_docs: Docs) -> None:
    docs = _docs(mini_docs)
    docs["parties.yaml"] = docs["parties.yaml"].replace(
        "- {id: care, description: Care.}",
        "- {id: care, description: Care., identifiers: [shoe_size]}")
    issue = _only(_errors(docs), "'shoe_size'")
    assert issue.file == "parties.yaml" and issue.line == 2


def test_an_approach_ground_can_open_special_data_in_that_approach_only(
        mini_docs: Docs) -> None:
    # avg-9-2-c (art9) is an extra ground of acute_only for the police under meeting.
    opening = """\
      - {id: police-diagnosis, reason: Acute., approaches: [acute_only],
         who: {partner_types: [police]}, purposes: [meeting], fields: [care.diagnosis],
         effect: disclose}
    """
    docs = _docs(mini_docs, RULES.rstrip(" ") + opening)
    docs["approaches.yaml"] = docs["approaches.yaml"].replace(
        "categories: [identifying, notes]", "categories: [identifying, notes, health]")
    policy = load_policy(docs)
    assert _fields(policy, _request(approach="acute_only"))["care.diagnosis"] is (
        Effect.DISCLOSE)
    assert _fields(policy, _request())["care.diagnosis"] is Effect.WITHHOLD
    unscoped = opening.replace("approaches: [acute_only],", "")
    everywhere = _docs(mini_docs, RULES.rstrip(" ") + unscoped)
    issue = _only(_errors(everywhere), "releases special-category (art9)")
    assert "partner type 'police' under purpose 'meeting'" in issue.message
