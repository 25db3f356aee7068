"""A small policy in the current format, written into a directory by the policy command tests.

Small enough to reason about by hand, and it holds one of each thing the commands explain:
an override, a role of one partner type treated differently from the other, a masked field
with a parameter, a special-category field opened only where a ground permits it, a purpose
without need-to-know, a break-glass purpose and a field no rule mentions (a warning).
"""

from __future__ import annotations

from pathlib import Path

CATALOGUE = """\
legal_bases:
  - id: wgs
    title: WGS - supply of data to the ZVH
  - id: avg-6-1-e
    title: AVG art. 6(1)(e) - public task
  - id: avg-9-2-g
    title: AVG art. 9(2)(g) with UAVG art. 30 - substantial public interest
    permits: [art9]
  - id: wpg-19
    title: Wpg art. 19 - police data

categories:
  - id: identifying
    description: Who the subject is.
  - id: case_file
    description: The ZVH's own record of the case.
  - id: health
    description: Diagnosis and treatment.
    special: art9
  - id: justice
    description: Criminal records.
    special: art10
  - id: index
    description: The triage answer.

fields:
  - id: subject.name
    category: identifying
    source: zvh
    kind: name
    description: Full name.
  - id: subject.bsn
    category: identifying
    source: zvh
    kind: identifier
    description: Burgerservicenummer.
  - id: case.reason
    category: case_file
    source: zvh
    description: Why the case was registered.
  - id: case.notes
    category: case_file
    source: zvh
    description: Working notes.
  - id: ggz.diagnosis
    category: health
    source: ggz
    description: Diagnosis.
  - id: justice.convictions
    category: justice
    source: police
    description: Prior convictions.
  - id: triage.role
    category: index
    source: zvh
    description: In what role the subject is known.
"""

PARTNERS = """\
partner_types:
  - id: police
    description: Politie.
  - id: ggz
    description: Mental-health care.
  - id: zvh
    description: The ZVH's own staff.

roles:
  - id: chain_partner
    description: A professional taking part in the case.
  - id: case_director
    description: Leads on the content of the case.
  - id: process_director
    description: Steers the process of the case.

partners:
  - id: police
    type: police
    display_name: Politie
    roles: [chain_partner, case_director]
  - id: ggz
    type: ggz
    display_name: GGZ-instelling
    roles: [chain_partner]
  - id: zvh
    type: zvh
    display_name: Zorg- en Veiligheidshuis
    roles: [process_director]
"""

PURPOSES = """\
phases:
  - id: registration
    description: A partner registers the case.
  - id: triage
    description: Which partners know the subject?
  - id: case_meeting
    description: The partners analyse the case together.
  - id: plan
    description: The plan of approach.

purposes:
  - id: triage
    description: Hit/no-hit.
    legal_bases: [wgs]
    processing_activity: https://zvh.example/register/pa-triage
    phases: [triage]
    partner_types: [police, ggz, zvh]
    requires_participation: false
  - id: analysis_and_plan
    description: Analysis of the case and the plan of approach.
    legal_bases: [wgs, avg-6-1-e]
    legal_bases_by_partner_type:
      police: [wpg-19]
      ggz: [avg-9-2-g]
      zvh: [avg-9-2-g]
    processing_activity: https://zvh.example/register/pa-analysis
    phases: [case_meeting, plan]
    partner_types: [police, ggz, zvh]
  - id: acute_safety
    description: Code Rood.
    legal_bases: [wgs, avg-6-1-e]
    processing_activity: https://zvh.example/register/pa-acute-safety
    phases: [registration, case_meeting]
    partner_types: [police, zvh]
    requires_justification: true
    break_glass: true
    max_duration_minutes: 1440
"""

RULES = """\
rules:
  - id: identity-for-participants
    reason: Participants need to know whom the case is about.
    purposes: [analysis_and_plan, acute_safety]
    categories: [identifying]
    effect: disclose

  - id: name-initials-for-police-chain
    reason: A police chain partner recognises the subject by initials.
    who:
      partner_types: [police]
      roles: [chain_partner]
    purposes: [analysis_and_plan]
    fields: [subject.name]
    effect: mask
    transform: initials

  - id: bsn-pseudonym-police
    reason: The police match records by pseudonym, never by BSN.
    who:
      partner_types: [police]
    purposes: [analysis_and_plan, acute_safety]
    fields: [subject.bsn]
    effect: mask
    transform: pseudonym

  - id: case-file-for-participants
    reason: Participants read the case file.
    purposes: [analysis_and_plan]
    categories: [case_file]
    effect: disclose

  - id: notes-truncated-for-police
    reason: The police get the start of the notes only.
    who:
      partner_types: [police]
    purposes: [analysis_and_plan]
    fields: [case.notes]
    effect: mask
    transform: truncate
    params: {length: 280}

  - id: health-for-ggz
    reason: The GGZ holds its own care data.
    who:
      partner_types: [ggz]
    purposes: [analysis_and_plan]
    categories: [health]
    effect: disclose

  - id: diagnosis-presence-for-director
    reason: The process director learns only that a diagnosis is on record.
    who:
      partner_types: [zvh]
    purposes: [analysis_and_plan]
    fields: [ggz.diagnosis]
    effect: mask
    transform: presence

  - id: triage-hit-no-hit
    reason: Partners not yet in the case learn only whether the subject is known.
    purposes: [triage]
    categories: [index]
    effect: mask
    transform: presence

  - id: triage-role-for-director
    reason: The process director decides whom to invite.
    who:
      partner_types: [zvh]
    purposes: [triage]
    fields: [triage.role]
    effect: disclose
    override: true
    override_reason: The covenant lets the process director see the role to invite well.

  - id: reason-in-code-rood
    reason: In Code Rood the responders need the reason of the case.
    purposes: [acute_safety]
    fields: [case.reason]
    effect: disclose
"""

TESTS = """\
tests:
  - name: the police chain partner sees initials
    request: {partner: police, role: chain_partner, purpose: analysis_and_plan,
              phase: case_meeting, participant: true}
    expect:
      fields:
        subject.name: "mask:initials"
        subject.bsn: "mask:pseudonym"
        ggz.diagnosis: withhold
  - name: triage is hit/no-hit
    request: {partner: ggz, role: chain_partner, purpose: triage, phase: triage,
              participant: false}
    expect:
      fields:
        triage.role: "mask:presence"
  - name: the GGZ may not use Code Rood
    request: {partner: ggz, role: chain_partner, purpose: acute_safety, phase: registration,
              participant: true, justification: acute danger}
    expect: {refused: purpose_not_allowed}
"""

FILES = {
    "catalogue.yaml": CATALOGUE,
    "partners.yaml": PARTNERS,
    "purposes.yaml": PURPOSES,
    "rules/rules.yaml": RULES,
    "tests/sample.yaml": TESTS,
}


def write_policy(directory: Path, changes: dict[str, str] | None = None) -> Path:
    """Write the sample policy into ``directory``; ``changes`` replace or add files."""
    for name, text in {**FILES, **(changes or {})}.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return directory


def edit(directory: Path, name: str, old: str, new: str) -> None:
    """Replace one exact passage of a written policy file."""
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def place_of(directory: Path, name: str, needle: str) -> str:
    """``file:line:column`` (1-based) of the first occurrence of ``needle`` in a written file."""
    text = (directory / name).read_text(encoding="utf-8")
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"{directory / name}:{line}:{column}"
