"""Fictional data for the demo: one Code Rood subject as four partner systems know them.

Every name, number and address here is invented. The BSN passes the eleven-test but belongs
to nobody we know of; it exists so the gateway's validation can be shown working.
"""

from __future__ import annotations

from adapters.source_server import SubjectRecord
from gateway.api.v1 import common_pb2

SUBJECT = common_pb2.SubjectIdentity(
    bsn="111222333",
    name="Jan de Vries",
    date_of_birth="1984-03-07",
    address="Lindenstraat 12",
    postcode="7511 AB",
)

REASON = (
    "Acute domestic violence: third police call-out this month; partner and two children at home."
)
GOAL = "Safety of partner and children; stop the violence; treatment for the subject."

# What each partner's own system holds about the subject, keyed by partner type.
SOURCE_RECORDS: dict[str, SubjectRecord] = {
    "police": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="suspect",
        fields={
            "police.incidents": "2026-10-02 domestic violence call-out; 2026-10-19 threat; "
            "2026-11-14 assault, arrested",
            "police.antecedents_summary": "Two prior convictions for assault (2019, 2022)",
            "police.weapon_flag": "yes: knife found at address 2026-11-14",
        },
    ),
    "ggz": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="client",
        fields={
            "ggz.diagnosis": "Alcohol use disorder; intermittent explosive disorder",
            "ggz.treatment_status": "Outpatient treatment since 2025-06; "
            "missed last three sessions",
            "ggz.care_involved": "yes",
        },
    ),
    "municipality": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="resident",
        fields={
            "mun.household_composition": "Subject, partner, two children (6 and 9)",
            "mun.debts": "Debt counselling since 2025; arrears on rent",
            "mun.housing_status": "Social rental; eviction procedure started 2026-09",
        },
    ),
    "probation": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="supervised person",
        fields={
            "prob.supervision_conditions": "Contact ban with partner; weekly reporting; "
            "alcohol abstinence with monitoring",
            "prob.release_date": "2025-12-01",
        },
    ),
    "veilig_thuis": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="alleged perpetrator",
        fields={
            "vt.report_summary": "Report by school 2026-10-20: children fearful, "
            "bruise on older child",
            "vt.children_in_household": "2",
            "vt.risk_assessment": "High risk (repeat violence, weapon, escalation)",
        },
    ),
}
