"""Wording and loading shared by the `ketenpoort policy` commands.

The readers are privacy officers and legal advisers: outcomes are written the way the policy
files write them (``disclose``, ``withhold``, ``mask:initials``), places as ``file:line`` the
editor can open, and a mistyped id gets a suggestion and the list of ids the policy knows.
"""

from __future__ import annotations

import difflib
import sys
import textwrap
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TextIO

from gateway.core import (
    CompiledPolicy,
    Effect,
    FieldDecision,
    Location,
    PolicyError,
    PolicyIssue,
    Severity,
    Special,
)
from gateway.policyfiles import PolicyDirectoryError, load_policy_dir

# Exit statuses shared by every policy command.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# How each special regime is named in reports: short (tables) and in full (explanations).
SPECIAL_SHORT = {Special.ART9: "art. 9", Special.ART10: "art. 10", Special.NONE: "not special"}
# Reports are read in a terminal; longer texts (reasons) are wrapped to this width.
WIDTH = 100

SPECIAL_LABELS = {
    "art9": "special category, AVG art. 9",
    "art10": "criminal data, AVG art. 10",
}


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def print_issues(directory: Path, issues: Iterable[PolicyIssue], out: TextIO) -> None:
    """Each issue as ``file:line:column: [warning: ]message`` and, when given, its hint."""
    for issue in issues:
        label = "warning: " if issue.severity is Severity.WARNING else ""
        print(f"{directory / issue.file}:{issue.line}:{issue.column}: {label}{issue.message}",
              file=out)
        if issue.hint:
            print(f"  hint: {issue.hint}", file=out)


def load_or_report(directory: Path, command: str) -> CompiledPolicy | int:
    """The compiled policy, or the exit status after its problems were printed."""
    try:
        return load_policy_dir(directory)
    except PolicyDirectoryError as exc:
        print(f"ketenpoort policy {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PolicyError as exc:
        print_issues(directory, exc.issues, sys.stderr)
        print(f"{plural(len(exc.issues), 'error')} in {directory}; the policy was not loaded",
              file=sys.stderr)
        return EXIT_FAILED


def unknown_id(kind: str, value: str, known: Collection[str]) -> str | None:
    """A message for an id the policy does not know, or None when it knows it."""
    if value in known:
        return None
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {value!r}{hint}; the policy knows: {', '.join(known)}"


def report_unknown(command: str, problems: Iterable[str | None]) -> bool:
    """Print the messages among ``problems``; True when there were any."""
    found = [p for p in problems if p]
    for problem in found:
        print(f"ketenpoort policy {command}: {problem}", file=sys.stderr)
    return bool(found)


def params_text(params: Sequence[tuple[str, str | int]]) -> str:
    if not params:
        return ""
    return " (" + ", ".join(f"{key}={value}" for key, value in params) + ")"


def effect_text(effect: Effect, transform: str | None,
                params: Sequence[tuple[str, str | int]] = ()) -> str:
    """``disclose``, ``withhold`` or ``mask:<transform>`` with its parameters."""
    if effect is not Effect.MASK:
        return str(effect)
    return f"mask:{transform}{params_text(params)}"


def outcome_text(decision: FieldDecision) -> str:
    return effect_text(decision.effect, decision.transform, decision.params)


def place(directory: Path, loc: Location) -> str:
    """Where something is written, as ``file:line`` relative to the working directory."""
    return f"{directory / loc.file}:{loc.line}"


def rule_place(directory: Path, policy: CompiledPolicy, rule_id: str | None) -> str:
    """The deciding rule and its place, or the deny-by-default wording."""
    if rule_id is None:
        return "no rule grants this field (withheld by default)"
    for rule in policy.policy.rules:
        if rule.id == rule_id:
            return f"rule {rule.id} ({place(directory, rule.loc)})"
    return f"rule {rule_id}"


def one_line(text: str) -> str:
    """A folded YAML text on one line."""
    return " ".join(text.split())


def wrapped(text: str, indent: int, first: str = "") -> list[str]:
    """A long text as lines of at most ``WIDTH`` characters, indented ``indent`` spaces;
    ``first`` replaces the indent of the first line (a label such as "reason:")."""
    lead = " " * indent
    first_lead = first.ljust(indent) if first else lead
    return textwrap.wrap(one_line(text), WIDTH, initial_indent=first_lead,
                         subsequent_indent=lead) or [first_lead.rstrip()]


def permits_text(permits: Iterable[str]) -> str:
    """What a legal basis allows besides ordinary personal data, for a legal reader."""
    shown = [SPECIAL_SHORT[Special(p)] for p in permits if Special(p) is not Special.NONE]
    return f" [permits {' and '.join(shown)} data]" if shown else ""
