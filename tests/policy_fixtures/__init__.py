"""Policy fixtures: one small valid policy and, per kind of mistake, the same policy broken once.

Layout (see README.md)::

    valid/                      a complete policy directory
    broken/<kind>/*.yaml        only the files that differ from valid/, same relative names
    broken/<kind>/expected.txt  the issue the break must cause

``fixture_documents(kind)`` lays a broken directory over ``valid/`` and returns the documents
as the gateway reads them (relative name -> text); ``write_fixture`` writes that whole policy
into a directory, for commands that take a policy directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VALID = ROOT / "valid"
BROKEN = ROOT / "broken"
EXPECTED = "expected.txt"

# "<severity> <file>:<line>:<column>: <fragment of the message>"
_EXPECTED_LINE = re.compile(r"(error|warning) (\S+?):(\d+):(\d+): (.+)")


@dataclass(frozen=True)
class ExpectedIssue:
    severity: str
    file: str
    line: int
    column: int
    fragment: str

    @property
    def prefix(self) -> str:
        """The ``file:line:column`` the issue must be reported at."""
        return f"{self.file}:{self.line}:{self.column}"


def kinds() -> list[str]:
    """The kinds of broken policy, in name order."""
    return sorted(path.name for path in BROKEN.iterdir() if path.is_dir())


def _read(directory: Path) -> dict[str, str]:
    return {path.relative_to(directory).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(directory.rglob("*.yaml"))}


def fixture_documents(kind: str = "valid") -> dict[str, str]:
    """The documents of the valid policy, or of the valid policy broken as ``kind`` says."""
    documents = _read(VALID)
    if kind != "valid":
        directory = BROKEN / kind
        if not directory.is_dir():
            raise KeyError(f"no policy fixture {kind!r}; known: {', '.join(kinds())}")
        documents.update(_read(directory))
    return documents


def write_fixture(kind: str, directory: Path) -> Path:
    """Write the whole policy of ``kind`` under ``directory``; returns the directory."""
    for name, text in fixture_documents(kind).items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return directory


def expected_issues(kind: str) -> list[ExpectedIssue]:
    """What ``broken/<kind>/expected.txt`` says the break must cause."""
    expected: list[ExpectedIssue] = []
    text = (BROKEN / kind / EXPECTED).read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _EXPECTED_LINE.fullmatch(line)
        if match is None:
            raise ValueError(f"{kind}/{EXPECTED}:{number}: expected "
                             "'<error|warning> <file>:<line>:<column>: <message fragment>'")
        severity, file, row, column, fragment = match.groups()
        expected.append(ExpectedIssue(severity, file, int(row), int(column), fragment))
    if not expected:
        raise ValueError(f"{kind}/{EXPECTED} names no issue")
    return expected
