"""The alarm a gateway raises when its own check of the accountability log fails.

Kept as a file in the checkpoint directory (``LOG-ALARM.json``), outside the database, so that
whoever rewrote the database cannot clear it and a restart does not forget it. While it is
there the gateway signs no checkpoint (a signature would vouch for a log it found wrong) and
reports NOT_SERVING for the accountability service. ``ketenpoort audit acknowledge`` removes it
once the log verifies again, or with an explicit override, and records that in the log.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ALARM_FILE = "LOG-ALARM.json"


@dataclass(frozen=True, slots=True)
class Alarm:
    raised_at: str
    reason: str
    first_bad_seq: int | None
    bad_checkpoint_size: int | None

    def describe(self) -> str:
        where = []
        if self.first_bad_seq is not None:
            where.append(f"seq={self.first_bad_seq}")
        if self.bad_checkpoint_size is not None:
            where.append(f"checkpoint at tree size {self.bad_checkpoint_size}")
        place = f" ({', '.join(where)})" if where else ""
        return f"raised {self.raised_at}{place}: {self.reason}"


class LogAlarm:
    """The alarm file of one checkpoint directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / ALARM_FILE

    def current(self) -> Alarm | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # A damaged alarm is still an alarm.
            return Alarm("", "the alarm file is damaged", None, None)
        return Alarm(
            str(data.get("raised_at", "")),
            str(data.get("reason", "")),
            _int_or_none(data.get("first_bad_seq")),
            _int_or_none(data.get("bad_checkpoint_size")),
        )

    def raise_(
        self, reason: str, first_bad_seq: int | None, bad_checkpoint_size: int | None
    ) -> Alarm:
        """Record the alarm durably (once: the first fault stays the one reported)."""
        existing = self.current()
        if existing is not None:
            return existing
        alarm = Alarm(
            datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            reason,
            first_bad_seq,
            bad_checkpoint_size,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary name of this writer's own: replicas may share the directory.
        fd, name = tempfile.mkstemp(prefix=".LOG-ALARM.", dir=self.path.parent)
        tmp = Path(name)
        with open(fd, "w", encoding="utf-8") as out:
            json.dump(
                {
                    "raised_at": alarm.raised_at,
                    "reason": alarm.reason,
                    "first_bad_seq": alarm.first_bad_seq,
                    "bad_checkpoint_size": alarm.bad_checkpoint_size,
                },
                out,
            )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        return alarm

    def clear(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.path.parent)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
