"""The CSV drop adapter: for a small partner whose system can only export a file.

The partner's system (or a person) delivers a full export as a CSV file into an inbox
directory. The runtime imports it into a local store encrypted with AES-GCM (the key from a
file of the partner's), checking every row: a row that does not fit (wrong number of cells, no
identifier, a value that does not convert, the same person twice) is reported with its line
number and reason and kept aside in a rejects file, never silently dropped and never half
imported. The store is then replaced atomically (a new file, then a rename), so a call sees
the old export or the new one, never a mix. Imports run at start and whenever a new file
appears in the inbox (checked every ``poll_s`` seconds).

A file is taken only when it is complete: names starting with "." or ending in ".part" or
".tmp" are being written, and a file whose last line has no line end is not finished yet;
both are left for a later check. Deliver by writing under a temporary name and renaming.

Mapping file (kind: csv)::

    kind: csv
    partner_type: housing_corporation
    csv: {delimiter: ";", encoding: utf-8, date_of_birth_format: "%d-%m-%Y"}
    identify:                   # the columns that find a person (any of the identifiers)
      name: naam
      date_of_birth: geboortedatum
      postcode: postcode
      reference: huurdernummer
    fields:
      housing.rent_arrears: {type: text, column: achterstand}
    lookup: {role: tenant}      # or role_column: <column>

[system] in source.toml: ``inbox`` (directory), ``store`` (the encrypted store file),
``key_file`` (32 random bytes, base64, one line; ``ketenpoort source`` never writes it),
``poll_s`` (default 5). Processed files move to ``<inbox>/processed/``; each import's report
(``<file>.report.json``) and rejects (``<file>.rejects.csv``) go to ``<inbox>/reports/``; a file
refused as a whole (a missing column, undecodable) moves to ``<inbox>/refused/``.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.source_runtime.adapter import (
    FieldReading,
    Found,
    NotKnown,
    Person,
    SystemUnavailable,
)
from adapters.source_runtime.conversions import ConversionError, conversion_from
from adapters.source_runtime.mapping import KindSchema, MappingFile, Mark, did_you_mean

__all__ = ["SCHEMA", "CsvDropAdapter", "ImportReport", "open_adapter", "write_key_file"]

log = logging.getLogger("ketenpoort.source_runtime.csv")

STORE_FORMAT = "ketenpoort-csv-store/1"
CSV_KEYS = ("delimiter", "encoding", "date_of_birth_format")
IDENTIFY_KEYS = ("bsn", "name", "date_of_birth", "address", "postcode", "reference")
SYSTEM_KEYS = ("inbox", "store", "key_file", "poll_s")
_SKIPPED_SUFFIXES = (".part", ".tmp", ".partial")


def _check(mapping: MappingFile, problem: Callable[[Mark, str], None]) -> None:
    root = mapping.node
    options = root.get("csv")
    if options is not None:
        if not options.is_mapping:
            problem(options.mark, "csv must be a mapping (delimiter, encoding, ...)")
        else:
            for key in options.value:
                if key not in CSV_KEYS:
                    problem(options.key_mark(key),
                            f"unknown key {key!r}{did_you_mean(key, CSV_KEYS)}")
            delimiter = options.get("delimiter")
            if delimiter is not None and (not isinstance(delimiter.value, str)
                                          or len(delimiter.value) != 1):
                problem(delimiter.mark, "delimiter must be one character")
    identify = root.get("identify")
    assert identify is not None  # required
    if not identify.is_mapping or not identify.value:
        problem(identify.mark, "identify maps identifiers (bsn, name, ...) to columns")
        return
    for key, node in identify.items():
        if key not in IDENTIFY_KEYS:
            problem(identify.key_mark(key),
                    f"unknown key {key!r}{did_you_mean(key, IDENTIFY_KEYS)}")
        elif not isinstance(node.value, str) or not node.value:
            problem(node.mark, f"identify.{key} must be a column name")
    lookup = root.get("lookup")
    if lookup is not None and (lookup.get("role") is None) == (lookup.get("role_column") is None):
        problem(lookup.mark, "lookup needs either role (fixed text) or role_column")


SCHEMA = KindSchema(
    "csv",
    top_keys=("csv", "identify"),
    required_top_keys=("identify",),
    field_keys=("column",),
    required_field_keys=("column",),
    lookup_keys=("role", "role_column"),
    check=_check,
)


@dataclass
class ImportReport:
    """What one import did: written as JSON beside the rejects file."""

    file: str
    outcome: str  # imported | refused | incomplete
    rows_imported: int = 0
    rows_rejected: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"line": n, "reason": ...}
    reason: str = ""

    def as_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, ensure_ascii=False) + "\n"


def write_key_file(path: Path) -> None:
    """Create a new store key (for operators and tests); refuses to overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")


def _read_key(path: Path) -> bytes:
    try:
        key = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{path}: not a base64 key") from None
    if len(key) != 32:
        raise ValueError(f"{path}: the store key must be 32 bytes (base64)")
    return key


class _Store:
    """The encrypted store file: nonce, then AES-GCM of the JSON, bound to the format name."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._aead = AESGCM(key)

    def write(self, document: Mapping[str, Any]) -> None:
        nonce = secrets.token_bytes(12)
        data = json.dumps(document, ensure_ascii=False).encode()
        sealed = nonce + self._aead.encrypt(nonce, data, STORE_FORMAT.encode())
        partial = self.path.with_name(self.path.name + ".new")
        with partial.open("wb") as out:
            out.write(sealed)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.path)
        _fsync_dir(self.path.parent)

    def read(self) -> dict[str, Any] | None:
        try:
            sealed = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = self._aead.decrypt(sealed[:12], sealed[12:], STORE_FORMAT.encode())
        except (InvalidTag, ValueError):
            raise SystemUnavailable("the store does not open with the configured key") from None
        document: dict[str, Any] = json.loads(data)
        return document


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CsvDropAdapter:
    def __init__(self, mapping: MappingFile, inbox: Path, store: _Store, poll_s: float) -> None:
        options = dict(mapping.top.get("csv") or {})
        self.delimiter = str(options.get("delimiter", ","))
        self.encoding = str(options.get("encoding", "utf-8"))
        dob_format = options.get("date_of_birth_format")
        self.dob = conversion_from("date", {"format": dob_format} if dob_format else None)
        self.identify: dict[str, str] = dict(mapping.top["identify"])
        self.fields = {f.id: (str(f.source["column"]), f.conversion)
                       for f in mapping.fields.values()}
        self.role = str(mapping.lookup.get("role", ""))
        self.role_column = str(mapping.lookup.get("role_column", ""))
        self.inbox = inbox
        self.store = store
        self.poll_s = poll_s
        self._rows: list[dict[str, str]] | None = None
        self._problem = ""
        self._seen: dict[str, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._load()

    # The columns a delivered file must have.
    @property
    def columns(self) -> list[str]:
        wanted = [*self.identify.values(), *(c for c, _ in self.fields.values())]
        if self.role_column:
            wanted.append(self.role_column)
        return list(dict.fromkeys(wanted))

    def start(self) -> None:
        """Watch the inbox from the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await asyncio.to_thread(self.import_inbox)
            except Exception as exc:  # the watch keeps going; the next check tries again
                log.error("import failed: %s", type(exc).__name__)

    def import_inbox(self) -> list[ImportReport]:
        """Import every complete file in the inbox, oldest name first; returns the reports."""
        reports = []
        for path in sorted(p for p in self.inbox.iterdir() if p.is_file()):
            if path.name.startswith(".") or path.name.endswith(_SKIPPED_SUFFIXES):
                continue
            report = self._import(path)
            if report is not None:
                reports.append(report)
        return reports

    def _import(self, path: Path) -> ImportReport | None:
        raw = path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            # Still being written (or cut off): wait for the rest; the store stays as it is.
            return None
        reports = self.inbox / "reports"
        reports.mkdir(exist_ok=True)
        report = ImportReport(path.name, "imported")
        try:
            text = raw.decode(self.encoding)
        except (UnicodeDecodeError, LookupError):
            return self._refuse(path, report, f"not {self.encoding} text")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return self._refuse(path, report, "the file is empty")
        missing = [c for c in self.columns if c not in header]
        if missing:
            return self._refuse(path, report, f"missing columns: {', '.join(missing)}")
        kept: list[dict[str, str]] = []
        rejects: list[list[str]] = []
        seen: dict[tuple[str, str], int] = {}
        try:
            for cells in reader:
                line = reader.line_num
                if not cells or all(not c.strip() for c in cells):
                    continue
                reason = self._row_problem(header, cells)
                row = dict(zip(header, cells, strict=False)) if not reason else {}
                if not reason:
                    for key in self._keys(row):
                        if key in seen:
                            reason = f"the same {key[0]} as line {seen[key]}"
                            break
                if reason:
                    report.rejected.append({"line": line, "reason": reason})
                    rejects.append(cells)
                    continue
                for key in self._keys(row):
                    seen[key] = line
                kept.append({c: row[c] for c in self.columns})
        except csv.Error as exc:
            return self._refuse(path, report, f"not CSV at line {reader.line_num}: {exc}")
        report.rows_imported, report.rows_rejected = len(kept), len(rejects)
        if rejects:
            with (reports / f"{path.name}.rejects.csv").open("w", encoding=self.encoding,
                                                             newline="") as out:
                writer = csv.writer(out, delimiter=self.delimiter)
                writer.writerow(header)
                writer.writerows(rejects)
        self.store.write({
            "format": STORE_FORMAT,
            "file": path.name,
            "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": kept,
        })
        (reports / f"{path.name}.report.json").write_text(report.as_json(), encoding="utf-8")
        self._move(path, "processed")
        self._rows, self._problem = kept, ""
        log.info("imported %s: %d rows, %d rejected", path.name, len(kept), len(rejects))
        return report

    def _row_problem(self, header: list[str], cells: list[str]) -> str:
        if len(cells) != len(header):
            return f"{len(cells)} cells where the header has {len(header)}"
        row = dict(zip(header, cells, strict=True))
        if not any(row[c].strip() for c in self.identify.values()):
            return "no identifier (" + ", ".join(self.identify.values()) + ")"
        if "date_of_birth" in self.identify and row[self.identify["date_of_birth"]].strip():
            try:
                self.dob.apply(row[self.identify["date_of_birth"]])
            except ConversionError as exc:
                return f"column {self.identify['date_of_birth']!r}: {exc}"
        for column, conversion in self.fields.values():
            try:
                conversion.apply(row[column])
            except ConversionError as exc:
                return f"column {column!r}: {exc}"
        return ""

    def _keys(self, row: Mapping[str, str]) -> list[tuple[str, str]]:
        # Unique identifiers: one person per BSN and per own reference.
        return [(name, row[self.identify[name]].strip()) for name in ("bsn", "reference")
                if name in self.identify and row[self.identify[name]].strip()]

    def _refuse(self, path: Path, report: ImportReport, reason: str) -> ImportReport:
        report.outcome, report.reason = "refused", reason
        (self.inbox / "reports" / f"{path.name}.report.json").write_text(
            report.as_json(), encoding="utf-8")
        self._move(path, "refused")
        log.warning("refused %s: %s", path.name, reason)
        return report

    def _move(self, path: Path, where: str) -> None:
        target = self.inbox / where
        target.mkdir(exist_ok=True)
        os.replace(path, target / path.name)

    def _load(self) -> None:
        try:
            document = self.store.read()
        except SystemUnavailable as exc:
            self._rows, self._problem = None, str(exc)
            return
        self._rows = None if document is None else list(document["rows"])
        self._problem = "" if document is not None else "nothing has been imported yet"

    # -- the SystemAdapter protocol --------------------------------------------------------

    async def fetch(
        self, person: Person, fields: Sequence[str], *, deadline_s: float, explain: bool = False
    ) -> Found:
        row = self._find(person)
        values: dict[str, str] = {}
        unavailable: set[str] = set()
        readings: list[FieldReading] = []
        for field_id in dict.fromkeys(fields):
            if field_id not in self.fields:
                continue
            column, conversion = self.fields[field_id]
            raw = row.get(column)
            try:
                value = conversion.apply(raw)
            except ConversionError as exc:
                unavailable.add(field_id)
                readings.append(FieldReading(field_id, raw, None, str(exc)))
                continue
            readings.append(FieldReading(field_id, raw, value))
            if value is not None:
                values[field_id] = value
        return Found(values, frozenset(unavailable), tuple(readings) if explain else ())

    async def lookup(self, person: Person, *, deadline_s: float) -> tuple[bool, str]:
        try:
            row = self._find(person)
        except NotKnown:
            return False, ""
        return True, row.get(self.role_column, "").strip() if self.role_column else self.role

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def _find(self, person: Person) -> dict[str, str]:
        rows = self._rows
        if rows is None:
            raise SystemUnavailable(self._problem)
        matches: list[dict[str, str]] = []
        for name in ("bsn", "reference"):
            given = getattr(person, name)
            if given and name in self.identify:
                column = self.identify[name]
                matches = [r for r in rows if r[column].strip() == given]
                break
        else:
            if person.name and "name" in self.identify:
                matches = [r for r in rows if self._same_person(r, person)]
        if not matches:
            raise NotKnown
        if len(matches) > 1:
            # Two rows answer to the same name and date: not a person, a guess. Unavailable.
            raise SystemUnavailable("more than one row matches the person")
        return matches[0]

    def _same_person(self, row: Mapping[str, str], person: Person) -> bool:
        if " ".join(row[self.identify["name"]].split()).casefold() != " ".join(
                person.name.split()).casefold():
            return False
        if person.date_of_birth and "date_of_birth" in self.identify:
            try:
                born = self.dob.apply(row[self.identify["date_of_birth"]]) or ""
            except ConversionError:
                return False
            return born.startswith(person.date_of_birth)
        if person.postcode and "postcode" in self.identify:
            return _postcode(row[self.identify["postcode"]]) == _postcode(person.postcode)
        return False


def _postcode(text: str) -> str:
    return "".join(text.split()).upper()


def open_adapter(
    mapping: MappingFile, system: Mapping[str, Any], base_dir: Path
) -> CsvDropAdapter:
    for key in system:
        if key not in SYSTEM_KEYS:
            raise ValueError(f"[system]: unknown key {key!r} for a csv source; "
                             f"known: {', '.join(SYSTEM_KEYS)}")

    def path(key: str) -> Path:
        value = system.get(key)
        if not isinstance(value, str) or not value:
            raise ValueError(f"[system] {key} is missing")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base_dir / p

    inbox = path("inbox")
    if not inbox.is_dir():
        raise ValueError(f"[system] inbox {inbox} is not a directory")
    poll_s = float(system.get("poll_s", 5.0))
    adapter = CsvDropAdapter(mapping, inbox, _Store(path("store"), _read_key(path("key_file"))),
                             poll_s)
    adapter.import_inbox()  # what arrived while the runtime was down
    try:
        adapter.start()
    except RuntimeError:
        pass  # no event loop (a synchronous caller): imports then happen on import_inbox()
    return adapter
