"""The server log's formats, levels and coalescing of repeated lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.server.config import ConfigError, config_from_mapping
from gateway.server.logging_setup import (
    JsonFormatter,
    LogFormat,
    LogSettings,
    RepeatedLines,
    TextFormatter,
    configure_logging,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(message: str, *args: object, level: int = logging.ERROR,
           name: str = "ketenpoort.test", **extra: object) -> logging.LogRecord:
    r = logging.LogRecord(name, level, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(r, key, value)
    return r


def test_a_json_line_has_time_level_logger_message_and_the_extras() -> None:
    line = json.loads(JsonFormatter().format(
        record("call %s", "done", level=logging.INFO, rpc="ExchangeService/Triage", ms=1.5)
    ))
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
    assert (line["level"], line["logger"], line["message"]) == (
        "INFO", "ketenpoort.test", "call done"
    )
    assert (line["rpc"], line["ms"]) == ("ExchangeService/Triage", 1.5)


def test_a_json_line_of_an_exception_names_it() -> None:
    try:
        raise KeyError("x")
    except KeyError:
        import sys

        r = record("failed")
        r.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(r))
    assert line["exception"] == "KeyError"
    assert "Traceback" in line["traceback"]


def test_a_text_line_ends_with_the_extras() -> None:
    text = TextFormatter().format(record("call", level=logging.INFO, status="OK"))
    assert text.endswith("INFO ketenpoort.test: call status=OK")


def test_the_same_error_is_written_once_per_window_with_the_count_held_back() -> None:
    clock = Clock()
    lines = RepeatedLines(30.0, clock)
    assert lines.filter(record("database unavailable in %s", "Triage"))
    held = [lines.filter(record("database unavailable in %s", "Triage")) for _ in range(500)]
    assert not any(held)
    # Another message, logger or level is a line of its own.
    assert lines.filter(record("database unavailable in %s", "GetCase"))
    assert lines.filter(record("database unavailable in %s", "Triage", level=logging.WARNING))
    assert lines.filter(record("database unavailable in %s", "Triage", name="other"))
    clock.now += 30.0
    again = record("database unavailable in %s", "Triage")
    assert lines.filter(again)
    assert again.suppressed == 500  # type: ignore[attr-defined]
    clock.now += 31.0
    quiet = record("database unavailable in %s", "Triage")
    assert lines.filter(quiet) and not hasattr(quiet, "suppressed")


def test_info_lines_are_never_coalesced() -> None:
    lines = RepeatedLines(30.0, Clock())
    assert all(lines.filter(record("call", level=logging.INFO)) for _ in range(10))


def test_the_lines_remembered_are_bounded() -> None:
    clock = Clock()
    lines = RepeatedLines(30.0, clock, max_lines=10)
    for i in range(100):
        clock.now += 0.001
        assert lines.filter(record("error %d", i))
    assert len(lines._seen) <= 10


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_configure_logging_writes_json_at_the_level_set(root_restored: None) -> None:
    stream = io.StringIO()
    configure_logging(LogSettings(LogFormat.JSON, "WARNING"), stream)
    log = logging.getLogger("ketenpoort.sample")
    log.info("not written")
    for _ in range(3):
        log.warning("written once")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["written once"]


def test_the_toml_keys() -> None:
    config = config_from_mapping(
        {"log_format": "json", "log_level": "debug", "log_repeat_window_s": 5}, base=Path(".")
    )
    assert config.logging == LogSettings(LogFormat.JSON, "DEBUG", 5.0)
    assert config_from_mapping({}, base=Path(".")).logging == LogSettings()
    for bad, says in [
        ({"log_format": "xml"}, 'log_format must be "json" or "text"'),
        ({"log_level": 10}, "log_level must be one of"),
        ({"log_repeat_window_s": -1}, "log_repeat_window_s must be"),
        ({"tracing": {"otlp_endpoint": 4317}}, "otlp_endpoint must be a string"),
        ({"tracing": {"sample_ratio": 2}}, "sample_ratio must be a number from 0 to 1"),
        ({"tracing": {"endpoint": "x"}}, "unknown key(s) in [tracing]: endpoint"),
        ({"tracing": "http://x"}, "[tracing] must be a table"),
    ]:
        with pytest.raises(ConfigError) as err:
            config_from_mapping(bad, base=Path("."))
        assert says in str(err.value)
