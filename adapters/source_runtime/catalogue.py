"""The gateway's field catalogue as the partner side reads it (CONTRACT: "ketenpoort-catalogue/1").

The gateway's operator exports it with ``ketenpoort policy catalogue --output catalogue.json``
and hands the file to the partner; ``ketenpoort source check`` validates a mapping file
against it. Reading it needs no gateway code: it is plain JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CATALOGUE_FORMAT",
    "FIELD_KINDS",
    "Catalogue",
    "CatalogueError",
    "CatalogueField",
    "PartnerType",
    "load_catalogue",
    "parse_catalogue",
]

CATALOGUE_FORMAT = "ketenpoort-catalogue/1"
FIELD_KINDS = ("text", "date", "name", "postcode", "identifier")
ABOUT = ("person", "case")


class CatalogueError(ValueError):
    """The catalogue file is not a ketenpoort-catalogue/1 document."""


@dataclass(frozen=True)
class CatalogueField:
    id: str
    category: str
    kind: str
    source: str  # the partner type whose systems hold this field
    about: str
    description: str


@dataclass(frozen=True)
class PartnerType:
    id: str
    identifiers: tuple[str, ...]  # what a source of this type may be given to find a person


@dataclass(frozen=True)
class Catalogue:
    fields: dict[str, CatalogueField]
    partner_types: dict[str, PartnerType]

    def fields_of(self, partner_type: str) -> dict[str, CatalogueField]:
        """The fields whose source is ``partner_type``."""
        return {f.id: f for f in self.fields.values() if f.source == partner_type}


def load_catalogue(path: str | Path) -> Catalogue:
    file = Path(path)
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"{file}: cannot read the catalogue: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"{file}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    try:
        return parse_catalogue(document)
    except CatalogueError as exc:
        raise CatalogueError(f"{file}: {exc}") from exc


def parse_catalogue(document: Any) -> Catalogue:
    if not isinstance(document, dict):
        raise CatalogueError("a catalogue is a JSON object")
    if document.get("format") != CATALOGUE_FORMAT:
        raise CatalogueError(
            f"format is {document.get('format')!r}, expected {CATALOGUE_FORMAT!r} "
            "(export it with `ketenpoort policy catalogue`)"
        )
    fields: dict[str, CatalogueField] = {}
    for i, entry in enumerate(_list(document, "fields")):
        where = f"fields[{i}]"
        item = CatalogueField(
            id=_text(entry, "id", where),
            category=_text(entry, "category", where),
            kind=_choice(entry, "kind", FIELD_KINDS, where),
            source=_text(entry, "source", where),
            about=_choice(entry, "about", ABOUT, where),
            description=_text(entry, "description", where, required=False),
        )
        if item.id in fields:
            raise CatalogueError(f"{where}: field {item.id!r} appears twice")
        fields[item.id] = item
    partner_types: dict[str, PartnerType] = {}
    for i, entry in enumerate(_list(document, "partner_types")):
        where = f"partner_types[{i}]"
        identifiers = entry.get("identifiers", []) if isinstance(entry, dict) else None
        if not isinstance(identifiers, list) or not all(isinstance(x, str) for x in identifiers):
            raise CatalogueError(f"{where}: identifiers must be a list of strings")
        kind = PartnerType(_text(entry, "id", where), tuple(identifiers))
        partner_types[kind.id] = kind
    return Catalogue(fields, partner_types)


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    if not isinstance(value, list):
        raise CatalogueError(f"{key!r} must be a list")
    return value


def _text(entry: Any, key: str, where: str, *, required: bool = True) -> str:
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: must be an object")
    value = entry.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise CatalogueError(f"{where}: {key!r} must be a non-empty string")
    return value


def _choice(entry: Any, key: str, options: tuple[str, ...], where: str) -> str:
    value = _text(entry, key, where)
    if value not in options:
        raise CatalogueError(f"{where}: {key} {value!r} is not one of {', '.join(options)}")
    return value
