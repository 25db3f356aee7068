"""Fixtures for the policy core: a small hand-written policy and the shipped policy set."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.core import CompiledPolicy, load_policy, parse_policy

POLICIES = Path(__file__).resolve().parents[2] / "policies"

CATALOGUE = textwrap.dedent("""\
    categories:
      - id: identifying
        description: Who the subject is.
      - id: index
        description: Triage answer.
      - id: health
        description: Health data.
        special: art9
      - id: notes
        description: Free text.
    fields:
      - id: subject.name
        category: identifying
        source: zvh
        kind: name
        description: Name.
      - id: subject.dob
        category: identifying
        source: zvh
        kind: date
        description: Date of birth.
      - id: triage.role
        category: index
        source: zvh
        description: Known, in what role.
      - id: care.diagnosis
        category: health
        source: care
        description: Diagnosis.
      - id: case.notes
        category: notes
        source: zvh
        description: Notes.
    """)

PARTIES = textwrap.dedent("""\
    partner_types:
      - {id: care, description: Care.}
      - {id: police, description: Police.}
      - {id: zvh, description: ZVH staff.}
    roles:
      - {id: worker, description: A worker.}
      - {id: director, description: A director.}
    partners:
      - {id: care-1, type: care, display_name: Care One, roles: [worker]}
      - {id: police-1, type: police, display_name: Police One, roles: [worker, director]}
      - {id: zvh, type: zvh, display_name: ZVH, roles: [director]}
    phases:
      - {id: intake, description: Intake.}
      - {id: meeting, description: Meeting.}
      - {id: closure, description: Closure.}
    legal_bases:
      - id: wgs
        title: WGS art. 2.3 - supply to the partnership
      - id: avg-6-1-e
        title: AVG art. 6(1)(e) - public task
      - id: avg-9-2-h
        title: AVG art. 9(2)(h) - care
        permits: [art9]
      - id: avg-9-2-c
        title: AVG art. 9(2)(c) - vital interests
        description: Someone's life or safety is at stake.
        permits: [art9, art10]
    purposes:
      - id: triage
        description: Hit/no-hit.
        legal_bases: [wgs, avg-6-1-e]
        processing_activity: https://zvh.example/register/pa-triage
        phases: [intake]
        partner_types: [care, police, zvh]
        requires_participation: false
      - id: meeting
        description: Case meeting.
        legal_bases: [wgs, avg-6-1-e]
        legal_bases_by_partner_type:
          care: [avg-9-2-h]
        processing_activity: https://zvh.example/register/pa-meeting
        phases: [meeting]
        partner_types: [care, police, zvh]
      - id: acute
        description: Break-glass.
        legal_bases: [avg-9-2-c]
        processing_activity: urn:zvh:register:pa-acute
        phases: [intake, meeting]
        partner_types: [police]
        requires_justification: true
        break_glass: true
        max_duration_minutes: 60
    """)


def _mini_documents(rules: str = "rules: []\n") -> dict[str, str]:
    return {"catalogue.yaml": CATALOGUE, "parties.yaml": PARTIES,
            "rules/test.yaml": textwrap.dedent(rules)}


def _read(paths: list[Path]) -> dict[str, str]:
    return {path.relative_to(POLICIES).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(paths)}


@pytest.fixture
def mini_docs() -> Callable[[str], dict[str, str]]:
    """Documents of a small policy with the given rules file text (dedented)."""
    return _mini_documents


@pytest.fixture
def make_policy() -> Callable[[str], CompiledPolicy]:
    def make(rules: str) -> CompiledPolicy:
        return load_policy(_mini_documents(rules))
    return make


@pytest.fixture
def make_unchecked() -> Callable[[str], CompiledPolicy]:
    """Compile without the rule checks: for how conflicts resolve, even between rules that
    `policy check` rejects as shadowed or contradictory."""
    def make(rules: str) -> CompiledPolicy:
        return CompiledPolicy(parse_policy(_mini_documents(rules)))
    return make


@pytest.fixture(scope="session")
def shipped_docs() -> dict[str, str]:
    """The shipped policy as the gateway loads it: *.yaml in policies/ and policies/rules/."""
    return _read([*POLICIES.glob("*.yaml"), *(POLICIES / "rules").glob("*.yaml")])


@pytest.fixture(scope="session")
def shipped_test_docs() -> dict[str, str]:
    return _read(list((POLICIES / "tests").glob("*.yaml")))


@pytest.fixture(scope="session")
def shipped(shipped_docs: dict[str, str]) -> CompiledPolicy:
    return load_policy(shipped_docs)
