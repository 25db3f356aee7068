"""Pages that fit in one gRPC message: bounded by bytes as well as by count.

A page of log entries is limited by count (``page_size``), but entries differ in size by
tens of times (a registration record against a disclosure naming 40 fields, each with its
body beside it), so a page of the largest count could exceed the message limit and fail as
a whole. Entries are added while the serialised page stays under a byte budget; the page
then ends early and its continuation token (``next_after_seq``) picks up from there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from google.protobuf.message import Message

__all__ = ["DEFAULT_HEADROOM_BYTES", "page_budget", "take_within"]

M = TypeVar("M", bound=Message)
# Room for the response's other fields, its framing and gRPC's own overhead.
DEFAULT_HEADROOM_BYTES = 16 * 1024
# Tag plus the longest length prefix of an embedded message within any budget used here.
_PER_ENTRY_OVERHEAD = 1 + 5


def page_budget(max_message_bytes: int, headroom: int = DEFAULT_HEADROOM_BYTES) -> int:
    """The bytes a page's entries may take under a message limit of ``max_message_bytes``."""
    return max(max_message_bytes - headroom, max_message_bytes // 2)


def take_within(entries: Iterable[M], budget: int) -> tuple[list[M], bool]:
    """The leading ``entries`` whose serialised size stays within ``budget`` bytes (at least
    one, so a page always moves on), and whether any were left out for lack of room."""
    page: list[M] = []
    used = 0
    for entry in entries:
        size = entry.ByteSize() + _PER_ENTRY_OVERHEAD
        if page and used + size > budget:
            return page, True
        page.append(entry)
        used += size
    return page, False
