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
    Decision,
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
    if result.passed:
        print(f"ok    {result.name}")
        return
    loc = result.case.loc
    print(f"FAIL  {result.name}  ({directory / loc.file}:{loc.line})")
    details = list(_field_failures(directory, policy, result.case))
    for line in details or [f"      {failure}" for failure in result.failures]:
        print(line)


def _field_failures(directory: Path, policy: CompiledPolicy,
                    case: PolicyTestCase) -> Iterable[str]:
    """Per mismatched field: expected, got, and the deciding rule with its place and reason.

    Yields nothing when the failure is not about fields (a refusal, an unknown id); the
    caller then prints the test runner's own account.
    """
    try:
        decision = policy.decide(case.request)
    except RequestError:
        return
    if case.refused is not None or not _fields_compared(decision):
        return
    decided = {d.field: d for d in decision.fields}
    for expectation in case.fields:
        actual = decided.get(expectation.field)
        if actual is None or _matches(expectation, actual):
            continue
        yield f"      field {expectation.field}"
        yield f"        expected:   {expectation}"
        yield f"        got:        {outcome_text(actual)}"
        yield f"        decided by: {rule_place(directory, policy, actual.rule_id)}"
        yield from wrapped(actual.reason, 20, "        reason:")


def _fields_compared(decision: Decision) -> bool:
    # A request refused because nothing is released still has every field decided: withheld.
    return decision.refusal is None or decision.refusal.code is RefusalCode.NOTHING_PERMITTED


def _matches(expectation: FieldExpectation, actual: FieldDecision) -> bool:
    return actual.effect is expectation.effect and (
        expectation.transform is None or actual.transform == expectation.transform)
