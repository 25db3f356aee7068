"""The registry directory on disk: one ``<partner_id>.yaml`` per partner.

Reading is all-or-nothing: one broken file fails the whole read, so a reload never swaps
in a registry with a partner silently missing (the gateway keeps the one it has). Names
starting with ``.`` (editor lock files, a ConfigMap's ``..data``) are never read. Writes
go through a temporary file and a rename, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from gateway.registry.entries import RegistryEntry, RegistryError, parse_entry

__all__ = [
    "REGISTRY_SUFFIX",
    "RegistrySnapshot",
    "entry_path",
    "read_entry",
    "read_registry",
    "registry_snapshot",
    "write_entry",
]

REGISTRY_SUFFIX = ".yaml"
# At most this many bytes per file: a registry entry is a few kilobytes.
MAX_ENTRY_BYTES = 256 * 1024
_HEADER = (
    "# Ketenpoort partner registry entry: how this partner's systems prove who they are.\n"
    "# Edit with `ketenpoort partner add|rotate|revoke`; public material only.\n"
)
# (name, inode, mtime_ns, size) per file; cheap to compare on every poll.
RegistrySnapshot = tuple[tuple[str, int, int, int], ...]


def entry_path(directory: Path, partner_id: str) -> Path:
    return directory / f"{partner_id}{REGISTRY_SUFFIX}"


def _entry_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise RegistryError(f"the registry directory {directory} does not exist")
    return sorted(
        p
        for p in directory.iterdir()
        if p.name.endswith(REGISTRY_SUFFIX) and not p.name.startswith(".")
    )


def read_entry(path: Path) -> RegistryEntry:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ENTRY_BYTES + 1)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_ENTRY_BYTES:
        raise RegistryError(f"{path}: larger than {MAX_ENTRY_BYTES} bytes")
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise RegistryError(f"{path}{where}: not valid YAML") from None
    entry = parse_entry(doc, str(path))
    if path.name != f"{entry.partner_id}{REGISTRY_SUFFIX}":
        raise RegistryError(f"{path}: names partner {entry.partner_id!r}; the file must be "
                            f"{entry.partner_id}{REGISTRY_SUFFIX}")
    return entry


def read_registry(directory: Path) -> Mapping[str, RegistryEntry]:
    """Every entry under ``directory``, by partner id; RegistryError if any file is bad."""
    return {entry.partner_id: entry for entry in map(read_entry, _entry_files(directory))}


def registry_snapshot(directory: Path) -> RegistrySnapshot:
    """What the directory looks like: empty when it is missing or cannot be listed."""
    try:
        files = _entry_files(directory)
    except (RegistryError, OSError):
        return ()
    stamps = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        stamps.append((path.name, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def write_entry(directory: Path, entry: RegistryEntry) -> Path:
    """Write ``entry`` to its file atomically (mode 0644: it holds public material only)."""
    # Round-trip through the parser first: never write what the gateway would refuse to read.
    document = entry.document()
    parse_entry(document, f"{entry.partner_id}{REGISTRY_SUFFIX}")
    directory.mkdir(parents=True, exist_ok=True)
    path = entry_path(directory, entry.partner_id)
    text = _HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
