"""Broken policies are refused with every problem, located by file, line and column."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from gateway.core import (
    CategorySpec,
    Effect,
    FieldSpec,
    PolicyError,
    PolicyIssue,
    PolicySet,
    Rule,
    compile_policy,
    load_policy,
    parse_policy,
)

Docs = Callable[[str], dict[str, str]]


def issues_of(documents: dict[str, str]) -> tuple[PolicyIssue, ...]:
    with pytest.raises(PolicyError) as caught:
        load_policy(documents)
    issues = caught.value.issues
    # Every problem says how to mend it.
    assert all(issue.hint.strip() for issue in issues), [str(i) for i in issues]
    return issues


def where(issues: tuple[PolicyIssue, ...], fragment: str) -> tuple[str, int, int]:
    matches = [i for i in issues if fragment in i.message]
    assert len(matches) == 1, (fragment, [str(i) for i in issues])
    return matches[0].file, matches[0].line, matches[0].column


def test_yaml_syntax_error_is_located(mini_docs: Docs) -> None:
    documents = mini_docs("rules:\n  - id: a\n    reason: [unclosed\n")
    issues = issues_of(documents)
    assert len(issues) == 1
    assert issues[0].file == "rules/test.yaml"
    assert issues[0].line == 4
    assert issues[0].message.startswith("invalid YAML:")


def test_unknown_section_and_key_suggest_the_right_name(mini_docs: Docs) -> None:
    issues = issues_of(mini_docs("""\
        rule: []
        rules:
          - id: r1
            reason: Because.
            purposes: [meeting]
            fields: [subject.name]
            efect: disclose
        """))
    assert where(issues, "unknown section 'rule' (did you mean 'rules'?)") == (
        "rules/test.yaml", 1, 1)
    assert where(issues, "unknown key 'efect' in rule (did you mean 'effect'?)") == (
        "rules/test.yaml", 7, 5)
    assert where(issues, "missing required key 'effect'") == ("rules/test.yaml", 3, 5)


def test_unknown_references_point_at_the_list_entry(mini_docs: Docs) -> None:
    issues = issues_of(mini_docs("""\
        rules:
          - id: r1
            reason: Because.
            who:
              partner_types: [polce]
              roles: [wroker]
            purposes: [meeting, meetings]
            phases: [meting]
            fields: [subject.name, subject.nam]
            categories: [helth]
            effect: mask
            transform: redcat
        """))
    assert where(issues, "unknown partner type 'polce' (did you mean 'police'?)") == (
        "rules/test.yaml", 5, 23)
    assert where(issues, "unknown role 'wroker' (did you mean 'worker'?)")[1] == 6
    assert where(issues, "unknown purpose 'meetings' (did you mean 'meeting'?)") == (
        "rules/test.yaml", 7, 25)
    assert where(issues, "unknown phase 'meting'")[1] == 8
    assert where(issues, "unknown field 'subject.nam' (did you mean 'subject.name'?)") == (
        "rules/test.yaml", 9, 28)
    assert where(issues, "unknown category 'helth'")[1] == 10
    assert where(issues, "unknown transform 'redcat' (did you mean 'redact'?)")[1] == 12
    assert len(issues) == 7


def test_catalogue_and_partner_references_are_checked() -> None:
    documents = {"all.yaml": textwrap.dedent("""\
        categories:
          - {id: a, description: A.}
        fields:
          - {id: f1, category: b, source: nobody, description: F.}
        partner_types:
          - {id: t, description: T.}
        roles:
          - {id: r, description: R.}
        partners:
          - {id: p, type: u, display_name: P, roles: [r, s]}
        """)}
    issues = issues_of(documents)
    assert where(issues, "unknown category 'b'") == ("all.yaml", 4, 24)
    assert where(issues, "unknown source 'nobody'")[1] == 4
    assert where(issues, "unknown partner type 'u'")[1] == 10
    assert where(issues, "unknown role 's'") == ("all.yaml", 10, 50)


def test_duplicate_ids_across_files_name_the_first(mini_docs: Docs) -> None:
    documents = mini_docs("""\
        categories:
          - id: health
            description: Again.
        rules:
          - {id: r1, reason: A., purposes: [meeting], fields: [subject.name], effect: disclose}
          - {id: r1, reason: B., purposes: [meeting], fields: [subject.dob], effect: disclose}
        """)
    issues = issues_of(documents)
    assert where(issues, "duplicate id 'health' in categories (first defined at "
                         "catalogue.yaml:") == ("rules/test.yaml", 2, 9)
    assert where(issues, "duplicate id 'r1' in rules")[1] == 6


def test_duplicate_keys_in_a_mapping_are_reported(mini_docs: Docs) -> None:
    issues = issues_of(mini_docs("""\
        rules:
          - id: r1
            reason: A.
            purposes: [meeting]
            fields: [subject.name]
            effect: disclose
            effect: withhold
        """))
    assert where(issues, "duplicate key 'effect' in rule (first at line 6)")[1] == 7


def test_mask_transform_and_override_mistakes(mini_docs: Docs) -> None:
    issues = issues_of(mini_docs("""\
        rules:
          - {id: no-transform, reason: A., purposes: [meeting], fields: [case.notes],
             effect: mask}
          - {id: no-length, reason: A., purposes: [meeting], fields: [case.notes],
             effect: mask, transform: truncate}
          - {id: bad-length, reason: A., purposes: [meeting], fields: [case.notes],
             effect: mask, transform: truncate, params: {length: 0, width: 3}}
          - {id: text-length, reason: A., purposes: [meeting], fields: [case.notes],
             effect: mask, transform: truncate, params: {length: ten}}
          - {id: stray-transform, reason: A., purposes: [meeting], fields: [case.notes],
             effect: disclose, transform: redact}
          - {id: no-reason, reason: A., purposes: [meeting], fields: [case.notes],
             effect: disclose, override: true}
          - {id: wrong-kind, reason: A., purposes: [meeting], fields: [subject.name],
             effect: mask, transform: year_only}
          - {id: nothing, reason: A., purposes: [meeting], effect: disclose}
        """))
    assert where(issues, "effect mask needs a transform")[1] == 3
    assert where(issues, "transform 'truncate' needs parameter 'length'")[1] == 4
    assert where(issues, "'length' of 'truncate' must be at least 1")[1] == 7
    assert where(issues, "transform 'truncate' has no parameter 'width'")[1] == 7
    assert where(issues, "'length' of 'truncate' must be an integer")[1] == 9
    assert where(issues, "a transform is used only with effect mask")[1] == 11
    assert where(issues, "an override needs an override_reason")[1] == 13
    assert where(issues, "transform 'year_only' applies to fields of kind date; field "
                         "'subject.name' is name")[1] == 14
    assert where(issues, "a rule must name fields or categories")[1] == 16


def test_triage_may_only_reach_the_index_category(mini_docs: Docs) -> None:
    issues = issues_of(mini_docs("""\
        rules:
          - id: leaky-triage
            reason: Too much.
            purposes: [triage]
            fields: [triage.role, subject.name]
            categories: [health]
            effect: mask
            transform: presence
          - id: withholding-is-fine
            reason: Nothing leaves.
            purposes: [triage]
            categories: [health]
            effect: withhold
        """))
    assert where(issues, "field 'subject.name' is in category 'identifying'") == (
        "rules/test.yaml", 5, 27)
    assert where(issues, "not category 'health'") == ("rules/test.yaml", 6, 18)
    # Presence of a diagnosis is health data too; triage has no ground for it.
    special = [i for i in issues if "releases special-category (art9)" in i.message]
    assert {(i.line, i.column) for i in special} == {(6, 18)}
    assert len(special) == 3
    assert len(issues) == 5


def test_rules_that_can_never_apply_are_errors(mini_docs: Docs) -> None:
    issues = issues_of(mini_docs("""\
        rules:
          - id: care-in-acute
            reason: Care never asks acute.
            who: {partner_types: [care], roles: [director]}
            purposes: [acute]
            phases: [closure]
            fields: [subject.name]
            effect: disclose
        """))
    assert "may not use any purpose of this rule" in str(issues)
    assert "no partner of the rule's partner types acts in role 'director'" in str(issues)
    assert "phase 'closure' is not a phase of any purpose of this rule" in str(issues)


def test_purpose_checks() -> None:
    documents = {"p.yaml": textwrap.dedent("""\
        partner_types: [{id: t, description: T.}]
        phases: [{id: one, description: One.}]
        legal_bases: [{id: l, title: L.}]
        purposes:
          - id: glass
            description: G.
            legal_bases: [l]
            processing_activity: register entry 7
            phases: [one]
            partner_types: [t]
            break_glass: true
          - id: plain
            description: P.
            legal_bases: [l]
            processing_activity: https://zvh.example/register/pa-plain
            phases: []
            partner_types: [t]
            max_duration_minutes: 30
          - id: broken
            description: B.
            legal_bases: [l]
            processing_activity: https://zvh.example/register/pa-broken
            phases: [one]
            partner_types: [t]
            requires_participation: maybe
        """)}
    issues = issues_of(documents)
    assert where(issues, "processing_activity must be a URI")[1] == 8
    assert where(issues, "must require a written justification")[1] == 11
    assert where(issues, "needs max_duration_minutes")[1] == 11
    assert where(issues, "phases must list at least one phase")[1] == 16
    assert where(issues, "max_duration_minutes applies only to break-glass")[1] == 18
    assert where(issues, "requires_participation must be true or false")[1] == 25
    assert len(issues) == 6


def test_a_broken_element_causes_no_follow_on_errors(mini_docs: Docs) -> None:
    documents = mini_docs("""\
        categories:
          - id: extra
            description: Extra.
            special: art99
        fields:
          - {id: extra.field, category: extra, source: zvh, description: X.}
        rules:
          - {id: r1, reason: A., purposes: [meeting], categories: [extra], effect: disclose}
        """)
    issues = issues_of(documents)
    assert len(issues) == 1
    assert issues[0].line == 4
    assert "special must be one of none, art9, art10, not 'art99'" in issues[0].message


def test_every_problem_is_reported_in_one_error_sorted_by_place(mini_docs: Docs) -> None:
    documents = mini_docs("""\
        rules:
          - {id: r1, reason: A., purposes: [nope], fields: [subject.name], effect: disclose}
        """)
    documents["catalogue.yaml"] += "colour: blue\n"
    with pytest.raises(PolicyError) as caught:
        load_policy(documents)
    error = caught.value
    assert [i.file for i in error.issues] == ["catalogue.yaml", "rules/test.yaml"]
    lines = str(error).splitlines()
    assert lines[0] == "2 policy errors"
    assert lines[1].startswith("catalogue.yaml:34:1: unknown section 'colour'")
    assert lines[2].startswith("    hint: use one of the known sections: categories, ")
    assert lines[3] == "rules/test.yaml:2:37: unknown purpose 'nope'"
    assert lines[4] == ("    hint: use one of the known purposes: triage, meeting, acute; "
                        "or declare 'nope' in the purposes section")


def test_parse_checks_structure_and_compile_checks_meaning(mini_docs: Docs) -> None:
    documents = mini_docs("""\
        rules:
          - {id: r1, reason: A., purposes: [nope], fields: [subject.name], effect: disclose}
        """)
    policy = parse_policy(documents)
    with pytest.raises(PolicyError, match="unknown purpose 'nope'"):
        compile_policy(policy)


def test_compile_checks_a_policy_built_in_code() -> None:
    policy = PolicySet(
        version="sha256:test",
        categories=(CategorySpec("c", "C."),),
        fields=(FieldSpec("f", "c", "zvh", "F."),),
        rules=(Rule("r", "R.", ("missing",), Effect.DISCLOSE, fields=("f", "g")),),
    )
    with pytest.raises(PolicyError) as caught:
        compile_policy(policy)
    messages = [i.message for i in caught.value.issues]
    assert "unknown purpose 'missing'" in messages
    assert "unknown field 'g'" in messages


def test_ids_must_be_plain_tokens_and_texts_not_empty(mini_docs: Docs) -> None:
    issues = issues_of(mini_docs("""\
        rules:
          - id: has space
            reason: ""
            purposes: [meeting]
            fields: [subject.name]
            effect: disclose
        """))
    assert "rule id 'has space' is not a valid id" in where_message(issues, 2)
    assert "rule reason must not be empty" in where_message(issues, 3)


def where_message(issues: tuple[PolicyIssue, ...], line: int) -> str:
    return " | ".join(i.message for i in issues if i.line == line)
