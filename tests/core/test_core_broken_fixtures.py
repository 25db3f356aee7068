"""Each broken policy fixture is reported at the place and with the message it expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core import PolicyError, PolicyIssue, Severity, load_policy
from gateway.policyfiles import read_documents
from tests.policy_fixtures import (
    ExpectedIssue,
    expected_issues,
    fixture_documents,
    kinds,
    write_fixture,
)

# Every kind of mistake the policy check must catch has a fixture.
REQUIRED_KINDS = {
    "yaml_syntax", "unknown_key", "unknown_field", "unknown_category", "unknown_partner_type",
    "unknown_purpose", "unknown_phase", "unknown_transform", "unknown_legal_basis",
    "duplicate_id", "shadowed_rule", "contradiction", "special_without_basis",
    "warning_unmentioned_field",
}


def reported(kind: str) -> tuple[PolicyIssue, ...]:
    """Errors when the policy is refused, else its warnings."""
    try:
        return load_policy(fixture_documents(kind)).warnings
    except PolicyError as exc:
        return exc.issues


def test_every_kind_has_a_fixture() -> None:
    assert set(kinds()) == REQUIRED_KINDS


def test_the_valid_policy_loads_without_errors_or_warnings() -> None:
    policy = load_policy(fixture_documents())
    assert policy.warnings == ()
    assert [p.id for p in policy.policy.legal_bases] == [
        "wgs-2-3", "avg-6-1-e", "avg-9-2-h", "uavg-33"]


@pytest.mark.parametrize("kind", kinds())
def test_the_break_is_reported_where_expected(kind: str) -> None:
    issues = reported(kind)
    for expected in expected_issues(kind):
        assert any(_matches(issue, expected) for issue in issues), (
            f"{kind}: no issue {expected.severity} {expected.prefix}: {expected.fragment!r}; "
            f"got {[f'{i.severity} {i}' for i in issues]}")


@pytest.mark.parametrize("kind", kinds())
def test_each_fixture_breaks_one_thing(kind: str) -> None:
    assert len(reported(kind)) == len(expected_issues(kind))


def test_warnings_do_not_stop_the_policy() -> None:
    policy = load_policy(fixture_documents("warning_unmentioned_field"))
    (warning,) = policy.warnings
    assert warning.severity is Severity.WARNING
    assert policy.outcome("care", "chain_partner", "case_meeting", "meeting",
                          "contact.phone") is not None


def test_a_written_fixture_reads_back_as_the_same_documents(tmp_path: Path) -> None:
    directory = write_fixture("contradiction", tmp_path / "policy")
    assert read_documents(directory) == fixture_documents("contradiction")


def test_an_unknown_fixture_kind_is_refused() -> None:
    with pytest.raises(KeyError, match="no policy fixture 'nonsense'"):
        fixture_documents("nonsense")


def _matches(issue: PolicyIssue, expected: ExpectedIssue) -> bool:
    return (str(issue.severity) == expected.severity
            and (issue.file, issue.line, issue.column) == (
                expected.file, expected.line, expected.column)
            and expected.fragment in issue.message
            and bool(issue.hint.strip()))
