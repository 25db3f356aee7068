"""The log origin a gateway names itself by when none is configured: the first line of its
checkpoints and the origin of its signed key statements. A partner's client expects this
origin unless told another, so both sides take it from here."""

from __future__ import annotations

__all__ = ["DEFAULT_LOG_ORIGIN"]

DEFAULT_LOG_ORIGIN = "ketenpoort.local/accountability-log"
