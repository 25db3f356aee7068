"""A small path syntax to a value in a JSON answer, and text templates over such paths.

Path syntax (documented for partners in docs/partners/rest.md)::

    weapon.flag            key "weapon", then key "flag"
    persons[0].id          the first element of the list under "persons", then "id"
    items[*].summary       "summary" of every element of "items": a list of values
    [*]                    every element of a list answer
    ""  (empty)            the whole answer

Keys are letters, digits, ``_``, ``-`` and ``$``. A key that is absent, or a null, gives
nothing (the system holds no value); a path that meets the wrong shape (a key into a list, an
index into a text) is a malformed answer (``PathError``), and so is an object where a value
was expected: a field is then unavailable, never filled with something else.

A template such as ``"{date} {summary}"`` writes paths (relative to the value the field's
path gave, for each element of a list) between literal text; ``{{`` and ``}}`` are literal
braces. A placeholder that gives nothing becomes empty text.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["JsonPath", "PathError", "Template"]

_STEP = re.compile(r"\.?([A-Za-z0-9_$-]+)|\[(\*|[0-9]+)\]")
_WILD = object()


class PathError(ValueError):
    """The answer does not have the shape the path expects (or the path is not valid)."""


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[str | int | object, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        steps: list[str | int | object] = []
        pos = 0
        while pos < len(text):
            match = _STEP.match(text, pos)
            if match is None or (pos == 0 and text.startswith(".")):
                raise PathError(f"bad path {text!r} at character {pos + 1}")
            key, index = match.groups()
            if key is not None:
                steps.append(key)
            else:
                steps.append(_WILD if index == "*" else int(index))
            pos = match.end()
        return cls(text, tuple(steps))

    @property
    def many(self) -> bool:
        """Whether the path gives a list (it has a ``[*]``)."""
        return any(step is _WILD for step in self.steps)

    def find(self, data: Any) -> Any:
        """The value at this path (a list when ``many``), None when nothing is there."""
        values = self._walk([data], 0)
        if self.many:
            return [v for v in values if v is not None] or None
        return values[0] if values else None

    def _walk(self, values: list[Any], i: int) -> list[Any]:
        if i == len(self.steps):
            return values
        step = self.steps[i]
        out: list[Any] = []
        for value in values:
            if value is None:
                continue
            if step is _WILD:
                if not isinstance(value, list):
                    raise PathError(f"{self.text!r}: expected a list")
                out.extend(value)
            elif isinstance(step, int):
                if not isinstance(value, list):
                    raise PathError(f"{self.text!r}: expected a list")
                out.append(value[step] if step < len(value) else None)
            else:
                if not isinstance(value, dict):
                    raise PathError(f"{self.text!r}: expected an object")
                out.append(value.get(str(step)))
        return self._walk(out, i + 1)


def scalar(value: Any, what: str) -> Any:
    """``value`` when it is a JSON scalar (or a list of them); PathError for an object."""
    if isinstance(value, list):
        return [scalar(v, what) for v in value]
    if isinstance(value, dict):
        raise PathError(f"{what}: an object where a value was expected")
    return value


@dataclass(frozen=True)
class Template:
    text: str
    parts: tuple[tuple[str, JsonPath | None], ...]  # (literal, path after it)

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[tuple[str, JsonPath | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise PathError(f"bad template: {exc}") from None
        for literal, name, spec, conversion in parsed:
            if name is None:
                parts.append((literal, None))
                continue
            if spec or conversion:
                raise PathError("a template placeholder is a path only, e.g. {date}")
            parts.append((literal, JsonPath.parse(name)))
        return cls(text, tuple(parts))

    @property
    def paths(self) -> Sequence[JsonPath]:
        return [p for _, p in self.parts if p is not None]

    def render(self, data: Any) -> str:
        out: list[str] = []
        for literal, path in self.parts:
            out.append(literal)
            if path is not None:
                value = scalar(path.find(data), self.text)
                if isinstance(value, list):
                    raise PathError(f"{self.text!r}: a placeholder gave several values")
                out.append("" if value is None else _text(value))
        return "".join(out)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
