"""The demo's partner records as the police REST service and the GGZ FHIR server hold them.

Each record becomes what that system would hold so that the example mappings
(deploy/source/police-rest.yaml, deploy/source/ggz-fhir.yaml) give back exactly the record's
field values: the demo can then check what the gateway released against the records, whether
a partner answers from memory or through the source runtime. A value the system's shape
cannot carry raises ValueError naming the field (never a silently different demo).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapters.source_server import SubjectRecord
from gateway.demo_systems.fhir_server import ggz_client
from gateway.demo_systems.police_rest import PoliceRecord

__all__ = ["TREATMENT_STATUS_CODES", "ggz_resources", "police_records"]

# The inverse of the map of ggz.treatment_status in deploy/source/ggz-fhir.yaml.
TREATMENT_STATUS_CODES = {
    "treatment planned": "planned",
    "on the waiting list": "waitlist",
    "in treatment": "active",
    "treatment on hold": "onhold",
    "treatment ended": "finished",
    "treatment cancelled": "cancelled",
}


def police_records(records: Iterable[SubjectRecord]) -> list[PoliceRecord]:
    """The police API's persons, ids ``P-1``, ``P-2``, ... in the order given."""
    out = []
    for number, record in enumerate(records, 1):
        fields = record.fields
        incidents: tuple[tuple[str, str], ...] = ()
        if "police.incidents" in fields:
            incidents = tuple(_split(part, " ", "police.incidents")
                              for part in fields["police.incidents"].split("; "))
        officer = None
        if "police.neighbourhood_officer" in fields:
            officer = _split(fields["police.neighbourhood_officer"], ", ",
                             "police.neighbourhood_officer", last=True)
        out.append(PoliceRecord(
            id=f"P-{number}", role=record.role, name=record.name,
            birth_date=record.date_of_birth, bsn=record.bsn or None,
            reference=record.reference or None, incidents=incidents,
            antecedents=fields.get("police.antecedents_summary"),
            weapon=fields.get("police.weapon_flag"), officer=officer,
        ))
    return out


def ggz_resources(
    records: Iterable[SubjectRecord],
    reference_system: str = "https://ggz-twente.example.nl/fhir/NamingSystem/client-number",
) -> list[dict[str, Any]]:
    """The GGZ provider's R4 resources (Patient ``ggz-1``, ... and what it holds on each)."""
    out: list[dict[str, Any]] = []
    for number, record in enumerate(records, 1):
        fields = record.fields
        status_text = fields.get("ggz.treatment_status")
        status = None
        if status_text is not None:
            status = TREATMENT_STATUS_CODES.get(status_text)
            if status is None:
                raise ValueError("ggz.treatment_status: not a status the FHIR mapping gives "
                                 f"({', '.join(TREATMENT_STATUS_CODES)})")
        team = fields.get("ggz.care_involved")  # the care team of an active CarePlan
        given, _, family = record.name.partition(" ")
        out += ggz_client(
            patient_id=f"ggz-{number}", bsn=record.bsn or None,
            given=[given] if given else [], family=family, birth_date=record.date_of_birth,
            diagnosis=fields.get("ggz.diagnosis"), episode_status=status, care_team=team,
            reference=record.reference or None, reference_system=reference_system,
        )
    return out


def _split(text: str, separator: str, field: str, *, last: bool = False) -> tuple[str, str]:
    head, found, tail = text.rpartition(separator) if last else text.partition(separator)
    if not found or not head or not tail:
        raise ValueError(f"{field}: the police API's shape cannot carry this value")
    return head, tail
