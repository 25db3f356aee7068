"""Case 2 of the demo: Drang en dwang, one very active repeat offender at the justice core
table (the municipality, the OM, probation, the police and the ZVH).

Each partner at the table gets what the policy gives its partner type for the alleged
perpetrator; the housing corporation, which is not at the table, is refused whatever it asks.
The procesregisseur then hands the casusregie from the municipality to probation, and the
two are answered for their new roles.
"""

from __future__ import annotations

import grpc

from gateway.api.v1 import cases_pb2
from gateway.cli.demo_checks import Demo, disclose, expect_refusal
from gateway.cli.demo_data import DRANG_GOAL, DRANG_PERSONS, DRANG_REASON
from gateway.cli.demo_steps import accept_intake, check_log, move, refresh_regie, register
from gateway.cli.demo_triage import triage

APPROACH = "drang_en_dwang"
TABLE = ("municipality", "om", "probation", "police", "zvh")


async def play(demo: Demo) -> None:
    print("\n== Case 2: Drang en dwang, a repeat offender (registered by the police) ==")
    print("\n2.1 Registration and intake; the municipality leads on content")
    case = await register(
        demo, "Drang en dwang", "police", APPROACH, DRANG_PERSONS,
        reason=DRANG_REASON, goal=DRANG_GOAL, invitees=["municipality", "om", "probation"],
        casusregie="municipality",
    )
    await accept_intake(demo, case, "Repeat offender: the justice core table takes it on")

    print("\n2.2 Triage at the core table (probation's system is down)")
    await move(demo, case, "triage")
    await triage(demo, case, ("police", "om", "probation", "municipality"))

    print("\n2.3 The core table meets: every partner at it asks for the record")
    await move(demo, case, "case_meeting")
    for partner in TABLE:
        await disclose(demo, case, partner, "analysis_and_plan", "case_meeting")
    await demo.clients["zvh"].invite(case.case_id, "housing")
    await expect_refusal(
        demo, case, "housing", "analysis_and_plan", "case_meeting",
        grpc.StatusCode.PERMISSION_DENIED,
        "the housing corporation, invited but not at the core table, is refused",
        reason="not_on_approach_table",
    )

    print("\n2.4 The procesregisseur hands the casusregie to probation, which now leads")
    await demo.clients["zvh"].cases.transfer_regie(
        case.case_id, cases_pb2.CASUSREGIE, "probation",
        reason="Supervision is the core of the approach",
    )
    await refresh_regie(demo, case)
    mine = await demo.clients["probation"].cases.list_cases(assigned_to_me=True)
    demo.checks.check(
        case.casusregie == "probation" and case.case_id in {c.case_id for c in mine.cases},
        "casusregie with probation: its work surface lists the case as assigned to it",
    )
    await disclose(
        demo, case, "probation", "analysis_and_plan", "case_meeting",
        column="probation/analysis_and_plan (casusregisseur)",
    )
    await disclose(
        demo, case, "municipality", "analysis_and_plan", "case_meeting",
        column="municipality/analysis_and_plan (no longer casusregisseur)",
    )
    offender = case.person("offender")
    await check_log(demo, case, offender.identity.bsn, "the offender")
