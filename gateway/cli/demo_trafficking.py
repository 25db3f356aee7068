"""Case 3 of the demo: Mensenhandel, a presumed victim nobody can name yet.

The care coordinator registers the woman by a description only, and the man who exploits her
by name and date of birth. The police's specialised unit (AVIM) and the coordinator know who
and where she is; the municipality at the table does not (victim protection). When her BSN is
found, the coordinator records it, and her access report by that BSN finds the records made
about her before anyone knew it.
"""

from __future__ import annotations

from gateway.cli.demo_checks import Demo, disclose
from gateway.cli.demo_data import (
    TRAFFICKING_GOAL,
    TRAFFICKING_PERSONS,
    TRAFFICKING_REASON,
    TRAFFICKING_VICTIM_BSN,
)
from gateway.cli.demo_steps import accept_intake, check_log, move, register
from gateway.cli.demo_triage import triage

APPROACH = "mensenhandel"
COORDINATOR = "trafficking-care-coordination"


async def play(demo: Demo) -> None:
    print("\n== Case 3: Mensenhandel, an unidentified presumed victim (care coordinator) ==")
    print("\n3.1 Registration by description only, and intake")
    case = await register(
        demo, "Mensenhandel", COORDINATOR, APPROACH, TRAFFICKING_PERSONS,
        reason=TRAFFICKING_REASON, goal=TRAFFICKING_GOAL, invitees=["police_avim"],
        casusregie=COORDINATOR,
    )
    await accept_intake(demo, case, "Presumed human trafficking: the ZVH takes it on")

    print("\n3.2 Triage: nobody can be asked about the woman yet; the man is known")
    await move(demo, case, "triage")
    await triage(demo, case, ("police", "om", "municipality"))

    print("\n3.3 Case meeting: her identity stays with the coordinator, AVIM and the ZVH")
    await move(demo, case, "case_meeting")
    await demo.clients["zvh"].invite(case.case_id, "municipality")
    victim = case.person("victim")
    seen: dict[str, str | None] = {}
    seen_incidents: str | None = None
    for partner in (COORDINATOR, "police_avim", "municipality", "zvh"):
        answer = await disclose(demo, case, partner, "analysis_and_plan", "case_meeting")
        seen[partner] = answer.values_of(victim.person_id).get("subject.description")
        if partner == "police_avim":
            seen_incidents = answer.values_of(victim.person_id).get("police.incidents")
    demo.checks.check(
        seen[COORDINATOR] == victim.identity.description
        and seen["police_avim"] == victim.identity.description
        and seen["municipality"] is None,
        "the woman's description reached the coordinator and AVIM, not the municipality",
    )

    print("\n3.4 Her BSN is found; the access report by it finds the earlier records")
    identified = await demo.clients[COORDINATOR].identify_person(
        case.case_id, victim.person_id, TRAFFICKING_VICTIM_BSN
    )
    victim.identity.bsn = TRAFFICKING_VICTIM_BSN
    demo.checks.check(identified > 0, "the coordinator recorded her BSN (log record kept)")
    after = await disclose(
        demo, case, "police_avim", "analysis_and_plan", "case_meeting",
        column="police_avim/analysis_and_plan (BSN known)",
    )
    demo.checks.check(
        seen_incidents is None and bool(after.values_of(victim.person_id).get("police.incidents")),
        "AVIM now receives what the police system holds about her under that BSN",
    )
    await check_log(
        demo, case, TRAFFICKING_VICTIM_BSN, "the woman", identified_at=identified
    )
