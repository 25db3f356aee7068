"""Checkpoints kept outside the database: an append-only file per gateway replica.

Whoever can write the database can delete its checkpoints, roll the records back or rewrite
them and recompute chain, tiles and frontier; inside the database nothing then shows. So every
checkpoint a replica signs, and every newer checkpoint it has verified or hands out, is also
appended to its own file in the checkpoint directory (``checkpoint_dir``, by default
``checkpoints`` beside the key directory), with an fsync before the checkpoint is handed out,
and ``ketenpoort audit verify`` reads every file there by default. Cosigned notes (a checkpoint
with a witness's signature line) go to the same file.

One file per replica (``checkpoints-<replica>.jsonl``), so replicas on one PostgreSQL never
write the same file; the directory may be shared between them or each may have its own: each
file alone is evidence against a rollback below what that replica saw. A line is a JSON object
``{"note": "<signed note>"}``; a line torn by a crash (only ever the last) is passed over.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import threading
from pathlib import Path

FILE_PREFIX = "checkpoints-"
# How much of a file's end the server reads: its newest checkpoints (a few hundred). The
# newest checkpoint's root commits to every record before it, so it alone shows a rollback or
# a rewrite; older lines only narrow down where. `audit verify` reads whole files.
TAIL_BYTES = 64 * 1024
FILE_SUFFIX = ".jsonl"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class CheckpointFileError(OSError):
    """The checkpoint directory cannot be read, or a file in it is damaged."""


def default_replica_name() -> str:
    return socket.gethostname() or "gateway"


def file_name(replica: str) -> str:
    slug = _UNSAFE.sub("_", replica).strip("._") or "gateway"
    return f"{FILE_PREFIX}{slug}{FILE_SUFFIX}"


class CheckpointFile:
    """This replica's append-only checkpoint file; safe to use from several threads."""

    def __init__(self, directory: Path, replica: str | None = None) -> None:
        self.directory = directory
        self.path = directory / file_name(replica or default_replica_name())
        self._lock = threading.Lock()
        # Digests of the notes already in the file, read once: a note is appended once.
        self._known: set[bytes] | None = None

    def append(self, note: str) -> bool:
        """Append ``note`` durably unless the file holds it already; True when appended."""
        digest = hashlib.sha256(note.encode()).digest()
        with self._lock:
            known = self._load_known()
            if digest in known:
                return False
            self._write_line(json.dumps({"note": note}, ensure_ascii=False) + "\n")
            known.add(digest)
            return True

    def _load_known(self) -> set[bytes]:
        if self._known is None:
            # The newest lines suffice: a note is appended again only when it is newer.
            notes = read_file_notes(self.path, TAIL_BYTES) if self.path.exists() else []
            self._known = {hashlib.sha256(n.encode()).digest() for n in notes}
        return self._known

    def _write_line(self, line: str) -> None:
        created = not self.path.exists()
        if created:
            self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            # Another process of this replica (a CLI, a restart overlapping) may append too.
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = line.encode()
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_directory(self.directory)


def read_notes(directory: Path, tail_bytes: int | None = None) -> list[str]:
    """Every distinct note in the checkpoint files of ``directory`` (only those in the last
    ``tail_bytes`` of each, when given), in file order; none when the directory does not
    exist."""
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise CheckpointFileError(f"{directory} is not a directory")
    seen: set[str] = set()
    notes: list[str] = []
    for path in sorted(directory.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}")):
        for note in read_file_notes(path, tail_bytes):
            if note not in seen:
                seen.add(note)
                notes.append(note)
    return notes


def checkpoint_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"))


def read_file_notes(path: Path, tail_bytes: int | None = None) -> list[str]:
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = 0 if tail_bytes is None else max(0, size - tail_bytes)
            handle.seek(start)
            data = handle.read()
        if start:
            # Begin at the first whole line of the tail.
            data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
        lines = data.decode("utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointFileError(f"checkpoint file {path} cannot be read: {exc}") from exc
    notes: list[str] = []
    last = len(lines) - 1
    for number, line in enumerate(lines):
        if not line:
            continue
        try:
            entry = json.loads(line)
            note = entry["note"]
            if not isinstance(note, str):
                raise TypeError("note is not text")
        except (ValueError, KeyError, TypeError) as exc:
            if number == last:
                continue  # a torn last line: the append did not finish, nothing was served
            raise CheckpointFileError(
                f"checkpoint file {path}, line {number + 1}, is damaged: {exc}"
            ) from exc
        notes.append(note)
    return notes



def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
