"""The checkpoint file outside the database: appended once per note, durable, one per replica,
read whole by `audit verify` and by its tail in the server, a torn last line passed over."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store.checkpoint_file import (
    CheckpointFile,
    CheckpointFileError,
    read_file_notes,
    read_notes,
)


def _note(size: int) -> str:
    return f"origin\n{size}\nroot\ntime t\n\n\u2014 origin sig{size}\n"


def test_each_replica_appends_its_own_notes_once(tmp_path: Path) -> None:
    a, b = CheckpointFile(tmp_path, "gateway-0"), CheckpointFile(tmp_path, "gateway/1 x")
    assert a.append(_note(1)) and a.append(_note(2))
    assert not a.append(_note(2))  # already there
    assert b.append(_note(2)) and b.append(_note(3))
    assert a.path != b.path and b.path.name == "checkpoints-gateway_1_x.jsonl"
    assert read_notes(tmp_path) == [_note(1), _note(2), _note(3)]
    # A new process (a restart) knows what its file holds.
    assert not CheckpointFile(tmp_path, "gateway-0").append(_note(1))


def test_a_torn_last_line_is_passed_over_and_a_damaged_one_is_not(tmp_path: Path) -> None:
    file = CheckpointFile(tmp_path, "r")
    file.append(_note(1))
    with open(file.path, "a", encoding="utf-8") as out:
        out.write('{"note": "origin\\n2')  # a crash mid-append
    assert read_notes(tmp_path) == [_note(1)]
    with open(file.path, "a", encoding="utf-8") as out:
        out.write("\n" + '{"note": "x"}\n')
    with pytest.raises(CheckpointFileError, match="line 2"):
        read_notes(tmp_path)


def test_the_tail_holds_the_newest_notes(tmp_path: Path) -> None:
    file = CheckpointFile(tmp_path, "r")
    for size in range(1, 200):
        file.append(_note(size))
    tail = read_file_notes(file.path, 1024)
    assert tail and tail[-1] == _note(199) and len(tail) < 199
    assert read_notes(tmp_path / "missing") == []
