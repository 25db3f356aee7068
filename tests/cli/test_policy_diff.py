"""`ketenpoort policy diff`: what a policy change changes, and for whom it would have mattered.

The log replay runs real disclosures through a gateway on loopback (real gRPC, the database
of the ``db_url`` fixture), then compares the log with a changed policy.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.client import PartnerClient, PartnerCredentials
from gateway.broker.log_events import FieldEntry, RecordKind
from gateway.cli.demo_data import GOAL, REASON, SUBJECT
from gateway.cli.main import main
from gateway.crypto.devkeys import init_dev_keys
from gateway.policyfiles import load_policy_dir
from gateway.server.app import start_gateway
from gateway.server.config import shipped_policy_dir
from gateway.store.database import Database
from tests.cli.policy_samples import edit, write_policy
from tests.integration.harness import gateway_config
from tests.integration.helpers import accept
from tests.store.factories import event


def _diff(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["policy", "diff", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_same_policy_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_policy(tmp_path / "old")
    new = write_policy(tmp_path / "new")
    status, out, _ = _diff(capsys, str(old), str(new))
    assert status == 0
    assert out.splitlines()[-1] == "no outcome changes"


def _changed(tmp_path: Path) -> tuple[Path, Path]:
    old = write_policy(tmp_path / "old")
    new = write_policy(tmp_path / "new")
    edit(new, "rules/rules.yaml", "    transform: initials\n", "    transform: redact\n")
    edit(new, "rules/rules.yaml", "    transform: truncate\n    params: {length: 280}\n",
         "    transform: truncate\n    params: {length: 100}\n")
    edit(new, "purposes.yaml", "    partner_types: [police, zvh]\n    requires_justification",
         "    partner_types: [police, ggz, zvh]\n    requires_justification")
    edit(new, "purposes.yaml", "    phases: [case_meeting, plan]\n", "    phases: [case_meeting]\n")
    edit(new, "rules/rules.yaml", "  - id: reason-in-code-rood",
         "  - id: no-notes-for-ggz-in-meetings\n"
         "    reason: The GGZ reads the notes in the plan only.\n"
         "    who:\n      partner_types: [ggz]\n"
         "    purposes: [analysis_and_plan]\n    phases: [case_meeting]\n"
         "    fields: [case.notes]\n    effect: withhold\n\n"
         "  - id: reason-in-code-rood")
    return old, new


def test_changed_outcomes_are_grouped_by_purpose_and_recipient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _changed(tmp_path)
    status, out, _ = _diff(capsys, str(old), str(new))
    assert status == 1
    lines = out.splitlines()
    start = lines.index("purpose analysis_and_plan")
    assert lines[start + 1:start + 6] == [
        "  police as chain_partner",
        "    subject.name  mask:initials -> mask:redact  (more restrictive; phase case_meeting)",
        "    case.notes    mask:truncate (length=280) -> mask:truncate (length=100)  "
        "(different; phase case_meeting)",
        "  police as case_director",
        "    case.notes    mask:truncate (length=280) -> mask:truncate (length=100)  "
        "(different; phase case_meeting)",
    ]
    assert "  ggz as chain_partner" in lines
    assert "    case.notes    disclose -> withhold  (more restrictive; phase case_meeting)" in lines
    added = lines.index("cells only in the new policy (requests now possible):")
    assert lines[added + 1:added + 3] == [
        "  purpose acute_safety: ggz as chain_partner, phases registration, case_meeting",
        "    releases: subject.name disclose, subject.bsn disclose, case.reason disclose",
    ]
    removed = lines.index("cells only in the old policy (requests no longer possible):")
    assert "  purpose analysis_and_plan: police as chain_partner, phase plan" in lines[removed:]
    changed = lines.index("purposes, partners, fields and legal bases changed:")
    assert lines[changed + 1:changed + 3] == [
        "  purpose analysis_and_plan: phases case_meeting, plan -> case_meeting",
        "  purpose acute_safety: partner_types police, zvh -> police, ggz, zvh",
    ]
    assert lines[-1] == ("4 changed outcomes in 3 cells; 2 cells added, 4 removed; "
                         "2 other changes")


def test_json_lists_every_changed_cell_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _changed(tmp_path)
    status, out, _ = _diff(capsys, str(old), str(new), "--format", "json")
    assert status == 1
    document = json.loads(out)
    assert document["old_version"] != document["new_version"]
    redact = next(c for c in document["changes"] if c["field"] == "subject.name")
    assert redact == {
        "partner_type": "police", "role": "chain_partner", "purpose": "analysis_and_plan",
        "phase": "case_meeting", "approach": "general", "person_role": "",
        "field": "subject.name",
        "old": {"effect": "mask", "transform": "initials", "params": {}},
        "new": {"effect": "mask", "transform": "redact", "params": {}},
        "direction": "more restrictive",
    }
    truncated = [c for c in document["changes"] if c["new"]["params"] == {"length": 100}]
    assert len(truncated) == 2
    assert {c["partner_type"] for c in document["cells_added"]} == {"ggz"}
    assert document["cells_added"][0]["released"]["case.reason"]["effect"] == "disclose"
    assert sorted((c["partner_type"], c["role"]) for c in document["cells_removed"]) == [
        ("ggz", "chain_partner"), ("police", "case_director"), ("police", "chain_partner"),
        ("zvh", "process_director")]
    assert "log" not in document


def test_fields_added_and_removed_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_policy(tmp_path / "old")
    new = write_policy(tmp_path / "new")
    edit(new, "catalogue.yaml", "  - id: justice.convictions\n", "  - id: justice.records\n")
    status, out, _ = _diff(capsys, str(old), str(new))
    assert status == 1
    lines = out.splitlines()
    assert lines[lines.index("fields added to the catalogue:") + 1] == (
        "  justice.records: withheld in every cell both policies hold")
    assert lines[lines.index("fields removed from the catalogue:") + 1] == (
        "  justice.convictions: withheld in every cell both policies hold")


def _policy_edits(new: Path) -> None:
    """A field added and one renamed, and one change each to a purpose, a partner, a field
    and a legal basis; not one outcome of a kept field changes."""
    edit(new, "catalogue.yaml", "  - id: case.notes\n",
         "  - id: case.goal\n    category: case_file\n    source: zvh\n"
         "    description: Goal of the case.\n  - id: case.notes\n")
    edit(new, "catalogue.yaml", "  - id: justice.convictions\n", "  - id: justice.records\n")
    edit(new, "purposes.yaml", "    max_duration_minutes: 1440\n", "    max_duration_minutes: 60\n")
    edit(new, "catalogue.yaml", "    permits: [art9]\n", "    permits: [art9, art10]\n")
    edit(new, "catalogue.yaml", "    source: zvh\n    description: Working notes.",
         "    source: police\n    description: Working notes.")
    edit(new, "partners.yaml", "    display_name: Politie\n",
         "    display_name: Politie\n    keys:\n      token: sha256:" + "ab" * 32 + "\n")


def test_fields_added_list_what_they_release_and_element_changes_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_policy(tmp_path / "old")
    new = write_policy(tmp_path / "new")
    _policy_edits(new)
    status, out, _ = _diff(capsys, str(old), str(new))
    assert status == 1
    lines = out.splitlines()
    added = lines.index("fields added to the catalogue:")
    assert lines[added + 1:added + 4] == [
        "  case.goal, now released in cells both policies hold:",
        "    purpose analysis_and_plan: police as chain_partner, phases case_meeting, plan: "
        "disclose",
        "    purpose analysis_and_plan: police as case_director, phases case_meeting, plan: "
        "disclose",
    ]
    assert "  justice.records: withheld in every cell both policies hold" in lines
    removed = lines.index("fields removed from the catalogue:")
    assert lines[removed + 1] == "  justice.convictions: withheld in every cell both policies hold"
    changed = lines.index("purposes, partners, fields and legal bases changed:")
    assert lines[changed + 1:changed + 5] == [
        "  purpose acute_safety: max_duration_minutes 1440 -> 60",
        "  partner police: key pin token (none) -> sha256:" + "ab" * 32,
        "  field case.notes: source zvh -> police",
        "  legal basis avg-9-2-g: permits art9 -> art9, art10",
    ]
    assert lines[-1] == ("0 changed outcomes in 0 cells; 0 cells added, 0 removed; "
                         "2 fields added, 1 removed (8 outcomes in kept cells); 4 other changes")

    status, out, _ = _diff(capsys, str(old), str(new), "--format", "json")
    assert status == 1
    document = json.loads(out)
    goal = [r for r in document["fields_added_released"] if r["field"] == "case.goal"]
    assert len(goal) == 8
    assert goal[0] == {"partner_type": "police", "role": "chain_partner",
                       "purpose": "analysis_and_plan", "phase": "case_meeting",
                       "approach": "general", "person_role": "",
                       "field": "case.goal",
                       "outcome": {"effect": "disclose", "transform": None, "params": {}}}
    assert document["element_changes"][0] == {
        "kind": "purpose", "id": "acute_safety", "change": "changed",
        "attribute": "max_duration_minutes", "old": 1440, "new": 60}


@pytest.mark.parametrize(("name", "old", "new", "shown"), [
    ("purposes.yaml", "      police: [wpg-19]\n", "      police: [wpg-19, avg-9-2-g]\n",
     "purpose analysis_and_plan: legal_bases_by_partner_type[police] wpg-19 -> "
     "wpg-19, avg-9-2-g"),
    ("purposes.yaml", "    requires_participation: false\n", "",
     "purpose triage: requires_participation no -> yes"),
    ("purposes.yaml", "pa-analysis\n", "pa-analysis-2\n",
     "purpose analysis_and_plan: processing_activity https://zvh.example/register/pa-analysis "
     "-> https://zvh.example/register/pa-analysis-2"),
    ("catalogue.yaml", "    source: ggz\n", "    source: police\n",
     "field ggz.diagnosis: source ggz -> police"),
    ("partners.yaml", "    description: Politie.\n",
     "    description: Politie.\n    may_place_holds: true\n",
     "partner type police: may_place_holds no -> yes"),
    ("catalogue.yaml", "  - id: wpg-19\n    title: Wpg art. 19 - police data\n", "",
     "legal basis wpg-19 removed"),
])
def test_a_change_to_an_element_alone_is_a_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, old: str, new: str,
    shown: str
) -> None:
    before = write_policy(tmp_path / "old")
    after = write_policy(tmp_path / "new")
    edit(after, name, old, new)
    if shown.endswith("removed"):  # the basis named no longer
        edit(after, "purposes.yaml", "      police: [wpg-19]\n", "")
    status, out, _ = _diff(capsys, str(before), str(after))
    assert status == 1
    assert f"  {shown}" in out.splitlines()


def test_a_broken_policy_is_trouble_not_a_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_policy(tmp_path / "good")
    broken = write_policy(tmp_path / "broken")
    edit(broken, "rules/rules.yaml", "    effect: disclose\n\n  - id: name-initials",
         "    effect: discloze\n\n  - id: name-initials")
    for old, new in ((good, broken), (broken, good)):
        status, out, err = _diff(capsys, str(old), str(new))
        assert status == 2
        assert "the policy was not loaded" in err
        assert out == ""


def test_a_missing_log_or_policy_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_policy(tmp_path / "old")
    status, _, err = _diff(capsys, str(old), str(old), "--log", str(tmp_path / "none.db"))
    assert status == 2
    assert "none.db: no such log database" in err
    assert not (tmp_path / "none.db").exists()
    status, _, err = _diff(capsys, str(old), str(tmp_path / "absent"))
    assert status == 2
    assert "no such policy directory" in err


def test_a_database_without_a_log_is_named_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_policy(tmp_path / "old")
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    status, _, err = _diff(capsys, str(old), str(old), "--log", str(other))
    assert status == 2
    assert f"{other}: cannot read an accountability log there" in err
    status, _, err = _diff(capsys, str(old), str(old), "--log",
                           "postgresql+psycopg://auditor:s3cret@127.0.0.1:1/none")
    assert status == 2
    assert "cannot read an accountability log there" in err
    assert "s3cret" not in err


# -- replaying the log -----------------------------------------------------------------------

MONITORING = """\
purposes:
  - id: monitoring
    description: Following up the plan.
    legal_bases: [wgs]
    processing_activity: https://zvh.example/register/pa-monitoring
    phases: [case_meeting]
    partner_types: [police]

rules:
  - id: reason-for-monitoring
    reason: Following up needs the reason of the case.
    purposes: [monitoring]
    fields: [case.reason]
    effect: disclose
"""


def _new_policy(directory: Path) -> Path:
    """The sample without the monitoring purpose, with three outcomes changed."""
    new = write_policy(directory)
    # The police chain partner gets the name redacted instead of as initials.
    edit(new, "rules/rules.yaml", "    transform: initials\n", "    transform: redact\n")
    # The GGZ no longer gets the reason of the case in the case meeting.
    # The police case director learns whether a diagnosis is on record.
    edit(new, "purposes.yaml", "      police: [wpg-19]\n", "      police: [wpg-19, avg-9-2-g]\n")
    edit(new, "rules/rules.yaml", "  - id: reason-in-code-rood",
         "  - id: no-reason-for-ggz-in-meetings\n"
         "    reason: The GGZ hears the reason in the meeting itself.\n"
         "    who:\n      partner_types: [ggz]\n"
         "    purposes: [analysis_and_plan]\n    phases: [case_meeting]\n"
         "    fields: [case.reason]\n    effect: withhold\n\n"
         "  - id: diagnosis-on-record-for-police-director\n"
         "    reason: The police case director weighs whether care is involved.\n"
         "    who:\n      partner_types: [police]\n      roles: [case_director]\n"
         "    purposes: [analysis_and_plan]\n"
         "    fields: [ggz.diagnosis]\n    effect: mask\n    transform: presence\n\n"
         "  - id: reason-in-code-rood")
    return new


async def _fill_log(old: Path, keys: Path, db_url: str) -> None:
    """Real requests through a gateway running the old policy; each leaves a log record."""
    policy = load_policy_dir(old)
    init_dev_keys(keys, sorted(policy.partners))
    config = gateway_config(db_url, keys, policy_dir=old, policy_reload_interval_s=0)
    gateway = await start_gateway(config, policy=policy, sources={})
    def client(partner: str, role: str) -> PartnerClient:
        creds = PartnerCredentials.from_key_dir(keys, partner)
        return PartnerClient(f"localhost:{gateway.port}", creds, role=role)

    police, director = client("police", "chain_partner"), client("zvh", "process_director")
    police_director, ggz = client("police", "case_director"), client("ggz", "chain_partner")
    try:
        case_id = (await police.register_case(SUBJECT, "general", reason=REASON, goal=GOAL,
                                              invitees=["zvh"],
                                              casusregie_partner="police")).case_id
        await accept(director, case_id)
        await director.change_phase(case_id, "registration", "triage")
        await director.change_phase(case_id, "triage", "case_meeting")
        asked = ["subject.name", "subject.bsn", "case.notes"]
        for _ in range(2):
            await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting",
                                            fields=asked)
        await police_director.request_disclosure(case_id, "analysis_and_plan", "case_meeting",
                                                 fields=["subject.name", "ggz.diagnosis"])
        with pytest.raises(grpc.aio.AioRpcError):  # not (yet) taking part: refused
            await ggz.request_disclosure(case_id, "analysis_and_plan", "case_meeting",
                                         fields=["subject.name", "case.reason"])
        await director.invite(case_id, "ggz")
        await ggz.request_disclosure(case_id, "analysis_and_plan", "case_meeting",
                                     fields=["subject.name", "case.reason"])
        await police.request_disclosure(case_id, "acute_safety", "case_meeting",
                                        fields=["case.reason", "subject.name"],
                                        justification="Threat of violence tonight.")
        await police.request_disclosure(case_id, "monitoring", "case_meeting",
                                        fields=["case.reason"])
        with pytest.raises(grpc.aio.AioRpcError):  # a purpose no policy knows
            await police.request_disclosure(case_id, "case_meeting", "case_meeting")
        with pytest.raises(grpc.aio.AioRpcError):  # the case is not in this phase
            await police.request_disclosure(case_id, "analysis_and_plan", "plan",
                                            fields=["subject.name"])
    finally:
        for c in (police, director, police_director, ggz):
            await c.close()
        await gateway.stop(grace=None)


async def test_the_log_replayed_under_the_new_policy_counts_what_would_change(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_policy(tmp_path / "old", {"monitoring.yaml": MONITORING})
    new = _new_policy(tmp_path / "new")
    await _fill_log(old, tmp_path / "keys", db_url)
    # A SQLite log is named by its path, as an operator would; PostgreSQL by its URL.
    log = db_url.removeprefix("sqlite:///") if db_url.startswith("sqlite") else db_url

    status, out, _ = _diff(capsys, str(old), str(new), "--log", log, "--format", "json")
    assert status == 1
    replay: dict[str, Any] = json.loads(out)["log"]
    assert replay["records_read"] == 9
    assert list(replay["versions"].values()) == [9]
    assert replay["replayed"] == 6
    assert replay["not_replayed"] == {
        "purpose 'monitoring' is not in the new policy": 1,
        "refused by the gateway before or outside the policy (unknown_purpose)": 1,
        "refused by the gateway before or outside the policy (phase_mismatch)": 1,
    }
    assert replay["per_field"] == [
        {"partner": "ggz", "field": "case.reason", "change": "would now be withheld",
         "count": 1},
        {"partner": "police", "field": "ggz.diagnosis", "change": "would now be released",
         "count": 1},
        {"partner": "police", "field": "subject.name",
         "change": "would now be shown differently", "count": 2},
    ]
    assert replay["changed_records"] == 4
    # The refusal for not taking part stays a refusal; the Code Rood request names its
    # justification, so it is replayed with one and stays permitted.
    assert replay["now_refused"] == 0
    assert replay["now_permitted"] == 0

    status, out, _ = _diff(capsys, str(old), str(new), "--log", log)
    assert status == 1
    text = out[out.index("accountability log replayed"):]
    assert "  9 decision records read (9 under sha256:" in text
    assert "  6 replayed, 3 could not be replayed" in text
    assert "    police           subject.name       2  would now be shown differently" in text
    assert "        1  purpose 'monitoring' is not in the new policy" in text


def test_diff_on_the_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _diff(capsys, str(shipped_policy_dir()), str(shipped_policy_dir()))
    assert status == 0, err
    assert out.splitlines()[-1] == "no outcome changes"


def test_an_expired_break_glass_refusal_is_not_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The record does not hold how long break-glass access had been in use, so deciding it
    again would reopen the purpose; it is counted apart, with the reason."""
    old = write_policy(tmp_path / "old")
    log = tmp_path / "log.db"
    database = Database.open(f"sqlite:///{log}")
    try:
        database.audit.append_sync([event(
            kind=RecordKind.REFUSAL, partner_id="police", role="chain_partner",
            purpose="acute_safety", phase="case_meeting", status="refused",
            refusal_code="break_glass_expired", break_glass=True, justification_ref="j-1",
            fields=(FieldEntry("case.reason", "case_file", "withheld", None, "zvh",
                               "not_requested"),))])
    finally:
        database.close()
    status, out, _ = _diff(capsys, str(old), str(old), "--log", str(log), "--format", "json")
    replay = json.loads(out)["log"]
    assert (replay["records_read"], replay["replayed"], replay["now_permitted"]) == (1, 0, 0)
    assert replay["not_replayed"] == {
        "refused because break-glass access had expired; the record does not hold how long "
        "break-glass access had been in use": 1}
    assert status == 0
