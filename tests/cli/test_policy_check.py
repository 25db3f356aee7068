"""`ketenpoort policy check` and `ketenpoort policy test` as a privacy officer reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.server.config import shipped_policy_dir
from tests.cli.policy_samples import edit, place_of, write_policy
from tests.policy_fixtures import expected_issues, kinds, write_fixture


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["policy", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_sound_policy_passes_with_its_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(tmp_path / "policy")
    status, out, err = _run(capsys, "check", str(policy))
    assert status == 0
    assert out.startswith("policy ok: 7 fields, 10 rules, 3 purposes, 1 warning; version sha256:")
    lines = err.splitlines()
    assert lines[0].startswith(f"{policy}/catalogue.yaml:")
    assert ": warning: " in lines[0] and "'justice.convictions'" in lines[0]
    assert lines[1].startswith("  hint: ")


def test_errors_are_listed_with_place_and_hint_and_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(tmp_path / "policy")
    edit(policy, "rules/rules.yaml", "    transform: initials\n", "    transform: initial\n")
    edit(policy, "rules/rules.yaml", "    categories: [case_file]\n",
         "    categories: [case_file]\n    efect: disclose\n")
    status, out, err = _run(capsys, "check", str(policy))
    assert status == 1
    assert out == ""
    rules = f"{policy}/rules/rules.yaml"
    lines = err.splitlines()
    unknown_transform = next(i for i, line in enumerate(lines) if "'initial'" in line)
    assert lines[unknown_transform].startswith(
        place_of(policy, "rules/rules.yaml", "initial\n") + ": ")
    assert "did you mean 'initials'" in "\n".join(lines[unknown_transform:unknown_transform + 2])
    efect = place_of(policy, "rules/rules.yaml", "efect")
    assert any(line.startswith(f"{efect}: ") and "'efect'" in line for line in lines)
    for index, line in enumerate(lines[:-1]):
        if line.startswith("  hint: "):
            assert lines[index - 1].startswith(rules)
    assert lines[-1] == f"2 errors in {policy}; the policy was not loaded"


def test_a_missing_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(capsys, "check", str(tmp_path / "nowhere"))
    assert status == 2
    assert "no such policy directory" in err


def test_passing_policy_tests_are_reported_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(capsys, "test", str(write_policy(tmp_path / "policy")))
    assert status == 0
    assert out.splitlines() == [
        "ok    the police chain partner sees initials",
        "ok    triage is hit/no-hit",
        "ok    the GGZ may not use Code Rood",
        "",
        "3 passed, 0 failed",
    ]


def test_a_failing_policy_test_names_field_expectation_outcome_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(tmp_path / "policy")
    edit(policy, "rules/rules.yaml", "    transform: initials\n", "    transform: redact\n")
    edit(policy, "tests/sample.yaml", "expect: {refused: purpose_not_allowed}",
         "expect: {refused: not_participant}")
    status, out, _ = _run(capsys, "test", str(policy))
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == (f"FAIL  the police chain partner sees initials  "
                        f"({policy}/tests/sample.yaml:2)")
    assert lines[1:6] == [
        "      field subject.name",
        "        expected:   mask:initials",
        "        got:        mask:redact",
        f"        decided by: rule name-initials-for-police-chain ({policy}/rules/rules.yaml:8)",
        "        reason:     A police chain partner recognises the subject by initials.",
    ]
    assert "ok    triage is hit/no-hit" in lines
    where = place_of(policy, "tests/sample.yaml", "- name: the GGZ").rsplit(":", 1)[0]
    refusal = lines.index(f"FAIL  the GGZ may not use Code Rood  ({where})")
    assert "expected refusal not_participant, got purpose_not_allowed" in lines[refusal + 1]
    assert lines[-1] == "1 passed, 2 failed"


def test_every_failure_of_a_test_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A field mismatch does not hide a misspelt field id in the same test."""
    policy = write_policy(tmp_path / "policy")
    edit(policy, "rules/rules.yaml", "    transform: initials\n", "    transform: redact\n")
    edit(policy, "tests/sample.yaml", "        ggz.diagnosis: withhold\n",
         "        ggz.diagnosis: withhold\n        subject.nmae: disclose\n")
    status, out, _ = _run(capsys, "test", str(policy))
    assert status == 1
    lines = out.splitlines()
    assert lines[1:7] == [
        "      field subject.name",
        "        expected:   mask:initials",
        "        got:        mask:redact",
        f"        decided by: rule name-initials-for-police-chain ({policy}/rules/rules.yaml:8)",
        "        reason:     A police chain partner recognises the subject by initials.",
        "      field 'subject.nmae' is not in the decision: unknown to the policy, or not "
        "among the requested fields",
    ]
    assert lines[7] == "ok    triage is hit/no-hit"


def test_a_deny_by_default_failure_says_no_rule_grants_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(tmp_path / "policy")
    edit(policy, "tests/sample.yaml", "        ggz.diagnosis: withhold\n",
         "        ggz.diagnosis: disclose\n")
    status, out, _ = _run(capsys, "test", str(policy))
    assert status == 1
    assert "        decided by: no rule grants this field (withheld by default)" in out


def test_a_broken_test_file_is_reported_and_no_test_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(tmp_path / "policy")
    edit(policy, "tests/sample.yaml", '"mask:initials"', '"mask:initialz"')
    status, out, err = _run(capsys, "test", str(policy))
    assert status == 1
    assert place_of(policy, "tests/sample.yaml", '"mask:initialz"') + ": " in err
    assert "no test was run" in err
    assert out == ""


def test_the_shipped_policies_check_and_pass_their_tests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = _run(capsys, "check", str(shipped_policy_dir()))
    assert status == 0, err
    assert out.startswith("policy ok: ")
    status, out, err = _run(capsys, "test", str(shipped_policy_dir()))
    assert status == 0, out
    assert out.rstrip().endswith(" 0 failed")


@pytest.mark.parametrize("kind", kinds())
def test_each_kind_of_mistake_is_printed_where_it_is_with_a_hint(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_fixture(kind, tmp_path / "policy")
    status, out, err = _run(capsys, "check", str(policy))
    lines = err.splitlines()
    expected = expected_issues(kind)
    for issue in expected:
        label = "warning: " if issue.severity == "warning" else ""
        head = f"{policy / issue.file}:{issue.line}:{issue.column}: {label}"
        index = next(i for i, line in enumerate(lines)
                     if line.startswith(head) and issue.fragment in line)
        assert lines[index + 1].startswith("  hint: ") and len(lines[index + 1]) > 10
    if all(issue.severity == "warning" for issue in expected):
        assert status == 0
        assert out.startswith("policy ok: ")
    else:
        assert status == 1
        assert lines[-1].endswith("; the policy was not loaded")


def test_mistakes_in_approaches_and_person_roles_are_printed_where_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approaches = (
        "person_roles:\n"
        "  - {id: victim, description: A victim.}\n"
        "approaches:\n"
        "  - id: general\n"
        "    description: Every case.\n"
        "    default: true\n"
        "  - id: code_rood\n"
        "    description: Acute.\n"
        "    default: true\n"
        "    partner_types: [police, fire_brigade]\n"
        "    purposes: [acute_safety, picnic]\n"
    )
    policy = write_policy(tmp_path / "policy", {"approaches.yaml": approaches})
    edit(policy, "rules/rules.yaml", "  - id: health-for-ggz\n",
         "  - id: health-for-ggz\n    persons: [child]\n    approaches: [code_blauw]\n")
    status, _, err = _run(capsys, "check", str(policy))
    assert status == 1
    where = policy / "approaches.yaml"
    assert f"{where}:9:14: approach 'code_rood' is a second default approach" in err
    assert f"{where}:10:29: unknown partner type 'fire_brigade'" in err
    assert f"{where}:11:30: unknown purpose 'picnic'" in err
    person = place_of(policy, "rules/rules.yaml", "child]")
    assert f"{person}: unknown person role 'child'" in err
    approach = place_of(policy, "rules/rules.yaml", "code_blauw]")
    assert f"{approach}: unknown approach 'code_blauw'" in err
