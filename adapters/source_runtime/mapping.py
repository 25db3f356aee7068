"""Mapping files: which catalogue field comes from where in a partner's own system.

A mapping file is YAML with a common top level::

    kind: sql                 # rest | fhir | sql | csv: which adapter reads the system
    partner_type: gemeente    # the catalogue partner type this system belongs to
    fields:
      address:                # a catalogue field id whose source is that partner type
        type: text            # must equal the field's catalogue kind
        ...                   # kind-specific source keys (a query and column, a JSON path)
        convert: {max_length: 200}   # adapters.source_runtime.conversions
    lookup: {...}             # how "is this person known, in which role" is answered
    ...                       # kind-specific top-level keys (queries, endpoints)

Every problem is reported with ``file:line:column`` as policy files are, all at once: an unknown
key (with "did you mean"), a field the catalogue does not have or that the partner type does
not hold, a type that is not the catalogue's kind, a bad conversion.

Each kind is an adapter module ``adapters.systems.<kind>`` exposing ``SCHEMA`` (a
``KindSchema``: its keys and deeper checks) and ``open_adapter(mapping, system, base_dir)``
returning a SystemAdapter; ``schema_for`` imports it lazily, so a partner installs only the
extra of the adapter it uses.

The loader here keeps YAML marks itself (it composes nodes with PyYAML's safe loader): the
partner side does not import the gateway's policy reader.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from adapters.source_runtime.catalogue import Catalogue
from adapters.source_runtime.conversions import (
    CONVERT_KEYS,
    Conversion,
    ConversionSpecError,
    conversion_from,
)

__all__ = [
    "KINDS",
    "FieldMapping",
    "KindSchema",
    "MappingError",
    "MappingFile",
    "MappingProblem",
    "Mark",
    "Node",
    "YNode",
    "load_mapping",
    "load_yaml",
    "schema_for",
]

KINDS = ("rest", "fhir", "sql", "csv")
COMMON_TOP_KEYS = ("kind", "partner_type", "fields", "lookup")
COMMON_FIELD_KEYS = ("type", "convert")
# A mapping file is small; far deeper nesting is a mistake or an attack on the recursive walk.
MAX_DEPTH = 32


@dataclass(frozen=True)
class Mark:
    """A place in a file, 1-based, as editors count."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class MappingProblem:
    mark: Mark
    message: str

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}"


class MappingError(Exception):
    """A mapping file with problems; ``problems`` lists each with its place."""

    def __init__(self, problems: list[MappingProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class YNode:
    """A YAML value with its place: ``value`` is a scalar (str, int, float, bool, None), a
    ``dict[str, YNode]`` or a ``list[YNode]``; ``key_marks`` gives where each key was written."""

    value: Any
    mark: Mark
    key_marks: dict[str, Mark] = field(default_factory=dict)

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    def get(self, key: str) -> YNode | None:
        return self.value.get(key) if isinstance(self.value, dict) else None

    def items(self) -> Iterator[tuple[str, YNode]]:
        if isinstance(self.value, dict):
            yield from self.value.items()

    def key_mark(self, key: str) -> Mark:
        return self.key_marks.get(key, self.mark)

    def plain(self) -> Any:
        """The value as plain Python (dicts, lists, scalars), marks dropped."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def _mark(file: str, node: Node) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


def load_yaml(path: str | Path) -> YNode:
    """One YAML document with marks; raises MappingError for a file that is not YAML."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(
            [MappingProblem(Mark(name, 0, 0), f"cannot read: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise MappingError([MappingProblem(Mark(name, 0, 0), "not UTF-8 text")]) from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise MappingError([MappingProblem(Mark(name, 1, 1), "the file is empty")])
        return _build(loader, name, root, 0)
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        mark = Mark(name, where.line + 1, where.column + 1) if where else Mark(name, 0, 0)
        raise MappingError(
            [MappingProblem(mark, f"not valid YAML: {exc.problem or exc.context}")]
        ) from None
    except yaml.YAMLError as exc:
        raise MappingError([MappingProblem(Mark(name, 0, 0), f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, name: str, node: Node, depth: int) -> YNode:
    mark = _mark(name, node)
    if depth > MAX_DEPTH:
        raise MappingError([MappingProblem(mark, f"nested more than {MAX_DEPTH} levels")])
    if isinstance(node, ScalarNode):
        return YNode(loader.construct_object(node, deep=True), mark)
    if isinstance(node, SequenceNode):
        return YNode([_build(loader, name, item, depth + 1) for item in node.value], mark)
    if isinstance(node, MappingNode):
        values: dict[str, YNode] = {}
        key_marks: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            key_mark = _mark(name, key_node)
            if not isinstance(key_node, ScalarNode):
                raise MappingError([MappingProblem(key_mark, "a key must be plain text")])
            key = str(loader.construct_object(key_node))
            if key in values:
                raise MappingError([MappingProblem(key_mark, f"key {key!r} appears twice")])
            values[key] = _build(loader, name, value_node, depth + 1)
            key_marks[key] = key_mark
        return YNode(values, mark, key_marks)
    raise MappingError([MappingProblem(mark, "unsupported YAML node")])


def did_you_mean(word: str, options: Collection[str]) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f", did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(options))}"


@dataclass(frozen=True)
class FieldMapping:
    """One field's mapping: its catalogue ``type``, its ``conversion``, and the kind-specific
    source keys (``source``, plain values; ``node`` keeps their marks for deeper checks)."""

    id: str
    type: str
    conversion: Conversion
    source: Mapping[str, Any]
    mark: Mark
    node: YNode


@dataclass(frozen=True)
class MappingFile:
    path: Path
    kind: str
    partner_type: str
    fields: dict[str, FieldMapping]
    lookup: Mapping[str, Any]
    top: Mapping[str, Any]  # the kind-specific top-level keys, plain
    node: YNode  # the whole document, with marks


@dataclass(frozen=True)
class KindSchema:
    """The keys a kind of mapping allows, besides the common ones, and its deeper checks.

    ``check(mapping, problem)`` runs after the common checks passed; it reports each problem
    with ``problem(mark, message)`` (e.g. a field naming a query that is not declared)."""

    kind: str
    top_keys: Collection[str] = ()
    required_top_keys: Collection[str] = ()
    field_keys: Collection[str] = ()
    required_field_keys: Collection[str] = ()
    lookup_keys: Collection[str] = ()
    check: Callable[[MappingFile, Callable[[Mark, str], None]], None] | None = None


def schema_for(kind: str) -> KindSchema:
    """The schema of mapping kind ``kind``, from its adapter module (imported here, lazily)."""
    module = importlib.import_module(f"adapters.systems.{ADAPTER_MODULES[kind]}")
    schema: KindSchema = module.SCHEMA
    return schema


ADAPTER_MODULES = {"rest": "rest", "fhir": "fhir", "sql": "sql", "csv": "csv_drop"}


def load_mapping(
    path: str | Path,
    catalogue: Catalogue | None = None,
    *,
    schema: Callable[[str], KindSchema] = schema_for,
) -> MappingFile:
    """Read and check a mapping file (against ``catalogue`` when given); raises MappingError
    listing every problem found."""
    problems: list[MappingProblem] = []

    def problem(mark: Mark, message: str) -> None:
        problems.append(MappingProblem(mark, message))

    root = load_yaml(path)
    if not root.is_mapping:
        raise MappingError([MappingProblem(root.mark, "a mapping file is a YAML mapping")])
    kind = _text(root, "kind", problem)
    if kind is not None and kind not in KINDS:
        problem(root.get("kind").mark, f"unknown kind {kind!r}{did_you_mean(kind, KINDS)}")  # type: ignore[union-attr]
        kind = None
    if kind is None:
        raise MappingError(problems or [MappingProblem(root.mark, "kind is missing")])
    try:
        spec = schema(kind)
    except ImportError as exc:
        raise MappingError([MappingProblem(
            root.key_mark("kind"),
            f"the {kind} adapter is not installed here ({exc.name}): "
            f"pip install 'ketenpoort[{kind}]'",
        )]) from None
    _known_keys(root, (*COMMON_TOP_KEYS, *spec.top_keys), problem)
    for key in spec.required_top_keys:
        if root.get(key) is None:
            problem(root.mark, f"{key!r} is missing (a {kind} mapping needs it)")
    partner_type = _text(root, "partner_type", problem) or ""
    if catalogue is not None and partner_type and partner_type not in catalogue.partner_types:
        problem(
            root.get("partner_type").mark,  # type: ignore[union-attr]
            f"partner type {partner_type!r} is not in the catalogue"
            f"{did_you_mean(partner_type, catalogue.partner_types)}",
        )
    fields = _fields(root, spec, partner_type, catalogue, problem)
    lookup_node = root.get("lookup")
    lookup: Mapping[str, Any] = {}
    if lookup_node is not None:
        if not lookup_node.is_mapping:
            problem(lookup_node.mark, "lookup must be a mapping")
        else:
            _known_keys(lookup_node, spec.lookup_keys, problem)
            lookup = lookup_node.plain()
    top = {k: v.plain() for k, v in root.items() if k not in COMMON_TOP_KEYS}
    mapping = MappingFile(Path(path), kind, partner_type, fields, lookup, top, root)
    if not problems and spec.check is not None:
        spec.check(mapping, problem)
    if problems:
        raise MappingError(problems)
    return mapping


def _fields(
    root: YNode,
    spec: KindSchema,
    partner_type: str,
    catalogue: Catalogue | None,
    problem: Callable[[Mark, str], None],
) -> dict[str, FieldMapping]:
    node = root.get("fields")
    if node is None:
        problem(root.mark, "'fields' is missing")
        return {}
    if not node.is_mapping or not node.value:
        problem(node.mark, "fields must be a mapping of catalogue field ids to their source")
        return {}
    held = catalogue.fields_of(partner_type) if catalogue is not None else None
    result: dict[str, FieldMapping] = {}
    for field_id, entry in node.items():
        key_mark = node.key_mark(field_id)
        if catalogue is not None:
            known = catalogue.fields.get(field_id)
            if known is None:
                problem(key_mark, f"unknown field {field_id!r}"
                        f"{did_you_mean(field_id, held or catalogue.fields)}")
            elif held is not None and field_id not in held and partner_type:
                problem(key_mark, f"field {field_id!r} is held by partner type "
                        f"{known.source!r}, not {partner_type!r}")
        if not entry.is_mapping:
            problem(entry.mark,
                    f"field {field_id!r} must be a mapping (type, source keys, convert)")
            continue
        _known_keys(entry, (*COMMON_FIELD_KEYS, *spec.field_keys), problem)
        for key in spec.required_field_keys:
            # A typo of the key was reported as such already; "needs" would say it twice.
            typo = difflib.get_close_matches(key, list(entry.value), n=1, cutoff=0.6)
            if entry.get(key) is None and not typo:
                problem(entry.mark, f"field {field_id!r} needs {key!r}")
        kind = _text(entry, "type", problem)
        if kind is None:
            continue
        if catalogue is not None and field_id in catalogue.fields:
            expected = catalogue.fields[field_id].kind
            if kind != expected:
                problem(entry.get("type").mark,  # type: ignore[union-attr]
                        f"type {kind!r} is not the catalogue's kind of {field_id!r}: {expected!r}")
        convert_node = entry.get("convert")
        convert: Mapping[str, Any] | None = None
        if convert_node is not None:
            if not convert_node.is_mapping:
                problem(convert_node.mark, "convert must be a mapping")
                continue
            _known_keys(convert_node, CONVERT_KEYS, problem)
            convert = convert_node.plain()
        try:
            conversion = conversion_from(kind, convert)
        except ConversionSpecError as exc:
            where = entry.get("type") if exc.key == "type" else (
                convert_node.get(exc.key) if convert_node is not None else None)
            problem(where.mark if where is not None else entry.mark, str(exc))
            continue
        source = {k: v.plain() for k, v in entry.items() if k not in COMMON_FIELD_KEYS}
        result[field_id] = FieldMapping(field_id, kind, conversion, source, key_mark, entry)
    return result


def _known_keys(
    node: YNode, allowed: Collection[str], problem: Callable[[Mark, str], None]
) -> None:
    for key in node.value:
        if key not in allowed:
            problem(node.key_mark(key), f"unknown key {key!r}{did_you_mean(key, allowed)}"
                    if allowed else f"unknown key {key!r}: nothing is allowed here")


def _text(node: YNode, key: str, problem: Callable[[Mark, str], None]) -> str | None:
    value = node.get(key)
    if value is None:
        problem(node.mark, f"{key!r} is missing")
        return None
    if not isinstance(value.value, str) or not value.value:
        problem(value.mark, f"{key} must be text")
        return None
    return str(value.value)
