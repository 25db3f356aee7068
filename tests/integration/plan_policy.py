"""The shipped policy with what the case plan needs until the policy files carry it: the
classified case-file fields (case.notes.health, ...), case.meeting_minutes, case.closing_summary
and the purpose ``handover`` (phase closure), with rules that release them.

Laid over a copy of policies/ in a temporary directory and compiled like any policy, so the
gateway decides these fields exactly as it will once the shipped policy has them."""

from __future__ import annotations

import shutil
from pathlib import Path

from gateway.core import CompiledPolicy
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir

CATALOGUE = """
  # Test additions: classified free text, minutes, closing summary.
  - id: case.notes.health
    category: case_file
    source: zvh
    special: art9
    description: Working notes that hold health data.
  - id: case.notes.criminal
    category: case_file
    source: zvh
    special: art10
    description: Working notes that hold criminal data.
  - id: case.notes.confidential
    category: case_file
    source: zvh
    description: Working notes only their author receives.
  - id: case.meeting_minutes
    category: case_file
    source: zvh
    description: Minutes of the case meetings.
  - id: case.meeting_minutes.confidential
    category: case_file
    source: zvh
    description: Minutes only their author receives.
  - id: case.closing_summary
    category: case_file
    source: zvh
    description: What was done and what the case director takes over at closure.
"""

PURPOSES = """
  - id: handover
    description: >-
      Handover at closure: the case director receives the closing summary to carry on.
    legal_bases: [wgs-supply-to-participant, avg-6-1-e]
    processing_activity: https://zvh.example/register/pa-p4-monitoring
    phases: [closure]
    partner_types: [police, om, probation, child_protection, dji, ggz, addiction_care,
                    veilig_thuis, municipality, housing_corporation, zvh]
"""

RULES = """rules:
  - id: test-health-notes-for-care
    reason: Health notes reach care and the ZVH, which have a ground for health data.
    who:
      partner_types: [ggz, zvh]
    purposes: [analysis_and_plan]
    fields: [case.notes.health]
    effect: disclose
  - id: test-criminal-notes-for-justice
    reason: Criminal notes reach the police and the ZVH.
    who:
      partner_types: [police, zvh]
    purposes: [analysis_and_plan]
    fields: [case.notes.criminal]
    effect: disclose
  - id: test-confidential-and-minutes
    reason: Released by the policy; the gateway gives a confidential entry to its author only.
    purposes: [analysis_and_plan]
    fields: [case.notes.confidential, case.meeting_minutes, case.meeting_minutes.confidential]
    effect: disclose
  - id: test-handover
    reason: The case director carries the case on after closure.
    who:
      roles: [case_director]
    purposes: [handover]
    fields: [case.closing_summary]
    effect: disclose
"""


def plan_policy_dir(directory: Path) -> Path:
    target = directory / "policies"
    shutil.copytree(shipped_policy_dir(), target)
    catalogue = target / "catalogue.yaml"
    text = catalogue.read_text()
    marker = "\n  # The triage index."
    assert marker in text
    catalogue.write_text(text.replace(marker, CATALOGUE + marker, 1))
    purposes = target / "purposes.yaml"
    purposes.write_text(purposes.read_text().rstrip("\n") + "\n" + PURPOSES)
    (target / "rules" / "zz_case_plan_test.yaml").write_text(RULES)
    return target


def plan_policy(directory: Path) -> CompiledPolicy:
    return load_policy_dir(plan_policy_dir(directory))
