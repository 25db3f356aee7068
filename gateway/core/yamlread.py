"""Reading YAML node trees while keeping every position and collecting every problem.

The reader works on composed nodes (``yaml.compose`` with the safe loader) rather than on
constructed Python objects, because only nodes carry line and column marks.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.core.errors import PolicyIssue
from gateway.core.model import Location

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"

# libyaml composes the same nodes, with the same marks, about ten times faster; its error
# messages differ, so errors are always reported by the pure-Python loader.
_FAST_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_TEXT_HINT = "write one value here, not a list or a mapping"
_TRUE = frozenset({"yes", "true", "on"})

Entries = dict[str, tuple[ScalarNode, Node]]


class _Mark(Protocol):
    """A position as both loaders give it (0-based)."""

    line: int
    column: int


# Policy files nest a handful of levels; far deeper input is an attack or a mistake, and
# building (or walking) its tree recursively would exhaust the interpreter's stack.
MAX_NESTING_DEPTH = 64
_DEPTH_HINT = (f"policy files nest a few levels deep; more than {MAX_NESTING_DEPTH} levels of "
               "lists and mappings is refused")


# How many known ids a hint lists before it stops; long lists bury the likely one.
_MAX_LISTED = 8
_YAML_HINT = ("check indentation and quoting here: a value holding ': ' or ' #', or starting "
              "with '[', '{', '*', '&', '!', '%' or '@', must be in quotes")


def closest(word: str, options: Collection[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: str, options: Collection[str]) -> str:
    """A " (did you mean 'x'?)" note, or nothing when no option is close."""
    close = closest(word, options)
    return f" (did you mean {close!r}?)" if close else ""


def listing(options: Collection[str]) -> str:
    """Some options, in order, for a hint: "a, b, c" or "a, b, ... (12 in all)"."""
    shown = list(options)
    if len(shown) <= _MAX_LISTED:
        return ", ".join(shown)
    return f"{', '.join(shown[:_MAX_LISTED])}, ... ({len(shown)} in all)"


def pick_hint(word: str, options: Collection[str], what: str) -> str:
    """Hint for an unknown name: the close one, else what there is."""
    close = closest(word, options)
    if close is not None:
        return f"write {close!r} if that is what you mean; known {what}: {listing(options)}"
    if not options:
        return f"no {what} is declared yet"
    return f"use one of the known {what}: {listing(options)}"


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


class Reader:
    """Reads one file's nodes; every problem is appended to the shared ``issues`` list."""

    def __init__(self, file: str, issues: list[PolicyIssue]) -> None:
        self.file = file
        self.issues = issues

    def loc(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def report(self, where: Node | Location, message: str, *, hint: str) -> None:
        loc = where if isinstance(where, Location) else self.loc(where)
        self.issues.append(PolicyIssue(loc.file, loc.line, loc.column, message, hint))

    def compose(self, text: str) -> Node | None:
        if self._too_deep(text):
            return None
        if _FAST_LOADER is not None:
            try:
                return yaml.compose(text, Loader=_FAST_LOADER)
            except yaml.YAMLError:
                pass  # Read again below, so that every install reports a mistake alike.
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except RecursionError:
            # Deep nesting before a mistake libyaml found first: not walked any further.
            self._report_depth(None)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "unreadable"
            context = ""
            if exc.context and exc.problem:
                # Where the unfinished construct began is usually where the mistake is.
                began = exc.context_mark
                at = f" at line {began.line + 1}, column {began.column + 1}" if began else ""
                context = f" ({exc.context}{at})"
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            self.issues.append(PolicyIssue(self.file, line, column,
                                           f"invalid YAML: {problem}{context}", _YAML_HINT))
        except yaml.YAMLError as exc:
            self.issues.append(PolicyIssue(self.file, 1, 1, f"invalid YAML: {exc}",
                                           _YAML_HINT))
        return None

    def _too_deep(self, text: str) -> bool:
        """Report (and say True) when collections nest deeper than MAX_NESTING_DEPTH, judged
        on the event stream, which is read without building a tree or recursing. libyaml
        stops at its own, higher, limit while scanning ahead of its events: that too is
        reported here. Input that is not YAML for another reason is left to ``compose``."""
        loader = _FAST_LOADER or yaml.SafeLoader
        try:
            return self._deeper_than_allowed(text, loader)
        except yaml.MarkedYAMLError as exc:
            if "nesting depth" not in str(exc.problem):
                return False
            self._report_depth(exc.problem_mark)
            return True
        except yaml.YAMLError:
            return False

    def _report_depth(self, mark: _Mark | None) -> None:
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        self.issues.append(PolicyIssue(
            self.file, line, column, f"nesting deeper than {MAX_NESTING_DEPTH} levels",
            _DEPTH_HINT))

    def _deeper_than_allowed(
        self, text: str, loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
    ) -> bool:
        depth = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING_DEPTH:
                    self._report_depth(event.start_mark)
                    return True
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return False

    def entries(self, node: Node, what: str) -> Entries | None:
        if not isinstance(node, MappingNode):
            self.report(node, f"{what} must be a mapping of keys to values",
                        hint="write `key: value` pairs, one per line and indented alike, "
                             "or `{key: value, ...}`")
            return None
        found: Entries = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or is_null(key_node):
                self.report(key_node, f"keys of {what} must be plain names",
                            hint="write each key as a plain word such as `id`")
                continue
            key = str(key_node.value)
            if key in found:
                first = self.loc(found[key][0])
                self.report(key_node, f"duplicate key {key!r} in {what} "
                                      f"(first at line {first.line})",
                            hint="keep one of the two; YAML would quietly use only the last")
                continue
            found[key] = (key_node, value_node)
        return found

    def check_keys(self, entries: Entries, node: Node, what: str, allowed: Collection[str],
                   required: Collection[str],
                   replaced: Mapping[str, str] | None = None) -> bool:
        """Report unknown and missing keys; False when a required key is missing.

        ``replaced`` maps keys of an older format to the hint that says what took their place.
        """
        for key, (key_node, _) in entries.items():
            if key not in allowed:
                hint = (replaced or {}).get(key) or pick_hint(key, allowed, "keys here")
                self.report(key_node, f"unknown key {key!r} in {what}{suggest(key, allowed)}",
                            hint=hint)
        missing = [key for key in required if key not in entries]
        for key in missing:
            self.report(node, f"{what} is missing required key {key!r}",
                        hint=f"add `{key}: ...` to this {what}")
        return not missing

    def text(self, node: Node, what: str) -> str | None:
        # Any scalar counts as text: a description reading "yes" or an id like 2024 is meant
        # as written, not as YAML's boolean or number.
        if not isinstance(node, ScalarNode):
            self.report(node, f"{what} must be text", hint=_TEXT_HINT)
            return None
        value = str(node.value)
        if node.tag == _NULL or not value.strip():
            self.report(node, f"{what} must not be empty",
                        hint="write the text after the colon")
            return None
        return value

    def raw_text(self, node: Node, what: str) -> str | None:
        """Any scalar as written; blank and null give an empty string."""
        if not isinstance(node, ScalarNode):
            self.report(node, f"{what} must be text", hint=_TEXT_HINT)
            return None
        return "" if node.tag == _NULL else str(node.value)

    def ident(self, node: Node, what: str) -> str | None:
        value = self.text(node, what)
        if value is not None and _ID.fullmatch(value) is None:
            self.report(node, f"{what} {value!r} is not a valid id (letters, digits, "
                              "'_', '.', ':' and '-', no spaces)",
                        hint="start with a letter or digit and use no spaces, "
                             "e.g. `subject.name` or `police-weapon-flag`")
            return None
        return value

    def flag(self, node: Node, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == _BOOL:
            return str(node.value).lower() in _TRUE
        self.report(node, f"{what} must be true or false",
                    hint="write true or false, without quotes")
        return None

    def integer(self, node: Node, what: str) -> int | None:
        if isinstance(node, ScalarNode) and node.tag == _INT:
            try:
                return int(str(node.value).replace("_", ""), 0)
            except ValueError:
                pass
        self.report(node, f"{what} must be a whole number",
                    hint="write digits only, without quotes, e.g. 60")
        return None

    def scalar(self, node: Node, what: str) -> str | int | None:
        """A parameter value: a whole number or text."""
        if isinstance(node, ScalarNode) and node.tag == _INT:
            return self.integer(node, what)
        if isinstance(node, ScalarNode) and node.tag in (_BOOL, _NULL):
            self.report(node, f"{what} must be a number or text (quote it to mean text)",
                        hint='put the value in quotes, e.g. "yes", to mean the text')
            return None
        return self.text(node, what)

    def items(self, node: Node, what: str) -> Sequence[Node] | None:
        if is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.report(node, f"{what} must be a list",
                        hint="write `[a, b]`, or one `- item` per line under the key")
            return None
        return list(node.value)

    def choice(self, node: Node, what: str, options: Sequence[str]) -> str | None:
        value = self.text(node, what)
        if value is None:
            return None
        if value not in options:
            self.report(node, f"{what} must be one of {', '.join(options)}, not {value!r}"
                              f"{suggest(value, options)}",
                        hint=pick_hint(value, options, "values"))
            return None
        return value
