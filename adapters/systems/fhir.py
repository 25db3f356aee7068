"""The FHIR R4 adapter: a care provider's FHIR server answers the gateway's questions,
configured by a mapping file (docs/partners/fhir.md has the reference and a worked example
for a GGZ provider)::

    kind: fhir
    partner_type: ggz
    server: {base_url: https://fhir.ggz.example.nl/fhir, auth: ..., tls: ...}
    patient:
      bsn_system: http://fhir.nl/fhir/NamingSystem/bsn        # the default
      reference_system: https://ggz.example.nl/fhir/NamingSystem/client-number
    fields:
      ggz.diagnosis:
        type: text
        resource: Condition                       # Patient, Condition, EpisodeOfCare,
        search: {clinical-status: active}         # CarePlan, Encounter or Flag
        path: Condition.code.text                 # FHIRPath, over each resource found
        convert: {join: "; "}
    lookup: {role: client}                        # or role_path: a FHIRPath over the Patient

The Patient is found by its BSN identifier, else by the partner's own reference (when
``reference_system`` is set), else by name and birth date (``Patient?name=&birthdate=``; a
partial date such as ``1985`` is searched as given, and each Patient the server returns must
carry that name, as text or as given and family names, and a compatible birth date). Exactly
one Patient must fit: none, or several, is "not known" (the adapter never guesses between
persons). Then one search per resource type and ``search`` combination the asked fields need
(``<Resource>?patient=<id>&...``, following the Bundle's ``next`` links up to ``max_pages``),
none for fields of the Patient itself.

Resources are parsed and validated with the R4 models of ``fhir.resources`` (its R4B package:
R4B changed none of these six resources from R4) and mapped with FHIRPath (``fhirpathpy``,
the R4 model). A resource that does not validate, or a search answering resources about
another patient, makes the fields that need it unavailable; a Patient that does not validate
makes the system unavailable: never a wrong value. FHIRPath results are joined as lists (use
``convert: {join: ...}``); a result that is not a primitive (a whole CodeableConcept) is a
mapping error reported by ``source test``, and the field is unavailable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fhirpathpy

# antlr4 is fhirpathpy's own parser runtime (untyped): used to check a mapping's FHIRPath.
from antlr4 import CommonTokenStream, InputStream, Token  # type: ignore[import-untyped]
from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from fhir.resources.R4B import get_fhir_model_class
from fhirpathpy.models import models as fhirpath_models
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from adapters.source_runtime.adapter import (
    FieldReading,
    Found,
    NotKnown,
    Person,
    SystemUnavailable,
)
from adapters.source_runtime.conversions import Conversion, ConversionError
from adapters.source_runtime.mapping import KindSchema, MappingFile, Mark, YNode, did_you_mean
from adapters.systems.http_access import (
    SERVER_KEYS,
    HttpSettings,
    JsonGetter,
    check_server,
    open_client,
    settings_from,
)

__all__ = ["BSN_SYSTEM", "RESOURCES", "SCHEMA", "FhirAdapter", "open_adapter"]

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
RESOURCES = ("Patient", "Condition", "EpisodeOfCare", "CarePlan", "Encounter", "Flag")
PATIENT_KEYS = ("bsn_system", "reference_system", "search_by_name")
FHIR_JSON = "application/fhir+json"
# A server that ignored a search parameter it does not support would answer more than was
# asked (every Condition, not the active ones): strict handling makes it refuse instead.
STRICT = {"Prefer": "handling=strict"}
DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_PAGES = 10
_R4 = fhirpath_models["r4"]


class FhirPathSyntaxError(ValueError):
    pass


class _Raise(ErrorListener):  # type: ignore[misc]
    def syntaxError(self, recognizer: Any, offending: Any, line: int, column: int,  # noqa: N802
                    msg: str, e: Any) -> None:
        raise FhirPathSyntaxError(f"not a FHIRPath expression (at character {column + 1}: {msg})")


def check_fhirpath(text: str) -> None:
    """Raise FhirPathSyntaxError unless ``text`` is one whole FHIRPath expression.
    (fhirpathpy's own parser recovers from syntax errors silently, so a typo would only show
    as an always-empty field.)"""
    lexer = FHIRPathLexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Raise())
    tokens = CommonTokenStream(lexer)
    parser = FHIRPathParser(tokens)
    parser.removeErrorListeners()
    parser.addErrorListener(_Raise())
    parser.expression()
    if tokens.LA(1) != Token.EOF:
        raise FhirPathSyntaxError(
            f"not a FHIRPath expression (unexpected text at character "
            f"{tokens.LT(1).start + 1})")


@dataclass(frozen=True)
class FhirPath:
    text: str
    evaluate: Callable[[Any, Any], list[Any]]

    @classmethod
    def parse(cls, text: str) -> FhirPath:
        check_fhirpath(text)
        return cls(text, fhirpathpy.compile(text, _R4))


@dataclass(frozen=True)
class FieldPlan:
    id: str
    resource: str
    search: tuple[tuple[str, str], ...]
    path: FhirPath
    conversion: Conversion

    @property
    def group(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.resource, self.search


@dataclass(frozen=True)
class FhirPlan:
    bsn_system: str
    reference_system: str | None
    search_by_name: bool
    fields: dict[str, FieldPlan]
    role: str
    role_path: FhirPath | None
    page_size: int
    max_pages: int


def _plan(mapping: MappingFile, problem: Callable[[Mark, str], None]) -> FhirPlan:
    root = mapping.node
    check_server(root.get("server"), problem, root.mark)
    bsn_system, reference_system, by_name = BSN_SYSTEM, None, True
    patient = root.get("patient")
    if patient is not None:
        if not patient.is_mapping:
            problem(patient.mark, "patient must be a mapping (bsn_system, reference_system, "
                    "search_by_name)")
        else:
            _keys(patient, PATIENT_KEYS, problem)
            for key in ("bsn_system", "reference_system"):
                value = patient.get(key)
                if value is not None and (not isinstance(value.value, str) or not value.value):
                    problem(value.mark, f"{key} must be an identifier system URI")
            plain = patient.plain()
            bsn_system = plain.get("bsn_system") or BSN_SYSTEM
            reference_system = plain.get("reference_system")
            flag = patient.get("search_by_name")
            if flag is not None and not isinstance(flag.value, bool):
                problem(flag.mark, "search_by_name must be true or false")
            by_name = plain.get("search_by_name", True) is not False
    page_size = _count(root.get("page_size"), DEFAULT_PAGE_SIZE, problem)
    max_pages = _count(root.get("max_pages"), DEFAULT_MAX_PAGES, problem)
    fields: dict[str, FieldPlan] = {}
    for field_id, spec in mapping.fields.items():
        plan = _field(field_id, spec.node, spec.conversion, problem)
        if plan is not None:
            fields[field_id] = plan
    lookup = root.get("lookup")
    role, role_path = "", None
    if lookup is not None and lookup.is_mapping:
        role_node, path_node = lookup.get("role"), lookup.get("role_path")
        if role_node is not None:
            if isinstance(role_node.value, str):
                role = role_node.value
            else:
                problem(role_node.mark, "role must be text")
        if path_node is not None:
            role_path = _fhirpath(path_node, problem)
    return FhirPlan(bsn_system, reference_system, by_name, fields, role, role_path,
                    page_size, max_pages)


def _count(node: YNode | None, default: int, problem: Callable[[Mark, str], None]) -> int:
    if node is None:
        return default
    if isinstance(node.value, bool) or not isinstance(node.value, int) or node.value < 1:
        problem(node.mark, "must be a positive whole number")
        return default
    return int(node.value)


def _fhirpath(node: YNode, problem: Callable[[Mark, str], None]) -> FhirPath | None:
    if not isinstance(node.value, str) or not node.value.strip():
        problem(node.mark, "a FHIRPath expression is text, e.g. Condition.code.text")
        return None
    try:
        return FhirPath.parse(node.value)
    except FhirPathSyntaxError as exc:
        problem(node.mark, str(exc))
        return None


def _field(field_id: str, node: YNode, conversion: Conversion,
           problem: Callable[[Mark, str], None]) -> FieldPlan | None:
    resource = node.get("resource")
    if resource is None:
        return None  # the common reader reported it missing
    if resource.value not in RESOURCES:
        problem(resource.mark, f"resource {resource.value!r} is not one the adapter reads"
                f"{did_you_mean(str(resource.value), RESOURCES)}")
        return None
    search: list[tuple[str, str]] = []
    search_node = node.get("search")
    if search_node is not None:
        if resource.value == "Patient":
            problem(search_node.mark, "a Patient field is read from the Patient found: "
                    "no search")
        elif not search_node.is_mapping:
            problem(search_node.mark, "search must be a mapping of FHIR search parameters")
        else:
            for key, value in search_node.items():
                if key in ("patient", "subject", "_count") or key.startswith("_"):
                    problem(search_node.key_mark(key),
                            f"search parameter {key!r} is set by the adapter")
                elif not isinstance(value.value, (str, int)) or isinstance(value.value, bool):
                    problem(value.mark, "a search parameter's value is text")
                else:
                    search.append((key, str(value.value)))
    path_node = node.get("path")
    path = _fhirpath(path_node, problem) if path_node is not None else None
    if path is None:
        return None
    return FieldPlan(field_id, str(resource.value), tuple(sorted(search)), path, conversion)


def _keys(node: YNode, allowed: Sequence[str], problem: Callable[[Mark, str], None]) -> None:
    for key in node.value:
        if key not in allowed:
            problem(node.key_mark(key), f"unknown key {key!r}{did_you_mean(key, allowed)}")


def _check(mapping: MappingFile, problem: Callable[[Mark, str], None]) -> None:
    _plan(mapping, problem)


SCHEMA = KindSchema(
    kind="fhir",
    top_keys=("server", "patient", "page_size", "max_pages"),
    required_top_keys=("server",),
    field_keys=("resource", "search", "path"),
    required_field_keys=("resource", "path"),
    lookup_keys=("role", "role_path"),
    check=_check,
)


def open_adapter(mapping: MappingFile, system: Mapping[str, Any], base_dir: Path) -> FhirAdapter:
    """The adapter for a checked FHIR mapping; ``system`` (source.toml's [system] table) may
    override the server block's keys (e.g. base_url)."""
    problems: list[str] = []
    plan = _plan(mapping, lambda mark, message: problems.append(f"{mark}: {message}"))
    if problems:
        raise ValueError("\n".join(problems))
    server = {k: v for k, v in (mapping.top.get("server") or {}).items() if k in SERVER_KEYS}
    return FhirAdapter(plan, settings_from(server, mapping.path.parent, system, base_dir))


class _GroupFailed(Exception):
    """A resource search whose fields are unavailable; the message says why (no values)."""


class _TooManyPages(Exception):
    """A search still going on after max_pages pages."""


class FhirAdapter:
    def __init__(self, plan: FhirPlan, settings: HttpSettings) -> None:
        self.plan = plan
        self.settings = settings
        self._client = open_client(settings)

    async def close(self) -> None:
        await self._client.aclose()

    def _getter(self, deadline_s: float) -> JsonGetter:
        return JsonGetter(self._client, self.settings,
                          asyncio.get_running_loop().time() + deadline_s, accept=FHIR_JSON,
                          headers=STRICT)

    async def fetch(
        self, person: Person, fields: Sequence[str], *, deadline_s: float, explain: bool = False
    ) -> Found:
        try:
            return await self._fetch(person, fields, self._getter(deadline_s), explain)
        except (NotKnown, SystemUnavailable):
            raise
        except Exception as exc:  # never let a surprise escape as a crash of the runtime
            raise SystemUnavailable(f"unexpected failure ({type(exc).__name__})") from None

    async def lookup(self, person: Person, *, deadline_s: float) -> tuple[bool, str]:
        try:
            patient = await self._patient(person, self._getter(deadline_s))
        except NotKnown:
            return False, ""
        except SystemUnavailable:
            raise
        except Exception as exc:
            raise SystemUnavailable(f"unexpected failure ({type(exc).__name__})") from None
        role = self.plan.role
        if self.plan.role_path is not None:
            try:
                found = [v for v in self.plan.role_path.evaluate(patient, {})
                         if isinstance(v, str)]
            except Exception:
                found = []  # a role that does not evaluate: known, role not said
            if len(found) == 1:
                role = found[0].strip()
        return True, role

    async def _fetch(
        self, person: Person, fields: Sequence[str], getter: JsonGetter, explain: bool
    ) -> Found:
        asked = [self.plan.fields[f] for f in dict.fromkeys(fields) if f in self.plan.fields]
        patient = await self._patient(person, getter)
        groups = sorted({f.group for f in asked if f.resource != "Patient"})
        outcomes = await asyncio.gather(
            *(self._search(resource, search, str(patient["id"]), getter)
              for resource, search in groups),
            return_exceptions=True,
        )
        by_group = dict(zip(groups, outcomes, strict=True))
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        for failure in failures:
            if not isinstance(failure, (SystemUnavailable, _GroupFailed)):
                raise failure
        if groups and all(isinstance(o, SystemUnavailable) for o in outcomes):
            raise SystemUnavailable(str(outcomes[0]))
        values: dict[str, str] = {}
        unavailable: set[str] = set()
        readings: list[FieldReading] = []
        for plan in asked:
            resources = [patient] if plan.resource == "Patient" else by_group[plan.group]
            raw: Any = None
            value: str | None = None
            problem = ""
            if isinstance(resources, BaseException):
                problem = str(resources) or type(resources).__name__
            else:
                try:
                    raw = _evaluate(plan.path, resources)
                    value = plan.conversion.apply(raw)
                except ConversionError as exc:
                    problem = str(exc)
                except _GroupFailed as exc:
                    problem = str(exc)
            if problem:
                unavailable.add(plan.id)
            elif value is not None:
                values[plan.id] = value
            if explain:
                readings.append(FieldReading(plan.id, _show(raw), value, problem))
        return Found(values, frozenset(unavailable), tuple(readings))

    async def _patient(self, person: Person, getter: JsonGetter) -> dict[str, Any]:
        """The one Patient that fits ``person``; NotKnown when none or several do."""
        plan = self.plan
        searches: list[tuple[dict[str, str], Callable[[dict[str, Any]], bool]]] = []
        if person.bsn:
            searches.append(_by_identifier(plan.bsn_system, person.bsn))
        if person.reference and plan.reference_system:
            searches.append(_by_identifier(plan.reference_system, person.reference))
        if person.name and person.date_of_birth and plan.search_by_name:
            searches.append(({"name": " ".join(person.name.split()),
                              "birthdate": person.date_of_birth},
                             lambda p: _has_name(p, person.name, person.date_of_birth)))
        for params, fits in searches:
            try:
                found = await self._all_pages(getter, "Patient", params)
            except _TooManyPages as exc:
                raise SystemUnavailable(str(exc)) from None
            matches = [p for p in found if fits(p)]
            if len(matches) > 1:
                raise NotKnown()  # several persons fit: never guess between them
            if matches:
                try:
                    patient = _validated(matches[0])
                except _GroupFailed:
                    raise SystemUnavailable("the system's Patient does not conform to R4") \
                        from None
                if not isinstance(patient.get("id"), str):
                    raise SystemUnavailable("the system's Patient has no id")
                return patient
        raise NotKnown()

    async def _all_pages(
        self, getter: JsonGetter, resource: str, params: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """Every matched entry of a search, following ``next`` links: a second page could
        hold a second Patient that fits, so the first page alone cannot say "exactly one"."""
        answer = await getter.get(resource, params)
        found: list[dict[str, Any]] = []
        for _ in range(self.plan.max_pages):
            found += _entries(answer, resource)
            link = _next_link(answer)
            if link is None:
                return found
            answer = await getter.get(link)
        raise _TooManyPages(f"more than max_pages ({self.plan.max_pages}) pages of {resource}")

    async def _search(
        self, resource: str, search: tuple[tuple[str, str], ...], patient_id: str,
        getter: JsonGetter,
    ) -> list[dict[str, Any]]:
        params = {**dict(search), "patient": patient_id, "_count": str(self.plan.page_size)}
        try:
            items = await self._all_pages(getter, resource, params)
        except _TooManyPages as exc:
            raise _GroupFailed(str(exc)) from None
        found: list[dict[str, Any]] = []
        for item in items:
            resource_json = _validated(item)
            if not _about(resource_json, patient_id):
                raise _GroupFailed(f"the server answered {resource} of another patient")
            found.append(resource_json)
        return found


def _by_identifier(
    system: str, value: str
) -> tuple[dict[str, str], Callable[[dict[str, Any]], bool]]:
    def fits(patient: dict[str, Any]) -> bool:
        # Checked here too: a server that ignores a search parameter answers every Patient.
        return any(isinstance(i, dict) and i.get("system") == system and i.get("value") == value
                   for i in patient.get("identifier") or [])
    # The value is sent as a search parameter: httpx percent-encodes it (a '|' or '&' in it
    # cannot add a parameter or change the system searched).
    return {"identifier": f"{system}|{value}"}, fits


def _has_name(patient: dict[str, Any], name: str, birth: str) -> bool:
    wanted = " ".join(name.casefold().split())
    held_birth = str(patient.get("birthDate") or "")
    if not held_birth or not (held_birth.startswith(birth) or birth.startswith(held_birth)):
        return False
    for entry in patient.get("name") or []:
        if not isinstance(entry, dict):
            continue
        given = [g for g in entry.get("given") or [] if isinstance(g, str)]
        forms = [str(entry.get("text") or ""),
                 " ".join([*given, str(entry.get("family") or "")])]
        if any(" ".join(form.casefold().split()) == wanted for form in forms):
            return True
    return False


def _entries(answer: Any, resource: str) -> list[dict[str, Any]]:
    """The matched ``resource`` entries of a searchset Bundle (a 404 is an empty search)."""
    if answer is None:
        return []
    if not isinstance(answer, dict) or answer.get("resourceType") != "Bundle":
        raise SystemUnavailable("the system's answer to a search is not a Bundle")
    entries = answer.get("entry") or []
    if not isinstance(entries, list):
        raise SystemUnavailable("the system's Bundle is malformed")
    found = []
    for entry in entries:
        item = entry.get("resource") if isinstance(entry, dict) else None
        mode = (entry.get("search") or {}).get("mode", "match") if isinstance(entry, dict) \
            else "match"
        if isinstance(item, dict) and item.get("resourceType") == resource and mode == "match":
            found.append(item)
    return found


def _next_link(answer: Any) -> str | None:
    for link in answer.get("link") or [] if isinstance(answer, dict) else []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def _validated(item: dict[str, Any]) -> dict[str, Any]:
    """The resource as the R4 model reads it; _GroupFailed when it does not conform."""
    kind = str(item.get("resourceType"))
    try:
        model = get_fhir_model_class(kind).model_validate(item)
    except (ValueError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
        raise _GroupFailed(f"a {kind} from the system does not conform to R4") from exc
    data: dict[str, Any] = json.loads(model.model_dump_json(by_alias=True, exclude_none=True))
    return data


def _about(resource: dict[str, Any], patient_id: str) -> bool:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            target = str(ref["reference"])
            return target == f"Patient/{patient_id}" or target.endswith(f"/Patient/{patient_id}")
    return False


def _evaluate(path: FhirPath, resources: list[dict[str, Any]]) -> Any:
    """The primitives ``path`` gives over ``resources`` (one value, a list, or None)."""
    values: list[Any] = []
    for resource in resources:
        try:
            result = path.evaluate(resource, {})
        except Exception as exc:  # fhirpathpy raises plain errors for an evaluation failure
            raise ConversionError(f"the FHIRPath does not evaluate ({type(exc).__name__})") \
                from None
        for item in result:
            if isinstance(item, (dict, list)):
                raise ConversionError("the FHIRPath gives an element, not a value "
                                      "(end it with .text, .code, .value ...)")
            values.append(item if isinstance(item, (str, int, float, bool)) else str(item))
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _show(raw: Any) -> str | None:
    if raw is None:
        return None
    return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
