"""The REST/JSON adapter: a partner's own HTTP API answers the gateway's questions, configured
by a mapping file (docs/partners/rest.md has the reference and a worked example)::

    kind: rest
    partner_type: police
    server: {base_url: ..., auth: ..., tls: ...}      # adapters.systems.http_access
    person:                          # how the person asked about is found (optional)
      search:                        # the first whose placeholders were all given is used
        - /api/v1/persons?bsn={bsn}
        - /api/v1/persons?name={name}&birth_date={date_of_birth}
      matches: persons               # path to the list of matches in the answer
      id: id                         # path in the match to the id the requests use as {id}
      verify: {bsn: bsn, name: name, date_of_birth: birth_date}   # the match must carry them
    requests:                        # named GETs, each made only when an asked field needs it
      profile: {url: "/api/v1/persons/{id}"}
      incidents:
        url: /api/v1/persons/{id}/incidents
        items: items                 # paging: the list in each page ...
        next: next                   # ... and the path to the next page's URL
        max_pages: 10
    fields:
      police.weapon_flag: {type: text, request: profile, path: weapon.flag,
                           convert: {map: {"true": "yes", "false": "no"}}}
      police.incidents: {type: text, request: incidents, path: "[*]",
                         template: "{date} {summary}", convert: {join: "; "}}
    lookup: {role_path: role}        # role from the person match ("request" names another)

URL placeholders are ``{bsn}``, ``{name}``, ``{date_of_birth}``, ``{address}``,
``{postcode}``, ``{reference}`` and ``{id}``; each value is percent-encoded as a whole (a
``/``, ``?`` or ``&`` in it cannot change the URL's shape). Paths are adapters.systems.json_paths.

Outcomes: no search usable with the identifiers given, a 404 on the search, no match or more
than one match (the adapter never guesses between persons) is "not known". A failing search,
or every needed request failing, makes the system unavailable; one failing request makes its
fields unavailable. A 404 on a request means its fields are not held. A list still going on
after ``max_pages`` makes its fields unavailable rather than sending part of it.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
from adapters.systems.json_paths import JsonPath, PathError, Template, scalar

__all__ = ["SCHEMA", "RestAdapter", "UrlTemplate", "open_adapter"]

IDENTIFIERS = ("bsn", "name", "date_of_birth", "address", "postcode", "reference")
PERSON = "person"  # the request name that means the person's search match itself
PERSON_KEYS = ("search", "matches", "id", "verify")
REQUEST_KEYS = ("url", "items", "next", "max_pages")
DEFAULT_MAX_PAGES = 10


class UrlTemplate:
    """A URL relative to the server's base, with ``{placeholder}``s filled percent-encoded."""

    def __init__(self, text: str, allowed: Sequence[str]) -> None:
        if not isinstance(text, str) or not text.startswith("/"):
            raise ValueError("a URL is a path relative to base_url, starting with '/'")
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"bad URL template: {exc}") from None
        self.text = text
        self.parts: list[tuple[str, str | None]] = []
        for literal, name, spec, conversion in parsed:
            if name is not None and (name not in allowed or spec or conversion):
                raise ValueError(f"unknown placeholder {{{name}}} in the URL"
                                 f"{did_you_mean(name, allowed)}")
            self.parts.append((literal, name))

    @property
    def names(self) -> set[str]:
        return {name for _, name in self.parts if name is not None}

    def expand(self, values: Mapping[str, str]) -> str:
        # quote(safe="") encodes '/', '?', '&', '#', '%' too: a value never changes the URL's
        # shape (path traversal, an extra query parameter).
        return "".join(literal + (quote(values[name], safe="") if name else "")
                       for literal, name in self.parts)


@dataclass(frozen=True)
class RequestPlan:
    name: str
    url: UrlTemplate
    items: JsonPath | None
    next: JsonPath | None
    max_pages: int


@dataclass(frozen=True)
class FieldPlan:
    id: str
    request: str
    path: JsonPath
    template: Template | None
    conversion: Conversion


@dataclass(frozen=True)
class PersonPlan:
    searches: tuple[UrlTemplate, ...]
    matches: JsonPath
    id: JsonPath
    verify: tuple[tuple[str, JsonPath], ...] = ()  # (identifier, path in the match)


@dataclass(frozen=True)
class LookupPlan:
    role: str
    role_path: JsonPath | None
    request: str


@dataclass(frozen=True)
class RestPlan:
    person: PersonPlan | None
    requests: dict[str, RequestPlan]
    fields: dict[str, FieldPlan]
    lookup: LookupPlan


def _plan(mapping: MappingFile, problem: Callable[[Mark, str], None]) -> RestPlan:
    """The checked plan of a REST mapping; every problem goes to ``problem`` with its place."""
    root = mapping.node
    check_server(root.get("server"), problem, root.mark)
    person = _person(root.get("person"), problem)
    allowed = (*IDENTIFIERS, "id") if person is not None else IDENTIFIERS
    requests: dict[str, RequestPlan] = {}
    node = root.get("requests")
    if node is not None and not node.is_mapping:
        problem(node.mark, "requests must be a mapping of names to requests")
    elif node is not None:
        for name, entry in node.items():
            if name == PERSON:
                problem(node.key_mark(name), f"{PERSON!r} is the person search's own name")
            plan = _request(name, entry, allowed, problem)
            if plan is not None:
                requests[name] = plan
    # Every declared name counts, even one whose request has a problem (reported above),
    # so that a field naming it gets no second, misleading problem.
    declared = tuple(node.value) if node is not None and node.is_mapping else ()
    names = (*declared, PERSON) if root.get("person") is not None else declared
    fields: dict[str, FieldPlan] = {}
    for field_id, spec in mapping.fields.items():
        plan_f = _field(field_id, spec.node, spec.conversion, names, problem)
        if plan_f is not None:
            fields[field_id] = plan_f
    lookup = _lookup(root.get("lookup"), root.mark, names, person is not None, problem)
    return RestPlan(person, requests, fields, lookup)


def _path(node: YNode | None, problem: Callable[[Mark, str], None]) -> JsonPath | None:
    if node is None:
        return None
    if not isinstance(node.value, str):
        problem(node.mark, "a path is text, e.g. items[*].summary")
        return None
    try:
        return JsonPath.parse(node.value)
    except PathError as exc:
        problem(node.mark, str(exc))
        return None


def _url(node: YNode, allowed: Sequence[str], problem: Callable[[Mark, str], None]
         ) -> UrlTemplate | None:
    try:
        return UrlTemplate(node.value, allowed)
    except ValueError as exc:
        problem(node.mark, str(exc))
        return None


def _person(node: YNode | None, problem: Callable[[Mark, str], None]) -> PersonPlan | None:
    if node is None:
        return None
    if not node.is_mapping:
        problem(node.mark, "person must be a mapping (search, matches, id)")
        return None
    _keys(node, PERSON_KEYS, problem)
    searches: list[UrlTemplate] = []
    search = node.get("search")
    if search is None or not search.is_list or not search.value:
        problem((search or node).mark, "person needs 'search': a list of URL templates")
    else:
        for item in search.value:
            url = _url(item, IDENTIFIERS, problem)
            if url is not None:
                if not url.names:
                    problem(item.mark, "a search URL needs at least one identifier, e.g. {bsn}")
                searches.append(url)
    matches = _path(node.get("matches"), problem)
    ident = _path(node.get("id"), problem)
    for key in ("matches", "id"):
        if node.get(key) is None:
            problem(node.mark, f"person needs {key!r} (a path)")
    if matches is None or ident is None or not searches:
        return None
    verify: list[tuple[str, JsonPath]] = []
    verify_node = node.get("verify")
    if verify_node is not None:
        if not verify_node.is_mapping:
            problem(verify_node.mark, "verify must map identifiers to paths in a match")
        else:
            _keys(verify_node, IDENTIFIERS, problem)
            for name, path_node in verify_node.items():
                path = _path(path_node, problem)
                if path is not None and name in IDENTIFIERS:
                    verify.append((name, path))
    return PersonPlan(tuple(searches), matches, ident, tuple(verify))


def _request(name: str, node: YNode, allowed: Sequence[str],
             problem: Callable[[Mark, str], None]) -> RequestPlan | None:
    if not node.is_mapping:
        problem(node.mark, f"request {name!r} must be a mapping (url, items, next, max_pages)")
        return None
    _keys(node, REQUEST_KEYS, problem)
    url_node = node.get("url")
    if url_node is None:
        problem(node.mark, f"request {name!r} needs 'url'")
        return None
    url = _url(url_node, allowed, problem)
    items, next_ = _path(node.get("items"), problem), _path(node.get("next"), problem)
    if (node.get("items") is None) != (node.get("next") is None):
        problem(node.mark, "paging needs both 'items' and 'next'")
    pages = node.get("max_pages")
    max_pages = DEFAULT_MAX_PAGES
    if pages is not None:
        if isinstance(pages.value, bool) or not isinstance(pages.value, int) or pages.value < 1:
            problem(pages.mark, "max_pages must be a positive whole number")
        else:
            max_pages = pages.value
    if url is None:
        return None
    return RequestPlan(name, url, items, next_, max_pages)


def _field(field_id: str, node: YNode, conversion: Conversion, names: Sequence[str],
           problem: Callable[[Mark, str], None]) -> FieldPlan | None:
    request = node.get("request")
    if request is None or not isinstance(request.value, str):
        return None  # the common reader reported it missing
    if request.value not in names:
        problem(request.mark, f"request {request.value!r} is not declared under requests"
                f"{did_you_mean(request.value, names) if names else ''}")
        return None
    path = _path(node.get("path"), problem)
    template: Template | None = None
    template_node = node.get("template")
    if template_node is not None:
        try:
            template = Template.parse(str(template_node.value))
        except PathError as exc:
            problem(template_node.mark, str(exc))
    if path is None:
        return None
    return FieldPlan(field_id, request.value, path, template, conversion)


def _lookup(node: YNode | None, where: Mark, names: Sequence[str], has_person: bool,
            problem: Callable[[Mark, str], None]) -> LookupPlan:
    plain = node.plain() if node is not None and node.is_mapping else {}
    request = plain.get("request", PERSON)
    if request not in names:
        problem(node.mark if node is not None else where,
                "lookup needs a person search, or 'request' naming a declared request"
                if not has_person else f"lookup request {request!r} is not declared")
    role_path = _path(node.get("role_path") if node is not None else None, problem)
    role = plain.get("role", "")
    if not isinstance(role, str):
        problem(node.mark if node is not None else where, "lookup role must be text")
        role = ""
    return LookupPlan(role, role_path, str(request))


def _keys(node: YNode, allowed: Sequence[str], problem: Callable[[Mark, str], None]) -> None:
    for key in node.value:
        if key not in allowed:
            problem(node.key_mark(key), f"unknown key {key!r}{did_you_mean(key, allowed)}")


def _check(mapping: MappingFile, problem: Callable[[Mark, str], None]) -> None:
    _plan(mapping, problem)


SCHEMA = KindSchema(
    kind="rest",
    top_keys=("server", "person", "requests"),
    required_top_keys=("server",),
    field_keys=("request", "path", "template"),
    required_field_keys=("request", "path"),
    lookup_keys=("role", "role_path", "request"),
    check=_check,
)


def open_adapter(mapping: MappingFile, system: Mapping[str, Any], base_dir: Path) -> RestAdapter:
    """The adapter for a checked REST mapping; ``system`` (source.toml's [system] table) may
    override the server block's keys (e.g. base_url)."""
    problems: list[str] = []
    plan = _plan(mapping, lambda mark, message: problems.append(f"{mark}: {message}"))
    if problems:
        raise ValueError("\n".join(problems))
    server = {k: v for k, v in (mapping.top.get("server") or {}).items() if k in SERVER_KEYS}
    return RestAdapter(plan, settings_from(server, mapping.path.parent, system, base_dir))


@dataclass
class _Outcome:
    """A request's outcome: its answer, ``missing`` for a 404, or the failure's reason."""

    answer: Any = None
    missing: bool = False
    failure: str = ""


class RestAdapter:
    def __init__(self, plan: RestPlan, settings: HttpSettings) -> None:
        self.plan = plan
        self.settings = settings
        self._client = open_client(settings)

    async def close(self) -> None:
        await self._client.aclose()

    def _getter(self, deadline_s: float) -> JsonGetter:
        return JsonGetter(self._client, self.settings,
                          asyncio.get_running_loop().time() + deadline_s)

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
            return await self._lookup(person, self._getter(deadline_s))
        except NotKnown:
            return False, ""
        except SystemUnavailable:
            raise
        except Exception as exc:
            raise SystemUnavailable(f"unexpected failure ({type(exc).__name__})") from None

    async def _fetch(
        self, person: Person, fields: Sequence[str], getter: JsonGetter, explain: bool
    ) -> Found:
        asked = [self.plan.fields[f] for f in dict.fromkeys(fields) if f in self.plan.fields]
        values = person.given()
        match: Any = None
        if self.plan.person is not None:
            match, values["id"] = await self._find(person, getter)
        needed = sorted({f.request for f in asked} - {PERSON})
        outcomes = dict(zip(needed, await asyncio.gather(
            *(self._request(self.plan.requests[name], values, getter) for name in needed)
        ), strict=True))
        if self.plan.person is None and outcomes and all(o.missing for o in outcomes.values()):
            raise NotKnown()
        if outcomes and all(o.failure for o in outcomes.values()):
            raise SystemUnavailable(next(iter(outcomes.values())).failure)
        found: dict[str, str] = {}
        unavailable: set[str] = set()
        readings: list[FieldReading] = []
        for plan in asked:
            outcome = _Outcome(match) if plan.request == PERSON else outcomes[plan.request]
            raw: Any = None
            problem = outcome.failure
            value: str | None = None
            if not problem and not outcome.missing:
                try:
                    raw = plan.path.find(outcome.answer)
                    value = plan.conversion.apply(_render(plan, raw))
                except (PathError, ConversionError) as exc:
                    problem = str(exc)
            if problem:
                unavailable.add(plan.id)
            elif value is not None:
                found[plan.id] = value
            if explain:
                readings.append(FieldReading(plan.id, _show(raw), value, problem))
        return Found(found, frozenset(unavailable), tuple(readings))

    async def _find(self, person: Person, getter: JsonGetter) -> tuple[Any, str]:
        plan = self.plan.person
        assert plan is not None
        given = person.given()
        search = next((s for s in plan.searches if s.names <= given.keys()), None)
        if search is None:
            raise NotKnown()  # none of the identifiers this system is searched by was given
        answer = await getter.get(search.expand(given))
        if answer is None:
            raise NotKnown()
        try:
            matches = plan.matches.find(answer)
        except PathError:
            raise SystemUnavailable("the person search's answer is malformed") from None
        if matches is None:
            raise NotKnown()
        if not isinstance(matches, list):
            raise SystemUnavailable("the person search's matches are not a list")
        # A match that does not carry the identifiers searched by is not this person (an API
        # that ignored a search parameter would answer someone else). Only those: a name
        # spelled otherwise in this system than in the case file is no reason to refuse a
        # person found by BSN.
        searched = {name: given[name] for name in search.names}
        matches = [m for m in matches if _carries(m, searched, plan.verify)]
        if len(matches) != 1:
            raise NotKnown()  # none, or several persons fit: never guess between them
        try:
            ident = scalar(plan.id.find(matches[0]), "person id")
        except PathError:
            ident = None
        if ident is None or isinstance(ident, (list, bool)):
            raise SystemUnavailable("the person search's match has no id")
        return matches[0], str(ident)

    async def _request(
        self, plan: RequestPlan, values: Mapping[str, str], getter: JsonGetter
    ) -> _Outcome:
        if not plan.url.names <= values.keys():
            return _Outcome(missing=True)  # an identifier it needs was not given
        try:
            answer = await getter.get(plan.url.expand(values))
            if answer is None:
                return _Outcome(missing=True)
            if plan.items is None or plan.next is None:
                return _Outcome(answer)
            items: list[Any] = []
            for page in range(plan.max_pages):
                batch = plan.items.find(answer)
                if batch is not None and not isinstance(batch, list):
                    return _Outcome(failure="a page's items are not a list")
                items.extend(batch or [])
                link = scalar(plan.next.find(answer), "next link")
                if link in (None, ""):
                    return _Outcome(items)
                if not isinstance(link, str):
                    return _Outcome(failure="a page's next link is not text")
                if page + 1 == plan.max_pages:
                    break
                answer = await getter.get(link)
                if answer is None:
                    return _Outcome(failure="a next page was not found")
            return _Outcome(failure=f"more than max_pages ({plan.max_pages}) pages")
        except SystemUnavailable as exc:
            return _Outcome(failure=str(exc))
        except PathError as exc:
            return _Outcome(failure=str(exc))

    async def _lookup(self, person: Person, getter: JsonGetter) -> tuple[bool, str]:
        lookup = self.plan.lookup
        values = person.given()
        answer: Any = None
        if self.plan.person is not None:
            answer, values["id"] = await self._find(person, getter)
        if lookup.request != PERSON:
            outcome = await self._request(self.plan.requests[lookup.request], values, getter)
            if outcome.failure:
                raise SystemUnavailable(outcome.failure)
            if outcome.missing:
                return False, ""
            answer = outcome.answer
        role = lookup.role
        if lookup.role_path is not None:
            try:
                found = scalar(lookup.role_path.find(answer), "role")
            except PathError:
                found = None  # a malformed role: known, role not said
            if found is not None and not isinstance(found, list):
                role = str(found).strip()
        return True, role


def _carries(match: Any, given: Mapping[str, str],
             verify: Sequence[tuple[str, JsonPath]]) -> bool:
    for name, path in verify:
        if name not in given:
            continue
        try:
            held = scalar(path.find(match), name)
        except PathError:
            return False
        if held is None or isinstance(held, list):
            return False
        if not _same(name, str(held), given[name]):
            return False
    return True


def _same(name: str, held: str, asked: str) -> bool:
    if name == "name":
        return " ".join(held.casefold().split()) == " ".join(asked.casefold().split())
    if name == "date_of_birth":
        # A partial date on either side (1985, 1985-03) matches the dates within it.
        return bool(held) and (held.startswith(asked) or asked.startswith(held))
    if name == "postcode":
        return held.replace(" ", "").upper() == asked.replace(" ", "").upper()
    return held.strip() == asked.strip()


def _render(plan: FieldPlan, raw: Any) -> Any:
    """What the path found, through the field's template; PathError for an object where a
    value was expected."""
    if plan.template is not None and raw is not None:
        if isinstance(raw, list):
            return [plan.template.render(item) for item in raw]
        return plan.template.render(raw)
    return scalar(raw, plan.path.text or "the answer")


def _show(raw: Any) -> str | None:
    if raw is None:
        return None
    return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
