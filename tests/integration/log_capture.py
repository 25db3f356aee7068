"""The gateway's server log as JSON lines, captured in the test's process."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gateway.server.logging_setup import JsonFormatter, RepeatedLines


@dataclass
class CapturedLog:
    stream: io.StringIO

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def requests(self, rpc: str | None = None) -> list[dict[str, Any]]:
        return [line for line in self.lines()
                if line["logger"] == "ketenpoort.request" and rpc in (None, line["rpc"])]

    def others(self) -> list[dict[str, Any]]:
        """Every line but the request lines."""
        return [line for line in self.lines() if line["logger"] != "ketenpoort.request"]


@contextmanager
def captured_log(
    *, window_s: float = 30.0, clock: Callable[[], float] | None = None
) -> Iterator[CapturedLog]:
    """Every logger's lines at DEBUG and above, formatted and coalesced as `ketenpoort serve`
    writes them (gateway.server.logging_setup)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RepeatedLines(window_s, clock) if clock else RepeatedLines(window_s))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield CapturedLog(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
