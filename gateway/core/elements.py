"""Reading one element (a mapping in a list section) of a policy file.

An ``Element`` wraps the ``Reader``: each getter reads one key, records where its value (and
every list item) was written in ``marks``, and clears ``ok`` when the value is unusable, so
the section parser can keep or drop the element as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import TypeVar

from yaml.nodes import Node

from gateway.core.model import Location, Params
from gateway.core.yamlread import Entries, Reader

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")

_PIN = re.compile(r"sha256:[0-9a-fA-F]{64}")
_PIN_HINT = ("write `sha256:` and the 64 hex digits of the SHA-256 hash of the DER "
             "SubjectPublicKeyInfo, e.g. from `openssl pkey -pubin -in key.pem -outform DER "
             "| sha256sum`")


class Element:
    """One mapping in a list section; getters record marks and whether the element is usable."""

    def __init__(self, reader: Reader, node: Node, what: str, allowed: Collection[str],
                 required: Collection[str], replaced: Mapping[str, str] | None = None) -> None:
        self.r = reader
        self.node = node
        self.what = what
        self.loc = reader.loc(node)
        self.marks: list[tuple[str, Location]] = []
        entries = reader.entries(node, what)
        self.entries: Entries = entries or {}
        self.ok = entries is not None and reader.check_keys(
            self.entries, node, what, allowed, required, replaced)

    def at(self, key: str) -> Location:
        """Where ``key`` was read, else the element itself."""
        return next((loc for name, loc in self.marks if name == key), self.loc)

    def _value(self, key: str) -> Node | None:
        pair = self.entries.get(key)
        if pair is None:
            return None
        self.marks.append((key, self.r.loc(pair[1])))
        return pair[1]

    def _checked(self, value: _T | None) -> _T | None:
        if value is None:
            self.ok = False
        return value

    def ident(self, key: str = "id") -> str | None:
        node = self._value(key)
        return None if node is None else self._checked(self.r.ident(node, f"{self.what} {key}"))

    def text(self, key: str, default: str | None = None) -> str | None:
        node = self._value(key)
        if node is None:
            return default
        return self._checked(self.r.text(node, f"{self.what} {key}"))

    def flag(self, key: str, default: bool) -> bool:
        node = self._value(key)
        if node is None:
            return default
        value = self._checked(self.r.flag(node, f"{self.what} {key}"))
        return default if value is None else value

    def integer(self, key: str) -> int | None:
        node = self._value(key)
        return None if node is None else self._checked(self.r.integer(node, f"{self.what} {key}"))

    def choice(self, key: str, enum: type[_E], default: _E | None = None) -> _E | None:
        node = self._value(key)
        if node is None:
            return default
        value = self.r.choice(node, f"{self.what} {key}", [member.value for member in enum])
        return self._checked(None if value is None else enum(value))

    def ids(self, key: str, node: Node | None = None) -> tuple[str, ...] | None:
        """A list of ids under ``key`` (of ``node`` when given, else of this element)."""
        if node is None:
            node = self._value(key)
        else:
            self.marks.append((key, self.r.loc(node)))
        if node is None:
            return None
        items = self.r.items(node, f"{self.what} {key}")
        if items is None:
            self.ok = False
            return None
        values: list[str] = []
        for index, item in enumerate(items):
            self.marks.append((f"{key}[{index}]", self.r.loc(item)))
            value = self._checked(self.r.ident(item, f"{self.what} {key} entry"))
            if value is not None:
                values.append(value)
        return tuple(values)

    def choices(self, key: str, options: tuple[_E, ...]) -> tuple[_E, ...]:
        """A list of values, each one of ``options``; missing means none."""
        node = self._value(key)
        if node is None:
            return ()
        items = self.r.items(node, f"{self.what} {key}")
        if items is None:
            self.ok = False
            return ()
        values: list[_E] = []
        names = [option.value for option in options]
        for index, item in enumerate(items):
            self.marks.append((f"{key}[{index}]", self.r.loc(item)))
            value = self._checked(self.r.choice(item, f"{self.what} {key} entry", names))
            if value is not None:
                values.append(options[names.index(value)])
        return tuple(values)

    def words(self, key: str, options: tuple[str, ...]) -> tuple[str, ...] | None:
        """A list of values, each one of ``options``; None when the key is absent."""
        node = self._value(key)
        if node is None:
            return None
        items = self.r.items(node, f"{self.what} {key}")
        if items is None:
            self.ok = False
            return None
        values: list[str] = []
        for index, item in enumerate(items):
            self.marks.append((f"{key}[{index}]", self.r.loc(item)))
            value = self._checked(self.r.choice(item, f"{self.what} {key} entry",
                                                list(options)))
            if value is not None:
                values.append(value)
        return tuple(values)

    def nodes(self, key: str) -> list[Node]:
        """The items of a list of mappings under ``key``, each marked ``key[i]``."""
        node = self._value(key)
        if node is None:
            return []
        items = self.r.items(node, f"{self.what} {key}")
        if items is None:
            self.ok = False
            return []
        for index, item in enumerate(items):
            self.marks.append((f"{key}[{index}]", self.r.loc(item)))
        return list(items)

    def id_lists(self, key: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """A mapping of ids to lists of ids; a key is marked at its name (``key.name``)."""
        node = self._value(key)
        if node is None:
            return ()
        entries = self.r.entries(node, f"{self.what} {key}")
        if entries is None:
            self.ok = False
            return ()
        lists: list[tuple[str, tuple[str, ...]]] = []
        for name, (name_node, value_node) in entries.items():
            self.marks.append((f"{key}.{name}", self.r.loc(name_node)))
            ident = self._checked(self.r.ident(name_node, f"{self.what} {key} key"))
            # Marked at the name first, so at("key.name") points there, not at the list.
            items = self.ids(f"{key}.{name}", value_node)
            if ident is not None and items is not None:
                lists.append((ident, items))
        return tuple(lists)

    def pins(self, key: str, allowed: Collection[str]) -> dict[str, str]:
        """A mapping of names (from ``allowed``) to key pins ``sha256:<64 hex>``."""
        entries = self.mapping(key, allowed)
        pins: dict[str, str] = {}
        for name, (_, value_node) in (entries or {}).items():
            self.marks.append((f"{key}.{name}", self.r.loc(value_node)))
            value = self._checked(self.r.text(value_node, f"{self.what} {key} {name}"))
            if value is None or name not in allowed:
                continue
            if _PIN.fullmatch(value) is None:
                self.ok = False
                self.r.report(value_node, f"{self.what} {key} {name} must be a key pin "
                              "'sha256:' followed by 64 hex digits", hint=_PIN_HINT)
                continue
            # Hex digits are compared as written by hash tools, in lower case.
            pins[name] = value.lower()
        return pins

    def params(self) -> Params:
        node = self._value("params")
        if node is None:
            return ()
        entries = self.r.entries(node, f"{self.what} params")
        if entries is None:
            self.ok = False
            return ()
        values: list[tuple[str, str | int]] = []
        for key, (_, value_node) in sorted(entries.items()):
            self.marks.append((f"params.{key}", self.r.loc(value_node)))
            value = self.r.scalar(value_node, f"{self.what} param {key!r}")
            if value is None:
                self.ok = False
            else:
                values.append((key, value))
        return tuple(values)

    def mapping(self, key: str, allowed: Collection[str]) -> Entries | None:
        node = self._value(key)
        if node is None:
            return None
        entries = self.r.entries(node, f"{self.what} {key}")
        if entries is None:
            self.ok = False
            return None
        if not self.r.check_keys(entries, node, f"{self.what} {key}", allowed, ()):
            self.ok = False
        return entries
