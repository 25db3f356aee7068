"""The backup archive: a tar file whose last member, ``manifest.json``, names every other
member with its SHA-256 and size.

Members: ``db/<table>.jsonl.gz`` (the database dump, gateway.ops.db_dump) and
``files/<part>/...`` (the key directory, the partner registry, the policy directory and the
checkpoint directory). The archive holds the gateway's private keys: it is written with mode
0600 and must be kept like the keys themselves. Reading checks every member against the
manifest before anything is restored, so a damaged or altered archive restores nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST = "manifest.json"
FORMAT = "ketenpoort-backup/1"
# What the backup holds, each a directory of the configuration (see gateway.ops.backup).
PARTS = ("keys", "registry", "policy", "checkpoints")
_CHUNK = 1024 * 1024


class ArchiveError(Exception):
    """The archive cannot be read, or does not match its manifest (one line, no values)."""


@dataclass(frozen=True)
class Member:
    name: str
    sha256: str
    size: int
    mode: int


class ArchiveWriter:
    """Adds members to a tar file and keeps their hashes for the manifest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)
        self.members: dict[str, Member] = {}

    def add_file(self, name: str, source: Path, mode: int = 0o600) -> Member:
        """Add ``source``'s bytes as ``name`` (read once: hashed as written)."""
        _check_name(name)
        if name in self.members:
            raise ArchiveError(f"two members named {name}")
        digest = hashlib.sha256()
        with open(source, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
            size = handle.tell()
            handle.seek(0)
            info = tarfile.TarInfo(name)
            info.size = size
            info.mode = mode & 0o777
            info.mtime = 0
            self._tar.addfile(info, handle)
        member = Member(name, digest.hexdigest(), size, info.mode)
        self.members[name] = member
        return member

    def add_bytes(self, name: str, data: bytes, mode: int = 0o600) -> Member:
        _check_name(name)
        if name in self.members:
            raise ArchiveError(f"two members named {name}")
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode & 0o777
        info.mtime = 0
        self._tar.addfile(info, io.BytesIO(data))
        member = Member(name, hashlib.sha256(data).hexdigest(), len(data), info.mode)
        self.members[name] = member
        return member

    def finish(self, manifest: dict[str, Any]) -> None:
        """Write the manifest (with every member's hash) last, then make the file durable."""
        manifest = dict(manifest)
        manifest["members"] = {
            m.name: {"sha256": m.sha256, "size": m.size, "mode": oct(m.mode)}
            for m in self.members.values()
        }
        data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        info.mode = 0o600
        self._tar.addfile(info, io.BytesIO(data))
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abandon(self) -> None:
        try:
            self._tar.close()
        finally:
            self._file.close()
            self.path.unlink(missing_ok=True)


def _check_name(name: str) -> None:
    pure = PurePosixPath(name)
    if (
        not name
        or name == MANIFEST
        or pure.is_absolute()
        or ".." in pure.parts
        or "\\" in name
        or pure.parts[0] not in ("db", "files")
    ):
        raise ArchiveError(f"member name {name!r} is not allowed")


class ArchiveReader:
    """A backup archive opened for restoring: manifest read, every member checked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._tar = tarfile.open(path, mode="r:")
        except (OSError, tarfile.TarError) as exc:
            raise ArchiveError(f"{path} is not a readable backup archive: {exc}") from None
        try:
            self.manifest = self._read_manifest()
        except BaseException:
            self._tar.close()
            raise

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _read_manifest(self) -> dict[str, Any]:
        try:
            handle = self._tar.extractfile(MANIFEST)
            if handle is None:
                raise KeyError(MANIFEST)
            manifest = json.loads(handle.read())
        except KeyError:
            raise ArchiveError(f"{self.path} holds no {MANIFEST}: not a backup archive") from None
        except (OSError, tarfile.TarError, ValueError) as exc:
            raise ArchiveError(f"the manifest of {self.path} is damaged: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ArchiveError(
                f"{self.path} is not a backup of this format (expected {FORMAT})"
            )
        if not isinstance(manifest.get("members"), dict):
            raise ArchiveError(f"the manifest of {self.path} lists no members")
        return manifest

    @property
    def members(self) -> dict[str, dict[str, Any]]:
        members: dict[str, dict[str, Any]] = self.manifest["members"]
        return members

    def verify(self) -> int:
        """Check every member's SHA-256 and size against the manifest, and that the archive
        holds exactly the members listed; returns how many were checked."""
        listed = dict(self.members)
        for name in listed:
            # A member is only ever written below its part's directory.
            _check_name(name)
        seen: set[str] = set()
        try:
            for info in self._tar:
                if info.name == MANIFEST:
                    continue
                expected = listed.get(info.name)
                if expected is None or not info.isfile():
                    raise ArchiveError(f"member {info.name} is not in the manifest")
                if info.name in seen:
                    raise ArchiveError(f"member {info.name} appears twice")
                seen.add(info.name)
                digest = hashlib.sha256()
                handle = self._tar.extractfile(info)
                assert handle is not None
                size = 0
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                if digest.hexdigest() != expected.get("sha256") or size != expected.get("size"):
                    raise ArchiveError(
                        f"member {info.name} does not match the manifest's SHA-256: the "
                        "archive is damaged or was altered"
                    )
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise ArchiveError(f"{self.path} is damaged: {exc}") from None
        absent = sorted(set(listed) - seen)
        if absent:
            raise ArchiveError(f"the archive lacks member(s) the manifest lists: {absent[0]}...")
        return len(seen)

    def read(self, name: str) -> bytes:
        """One member's bytes, checked again (the archive was verified as a whole first)."""
        try:
            handle = self._tar.extractfile(name)
            data = b"" if handle is None else handle.read()
        except (KeyError, OSError, tarfile.TarError) as exc:
            raise ArchiveError(f"member {name} cannot be read: {exc}") from None
        if hashlib.sha256(data).hexdigest() != self.members[name]["sha256"]:
            raise ArchiveError(f"member {name} changed while restoring")
        return data

    def extract_to(self, name: str, target: Path) -> None:
        """Write member ``name`` to ``target`` (mode 0600), checked against its hash."""
        try:
            handle = self._tar.extractfile(name)
        except (KeyError, OSError, tarfile.TarError) as exc:
            raise ArchiveError(f"member {name} cannot be read: {exc}") from None
        assert handle is not None
        digest = hashlib.sha256()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != self.members[name]["sha256"]:
            raise ArchiveError(f"member {name} changed while restoring")

    def part_members(self, part: str) -> Iterator[tuple[str, str, int]]:
        """(member name, path inside the part, mode) of every file of ``part``."""
        prefix = f"files/{part}/"
        for name, entry in sorted(self.members.items()):
            if name.startswith(prefix):
                yield name, name[len(prefix):], int(str(entry.get("mode", "0o600")), 8)
