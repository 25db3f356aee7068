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
            # As the GGZ provider's FHIR server gives it: its EpisodeOfCare's status, in the
            # words of deploy/source/ggz-fhir.yaml's map.
            "ggz.treatment_status": "in treatment",
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


# --- The three cases `ketenpoort demo` plays -------------------------------------------------
#
# Each person is a PersonInput as the registering partner sends it; CASE_RECORDS says what each
# partner's own system holds about each of them (a person a system does not know has no record
# there). Jan de Vries above is the alleged perpetrator of the Code Rood case, so SOURCE_RECORDS
# is his part of it.
#
# The police's, GGZ's, the municipality's and the housing corporation's records are also written
# into those partners' own systems (REST API, FHIR server, database, CSV export) that the demo
# runs behind the source runtime (gateway.demo_systems.seeds, gateway.cli.demo_system_data): a
# police incident is written "<date> <what happened>" and incidents are joined with "; ", the
# neighbourhood officer "<team>, <phone>", as the police API keeps them.


def _person(role: str, **identity: str) -> common_pb2.PersonInput:
    return common_pb2.PersonInput(role_in_case=role, **identity)


# 1. Code Rood: a family. The younger child is known by name and birth year only.
CODE_ROOD_PERSONS: dict[str, common_pb2.PersonInput] = {
    "perpetrator": _person(
        "alleged_perpetrator", bsn=SUBJECT.bsn, name=SUBJECT.name,
        date_of_birth=SUBJECT.date_of_birth, address=SUBJECT.address, postcode=SUBJECT.postcode,
    ),
    "victim": _person(
        "victim", bsn="234567892", name="Sanne Mulder", date_of_birth="1987-09-21",
        address="Confidential shelter address, Hengelo", postcode="7550 AA",
    ),
    "child_daan": _person(
        "child", bsn="345678126", name="Daan de Vries", date_of_birth="2017-05-12",
        address=SUBJECT.address, postcode=SUBJECT.postcode,
    ),
    "child_lotte": _person("child", name="Lotte de Vries", date_of_birth="2020"),
}
CODE_ROOD_REASON = (
    "Acute domestic violence: third police call-out this month; the mother and two children "
    "were at home."
)
CODE_ROOD_GOAL = "Safety of the mother and the children; stop the violence; treatment."

# 2. Drang en dwang: one very active repeat offender.
DRANG_PERSONS: dict[str, common_pb2.PersonInput] = {
    "offender": _person(
        "alleged_perpetrator", bsn="456781237", name="Kevin Smit", date_of_birth="1996-02-03",
        address="Stationsplein 4", postcode="7511 JD",
    ),
}
DRANG_REASON = "Fourteen shop thefts and two burglaries in a year; homeless since the spring."
DRANG_GOAL = "Stop the offending: housing, debt counselling and supervision, agreed together."

# 3. Mensenhandel: a presumed victim nobody can name yet, and a man known by name and birth date.
TRAFFICKING_PERSONS: dict[str, common_pb2.PersonInput] = {
    "victim": _person(
        "victim",
        description="Young woman, about 20, speaks Romanian; met by the care coordinator at a "
        "massage parlour in Hengelo on 2026-11-20; no papers.",
    ),
    "exploiter": _person(
        "alleged_perpetrator", name="Marco Visser", date_of_birth="1979-08-30",
    ),
}
# Found on the papers the police recovered from the exploiter's house, after registration.
TRAFFICKING_VICTIM_BSN = "567812340"
TRAFFICKING_REASON = (
    "Presumed labour and sexual exploitation; the woman works and lives at the parlour."
)
TRAFFICKING_GOAL = "Safe shelter and care for the woman; investigation of the exploitation."

_JAN = {t: r for t, r in SOURCE_RECORDS.items()}
_SANNE = CODE_ROOD_PERSONS["victim"]
_DAAN = CODE_ROOD_PERSONS["child_daan"]
_LOTTE_NAME, _LOTTE_DOB = "Lotte de Vries", "2020-02-14"
_KEVIN = DRANG_PERSONS["offender"]
_MARCO = TRAFFICKING_PERSONS["exploiter"]

# What each partner type's own system holds, per person of the three cases.
CASE_RECORDS: dict[str, list[SubjectRecord]] = {
    "police": [
        _JAN["police"],
        SubjectRecord(
            bsn=_SANNE.bsn, role="victim",
            fields={
                "police.incidents": "2026-11-14 reported assault by her partner",
                "police.antecedents_summary": "Shoplifting 2008 (settled)",
                "police.neighbourhood_officer": "Wijkagent team Hengelo-Noord, 0900-8844",
            },
        ),
        SubjectRecord(
            bsn=_DAAN.bsn, role="witness",
            fields={
                "police.incidents": "2026-11-14 present at the call-out, gave a child statement",
            },
        ),
        SubjectRecord(
            bsn=_KEVIN.bsn, role="suspect",
            fields={
                "police.incidents": "2026-08-19 burglary; 2026-03-02 burglary; "
                "2026 fourteen shop thefts",
                "police.antecedents_summary": "Known repeat offender (veelpleger) since 2019",
                "police.weapon_flag": "no",
                "police.neighbourhood_officer": "Wijkagent team Enschede-Centrum, 0900-8844",
            },
        ),
        SubjectRecord(
            bsn="", name=_MARCO.name, date_of_birth=_MARCO.date_of_birth, role="suspect",
            fields={
                "police.incidents": "2026-11-20 raid at a massage parlour, Hengelo",
                "police.antecedents_summary": "Pimping 2015 (conviction)",
                "police.weapon_flag": "yes: firearm licence revoked 2016",
            },
        ),
        SubjectRecord(
            bsn=TRAFFICKING_VICTIM_BSN, role="presumed victim",
            fields={"police.incidents": "2026-11-20 met during a raid, statement pending"},
        ),
    ],
    "om": [
        _JAN["om"],
        SubjectRecord(
            bsn=_KEVIN.bsn, role="suspect",
            fields={
                "om.case_status": "Burglary 2026-08-19: summoned, hearing 2027-02-03",
                "om.pending_cases": "Nine shop thefts: to be joined",
                "om.judicial_documentation": "Twenty-one convictions since 2014 (theft)",
            },
        ),
        SubjectRecord(
            bsn="", name=_MARCO.name, date_of_birth=_MARCO.date_of_birth, role="suspect",
            fields={"om.case_status": "Human trafficking: under investigation since 2026-11-20"},
        ),
    ],
    "probation": [
        _JAN["probation"],
        SubjectRecord(
            bsn=_KEVIN.bsn, role="supervised person",
            fields={"prob.supervision_conditions": "Supervision since 2026-01 (conditional)"},
        ),
    ],
    "child_protection": [
        _JAN["child_protection"],
        SubjectRecord(
            bsn=_DAAN.bsn, role="child under supervision",
            fields={"gi.child_protection_measure": "Supervision order since 2026-06"},
        ),
        SubjectRecord(
            bsn="", name=_LOTTE_NAME, date_of_birth=_LOTTE_DOB, role="child under supervision",
            fields={"gi.child_protection_measure": "Supervision order since 2026-06"},
        ),
    ],
    "dji": [_JAN["dji"]],
    "ggz": [
        _JAN["ggz"],
        SubjectRecord(
            bsn=_SANNE.bsn, role="client",
            fields={
                "ggz.diagnosis": "Post-traumatic stress",
                "ggz.care_involved": "Trauma care team Hengelo",
            },
        ),
    ],
    "addiction_care": [_JAN["addiction_care"]],
    "veilig_thuis": [
        _JAN["veilig_thuis"],
        SubjectRecord(
            bsn=_SANNE.bsn, role="victim",
            fields={
                "vt.victim_address": "Confidential shelter address, Hengelo",
                "vt.risk_assessment": "High risk; safety plan with the shelter",
            },
        ),
        SubjectRecord(
            bsn=_DAAN.bsn, role="child",
            fields={"vt.report_summary": "School report 2026-10-20: fearful, bruise on arm"},
        ),
        SubjectRecord(
            bsn="", name=_LOTTE_NAME, date_of_birth=_LOTTE_DOB, role="child",
            fields={"vt.report_summary": "Toddler at home during the incidents"},
        ),
    ],
    "municipality": [
        _JAN["municipality"],
        SubjectRecord(
            bsn=_SANNE.bsn, role="resident",
            fields={
                "mun.brp_address": "Confidential (shelter), Hengelo",
                "mun.social_support": "Shelter place under the Wmo 2015 since 2026-11-15",
            },
        ),
        SubjectRecord(
            bsn=_DAAN.bsn, role="resident",
            fields={"mun.household_composition": "Living with his mother at the shelter"},
        ),
        SubjectRecord(
            bsn=_KEVIN.bsn, role="resident",
            fields={
                "mun.brp_address": "Postal address only: Stationsplein 4 (day shelter)",
                "mun.debts": "Debts of about 18,000 euro; no counselling yet",
                "mun.income": "None registered",
                "mun.housing_status": "Homeless since 2026-04",
                "mun.area_ban": "Area ban for the city centre shops until 2027-03-01",
            },
        ),
        SubjectRecord(
            bsn="", name=_MARCO.name, date_of_birth=_MARCO.date_of_birth, role="resident",
            fields={"mun.brp_address": "Boulevard 1945 nr. 80, 7511 AE Enschede"},
        ),
    ],
    "housing_corporation": [
        _JAN["housing_corporation"],
        SubjectRecord(
            bsn="", name=_KEVIN.name, postcode="7511 JD", role="former tenant",
            fields={"housing.eviction_risk": "Evicted 2026-04 for arrears"},
        ),
    ],
}
