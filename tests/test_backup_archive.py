"""The backup archive's own checks, without a gateway: members against the manifest, and
member names that would write outside the restore's directories."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from gateway.ops.archive import FORMAT, MANIFEST, ArchiveError, ArchiveReader, ArchiveWriter


def _write(path: Path, members: dict[str, bytes], listed: dict[str, bytes] | None = None) -> None:
    """A tar with ``members`` and a manifest listing ``listed`` (default: the members)."""
    manifest = {
        "format": FORMAT,
        "members": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "mode": "0o600"}
            for name, data in (members if listed is None else listed).items()
        },
    }
    with tarfile.open(path, "w") as tar:
        for name, data in [*members.items(), (MANIFEST, json.dumps(manifest).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_an_archive_written_and_read_back_verifies(tmp_path: Path) -> None:
    path = tmp_path / "a.backup"
    writer = ArchiveWriter(path)
    writer.add_bytes("files/keys/gateway/pseudonym.key", b"k" * 32)
    source = tmp_path / "dump"
    source.write_bytes(b"rows" * 1000)
    writer.add_file("db/cases.jsonl.gz", source)
    writer.finish({"format": FORMAT})
    assert path.stat().st_mode & 0o777 == 0o600
    with ArchiveReader(path) as reader:
        assert reader.verify() == 2
        assert list(reader.part_members("keys")) == [
            ("files/keys/gateway/pseudonym.key", "gateway/pseudonym.key", 0o600)
        ]


@pytest.mark.parametrize(
    "name", ["files/keys/../../outside", "/etc/passwd", "other/thing", "files/keys\\..\\x"]
)
def test_a_member_name_outside_the_parts_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "a.backup"
    _write(path, {name: b"x"})
    with ArchiveReader(path) as reader, pytest.raises(ArchiveError, match="not allowed"):
        reader.verify()


def test_a_member_the_manifest_does_not_list_or_lacks_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.backup"
    _write(path, {"db/a.jsonl.gz": b"a", "db/b.jsonl.gz": b"b"}, {"db/a.jsonl.gz": b"a"})
    with ArchiveReader(path) as reader, pytest.raises(ArchiveError, match="not in the manifest"):
        reader.verify()
    _write(path, {"db/a.jsonl.gz": b"a"}, {"db/a.jsonl.gz": b"a", "db/b.jsonl.gz": b"b"})
    with ArchiveReader(path) as reader, pytest.raises(ArchiveError, match="lacks"):
        reader.verify()


def test_a_file_that_is_no_backup_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.backup"
    path.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ArchiveError):
        ArchiveReader(path)
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("something")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ArchiveError, match="no manifest.json"):
        ArchiveReader(path)
