"""`ketenpoort policy check` and `ketenpoort policy test`: reports for the privacy officer.

Every problem is printed as ``file:line:column: message`` (the form editors jump to), with
the file named relative to the working directory, followed by an indented ``hint:`` line
saying how to mend it. Problems go to standard error, the summary of a policy that loads to
standard output.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from gateway.cli.policy_output import (
    EXIT_FAILED,
    EXIT_OK,
    load_or_report,
    outcome_text,
    plural,
    print_issues,
    rule_place,
    wrapped,
)
from gateway.core import (
    CompiledPolicy,
    FieldDecision,
    FieldExpectation,
    PolicyError,
    PolicyTestCase,
    PolicyTestResult,
    RefusalCode,
    RequestError,
    parse_policy_tests,
    run_policy_tests,
)
from gateway.policyfiles import read_documents


def run_check(directory: Path) -> int:
    loaded = load_or_report(directory, "check")
    if isinstance(loaded, int):
        return loaded
    warnings = sorted(loaded.warnings)
    print_issues(directory, warnings, sys.stderr)
    policy = loaded.policy
    print(f"policy ok: {plural(len(policy.fields), 'field')}, "
          f"{plural(len(policy.rules), 'rule')}, {plural(len(policy.purposes), 'purpose')}, "
          f"{plural(len(warnings), 'warning')}; version {loaded.version}")
    return EXIT_OK


def run_test(directory: Path) -> int:
    loaded = load_or_report(directory, "test")
    if isinstance(loaded, int):
        return loaded
    try:
        cases = parse_policy_tests(read_documents(directory, tests=True))
    except PolicyError as exc:
        print_issues(directory, exc.issues, sys.stderr)
        print(f"{plural(len(exc.issues), 'error')} in the policy tests; no test was run",
              file=sys.stderr)
        return EXIT_FAILED
    if not cases:
        print(f"no policy tests in {directory / 'tests'}")
        return EXIT_OK
    results = run_policy_tests(loaded, cases)
    for result in results:
        _print_result(directory, loaded, result)
    failed = sum(1 for r in results if not r.passed)
    print(f"\n{len(results) - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def _print_result(directory: Path, policy: CompiledPolicy, result: PolicyTestResult) -> None:
    """Every failure the test runner found, in its order; a field whose outcome differs is
    shown with what was expected, what was decided, and the deciding rule."""
    if result.passed:
        print(f"ok    {result.name}")
        return
    loc = result.case.loc
    print(f"FAIL  {result.name}  ({directory / loc.file}:{loc.line})")
    decided = _decided_fields(policy, result.case)
    for failure in result.failures:
        mismatch = _mismatched_field(failure, result.case, decided)
        if mismatch is None:
            print(f"      {failure}")
            continue
        for line in _field_details(directory, policy, *mismatch):
            print(line)


def _decided_fields(policy: CompiledPolicy, case: PolicyTestCase) -> dict[str, FieldDecision]:
    """The decision on every field the test asks, or nothing when the request is refused
    outright or names an id the policy does not know (the failure then says so)."""
    try:
        decision = policy.decide(case.request)
    except RequestError:
        return {}
    if decision.refusal is not None and decision.refusal.code is not RefusalCode.NOTHING_PERMITTED:
        return {}
    return {d.field: d for d in decision.fields}


def _mismatched_field(failure: str, case: PolicyTestCase, decided: dict[str, FieldDecision]
                      ) -> tuple[FieldExpectation, FieldDecision] | None:
    """The expectation and decision a failure is about, when it reports a field's outcome.

    The test runner starts such a failure with ``field '<id>':``; a field missing from the
    decision is reported in other words and is printed as the runner wrote it.
    """
    for expectation in case.fields:
        actual = decided.get(expectation.field)
        if actual is not None and failure.startswith(f"field {expectation.field!r}:"):
            return expectation, actual
    return None


def _field_details(directory: Path, policy: CompiledPolicy, expectation: FieldExpectation,
                   actual: FieldDecision) -> Iterable[str]:
    yield f"      field {expectation.field}"
    yield f"        expected:   {expectation}"
    yield f"        got:        {outcome_text(actual)}"
    yield f"        decided by: {rule_place(directory, policy, actual.rule_id)}"
    yield from wrapped(actual.reason, 20, "        reason:")
