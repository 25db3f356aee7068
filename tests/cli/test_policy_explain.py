"""`ketenpoort policy explain`: why each field gets its outcome."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.server.config import shipped_policy_dir
from tests.cli.policy_samples import place_of, write_policy


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    return write_policy(tmp_path / "policy")


def _explain(capsys: pytest.CaptureFixture[str], policy: Path, *argv: str) -> tuple[int, str, str]:
    status = main(["policy", "explain", str(policy), *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _rule_place(policy: Path, rule: str) -> str:
    return place_of(policy, "rules/rules.yaml", f"- id: {rule}\n").rsplit(":", 1)[0]


def _block(out: str, field: str) -> list[str]:
    """The lines explaining one field."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{field}  ["))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


def test_each_field_names_outcome_winner_and_the_rules_that_lost(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _explain(capsys, policy, "--partner", "police", "--role", "chain_partner",
                              "--purpose", "analysis_and_plan", "--phase", "case_meeting")
    assert status == 0
    assert "partner police (Politie), partner type police" in out
    assert "  wpg-19: Wpg art. 19 - police data" in out
    assert _block(out, "subject.name") == [
        "subject.name  [identifying]",
        "  outcome:    mask:initials",
        f"  decided by: rule name-initials-for-police-chain "
        f"({_rule_place(policy, 'name-initials-for-police-chain')})",
        "              A police chain partner recognises the subject by initials.",
        f"  set aside:  rule identity-for-participants "
        f"({_rule_place(policy, 'identity-for-participants')}): disclose",
        "              less restrictive than the winner",
    ]
    notes = _block(out, "case.notes")
    assert notes[1] == "  outcome:    mask:truncate (length=280)"
    diagnosis = _block(out, "ggz.diagnosis")
    assert diagnosis == [
        "ggz.diagnosis  [health; special category, AVG art. 9]",
        "  outcome:    withhold",
        "  decided by: no rule grants this field (withheld by default)",
    ]


def test_an_override_shows_its_reason_and_the_rule_it_set_aside(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _explain(capsys, policy, "--partner-type", "zvh", "--role",
                              "process_director", "--purpose", "triage", "--phase", "triage",
                              "--field", "triage.role")
    assert status == 0
    assert "open to partners not taking part in the case (hit/no-hit only)" in out
    block = _block(out, "triage.role")
    assert block[1] == "  outcome:    disclose"
    assert block[2].endswith(", an override")
    assert block[4].startswith("              override: The covenant lets")
    assert block[5].startswith("  set aside:  rule triage-hit-no-hit (")
    assert block[5].endswith("): mask:presence")
    assert block[6] == "              not an override; override rules set it aside"
    assert "subject.name" not in out


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["--partner-type", "ggz", "--role", "chain_partner", "--purpose", "acute_safety",
          "--phase", "registration"],
         "partners of type 'ggz' may not ask for purpose 'acute_safety'", "purpose_not_allowed"),
        (["--partner-type", "police", "--role", "chain_partner", "--purpose", "triage",
          "--phase", "plan"],
         "purpose 'triage' does not apply in phase 'plan'; it applies in phase triage",
         "phase_not_allowed"),
        (["--partner-type", "police", "--role", "chain_partner", "--purpose",
          "analysis_and_plan", "--phase", "triage"],
         "purpose 'analysis_and_plan' does not apply in phase 'triage'; it applies in phases "
         "case_meeting, plan", "phase_not_allowed"),
        (["--partner-type", "zvh", "--role", "chain_partner", "--purpose", "triage",
          "--phase", "triage"],
         "no partner of type 'zvh' acts in role 'chain_partner'", "role_not_allowed"),
        (["--partner", "ggz", "--role", "case_director", "--purpose", "analysis_and_plan",
          "--phase", "plan"],
         "partner 'ggz' may not act in role 'case_director'", "role_not_allowed"),
    ],
)
def test_a_request_that_cannot_be_made_is_a_clear_refusal(
    policy: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str, code: str
) -> None:
    status, out, _ = _explain(capsys, policy, *argv)
    assert status == 1
    assert f"REFUSED: {message}" in out
    assert f"refusal code: {code}; no field is released" in out
    assert "outcome:" not in out


def test_a_mistyped_id_gets_a_suggestion(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _explain(capsys, policy, "--partner", "polise", "--role", "chain_partner",
                                "--purpose", "analysis_and_plan", "--phase", "cas_meeting")
    assert status == 2
    assert "unknown partner 'polise' (did you mean 'police'?)" in err
    assert "unknown phase 'cas_meeting' (did you mean 'case_meeting'?)" in err
    assert out == ""


def test_partner_and_partner_type_exclude_each_other(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["policy", "explain", str(policy), "--partner", "police", "--partner-type",
              "police", "--role", "chain_partner", "--purpose", "triage", "--phase", "triage"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_explain_on_the_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _explain(capsys, shipped_policy_dir(), "--partner", "police", "--role",
                                "case_director", "--purpose", "analysis_and_plan", "--phase",
                                "case_meeting", "--field", "subject.bsn")
    assert status == 0, err
    assert "subject.bsn  [" in out
    assert "  decided by: " in out


@pytest.mark.parametrize("command", [
    ["explain", "--partner", "police", "--role", "chain_partner", "--purpose",
     "analysis_and_plan", "--phase", "case_meeting"],
    ["diff"],
])
def test_a_reader_that_goes_away_ends_the_command_quietly(
    policy: Path, command: list[str]
) -> None:
    """As in `ketenpoort policy explain ... | head -1`: the reader has closed the pipe."""
    argv = [command[0], str(policy), *command[1:]]
    if command == ["diff"]:
        argv.append(str(policy))
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, as after `head` exits
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli.main", "policy", *argv],
            stdout=write_end, stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr


def test_explain_in_an_approach_and_for_a_person_role(
    capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _explain(capsys, shipped_policy_dir(), "--partner", "municipality",
                              "--role", "chain_partner", "--purpose", "analysis_and_plan",
                              "--phase", "case_meeting", "--approach", "code_rood",
                              "--field", "mun.debts")
    assert status == 0
    assert "approach code_rood, case level (no person-specific rule applies)" in out
    assert _block(out, "mun.debts")[2] == (
        "  decided by: the field does not apply under this approach (withheld)")
    status, out, _ = _explain(capsys, shipped_policy_dir(), "--partner", "ggd",
                              "--role", "chain_partner", "--purpose", "analysis_and_plan",
                              "--phase", "case_meeting", "--approach", "verward_gedrag",
                              "--field", "ggz.care_involved")
    assert status == 0 and "  wvggz-inquiry: Wvggz" in out
    status, out, _ = _explain(capsys, shipped_policy_dir(), "--partner", "housing",
                              "--role", "chain_partner", "--purpose", "analysis_and_plan",
                              "--phase", "case_meeting", "--person-role", "child",
                              "--field", "subject.name")
    assert status == 0 and "person role child" in out
    assert "decided by: rule no-child-data-for-housing" in out
    status, out, _ = _explain(capsys, shipped_policy_dir(), "--partner", "housing",
                              "--role", "chain_partner", "--purpose", "analysis_and_plan",
                              "--phase", "case_meeting", "--approach", "drang_en_dwang")
    assert status == 1 and "REFUSED" in out and "not_on_approach_table" in out
