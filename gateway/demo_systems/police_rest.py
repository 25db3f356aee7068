"""A police REST/JSON service on loopback (demo and tests): the kind of API a police region's
case system offers its integration partners.

Every request needs ``Authorization: Bearer <token>`` (401 otherwise). Endpoints (GET):

- ``/api/v1/persons?bsn=...`` | ``?name=...&birth_date=...`` (a partial date ``1985`` or
  ``1985-03`` matches the dates within it) | ``?reference=...``:
  ``{"persons": [{"id", "role", "name", "birth_date", "bsn", "reference"}]}`` (an empty
  list when not known).
- ``/api/v1/persons/{id}``: the person's profile: ``role``, ``warnings`` (``{"weapon"}``),
  ``neighbourhood_officer`` (``{"team", "phone"}``), ``antecedents`` (``{"summary"}``); 404
  for an id it does not know.
- ``/api/v1/persons/{id}/incidents?page=N&per_page=M``: ``{"items": [{"date", "summary"}],
  "next": "<path of the next page>" | null}``, newest first.

``counts`` counts requests by endpoint (``persons``, ``profile``, ``incidents``); ``faults``
makes it slow or failing (loopback.Faults).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from gateway.demo_systems.loopback import Faults, LoopbackHttpServer, Reply, Request

__all__ = ["PoliceRecord", "PoliceRestServer"]

API = "/api/v1/persons"
DEFAULT_PER_PAGE = 2


@dataclass(frozen=True)
class PoliceRecord:
    """What the police system holds on one person. ``raw`` entries are merged into the
    profile as given, so tests can serve a malformed value."""

    id: str
    role: str
    name: str = ""
    birth_date: str = ""
    bsn: str | None = None
    reference: str | None = None
    incidents: tuple[tuple[str, str], ...] = ()  # (date, summary), newest first
    antecedents: str | None = None
    weapon: str | None = None  # the weapon warning's text ("yes: knife found ...", "no")
    officer: tuple[str, str] | None = None  # (team, phone)
    raw: dict[str, Any] = field(default_factory=dict)

    def profile(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "role": self.role}
        if self.weapon is not None:
            data["warnings"] = {"weapon": self.weapon}
        if self.officer is not None:
            data["neighbourhood_officer"] = {"team": self.officer[0], "phone": self.officer[1]}
        if self.antecedents is not None:
            data["antecedents"] = {"summary": self.antecedents}
        data.update(self.raw)
        return data


@dataclass
class PoliceRestServer:
    token: str = "police-demo-token"
    port: int = 0
    per_page: int = DEFAULT_PER_PAGE
    # A broken API that answers every person it holds, whatever was searched for (tests).
    ignore_search: bool = False
    records: dict[str, PoliceRecord] = field(default_factory=dict)
    http: LoopbackHttpServer = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.http = LoopbackHttpServer(self._handle, _endpoint, token=self.token, port=self.port)

    @property
    def base_url(self) -> str:
        return self.http.address

    @property
    def faults(self) -> Faults:
        return self.http.faults

    @property
    def counts(self) -> Counter[str]:
        """Requests answered, by endpoint (persons, profile, incidents)."""
        return self.http.counts

    def add(self, *records: PoliceRecord) -> None:
        with self._lock:
            for record in records:
                self.records[record.id] = record

    def start(self) -> PoliceRestServer:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> PoliceRestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, request: Request) -> Reply:
        if not request.path.startswith(API):
            return Reply(404, {"error": "no such endpoint"})
        rest = [p for p in request.path[len(API):].split("/") if p]
        with self._lock:
            records = list(self.records.values())
        if not rest:
            return self._persons(records, request)
        record = next((r for r in records if r.id == rest[0]), None)
        if record is None:
            return Reply(404, {"error": "no such person"})
        if len(rest) == 1:
            return Reply(200, record.profile())
        if rest[1:] == ["incidents"]:
            return self._incidents(record, request)
        return Reply(404, {"error": "no such endpoint"})

    def _persons(self, records: list[PoliceRecord], request: Request) -> Reply:
        bsn, reference = request.one("bsn"), request.one("reference")
        name, birth = request.one("name"), request.one("birth_date")
        if bsn is not None:
            found = [r for r in records if r.bsn == bsn]
        elif reference is not None:
            found = [r for r in records if r.reference == reference]
        elif name is not None and birth is not None:
            found = [
                r for r in records
                if r.name.casefold() == name.casefold() and r.birth_date.startswith(birth)
            ]
        else:
            return Reply(400, {"error": "give bsn, reference, or name and birth_date"})
        return Reply(200, {"persons": [
            {"id": r.id, "role": r.role, "name": r.name, "birth_date": r.birth_date,
             "bsn": r.bsn, "reference": r.reference}
            for r in (records if self.ignore_search else found)
        ]})

    def _incidents(self, record: PoliceRecord, request: Request) -> Reply:
        try:
            page = int(request.one("page") or 1)
            per_page = int(request.one("per_page") or self.per_page)
        except ValueError:
            return Reply(400, {"error": "page and per_page are numbers"})
        start = (page - 1) * per_page
        items = [{"date": d, "summary": s} for d, s in record.incidents[start:start + per_page]]
        more = start + per_page < len(record.incidents)
        query = urlencode({"page": page + 1, "per_page": per_page})
        next_page = f"{API}/{record.id}/incidents?{query}" if more else None
        return Reply(200, {"items": items, "next": next_page})


def _endpoint(request: Request) -> str:
    rest = [p for p in request.path[len(API):].split("/") if p]
    if not rest:
        return "persons"
    return "profile" if len(rest) == 1 else rest[1]
