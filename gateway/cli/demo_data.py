"""Fictional data for the demo: one Code Rood subject as the partner systems know them.

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

# What each partner's own system holds about the subject, keyed by partner type. Every field
# the catalogue gives a partner type as its source has a value here.
SOURCE_RECORDS: dict[str, SubjectRecord] = {
    "police": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="suspect",
        fields={
            "police.incidents": "2026-10-02 domestic violence call-out; 2026-10-19 threat; "
            "2026-11-14 assault, arrested",
            "police.antecedents_summary": "Suspect of assault in 2019 and 2022",
            "police.weapon_flag": "yes: knife found at address 2026-11-14",
            "police.neighbourhood_officer": "Wijkagent team Enschede-Zuid, 0900-8844",
        },
    ),
    "om": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="suspect",
        fields={
            "om.case_status": "Assault 2026-11-14: summoned, hearing 2027-01-20",
            "om.pending_cases": "Threat 2026-10-19: under investigation",
            "om.judicial_documentation": "Convicted of assault 2019 (fine) and 2022 "
            "(conditional sentence)",
        },
    ),
    "probation": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="supervised person",
        fields={
            "prob.supervision_conditions": "Supervision for two years from December 2025",
            "prob.special_conditions": "Contact ban with partner; weekly reporting; "
            "alcohol abstinence with monitoring",
            "prob.treatment_condition": "Outpatient treatment for aggression at the GGZ",
            "prob.compliance": "Reporting kept to; alcohol ban violated 2026-11-14",
            "prob.risc_assessment": "RISc: high risk of reoffending (violence)",
        },
    ),
    "child_protection": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="parent",
        fields={
            "gi.child_protection_measure": "Supervision order for both children since "
            "2026-06; youth protector assigned",
        },
    ),
    "dji": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="former detainee",
        fields={
            "dji.detention_status": "Not detained; detained from June to December 2025",
            "dji.release_date": "2025-12-01",
        },
    ),
    "ggz": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="client",
        fields={
            "ggz.diagnosis": "Intermittent explosive disorder",
            "ggz.treatment_status": "Outpatient treatment since 2025-06; "
            "missed last three sessions",
            "ggz.care_involved": "FACT team Enschede, 053-480 1234",
        },
    ),
    "addiction_care": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="client",
        fields={
            "addiction.substance_use": "Alcohol use disorder, daily use",
            "addiction.treatment_status": "Intake done 2026-09; waiting for treatment",
        },
    ),
    "veilig_thuis": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="alleged perpetrator",
        fields={
            "vt.victim_address": "Confidential shelter address, Hengelo",
            "vt.children_in_household": "2",
            "vt.victim_relation": "Partner, living together since 2015",
            "vt.risk_assessment": "High risk (repeat violence, weapon, escalation)",
            "vt.code_rood_assessment": "Criteria met 2026-11-14 (police, Veilig Thuis)",
            "vt.report_summary": "Report by school 2026-10-20: children fearful, "
            "bruise on older child",
            "vt.investigation_status": "Investigation since 2026-10-21; worker A. Bakker",
        },
    ),
    "municipality": SubjectRecord(
        bsn=SUBJECT.bsn,
        role="resident",
        fields={
            "mun.brp_address": "Lindenstraat 12, 7511 AB Enschede",
            "mun.household_composition": "Subject, partner, two children (6 and 9)",
            "mun.debts": "Debt counselling since 2025; arrears on rent",
            "mun.income": "Benefit under the Participatiewet",
            "mun.housing_status": "Social rental; eviction procedure started 2026-09",
            "mun.social_support": "Household help under the Wmo 2015 since 2024",
            "mun.restraining_order": "Huisverbod 2026-11-14 for ten days, extended to "
            "2026-12-12",
            "mun.area_ban": "Area ban around the shelter in Hengelo until 2027-02-15",
        },
    ),
    # The landlord is given no BSN (policies/partners.yaml, identifiers): it finds its tenant
    # by name and postcode.
    "housing_corporation": SubjectRecord(
        bsn=SUBJECT.bsn,
        name=SUBJECT.name,
        postcode=SUBJECT.postcode,
        role="tenant",
        fields={
            "housing.eviction_risk": "Four months of rent arrears; eviction hearing pending",
            "housing.nuisance_reports": "Neighbours reported shouting 2026-10-02 and "
            "2026-11-14",
        },
    ),
}
