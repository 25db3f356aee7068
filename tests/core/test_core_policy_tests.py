"""Policy test files: parsing, failures that explain themselves, and errors with places."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from gateway.core import (
    CompiledPolicy,
    Effect,
    PolicyError,
    RefusalCode,
    parse_policy_tests,
    run_policy_tests,
)

RULES = """\
    rules:
      - {id: names, reason: Names., purposes: [meeting], fields: [subject.name],
         effect: mask, transform: initials}
      - {id: dob, reason: Dates., purposes: [meeting], fields: [subject.dob], effect: disclose}
    """


@pytest.fixture
def policy(make_policy: Callable[[str], CompiledPolicy]) -> CompiledPolicy:
    return make_policy(RULES)


def cases(text: str) -> dict[str, str]:
    return {"tests/example.yaml": textwrap.dedent(text)}


def test_parsed_cases_hold_request_and_expectations() -> None:
    (case,) = parse_policy_tests(cases("""\
        tests:
          - name: names are initials
            request: {partner: care-1, role: worker, purpose: meeting, phase: meeting,
                      participant: true, fields: [subject.name]}
            expect:
              fields: {subject.name: "mask:initials", subject.dob: mask}
        """))
    assert case.name == "names are initials"
    assert case.request.fields == ("subject.name",)
    assert case.request.justification == ""
    assert case.refused is None
    assert [(e.field, e.effect, e.transform) for e in case.fields] == [
        ("subject.name", Effect.MASK, "initials"), ("subject.dob", Effect.MASK, None)]
    assert (case.loc.file, case.loc.line) == ("tests/example.yaml", 2)


def test_passing_and_failing_cases(policy: CompiledPolicy) -> None:
    parsed = parse_policy_tests(cases("""\
        tests:
          - name: passes
            request: {partner: care-1, role: worker, purpose: meeting, phase: meeting,
                      participant: true}
            expect:
              fields: {subject.name: mask, subject.dob: disclose, case.notes: withhold}
          - name: wrong expectations
            request: {partner: care-1, role: worker, purpose: meeting, phase: meeting,
                      participant: true}
            expect:
              fields: {subject.name: "mask:redact", subject.dob: withhold, nothing.here: withhold}
          - name: expected a refusal
            request: {partner: care-1, role: worker, purpose: meeting, phase: meeting,
                      participant: true}
            expect: {refused: not_participant}
          - name: unexpected refusal
            request: {partner: care-1, role: worker, purpose: meeting, phase: meeting,
                      participant: false}
            expect:
              fields: {subject.dob: disclose}
          - name: unknown partner
            request: {partner: ghost, role: worker, purpose: meeting, phase: meeting,
                      participant: true}
            expect: {refused: role_not_allowed}
        """))
    results = {r.case.name: r for r in run_policy_tests(policy, parsed)}
    assert results["passes"].passed
    assert results["wrong expectations"].failures == (
        "field 'subject.name': expected mask:redact, got mask:initials (rule names)",
        "field 'subject.dob': expected withhold, got disclose (rule dob)",
        "field 'nothing.here' is not in the decision: unknown to the policy, or not among "
        "the requested fields",
    )
    assert results["expected a refusal"].failures == (
        "expected refusal not_participant, got a permitted request",)
    assert results["unexpected refusal"].failures == (
        "expected field outcomes, but the request was refused: not_participant",)
    assert results["unknown partner"].failures == ("unknown partner 'ghost'",)
    assert str(results["expected a refusal"]).startswith(
        "tests/example.yaml:12:5: FAIL expected a refusal")


def test_nothing_permitted_can_be_expected_either_way(policy: CompiledPolicy) -> None:
    parsed = parse_policy_tests(cases("""\
        tests:
          - name: as a refusal
            request: {partner: care-1, role: worker, purpose: meeting, phase: meeting,
                      participant: true, fields: [case.notes]}
            expect: {refused: nothing_permitted}
          - name: as withheld fields
            request: {partner: care-1, role: worker, purpose: meeting, phase: meeting,
                      participant: true, fields: [case.notes]}
            expect:
              fields: {case.notes: withhold}
        """))
    assert all(r.passed for r in run_policy_tests(policy, parsed))
    assert parsed[0].refused is RefusalCode.NOTHING_PERMITTED


def test_broken_test_files_report_every_problem_with_its_place() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy_tests(cases("""\
            tests:
              - name: twice
                request: {partner: p, role: r, purpose: u, phase: h, participant: true}
                expect: {refused: not_allowed}
              - name: twice
                request: {partner: p, role: r, purpose: u, phase: h, participant: yes please}
                expect: {fields: {a: reveal, b: "mask:blur", c: "withhold:redact"}}
              - name: both
                request: {partner: p, role: r, purpose: u, phase: h, participant: true}
                expect: {refused: not_participant, fields: {a: disclose}}
              - name: twice
                request: {partner: p, role: r, purpose: u, phase: h, particpant: true}
                expect: {refused: not_participant}
            test: []
            """))
    messages = [str(issue) for issue in caught.value.issues]
    assert any(m.startswith("tests/example.yaml:4:23: expected refusal must be one of")
               and m.endswith("(did you mean 'role_not_allowed'?)") for m in messages)
    assert any(m.startswith("tests/example.yaml:6:") and "participant must be true or false"
               in m for m in messages)
    assert any(m.startswith("tests/example.yaml:7:") and "'reveal' must be" in m
               for m in messages)
    assert any("unknown transform 'blur'" in m for m in messages)
    assert any("'withhold:redact' must be" in m for m in messages)
    assert any(m.startswith("tests/example.yaml:10:") and "exactly one of" in m
               for m in messages)
    assert any("unknown key 'particpant' in request (did you mean 'participant'?)" in m
               for m in messages)
    assert any(m.startswith("tests/example.yaml:14:1: unknown key 'test'") for m in messages)


def test_duplicate_test_names_in_a_file_are_errors() -> None:
    with pytest.raises(PolicyError, match="example.yaml:5:5: duplicate test name 'same'"):
        parse_policy_tests(cases("""\
            tests:
              - name: same
                request: {partner: p, role: r, purpose: u, phase: h, participant: true}
                expect: {refused: not_participant}
              - name: same
                request: {partner: p, role: r, purpose: u, phase: h, participant: true}
                expect: {refused: not_participant}
            """))
