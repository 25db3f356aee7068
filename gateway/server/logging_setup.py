"""The gateway's server log: JSON or text lines on stderr, at the configured level, with
repeated warnings and errors coalesced.

A line carries what the code that logged it passed: a message and structured extras
(``log.info("call", extra={"rpc": ...})``). Nothing here adds request content; the code that
logs never passes field values, identities or tokens (docs/operations/logs-and-traces.md).

Coalescing: while PostgreSQL restarts, every call and every retry can fail the same way. The
first line of a kind (logger, level and rendered message) is written; the same line again within
``repeat_window_s`` is counted, not written; the next one after the window carries
``suppressed`` = how many were held back. Request lines (INFO) are never coalesced: they are
the access log, one per call.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

__all__ = [
    "DEFAULT_REPEAT_WINDOW_S",
    "JsonFormatter",
    "LogFormat",
    "LogSettings",
    "RepeatedLines",
    "TextFormatter",
    "configure_logging",
    "logging_configured",
]

DEFAULT_REPEAT_WINDOW_S = 30.0
# Distinct lines remembered for coalescing; beyond it the oldest are forgotten (bounded memory
# even when messages vary, e.g. with a counter in them).
MAX_REMEMBERED_LINES = 1024
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# The attributes every LogRecord has: anything else on a record is a structured extra.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName"}
)


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


@dataclass(frozen=True)
class LogSettings:
    format: LogFormat = LogFormat.TEXT
    level: str = "INFO"
    repeat_window_s: float = DEFAULT_REPEAT_WINDOW_S


def extras_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured extras a line was logged with."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (RFC 3339, UTC, milliseconds), level, logger,
    message, the extras, and the exception's type and traceback when one was logged."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ).replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extras_of(record).items():
            line.setdefault(key, _plain(value))
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        text = super().formatMessage(record)
        extras = extras_of(record)
        if extras:
            text += " " + " ".join(f"{k}={_plain(v)}" for k, v in extras.items())
        return text


class RepeatedLines(logging.Filter):
    """Writes a WARNING-or-above line at most once per window per (logger, level, message),
    with the number held back since in ``suppressed``."""

    def __init__(
        self,
        window_s: float = DEFAULT_REPEAT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_lines: int = MAX_REMEMBERED_LINES,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        self._max = max_lines
        # key -> [time the line was last written, lines held back since]
        self._seen: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or self.window_s <= 0:
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window_s:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.suppressed = int(seen[1])
        if seen is None and len(self._seen) >= self._max:
            # Forget the oldest half: an unbounded set of distinct messages must not grow.
            for old in sorted(self._seen, key=lambda k: self._seen[k][0])[: self._max // 2]:
                del self._seen[old]
        self._seen[key] = [now, 0]
        return True


# Marks the handler configure_logging installs, so a second call replaces it.
_HANDLER_NAME = "ketenpoort"


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's lines to ``stream`` (stderr) in the configured format and level.
    Takes the place of ``logging.basicConfig``'s handler and of one installed here before;
    other handlers (a test runner's) stay."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if settings.format is LogFormat.JSON else TextFormatter())
    handler.addFilter(RepeatedLines(settings.repeat_window_s))
    root = logging.getLogger()
    for old in list(root.handlers):
        if type(old) is logging.StreamHandler or old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    return handler


@contextmanager
def logging_configured(settings: LogSettings) -> Iterator[logging.Handler]:
    """``configure_logging`` for as long as the block runs; then the handlers and level from
    before (a command run inside another program, such as a test, leaves no trace)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    handler = configure_logging(settings)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for old in handlers:
            if old not in root.handlers:
                root.addHandler(old)
        root.setLevel(level)


def settings_from_mapping(raw: Any) -> LogSettings:
    """``log_format``, ``log_level`` and ``log_repeat_window_s`` of the gateway TOML (top
    level). Raises ValueError with a one-line reason."""
    fmt = raw.get("log_format", LogFormat.TEXT.value)
    if fmt not in {f.value for f in LogFormat}:
        raise ValueError(f'log_format must be "json" or "text" (got {fmt!r})')
    level = raw.get("log_level", "INFO")
    if not isinstance(level, str) or level.upper() not in LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(LEVELS)} (got {level!r})")
    window = raw.get("log_repeat_window_s", DEFAULT_REPEAT_WINDOW_S)
    if isinstance(window, bool) or not isinstance(window, int | float) or not 0 <= window <= 86400:
        raise ValueError(
            f"log_repeat_window_s must be a number of seconds from 0 to 86400 (got {window!r})"
        )
    return LogSettings(LogFormat(fmt), level.upper(), float(window))
