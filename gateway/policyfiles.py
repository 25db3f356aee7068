"""Reading the policy directory: the file-system edge of the pure policy core.

The policy is exactly ``DIR/*.yaml`` and ``DIR/rules/*.yaml``; names that start with ``.``
(editor lock files such as ``.#care.yaml``, the ``..data`` directory of a Kubernetes
ConfigMap) are never read. Policy tests live in ``DIR/tests/`` and the JSON schema in
``DIR/schema/``. Any other ``*.yaml`` or ``*.yml`` file under the directory is refused: a
draft left in ``drafts/`` must not become policy, and a rules file renamed to ``.yml`` must
not silently drop out of it. Names are kept relative to the directory so errors read
``rules/care.yaml:12:3``.

What a load may cost is bounded before anything is parsed: a file larger than
``max_file_bytes`` (1 MiB by default; the shipped policy's largest file is a few tens of
KB) is refused without being read, and so is a file that is a symbolic link to somewhere
outside the directory (a ConfigMap's links into its own ``..data`` stay inside). Nesting
depth is checked by the core on the YAML event stream before any tree is built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gateway.core import CompiledPolicy, PolicyError, PolicyIssue, load_policy

RULES_DIR = "rules"
TESTS_DIR = "tests"
SCHEMA_DIR = "schema"
POLICY_SUFFIX = ".yaml"
DEFAULT_MAX_POLICY_FILE_BYTES = 1024 * 1024
YAML_SUFFIXES = (".yaml", ".yml")
# Directories below DIR that may hold YAML that is not policy.
_NOT_POLICY_DIRS = frozenset({TESTS_DIR, SCHEMA_DIR})
# The directories whose *.yaml files are policy, as parts relative to DIR.
_POLICY_DIRS: tuple[tuple[str, ...], ...] = ((), (RULES_DIR,))
_LAYOUT_HINT = "policy files are DIR/*.yaml and DIR/rules/*.yaml; rename or move it"


class PolicyDirectoryError(OSError):
    """The policy directory is missing or unreadable."""


@dataclass(frozen=True)
class PolicyFiles:
    """What the policy directory holds: the policy files, and YAML files out of place.

    Both map the name relative to the directory (``rules/care.yaml``) to its path.
    """

    policy: dict[str, Path]
    misplaced: dict[str, Path]

    def issues(self) -> list[PolicyIssue]:
        """One error per misplaced file."""
        return [
            PolicyIssue(name, 1, 1, "YAML file outside the policy layout; it is not loaded",
                        _LAYOUT_HINT)
            for name in self.misplaced
        ]


def select_policy_files(directory: Path) -> PolicyFiles:
    """Sort the YAML files under ``directory`` into policy files and misplaced ones.

    The one place that says which files are policy: the loader and the hot-reload watcher
    both use it. ``DIR`` and ``DIR/rules`` are read through symbolic links (a ConfigMap
    mounts its files as links into ``..data``); the search for misplaced files does not
    follow links to directories.
    """
    policy: dict[str, Path] = {}
    misplaced: dict[str, Path] = {}
    for parts in _POLICY_DIRS:
        folder = directory.joinpath(*parts)
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if _is_yaml(path.name) and path.is_file():
                name = "/".join((*parts, path.name))
                target = policy if path.name.endswith(POLICY_SUFFIX) else misplaced
                target[name] = path
    for root, dirs, files in os.walk(directory, onerror=_raise):
        parts = Path(root).relative_to(directory).parts
        dirs[:] = sorted(d for d in dirs if not _skipped_dir(parts, d))
        if parts in _POLICY_DIRS:
            continue  # listed above
        for name in sorted(files):
            if _is_yaml(name):
                misplaced["/".join((*parts, name))] = Path(root) / name
    return PolicyFiles(policy, dict(sorted(misplaced.items())))


def read_documents(
    directory: Path,
    *,
    tests: bool = False,
    max_file_bytes: int = DEFAULT_MAX_POLICY_FILE_BYTES,
) -> dict[str, str]:
    """Relative name -> text of the policy files (or, with tests=True, the policy tests).

    Raises PolicyError when a YAML file lies outside the policy layout, is larger than
    ``max_file_bytes`` or links outside the directory, or when there is no policy file at
    all, so an empty or half-moved directory is never loaded as policy.
    """
    if not directory.is_dir():
        raise PolicyDirectoryError(f"{directory}: no such policy directory")
    if tests:
        return _read(directory, _test_files(directory), max_file_bytes)
    try:
        files = select_policy_files(directory)
    except OSError as exc:
        raise PolicyDirectoryError(f"{directory}: cannot list: {exc}") from exc
    if files.misplaced:
        raise PolicyError(files.issues())
    if not files.policy:
        raise PolicyError([PolicyIssue(
            "", 1, 1, f"no policy files in {directory}",
            "policy files are DIR/*.yaml and DIR/rules/*.yaml")])
    return _read(directory, files.policy, max_file_bytes)


def load_policy_dir(
    directory: Path, *, max_file_bytes: int = DEFAULT_MAX_POLICY_FILE_BYTES
) -> CompiledPolicy:
    """Parse and compile the policy directory; raises PolicyError listing every problem."""
    return compiled_with_contents(
        load_policy(read_documents(directory, max_file_bytes=max_file_bytes))
    )


def compiled_with_contents(compiled: CompiledPolicy) -> CompiledPolicy:
    """``compiled``, if it names a purpose, a field and a partner: a policy that does not
    can answer no request, so it is refused rather than put a gateway that withholds
    everything in force. Raises PolicyError."""
    policy = compiled.policy
    missing = [(kind, key) for kind, key, items in (
        ("purpose", "purposes", policy.purposes),
        ("field", "fields", policy.fields),
        ("partner", "partners", policy.partners),
    ) if not items]
    if missing:
        raise PolicyError([PolicyIssue(
            "", 1, 1, f"the policy defines no {kind}",
            f"define at least one {kind} under `{key}:`") for kind, key in missing])
    return compiled


def _is_yaml(name: str) -> bool:
    return not name.startswith(".") and name.endswith(YAML_SUFFIXES)


def _skipped_dir(parts: tuple[str, ...], name: str) -> bool:
    """Hidden directories anywhere, and tests/ and schema/ at the top, hold no policy."""
    return name.startswith(".") or (parts == () and name in _NOT_POLICY_DIRS)


def _test_files(directory: Path) -> dict[str, Path]:
    tests_dir = directory / TESTS_DIR
    return {
        path.relative_to(directory).as_posix(): path
        for path in sorted(tests_dir.rglob("*" + POLICY_SUFFIX))
        if not any(part.startswith(".") for part in path.relative_to(tests_dir).parts)
    }


def _read(directory: Path, paths: dict[str, Path], max_file_bytes: int) -> dict[str, str]:
    """The text of every file, once every file is within bounds; else PolicyError naming
    each one that is not."""
    issues: list[PolicyIssue] = []
    try:
        inside = directory.resolve(strict=True)
        for name, path in paths.items():
            if not path.resolve(strict=True).is_relative_to(inside):
                issues.append(PolicyIssue(
                    name, 1, 1, "links to a file outside the policy directory; not loaded",
                    "copy the file into the policy directory instead of linking to it"))
            elif path.stat().st_size > max_file_bytes:
                issues.append(PolicyIssue(
                    name, 1, 1, f"file is larger than {max_file_bytes} bytes; not read",
                    "split it into smaller files, or raise max_policy_file_bytes"))
    except OSError as exc:
        raise PolicyDirectoryError(f"{directory}: cannot read: {exc}") from exc
    if issues:
        raise PolicyError(issues)
    documents: dict[str, str] = {}
    for name, path in paths.items():
        try:
            documents[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyDirectoryError(f"{path}: cannot read: {exc}") from exc
    return documents


def _raise(exc: OSError) -> None:
    raise exc
