"""Steps every case of the demo takes: registering its persons, the intake, the regie, the
phases, and the privacy officer's look at what the log says of it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence

from gateway.api.v1 import cases_pb2, common_pb2
from gateway.cli.demo_checks import Demo
from gateway.cli.demo_views import CaseView, PersonView
from gateway.crypto._pem import load_ed25519_public_key
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.pseudonym import person_pseudonym, subject_pseudonym
from gateway.store.checkpoints import open_checkpoint
from gateway.store.merkle import leaf_hash, verify_inclusion

PHASES = ("registration", "triage", "case_meeting", "plan", "monitoring", "closure")


async def register(
    demo: Demo,
    title: str,
    registrant: str,
    approach: str,
    persons: Mapping[str, common_pb2.PersonInput],
    *,
    reason: str,
    goal: str,
    invitees: Sequence[str],
    casusregie: str,
) -> CaseView:
    """Register the case sealed to the gateway's key, with its persons, and check the answer."""
    reg = await demo.clients[registrant].register_case(
        None, "", approach=approach, reason=reason, goal=goal, invitees=list(invitees),
        persons=list(persons.values()), casusregie_partner=casusregie,
    )
    case = CaseView(title, reg.case_id, approach)
    for (label, person), ref in zip(persons.items(), reg.persons, strict=True):
        identity = common_pb2.PersonInput()
        identity.CopyFrom(person)
        case.persons[ref.person_id] = PersonView(ref.person_id, label, ref.role_in_case, identity)
    case.write("case.reason", reason, registrant)
    if goal:
        case.write("case.goal", goal, registrant)
    demo.cases.append(case)
    await refresh_regie(demo, case)
    roles_ok = [p.role for p in case.persons.values()] == [p.role_in_case for p in persons.values()]
    demo.checks.check(
        reg.phase == "registration"
        and roles_ok
        and set(reg.participants) == {registrant, *invitees, "zvh"},
        f"{approach} case {case.case_id[:10]}… registered by {registrant} (sealed): "
        f"{len(case.persons)} person(s) "
        f"({', '.join(f'{p.label}: {p.role}' for p in case.persons.values())}); "
        f"participants {', '.join(reg.participants)}; casusregie with {case.casusregie}",
    )
    return case


async def accept_intake(demo: Demo, case: CaseView, reason: str) -> None:
    """The ZVH's process director takes the case on; the regie holders are read back."""
    intake = await demo.clients["zvh"].cases.decide_intake(case.case_id, cases_pb2.ACCEPT, reason)
    await refresh_regie(demo, case)
    demo.checks.check(
        intake.intake == cases_pb2.INTAKE_ACCEPTED and case.procesregie == "zvh",
        f"intake accepted: procesregie to {case.procesregie}, "
        f"casusregie with {case.casusregie or 'nobody yet'}",
    )


async def refresh_regie(demo: Demo, case: CaseView) -> None:
    got = await demo.clients["zvh"].cases.get_case(case.case_id)
    case.procesregie = got.case.procesregie.partner_id
    case.casusregie = got.case.casusregie.partner_id


async def move(demo: Demo, case: CaseView, to_phase: str) -> None:
    """The procesregisseur moves the case on, one phase at a time."""
    got = await demo.clients["zvh"].cases.get_case(case.case_id)
    start = PHASES.index(got.case.phase)
    for before, after in zip(PHASES[start:], PHASES[start + 1 :], strict=False):
        await demo.clients["zvh"].change_phase(case.case_id, before, after)
        if after == to_phase:
            return


async def check_log(
    demo: Demo, case: CaseView, bsn: str, label: str, identified_at: int = 0
) -> list[int]:
    """The privacy officer finds every disclosure, refusal and triage of the case in the log,
    no value in any record, and the subject's access report by BSN listing exactly the
    records about that person: for a person registered without a BSN and identified at log
    record ``identified_at``, those under the person's own pseudonym, made before the BSN
    was known. Returns the seqs of the case's disclosure records."""
    officer = demo.clients["privacy-officer"]
    listing = await officer.list_disclosures(case_id=case.case_id, page_size=1000)
    entries = list(listing.entries)
    disclosure_ids = {e.disclosure_id for e in entries if e.kind == "disclosure"}
    triage_ids = {e.disclosure_id for e in entries if e.kind == "triage"}
    refusals = [e for e in entries if e.kind == "refusal" and e.purpose]
    codes = Counter(e.refusal_code for e in refusals)
    demo.checks.check(
        len(disclosure_ids) == case.disclosures
        and len(triage_ids) == case.triages
        and len(refusals) == case.refusals
        and Counter(case.refusal_codes) <= codes,
        f"the log holds the case's {len(disclosure_ids)} disclosures (one record per person: "
        f"{sum(1 for e in entries if e.kind == 'disclosure')}), {len(triage_ids)} triage(s) "
        f"and {len(refusals)} refused requests ({', '.join(sorted(codes))})",
    )
    # A disclosure is incomplete as a whole; the record of a person no unavailable source was
    # asked about has no unavailable field, the others name the source.
    incomplete: dict[str, bool] = {}
    for e in entries:
        if e.kind == "disclosure" and e.status == "incomplete":
            incomplete[e.disclosure_id] = incomplete.get(e.disclosure_id, False) or any(
                f.availability == common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE for f in e.fields
            )
    demo.checks.check(
        all(incomplete.values()),
        f"{len(incomplete)} incomplete disclosure(s): their records say which source was "
        "unavailable",
    )
    values = _case_values(demo, case)
    leaked = [v for e in entries for v in values if v in str(e)]
    demo.checks.check(not leaked, "no name, BSN, text or field value in any log record")
    person = next(p for p in case.persons.values() if p.identity.bsn == bsn)
    pseudonym = (
        person_pseudonym(demo.pseudonym_key, person.person_id)
        if identified_at
        else subject_pseudonym(demo.pseudonym_key, bsn)
    )
    expected = {
        e.seq
        for e in entries
        if e.kind in ("disclosure", "triage")
        and e.status in ("ok", "incomplete")
        and e.subject_pseudonym == pseudonym
    }
    report = await officer.subject_access_report(bsn, language="en")
    listed = {d["seq"] for d in json.loads(report.document)["disclosures"]}
    before = sum(1 for seq in expected if seq < identified_at)
    demo.checks.check(
        listed == expected
        and bool(listed)
        and (not identified_at or before > 0)
        and bsn not in report.document.decode(),
        f"the access report for {label}'s BSN lists exactly the {len(expected)} records "
        "about that person, and no BSN"
        + (f"; {before} of them made before the BSN was known" if identified_at else ""),
    )
    return sorted(e.seq for e in entries if e.kind == "disclosure")


async def verify_prove_and_review(demo: Demo, seq: int, break_glass: int) -> None:
    """The whole log verifies; one record is proven in the signed tree with the log key alone;
    the break-glass disclosures wait for the privacy officer's review, which closes them."""
    officer = demo.clients["privacy-officer"]
    checks = demo.checks
    verified = await officer.verify_log()
    checks.check(
        verified.ok,
        f"the log verifies: {verified.records_checked} records, hash chain intact, "
        f"{verified.checkpoints_checked} signed checkpoint(s) match",
    )
    proof = await officer.prove_inclusion(seq)
    keys = GatewayKeyPaths.under(demo.gateway.config.keys_dir)
    checkpoint = open_checkpoint(proof.checkpoint.note, [load_ed25519_public_key(keys.signing_pub)])
    checks.check(
        verify_inclusion(
            leaf_hash(proof.body.encode()), proof.leaf_index, proof.tree_size,
            list(proof.path), checkpoint.root_hash,
        ),
        f"record {seq} is proven in the signed tree of {proof.tree_size} records",
    )
    waiting = await officer.list_break_glass_reviews()
    checks.check(
        len(waiting.reviews) == break_glass
        and all(r.disclosure.break_glass for r in waiting.reviews),
        f"{len(waiting.reviews)} break-glass record(s) wait for the privacy officer's review",
    )
    for review in waiting.reviews:
        await officer.close_break_glass_review(
            review.disclosure.seq, "justified", "Acute danger; justification on file."
        )
    after = await officer.list_break_glass_reviews()
    checks.check(not after.reviews, "the reviews are closed and recorded in the log")


def _case_values(demo: Demo, case: CaseView) -> list[str]:
    values = [e.text for e in case.entries]
    for person in case.persons.values():
        ident = person.identity
        values += [ident.bsn, ident.name, ident.address, ident.description]
    for records in demo.backends.values():
        values += [v for r in records.records.values() for v in r.fields.values()]
    return [v for v in values if len(v) > 3]
