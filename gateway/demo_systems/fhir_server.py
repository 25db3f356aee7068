"""A FHIR R4 server on loopback for a GGZ provider's records (demo and tests).

No Java FHIR server (HAPI) runs here, so this is a small one built on the maintained FHIR
models of ``fhir.resources`` (its R4B package: R4B changed none of the resources served here
from R4): every resource it holds is validated by those models when added, and every search
answers a real R4 ``searchset`` Bundle, validated before it is sent.

Searches served (GET, ``application/fhir+json``):

- ``Patient?identifier=<system>|<value>`` (the BSN's system is ``BSN_SYSTEM``), and
  ``Patient?name=<text>&birthdate=<date>``: ``name`` matches, case-insensitively, the start
  of the name's text, family or given name, or the whole "given family"; ``birthdate`` may be
  partial (``1985`` or ``1985-03``) and then matches the dates within it, as FHIR's ``eq``
  on a partial date does.
- ``Condition``, ``EpisodeOfCare``, ``CarePlan``, ``Encounter``, ``Flag`` with
  ``patient=<id>`` or ``subject=<id>`` (``Patient/<id>`` or the bare id), optionally
  ``status`` and ``clinical-status`` (a code).
- Any other search parameter is refused (400), as a server does under
  ``Prefer: handling=strict``.
- ``<type>/<id>`` reads one resource.
- ``_count`` pages a search; the Bundle's ``next`` link gives the next page.

``counts`` counts requests by resource type, ``faults`` makes it slow or failing (see
loopback.Faults); ``add_raw`` stores a resource without validating it, so tests can serve a
resource that does not conform to R4.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from fhir_core.fhirabstractmodel import FHIRAbstractModel

from gateway.demo_systems.loopback import Faults, LoopbackHttpServer, Reply, Request

__all__ = ["BSN_SYSTEM", "FHIR_JSON", "FhirServer", "ggz_client"]

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
FHIR_JSON = "application/fhir+json"
PATIENT_LINKED = ("Condition", "EpisodeOfCare", "CarePlan", "Encounter", "Flag")
DEFAULT_PAGE = 50
PATIENT_PARAMETERS = ("identifier", "name", "birthdate", "_count", "_offset")
LINKED_PARAMETERS = ("patient", "subject", "status", "clinical-status", "_count", "_offset")


@dataclass
class FhirServer:
    """The FHIR base is ``base_url`` (``http://127.0.0.1:<port>/fhir``) once started."""

    token: str | None = None
    port: int = 0
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # A broken server that answers every resource of the type, whoever it is about (tests).
    ignore_patient_filter: bool = False
    http: LoopbackHttpServer = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.http = LoopbackHttpServer(self._handle, _resource_type, token=self.token,
                                       port=self.port)

    @property
    def base_url(self) -> str:
        return f"{self.http.address}/fhir"

    @property
    def faults(self) -> Faults:
        return self.http.faults

    @property
    def counts(self) -> Counter[str]:
        """Requests answered, by resource type."""
        return self.http.counts

    def start(self) -> FhirServer:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> FhirServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, *resources: Resource | Mapping[str, Any]) -> None:
        """Store resources, validated as R4 (raises pydantic's ValidationError otherwise)."""
        for resource in resources:
            data = resource if isinstance(resource, Mapping) else _json(resource)
            model = get_fhir_model_class(str(data["resourceType"]))
            self.add_raw(_json(model.model_validate(data)))

    def add_raw(self, data: Mapping[str, Any]) -> None:
        """Store a resource as given, valid or not (for tests of the adapter's validation)."""
        item = dict(data)
        item.setdefault("id", uuid.uuid4().hex[:12])
        with self._lock:
            self.resources.setdefault(str(item["resourceType"]), {})[str(item["id"])] = item

    def _handle(self, request: Request) -> Reply:
        parts = [p for p in request.path.split("/") if p]
        if not parts or parts[0] != "fhir" or len(parts) not in (2, 3):
            return _outcome(404, "not-found", "no such endpoint")
        kind = parts[1]
        if kind != "Patient" and kind not in PATIENT_LINKED:
            return _outcome(404, "not-supported", f"resource type {kind} is not served")
        with self._lock:
            held = list(self.resources.get(kind, {}).values())
        if len(parts) == 3:
            for item in held:
                if item.get("id") == parts[2]:
                    return Reply(200, item, FHIR_JSON)
            return _outcome(404, "not-found", f"{kind}/{parts[2]} is not known")
        try:
            matches = self._search(kind, held, request)
        except ValueError as exc:
            return _outcome(400, "invalid", str(exc))
        return Reply(200, self._bundle(kind, matches, request), FHIR_JSON)

    def _search(
        self, kind: str, held: list[dict[str, Any]], request: Request
    ) -> list[dict[str, Any]]:
        known = PATIENT_PARAMETERS if kind == "Patient" else LINKED_PARAMETERS
        unknown = sorted(set(request.query) - set(known))
        if unknown:
            # As a FHIR server under "Prefer: handling=strict": a parameter it does not
            # support is refused, not ignored (ignoring it would answer more than was asked).
            raise ValueError(f"unsupported search parameter {unknown[0]}")
        if kind == "Patient":
            identifier = request.one("identifier")
            name = request.one("name")
            birthdate = request.one("birthdate")
            if identifier is None and name is None and birthdate is None:
                raise ValueError("search Patient by identifier, or by name and birthdate")
            return [p for p in held if _patient_matches(p, identifier, name, birthdate)]
        patient = request.one("patient") or request.one("subject")
        if patient is None:
            raise ValueError(f"search {kind} by patient or subject")
        wanted = patient if "/" in patient else f"Patient/{patient}"
        status, clinical = request.one("status"), request.one("clinical-status")
        return [
            r for r in held
            if (_subject(r) == wanted or self.ignore_patient_filter)
            and (status is None or r.get("status") == status)
            and (clinical is None or clinical in _codes(r.get("clinicalStatus")))
        ]

    def _bundle(
        self, kind: str, matches: list[dict[str, Any]], request: Request
    ) -> dict[str, Any]:
        count = int(request.one("_count") or DEFAULT_PAGE)
        offset = int(request.one("_offset") or 0)
        page = matches[offset : offset + count]
        base = self.base_url
        query = {k: v[0] for k, v in request.query.items() if k not in ("_offset",)}
        links = [{"relation": "self", "url": f"{base}/{kind}?{urlencode(query)}"}]
        if offset + count < len(matches):
            more = {**query, "_count": str(count), "_offset": str(offset + count)}
            links.append({"relation": "next", "url": f"{base}/{kind}?{urlencode(more)}"})
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": [
                {"fullUrl": f"{base}/{kind}/{item['id']}", "resource": item,
                 "search": {"mode": "match"}}
                for item in page
            ],
        }
        try:
            Bundle.model_validate(bundle)  # a searchset the server sends is valid R4
        except ValueError:
            # Only a resource stored with add_raw can make it invalid: serve it anyway, so
            # that the adapter's own validation is what is tested.
            pass
        return bundle


def _resource_type(request: Request) -> str:
    parts = [p for p in request.path.split("/") if p]
    return parts[1] if len(parts) >= 2 else "?"


def _json(resource: FHIRAbstractModel) -> dict[str, Any]:
    data: dict[str, Any] = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


def _outcome(status: int, code: str, text: str) -> Reply:
    return Reply(status, {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }, FHIR_JSON)


def _codes(concept: Any) -> list[str]:
    if not isinstance(concept, Mapping):
        return []
    return [str(c.get("code")) for c in concept.get("coding", []) if isinstance(c, Mapping)]


def _subject(resource: Mapping[str, Any]) -> str | None:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, Mapping) and isinstance(ref.get("reference"), str):
            return str(ref["reference"])
    return None


def _patient_matches(
    patient: Mapping[str, Any], identifier: str | None, name: str | None, birthdate: str | None
) -> bool:
    if identifier is not None:
        system, _, value = identifier.rpartition("|")
        if not any(
            i.get("value") == value and (not system or i.get("system") == system)
            for i in patient.get("identifier", [])
        ):
            return False
    if name is not None and not any(
        _name_matches(n, name.casefold()) for n in patient.get("name", [])
    ):
        return False
    if birthdate is not None:
        held = str(patient.get("birthDate", ""))
        # A partial date on either side matches the dates within it (FHIR's eq on a period).
        if not (held.startswith(birthdate) or (held and birthdate.startswith(held))):
            return False
    return True


def _name_matches(name: Mapping[str, Any], wanted: str) -> bool:
    given = " ".join(name.get("given", []))
    family = str(name.get("family", ""))
    forms = [str(name.get("text", "")), family, given, f"{given} {family}".strip()]
    forms += list(name.get("given", []))
    return any(form.casefold().startswith(wanted) for form in forms if form)


def ggz_client(
    *,
    patient_id: str,
    bsn: str | None,
    given: Iterable[str],
    family: str,
    birth_date: str,
    diagnosis: str | None = None,
    episode_status: str | None = None,
    care_team: str | None = None,
    care_plan: str | None = None,
    last_contact: str | None = None,
    flag: str | None = None,
    reference: str | None = None,
    reference_system: str = "https://ggz.example.nl/fhir/NamingSystem/client-number",
) -> list[dict[str, Any]]:
    """The R4 resources a GGZ provider holds on one client, validated: a Patient, a Condition
    (the working diagnosis), an EpisodeOfCare (its status), an active CarePlan (its title and
    care team), a finished Encounter (the last contact) and a Flag, each only when given."""
    given = list(given)
    identifiers = []
    if bsn is not None:
        identifiers.append({"system": BSN_SYSTEM, "value": bsn})
    if reference is not None:
        identifiers.append({"system": reference_system, "value": reference})
    subject = {"reference": f"Patient/{patient_id}"}
    resources: list[dict[str, Any]] = [{
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": identifiers,
    }]
    if given or family:
        resources[0]["name"] = [{"use": "official", "text": " ".join([*given, family]),
                                 "family": family, "given": given}]
    if birth_date:
        resources[0]["birthDate"] = birth_date
    if diagnosis is not None:
        resources.append({
            "resourceType": "Condition",
            "id": f"{patient_id}-dx",
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                "code": "encounter-diagnosis"}]}],
            "code": {"text": diagnosis},
            "subject": subject,
        })
    if episode_status is not None:
        resources.append({
            "resourceType": "EpisodeOfCare",
            "id": f"{patient_id}-eoc",
            "status": episode_status,
            "patient": subject,
            "period": {"start": "2025-06-01"},
        })
    if care_team is not None or care_plan is not None:
        plan: dict[str, Any] = {
            "resourceType": "CarePlan", "id": f"{patient_id}-plan", "status": "active",
            "intent": "plan", "subject": subject,
        }
        if care_plan is not None:
            plan["title"] = care_plan
        if care_team is not None:
            plan["careTeam"] = [{"display": care_team}]
        resources.append(plan)
    if last_contact is not None:
        resources.append({
            "resourceType": "Encounter", "id": f"{patient_id}-enc", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB"},
            "subject": subject, "period": {"start": last_contact},
        })
    if flag is not None:
        resources.append({
            "resourceType": "Flag", "id": f"{patient_id}-flag", "status": "active",
            "code": {"text": flag}, "subject": subject,
        })
    for item in resources:  # each must be valid R4: the demo serves nothing else
        get_fhir_model_class(item["resourceType"]).model_validate(item)
    return resources
