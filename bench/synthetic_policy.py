"""A synthetic but realistic policy of 40 fields, written as YAML documents in code.

The benchmark needs a policy of the size a full covenant reaches (about ten partner types,
four roles, five purposes, six phases, twelve categories, forty fields and sixty rules that
mix categories and fields, masks, withholds and overrides) and must not depend on the state
of the shipped set in ``policies/``. The content follows the shipped covenant: the same
partner types, roles and phases, and rules in the same spirit, so that the compiled tables
have the shape production has.

``documents()`` returns file name -> YAML text, ready for ``gateway.core.load_policy``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

PARTNER_TYPES = {
    "police": "Politie.",
    "om": "Openbaar Ministerie - the public prosecution service.",
    "probation": "Reclassering - probation service.",
    "child_protection": "Raad voor de Kinderbescherming and the certified institutions (GI).",
    "dji": "Dienst Justitiele Inrichtingen - the prison service.",
    "ggz": "Mental-health care (GGZ).",
    "addiction_care": "Addiction care (verslavingszorg).",
    "veilig_thuis": "Veilig Thuis - advice and reporting point for domestic violence.",
    "municipality": "Gemeente - social domain, public order and safety.",
    "housing_corporation": "Woningcorporatie - social housing.",
    "zvh": "The Zorg- en Veiligheidshuis's own staff.",
}
ROLES = {
    "chain_partner": "A professional of a partner who takes part in the case.",
    "case_director": "A partner's professional who leads on the content of the case.",
    "process_director": "The ZVH's process director, who steers the process of the case.",
    "privacy_officer": "The ZVH's privacy officer, who reviews the log. Sees no case content.",
}
CHAIN = ["chain_partner", "case_director"]
# id, type, display name, roles
PARTNERS = [
    ("police", "police", "Politie", CHAIN),
    ("om", "om", "Openbaar Ministerie", CHAIN),
    ("probation", "probation", "Reclassering", CHAIN),
    ("rvdk", "child_protection", "Raad voor de Kinderbescherming", CHAIN),
    ("gi", "child_protection", "Gecertificeerde instelling", CHAIN),
    ("dji", "dji", "DJI", ["chain_partner"]),
    ("ggz", "ggz", "GGZ-instelling", CHAIN),
    ("addiction-care", "addiction_care", "Verslavingszorg", CHAIN),
    ("veilig-thuis", "veilig_thuis", "Veilig Thuis", CHAIN),
    ("municipality", "municipality", "Gemeente", CHAIN),
    ("housing", "housing_corporation", "Woningcorporatie", ["chain_partner"]),
    ("zvh", "zvh", "Zorg- en Veiligheidshuis", ["process_director", "privacy_officer"]),
]
PHASES = {
    "registration": "Aanmelding - a partner registers the case.",
    "triage": "Weekly triage - which partners know the subject?",
    "case_meeting": "Casusoverleg - the invited partners analyse the case together.",
    "plan": "Plan van aanpak - actions, owners and deadlines are agreed.",
    "monitoring": "The actions of the plan are carried out and followed up.",
    "closure": "The case is closed; no exchange of case data.",
}
# id, permits (special regimes), title
LEGAL_BASES = [
    ("wgs-supply", [], "WGS - supply of data to and by the ZVH"),
    ("avg-6-1-d", [], "AVG art. 6(1)(d) - vital interests"),
    ("avg-6-1-e", [], "AVG art. 6(1)(e) - public task"),
    ("avg-9-2-c", ["art9"], "AVG art. 9(2)(c) - vital interests, health data"),
    ("avg-9-2-g", ["art9"], "AVG art. 9(2)(g) with UAVG art. 30 - substantial public interest"),
    ("uavg-33", ["art10"], "UAVG art. 33 - criminal data within a partnership"),
    ("wpg-19", [], "Wpg art. 19 - police data for a partnership"),
    ("wjsg-39f", ["art10"], "Wjsg art. 39f - criminal-justice data"),
    ("wgbo-conflict-of-duties", ["art9"], "WGBO - conflict of duties of a care worker"),
    ("jeugdwet-7-3-11", ["art9"], "Jeugdwet art. 7.3.11 - youth care data"),
]
ALL_TYPES = list(PARTNER_TYPES)
ACUTE_TYPES = ["police", "veilig_thuis", "municipality", "child_protection", "zvh"]
# id, phases, partner types, legal bases, by partner type, extra keys
PURPOSES: list[tuple[str, list[str], list[str], list[str], dict[str, list[str]],
                     dict[str, Any]]] = [
    ("triage", ["triage"], ALL_TYPES, ["wgs-supply", "avg-6-1-e"], {},
     {"requires_participation": False}),
    ("assess_and_accept", ["registration", "triage"],
     ["zvh", "police", "municipality", "veilig_thuis", "om"], ["wgs-supply", "avg-6-1-e"],
     {"police": ["wpg-19"], "om": ["wjsg-39f"]}, {}),
    ("analysis_and_plan", ["case_meeting", "plan"], ALL_TYPES,
     ["wgs-supply", "avg-6-1-e", "avg-9-2-g", "uavg-33"],
     {"police": ["wpg-19"], "om": ["wjsg-39f"], "ggz": ["wgbo-conflict-of-duties"],
      "child_protection": ["jeugdwet-7-3-11"]}, {}),
    ("coordinate_interventions", ["plan", "monitoring"], ALL_TYPES,
     ["wgs-supply", "avg-6-1-e", "avg-9-2-g", "uavg-33"],
     {"police": ["wpg-19"], "probation": ["wjsg-39f"]}, {}),
    ("acute_safety", ["registration", "triage", "case_meeting", "plan", "monitoring"],
     ACUTE_TYPES, ["wgs-supply", "avg-6-1-d", "avg-6-1-e", "avg-9-2-c", "uavg-33"],
     {"police": ["wpg-19"]},
     {"requires_justification": True, "break_glass": True, "max_duration_minutes": 1440}),
]
# id, special, description
CATEGORIES = [
    ("identifying", None, "Who the subject is."),
    ("contact", None, "Where the subject lives."),
    ("household", None, "Household members and children."),
    ("index", None, "The triage answer: is the subject known to the partner?"),
    ("case_file", None, "The ZVH's own record of the case."),
    ("plan", None, "Actions and owners of the plan of approach."),
    ("police_data", None, "Police registrations under the Wet politiegegevens."),
    ("criminal_justice", "art10", "Prosecution, convictions, detention and supervision."),
    ("health", "art9", "Mental-health and addiction care."),
    ("youth_care", None, "Child-protection measures and Veilig Thuis reports."),
    ("risk", None, "Structured risk assessments."),
    ("social", None, "Debts, benefits and housing."),
]
# id, category, source, kind, special (None: the category's)
FIELDS = [
    ("subject.name", "identifying", "zvh", "name", None),
    ("subject.date_of_birth", "identifying", "zvh", "date", None),
    ("subject.bsn", "identifying", "zvh", "identifier", None),
    ("subject.place_of_birth", "identifying", "zvh", "text", None),
    ("subject.address", "contact", "zvh", "text", None),
    ("subject.postcode", "contact", "zvh", "postcode", None),
    ("household.members", "household", "municipality", "text", None),
    ("household.children", "household", "municipality", "text", None),
    ("police.known", "index", "police", "text", None),
    ("probation.known", "index", "probation", "text", None),
    ("ggz.known", "index", "ggz", "text", None),
    ("veilig_thuis.known", "index", "veilig_thuis", "text", None),
    ("case.reason", "case_file", "zvh", "text", None),
    ("case.goal", "case_file", "zvh", "text", None),
    ("case.notes", "case_file", "zvh", "text", None),
    ("case.registered_by", "case_file", "zvh", "text", None),
    ("plan.actions", "plan", "zvh", "text", None),
    ("plan.owners", "plan", "zvh", "name", None),
    ("police.incidents", "police_data", "police", "text", None),
    ("police.signals", "police_data", "police", "text", None),
    ("police.weapons", "police_data", "police", "text", None),
    ("police.area_ban", "police_data", "police", "text", None),
    ("om.prosecutions", "criminal_justice", "om", "text", None),
    ("om.convictions", "criminal_justice", "om", "text", None),
    ("dji.detention_status", "criminal_justice", "dji", "text", None),
    ("dji.release_date", "criminal_justice", "dji", "date", None),
    ("probation.supervision", "criminal_justice", "probation", "text", None),
    ("probation.special_conditions", "criminal_justice", "probation", "text", None),
    ("ggz.diagnosis", "health", "ggz", "text", None),
    ("ggz.treatment_status", "health", "ggz", "text", None),
    ("ggz.care_involved", "health", "ggz", "text", None),
    ("addiction.treatment", "health", "addiction_care", "text", None),
    ("child_protection.measure", "youth_care", "child_protection", "text", None),
    ("child_protection.guardian", "youth_care", "child_protection", "name", None),
    # Reports of domestic violence describe injuries: health data in a plain category.
    ("veilig_thuis.reports", "youth_care", "veilig_thuis", "text", "art9"),
    ("risk.code_rood_score", "risk", "zvh", "text", None),
    ("risk.assessment_summary", "risk", "zvh", "text", None),
    ("municipality.debts", "social", "municipality", "text", None),
    ("municipality.benefits", "social", "municipality", "text", None),
    ("housing.nuisance_reports", "social", "housing_corporation", "text", None),
]

AA, AP, CI, AS, TR = ("assess_and_accept", "analysis_and_plan", "coordinate_interventions",
                      "acute_safety", "triage")
CASE = [AA, AP, CI, AS]
CONTENT = [c for c, _, _ in CATEGORIES if c != "index"]
PD = {"partner_types": ["zvh"], "roles": ["process_director"]}
HEALTH_OVERRIDE = ("The covenant makes this exception to the withheld health data on purpose; "
                   "the care worker's conflict of duties allows it.")


def _rule(rule_id: str, purposes: Sequence[str], effect: str, *,
          fields: Sequence[str] = (), categories: Sequence[str] = (),
          types: Sequence[str] | None = None, roles: Sequence[str] | None = None,
          who: Mapping[str, Sequence[str]] | None = None, phases: Sequence[str] | None = None,
          transform: str | None = None, length: int | None = None,
          override: bool = False) -> dict[str, Any]:
    rule: dict[str, Any] = {"id": rule_id, "reason": f"Covenant rule {rule_id}."}
    who = dict(who or {})
    if types is not None:
        who["partner_types"] = list(types)
    if roles is not None:
        who["roles"] = list(roles)
    if who:
        rule["who"] = {k: list(v) for k, v in who.items()}
    rule["purposes"] = list(purposes)
    if phases is not None:
        rule["phases"] = list(phases)
    if fields:
        rule["fields"] = list(fields)
    if categories:
        rule["categories"] = list(categories)
    rule["effect"] = effect
    if transform is not None:
        rule["transform"] = transform
    if length is not None:
        rule["params"] = {"length": length}
    if override:
        rule["override"] = True
        rule["override_reason"] = HEALTH_OVERRIDE
    return rule


def _mask(rule_id: str, purposes: Sequence[str], transform: str,
          **kwargs: Any) -> dict[str, Any]:
    return _rule(rule_id, purposes, "mask", transform=transform, **kwargs)


RULES: dict[str, list[dict[str, Any]]] = {
    "triage": [
        _rule("triage-index", [TR], "disclose", categories=["index"]),
        _mask("triage-care-hit-redacted", [TR], "redact", fields=["ggz.known"],
              types=["police", "housing_corporation", "municipality"]),
        _rule("triage-no-index-privacy-officer", [TR], "withhold", categories=["index"],
              types=["zvh"], roles=["privacy_officer"]),
    ],
    "identity": [
        _rule("identity-for-participants", CASE, "disclose",
              categories=["identifying", "contact"]),
        _mask("bsn-pseudonym-justice", [AP, CI], "pseudonym", fields=["subject.bsn"],
              types=["police", "om", "probation", "dji"]),
        _rule("bsn-withheld-housing", [AP, CI], "withhold", fields=["subject.bsn"],
              types=["housing_corporation"]),
        _mask("birth-year-only", [AP, CI, AS], "year_only", fields=["subject.date_of_birth"],
              types=["housing_corporation", "municipality"]),
        _mask("name-initials-dji", [AP, CI], "initials", fields=["subject.name"],
              types=["dji"], roles=["chain_partner"]),
        _rule("address-withheld-care-chain", [CI], "withhold", fields=["subject.address"],
              types=["ggz", "addiction_care"], roles=["chain_partner"]),
        _mask("postcode-area-care-chain", [CI], "postcode_area", fields=["subject.postcode"],
              types=["ggz", "addiction_care"], roles=["chain_partner"]),
        _rule("place-of-birth-minimal", [AP, CI, AS], "withhold",
              fields=["subject.place_of_birth"],
              types=["housing_corporation", "municipality", "addiction_care"]),
        _rule("no-content-privacy-officer", CASE, "withhold", categories=CONTENT,
              types=["zvh"], roles=["privacy_officer"]),
    ],
    "household": [
        _rule("household-for-safety-partners", [AP, CI, AS], "disclose",
              categories=["household"],
              types=["zvh", "veilig_thuis", "child_protection", "municipality", "police"]),
        _mask("children-presence-care", [AP], "presence", fields=["household.children"],
              types=["ggz", "addiction_care", "probation"]),
        _mask("household-short-housing", [AP, CI], "truncate", length=40,
              fields=["household.members"], types=["housing_corporation"]),
    ],
    "case_file": [
        _rule("case-file-participants", [AP, CI], "disclose", categories=["case_file"]),
        _rule("case-reason-assess", [AA], "disclose",
              fields=["case.reason", "case.registered_by"]),
        _mask("case-notes-short-chain", [AP, CI], "truncate", length=280,
              fields=["case.notes"], roles=["chain_partner"]),
        _rule("case-notes-withheld-housing-dji", [AP, CI], "withhold", fields=["case.notes"],
              types=["housing_corporation", "dji"], roles=["chain_partner"]),
        _rule("case-summary-acute", [AS], "disclose", fields=["case.reason", "case.goal"]),
        _rule("case-goal-assess-director", [AA], "disclose",
              fields=["case.goal", "case.notes"], who=PD),
    ],
    "plan": [
        _rule("plan-participants", [CI], "disclose", categories=["plan"]),
        _rule("plan-in-the-making", [AP], "disclose", categories=["plan"], phases=["plan"],
              roles=["case_director", "process_director"]),
        _mask("plan-owners-initials-chain", [CI], "initials", fields=["plan.owners"],
              roles=["chain_partner"]),
        _rule("plan-acute", [AS], "disclose", categories=["plan"],
              phases=["plan", "monitoring"]),
    ],
    "police_data": [
        _rule("police-data-justice", [AP, CI, AS], "disclose", categories=["police_data"],
              types=["police", "om", "probation"]),
        _mask("police-data-short-director", [AP, CI, AS], "truncate", length=280,
              categories=["police_data"], who=PD),
        _mask("weapons-presence-director", [AP, CI, AS], "presence",
              fields=["police.weapons"], who=PD),
        _mask("weapons-presence-responders", [AS], "presence", fields=["police.weapons"],
              types=["veilig_thuis", "child_protection", "municipality"]),
        _mask("incidents-short-veilig-thuis", [AS], "truncate", length=500,
              fields=["police.incidents"], types=["veilig_thuis"]),
        _rule("area-ban-municipality", [AP, CI], "disclose", fields=["police.area_ban"],
              types=["municipality"]),
        _mask("police-signals-assess", [AA], "truncate", length=280,
              fields=["police.incidents", "police.signals"], who=PD),
        _mask("signals-redacted-monitoring", [CI], "redact", fields=["police.signals"],
              types=["probation"], phases=["monitoring"]),
    ],
    "justice": [
        _rule("justice-for-justice", [AP, CI], "disclose", categories=["criminal_justice"],
              types=["om", "probation", "dji"]),
        _rule("justice-for-police", [AP, CI, AS], "disclose",
              fields=["om.prosecutions", "om.convictions", "dji.detention_status",
                      "dji.release_date"], types=["police"]),
        _rule("release-date-responders", [AP, CI, AS], "disclose",
              fields=["dji.release_date"],
              types=["veilig_thuis", "municipality", "child_protection"]),
        _mask("detention-presence-responders", [AP, CI, AS], "presence",
              fields=["dji.detention_status"],
              types=["veilig_thuis", "municipality", "child_protection"]),
        _rule("supervision-director", [AP, CI], "disclose",
              fields=["probation.supervision", "probation.special_conditions"], who=PD),
        _mask("convictions-presence-director", [AP, CI], "presence",
              fields=["om.convictions"], who=PD),
        _rule("prosecutions-assess-om", [AA], "disclose", fields=["om.prosecutions"],
              types=["om"]),
        _rule("special-conditions-withheld-dji", [CI], "withhold",
              fields=["probation.special_conditions"], types=["dji"]),
    ],
    "care": [
        _rule("care-shares-own-data", [AP, CI], "disclose", categories=["health"],
              types=["ggz", "addiction_care"], override=True),
        _rule("no-health-data", [AP, CI, AS], "withhold", categories=["health"]),
        _mask("diagnosis-presence", [AP, CI], "presence", fields=["ggz.diagnosis"],
              types=["probation", "veilig_thuis"], override=True),
        _rule("treatment-for-probation", [CI], "disclose",
              fields=["ggz.treatment_status", "addiction.treatment"], types=["probation"],
              override=True),
        _rule("care-team-director", [AP, CI, AS], "disclose", fields=["ggz.care_involved"],
              who=PD, override=True),
        _mask("care-involved-presence", [AP, CI], "presence", fields=["ggz.care_involved"],
              types=["veilig_thuis", "probation", "police", "child_protection"],
              override=True),
        _rule("diagnosis-stays-with-ggz", [AP, CI], "withhold", fields=["ggz.diagnosis"],
              types=["addiction_care"], override=True),
        _mask("care-involved-acute", [AS], "presence", fields=["ggz.care_involved"],
              types=["police", "municipality"], override=True),
    ],
    "youth": [
        _rule("youth-for-child-protection", [AP, CI, AS], "disclose",
              categories=["youth_care"], types=["child_protection", "veilig_thuis"]),
        _mask("measure-presence", [AP, CI], "presence", fields=["child_protection.measure"],
              types=["police", "municipality", "ggz"]),
        _mask("reports-redacted-assess", [AA], "redact", fields=["veilig_thuis.reports"],
              who=PD),
        _rule("guardian-acute", [AS], "disclose", fields=["child_protection.guardian"],
              types=["police", "municipality"]),
    ],
    "risk": [
        _rule("risk-participants", [AP, CI, AS], "disclose", categories=["risk"]),
        _mask("risk-summary-short", [AP, CI], "truncate", length=140,
              fields=["risk.assessment_summary"],
              types=["housing_corporation", "addiction_care", "dji"]),
        _rule("risk-score-assess", [AA], "disclose", fields=["risk.code_rood_score"]),
    ],
    "social": [
        _rule("social-for-municipality", [AP, CI], "disclose", categories=["social"],
              types=["municipality", "zvh"]),
        _rule("nuisance-for-housing", [AP, CI], "disclose",
              fields=["housing.nuisance_reports"], types=["housing_corporation"]),
        _mask("debts-presence-care", [CI], "presence", fields=["municipality.debts"],
              types=["ggz", "addiction_care", "probation"]),
        _mask("benefits-presence-probation", [CI], "presence",
              fields=["municipality.benefits"], types=["probation"]),
        _mask("nuisance-short-police", [AP, CI], "truncate", length=280,
              fields=["housing.nuisance_reports"], types=["police"]),
    ],
}


def _dump(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, width=100)


def _catalogue() -> dict[str, Any]:
    categories = []
    for ident, special, description in CATEGORIES:
        category: dict[str, Any] = {"id": ident, "description": description}
        if special is not None:
            category["special"] = special
        categories.append(category)
    fields = []
    for ident, category_id, source, kind, field_special in FIELDS:
        spec: dict[str, Any] = {"id": ident, "category": category_id, "source": source,
                                "kind": kind, "description": f"Field {ident}."}
        if field_special is not None:
            spec["special"] = field_special
        fields.append(spec)
    return {"categories": categories, "fields": fields}


def _partners() -> dict[str, Any]:
    return {
        "partner_types": [{"id": k, "description": v} for k, v in PARTNER_TYPES.items()],
        "roles": [{"id": k, "description": v} for k, v in ROLES.items()],
        "partners": [{"id": i, "type": t, "display_name": n, "roles": list(r)}
                     for i, t, n, r in PARTNERS],
    }


def _purposes() -> dict[str, Any]:
    purposes = []
    for ident, phases, types, bases, by_type, extra in PURPOSES:
        purpose: dict[str, Any] = {
            "id": ident,
            "description": f"Purpose {ident}.",
            "legal_bases": list(bases),
        }
        if by_type:
            purpose["legal_bases_by_partner_type"] = {k: list(v) for k, v in by_type.items()}
        purpose |= {
            "processing_activity": f"https://zvh.example/register/pa-{ident}",
            "phases": list(phases),
            "partner_types": list(types),
            **extra,
        }
        purposes.append(purpose)
    return {
        "phases": [{"id": k, "description": v} for k, v in PHASES.items()],
        "purposes": purposes,
    }


def _legal_bases() -> dict[str, Any]:
    return {"legal_bases": [{"id": i, "title": t, "permits": list(p)}
                            for i, p, t in LEGAL_BASES]}


def documents() -> dict[str, str]:
    """The policy as file name -> YAML text, in the format the gateway reads."""
    docs = {
        "catalogue.yaml": _dump(_catalogue()),
        "partners.yaml": _dump(_partners()),
        "purposes.yaml": _dump(_purposes()),
        "legal_bases.yaml": _dump(_legal_bases()),
    }
    for name, rules in RULES.items():
        docs[f"rules/{name}.yaml"] = _dump({"rules": rules})
    return docs
