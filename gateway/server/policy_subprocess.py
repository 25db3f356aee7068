"""Checking a reloaded policy in a separate process before the serving process compiles it.

A reload runs off the event loop, in a thread, but parsing holds the interpreter lock: a
broken file of a megabyte takes seconds to report (the pure-Python YAML reader gives the
error messages), and every request waits its turn meanwhile. So the serving process reads
the files (bounded by ``max_policy_file_bytes``) and hands their text to a short-lived
``python -m gateway.server.policy_subprocess`` that parses and compiles it; only a policy
that process found sound is compiled again in the serving process (the fast path, some
tens of milliseconds for the shipped set). The check is stopped after ``timeout_s``.

The protocol is JSON on stdin and stdout: ``{"name": text, ...}`` in; ``{"issues": [[file,
line, column, message, hint, severity], ...]}`` out (empty when sound).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.core import CompiledPolicy, PolicyError, PolicyIssue, Severity, load_policy
from gateway.policyfiles import (
    DEFAULT_MAX_POLICY_FILE_BYTES,
    compiled_with_contents,
    read_documents,
)

__all__ = ["DEFAULT_CHECK_TIMEOUT_S", "load_checked_apart"]

DEFAULT_CHECK_TIMEOUT_S = 30.0


def load_checked_apart(
    directory: Path,
    *,
    max_file_bytes: int = DEFAULT_MAX_POLICY_FILE_BYTES,
    timeout_s: float = DEFAULT_CHECK_TIMEOUT_S,
) -> CompiledPolicy:
    """The compiled policy of ``directory``, once a separate process found it sound; raises
    PolicyError (the other process's issues) or PolicyDirectoryError like load_policy_dir."""
    documents = read_documents(directory, max_file_bytes=max_file_bytes)
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__],
            input=json.dumps(documents).encode("utf-8"),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PolicyError([PolicyIssue(
            "", 1, 1, f"checking the policy took longer than {timeout_s:g} s; not loaded",
            "make the policy files smaller")]) from None
    try:
        issues = json.loads(done.stdout)["issues"]
    except (ValueError, KeyError, TypeError):
        raise RuntimeError(
            f"the policy check process failed (exit status {done.returncode})"
        ) from None
    if issues:
        raise PolicyError([_issue(*issue) for issue in issues])
    return compiled_with_contents(load_policy(documents))


def _issue(file: str, line: int, column: int, message: str, hint: str, severity: str
           ) -> PolicyIssue:
    return PolicyIssue(file, line, column, message, hint, Severity(severity))


def _check(documents: dict[str, str]) -> list[list[object]]:
    try:
        compiled_with_contents(load_policy(documents))
    except PolicyError as exc:
        return [[i.file, i.line, i.column, i.message, i.hint, i.severity.value]
                for i in exc.issues]
    return []


def main() -> None:
    documents = json.loads(sys.stdin.buffer.read())
    json.dump({"issues": _check(documents)}, sys.stdout)


if __name__ == "__main__":
    main()
