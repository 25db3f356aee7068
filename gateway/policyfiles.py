"""Reading the policy directory: the file-system edge of the pure policy core.

Every ``*.yaml`` under the directory is policy, except files under ``tests/``, which hold
policy tests. Names are kept relative to the directory so errors read ``rules/care.yaml:12:3``.
"""

from __future__ import annotations

from pathlib import Path

from gateway.core import CompiledPolicy, load_policy

TESTS_DIR = "tests"


class PolicyDirectoryError(OSError):
    """The policy directory is missing or unreadable."""


def read_documents(directory: Path, *, tests: bool = False) -> dict[str, str]:
    """Relative name -> text of the policy files (or, with tests=True, the policy tests)."""
    if not directory.is_dir():
        raise PolicyDirectoryError(f"{directory}: no such policy directory")
    documents: dict[str, str] = {}
    for path in sorted(directory.rglob("*.yaml")):
        relative = path.relative_to(directory)
        in_tests = relative.parts[0] == TESTS_DIR
        if in_tests != tests:
            continue
        try:
            documents[relative.as_posix()] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyDirectoryError(f"{path}: cannot read: {exc}") from exc
    return documents


def load_policy_dir(directory: Path) -> CompiledPolicy:
    """Parse and compile the policy directory; raises PolicyError listing every problem."""
    return load_policy(read_documents(directory))
