"""The checks that compare rules cell by cell: shadowed rules, contradictions, rules that
apply nowhere, special-category releases without a ground, and unmentioned fields."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.core import (
    PolicyError,
    PolicyIssue,
    Severity,
    compile_policy,
    load_policy,
    parse_policy,
)

Docs = Callable[[str], dict[str, str]]


def errors(documents: dict[str, str]) -> tuple[PolicyIssue, ...]:
    with pytest.raises(PolicyError) as caught:
        load_policy(documents)
    issues = caught.value.issues
    assert all(i.hint.strip() and i.severity is Severity.ERROR for i in issues)
    return issues


def only(issues: tuple[PolicyIssue, ...], fragment: str) -> PolicyIssue:
    found = [i for i in issues if fragment in i.message]
    assert len(found) == 1, (fragment, [str(i) for i in issues])
    return found[0]


# Every field of the small policy is named here, so no warning muddles the tests below.
BASE = """\
      - {id: base-identity, reason: Base., purposes: [meeting], categories: [identifying],
         effect: disclose}
      - {id: base-triage, reason: Base., purposes: [triage], fields: [triage.role],
         effect: mask, transform: presence}
      - {id: base-closed, reason: Base., purposes: [meeting], categories: [health, notes],
         effect: withhold}
"""


def rules(text: str) -> str:
    return "rules:\n" + BASE + text


# ---- shadowed rules ----------------------------------------------------------------------

def test_a_rule_that_never_wins_is_shadowed_and_names_the_winner(mini_docs: Docs) -> None:
    issues = errors(mini_docs(rules("""\
      - {id: care-notes, reason: Care reads notes., who: {partner_types: [care]},
         purposes: [meeting], fields: [case.notes], effect: disclose}
    """)))
    issue = only(issues, "rule 'care-notes' never decides a field")
    assert (issue.file, issue.line, issue.column) == ("rules/test.yaml", 8, 9)
    assert "rule 'base-closed' (rules/test.yaml:6) decides instead" in issue.message
    assert "override: true" in issue.hint
    assert len(issues) == 1


def test_a_shadowed_rule_names_every_rule_that_decides_instead(mini_docs: Docs) -> None:
    issues = errors(mini_docs(rules("""\
      - {id: dob-year, reason: Year., purposes: [meeting], fields: [subject.dob],
         effect: mask, transform: year_only, who: {roles: [worker]}}
      - {id: dob-redact, reason: Hidden., purposes: [meeting], fields: [subject.dob],
         effect: mask, transform: redact, who: {roles: [director]}}
      - {id: dob-open, reason: Open., purposes: [meeting], fields: [subject.dob],
         who: {partner_types: [care, police, zvh], roles: [worker, director]},
         effect: disclose}
    """)))
    issue = only(issues, "rule 'dob-open' never decides a field")
    assert "rules 'dob-year' (rules/test.yaml:8) and 'dob-redact' (rules/test.yaml:10) " \
           "decide instead" in issue.message


def test_an_equal_rule_later_in_the_policy_is_shadowed(mini_docs: Docs) -> None:
    issues = errors(mini_docs(rules("""\
      - {id: names-again, reason: Again., who: {roles: [worker]}, purposes: [meeting],
         fields: [subject.name], effect: disclose}
    """)))
    assert "base-identity" in only(issues, "rule 'names-again' never decides").message


def test_an_override_is_not_shadowed_by_stricter_rules(mini_docs: Docs) -> None:
    policy = load_policy(mini_docs(rules("""\
      - {id: care-notes, reason: Care reads notes., who: {partner_types: [care]},
         purposes: [meeting], fields: [case.notes], effect: disclose, override: true,
         override_reason: The care team wrote them.}
    """)))
    assert policy.outcome("care", "worker", "meeting", "meeting", "case.notes") is not None


# ---- contradictions ----------------------------------------------------------------------

def test_equally_specific_rules_with_different_outcomes_contradict(mini_docs: Docs) -> None:
    issues = errors(mini_docs(rules("""\
      - {id: notes-short, reason: Short., who: {roles: [director]}, purposes: [meeting],
         fields: [case.notes], effect: mask, transform: truncate, params: {length: 5},
         override: true, override_reason: Directors need the gist.}
      - {id: notes-longer, reason: Longer., who: {roles: [director]}, purposes: [meeting],
         fields: [case.notes], effect: mask, transform: truncate, params: {length: 50},
         override: true, override_reason: Directors need more.}
    """)))
    issue = only(issues, "contradicts")
    assert (issue.line, issue.column) == (11, 9)
    assert issue.message.startswith(
        "rule 'notes-longer' contradicts rule 'notes-short' (rules/test.yaml:8) on field "
        "'case.notes' for partner type 'police', role 'director', purpose 'meeting', phase "
        "'meeting': both are equally specific, 'notes-short' gives mask:truncate (length=5) "
        "and this rule gives mask:truncate (length=50)")
    # The loser of a contradiction is not reported a second time as shadowed.
    assert len(issues) == 1


def test_a_contradiction_is_reported_once_however_many_cells_share_it(
        mini_docs: Docs) -> None:
    issues = errors(mini_docs(rules("""\
      - {id: dob-year, reason: Year., purposes: [meeting, acute], fields: [subject.dob],
         effect: mask, transform: year_only}
      - {id: dob-redact, reason: No., purposes: [meeting, acute], fields: [subject.dob],
         effect: mask, transform: redact}
    """)))
    assert [i.message.split(":")[0] for i in issues] == [
        "rule 'dob-redact' contradicts rule 'dob-year' (rules/test.yaml"]


@pytest.mark.parametrize("second", [
    # More specific: names the field rather than reaching it through the category.
    "{id: second, reason: B., purposes: [meeting], fields: [case.notes], effect: mask, "
    "transform: redact, who: {roles: [worker]}}",
    # An override against a plain rule is a deliberate exception, not a contradiction.
    "{id: second, reason: B., purposes: [meeting], categories: [notes], effect: mask, "
    "transform: presence, who: {roles: [worker]}, override: true, override_reason: R.}",
])
def test_rules_that_differ_in_specificity_or_override_do_not_contradict(
        mini_docs: Docs, second: str) -> None:
    documents = mini_docs(rules(f"""\
      - {{id: first, reason: A., purposes: [meeting], categories: [notes],
         who: {{roles: [worker]}}, effect: mask, transform: truncate, params: {{length: 9}}}}
      - {second}
    """))
    try:
        load_policy(documents)
    except PolicyError as exc:
        # 'first' may be shadowed, but nothing is called a contradiction.
        assert not [i for i in exc.issues if "contradicts" in i.message]


# ---- rules that apply nowhere -----------------------------------------------------------

def test_a_rule_whose_scopes_never_meet_applies_in_no_cell(mini_docs: Docs) -> None:
    issues = errors(mini_docs(rules("""\
      - {id: nowhere, reason: Never., who: {partner_types: [care]}, purposes: [meeting, acute],
         phases: [intake], fields: [subject.name], effect: disclose}
    """)))
    issue = only(issues, "rule 'nowhere' applies in no (partner type, role, purpose, phase)")
    assert (issue.line, issue.column) == (8, 9)
    assert len(issues) == 1


def test_a_rule_over_an_empty_category_reaches_no_field(mini_docs: Docs) -> None:
    documents = mini_docs(rules("""\
      - {id: empty, reason: Nothing., purposes: [meeting], categories: [spare],
         effect: disclose}
    """))
    documents["spare.yaml"] = "categories:\n  - {id: spare, description: No fields yet.}\n"
    assert "categories hold no fields" in only(errors(documents), "rule 'empty'").message


# ---- special categories -----------------------------------------------------------------

def test_health_data_needs_an_art9_ground_for_each_recipient_type(mini_docs: Docs) -> None:
    issues = errors(mini_docs(rules("""\
      - id: dx-presence
        reason: Partners learn that a diagnosis exists.
        purposes: [meeting]
        categories: [notes, health]
        effect: mask
        transform: presence
        override: true
        override_reason: Coordination.
    """)))
    found = [i for i in issues if "releases special-category (art9)" in i.message]
    # care has avg-9-2-h under meeting; police and the zvh have no art9 ground.
    assert [(i.line, i.column) for i in found] == [(11, 29), (11, 29)]
    assert [i.message for i in found] == [
        f"rule 'dx-presence' releases special-category (art9) field 'care.diagnosis' of "
        f"category 'health' (mask: presence) to partner type {t!r} under purpose 'meeting', "
        f"but none of its grounds (wgs, avg-6-1-e) permits art9" for t in ("police", "zvh")]
    assert "legal_bases_by_partner_type.police" in found[0].hint
    assert "grounds that permit art9: avg-9-2-h, avg-9-2-c" in found[0].hint
    assert len(issues) == 2


@pytest.mark.parametrize(("who", "effect"), [
    ("{partner_types: [care]}", "disclose"),        # care has an art9 ground
    ("{partner_types: [police]}", "mask, transform: redact, override: true, "
     "override_reason: Only that the field exists in the record."),
])
def test_health_data_may_go_where_a_ground_permits_or_redacted(mini_docs: Docs, who: str,
                                                               effect: str) -> None:
    load_policy(mini_docs(rules(f"""\
      - {{id: dx, reason: Dx., who: {who}, purposes: [meeting], fields: [care.diagnosis],
         effect: {effect}}}
    """.replace("effect: disclose}", "effect: disclose, override: true, "
                "override_reason: Own data.}"))))


def test_a_field_can_be_special_on_its_own(mini_docs: Docs) -> None:
    documents = mini_docs(rules("""\
      - {id: notes-for-police, reason: Notes., who: {partner_types: [police]},
         purposes: [meeting, acute], fields: [case.notes], effect: disclose, override: true,
         override_reason: The police need the notes.}
    """))
    documents["catalogue.yaml"] = documents["catalogue.yaml"].replace(
        "    category: notes\n", "    category: notes\n    special: art10\n")
    issue = only(errors(documents), "releases criminal (art10) field 'case.notes'")
    # Under acute the police have avg-9-2-c, which permits art10; under meeting they have not.
    assert "under purpose 'meeting'" in issue.message
    assert (issue.line, issue.column) == (9, 47)


def test_a_field_can_leave_its_categorys_special_regime(mini_docs: Docs) -> None:
    documents = mini_docs(rules("""\
      - {id: dx-for-police, reason: Dx., who: {partner_types: [police]}, purposes: [meeting],
         fields: [care.diagnosis], effect: disclose, override: true, override_reason: R.}
    """))
    documents["catalogue.yaml"] = documents["catalogue.yaml"].replace(
        "    category: health\n", "    category: health\n    special: none\n")
    policy = load_policy(documents)
    decided = policy.outcome("police", "worker", "meeting", "meeting", "care.diagnosis")
    assert decided is not None and decided.special == "none"


# ---- warnings ----------------------------------------------------------------------------

def test_a_field_no_rule_mentions_is_a_warning_not_an_error(mini_docs: Docs) -> None:
    policy = load_policy(mini_docs("""\
        rules:
          - {id: names, reason: Names., purposes: [meeting], categories: [identifying],
             effect: disclose}
        """))
    assert [(w.severity, w.file, w.line, w.message) for w in policy.warnings] == [
        (Severity.WARNING, "catalogue.yaml", 22, "no rule mentions field 'triage.role', so "
         "it is always withheld"),
        (Severity.WARNING, "catalogue.yaml", 26, "no rule mentions field 'care.diagnosis', so "
         "it is always withheld"),
        (Severity.WARNING, "catalogue.yaml", 30, "no rule mentions field 'case.notes', so it "
         "is always withheld"),
    ]
    assert all("even one that withholds it" in w.hint for w in policy.warnings)
    assert compile_policy(parse_policy(mini_docs(BASE.join(["rules:\n", ""])))).warnings == ()


def test_a_policy_error_carries_errors_only() -> None:
    warning = PolicyIssue("a.yaml", 1, 1, "a warning", "h", Severity.WARNING)
    error = PolicyIssue("a.yaml", 2, 1, "an error", "mend it")
    raised = PolicyError([warning, error])
    assert raised.issues == (error,)
    assert str(raised) == "1 policy error\na.yaml:2:1: an error\n    hint: mend it"
    assert str(warning) == "a.yaml:1:1: a warning"
    assert PolicyIssue("f", 1, 2, "m").hint == "" and PolicyIssue("f", 1, 2, "m").is_error
