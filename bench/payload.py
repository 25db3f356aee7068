"""Padding a source record so that its FetchFields answer has an exact size in bytes."""

from __future__ import annotations

from adapters.source_server import SubjectRecord
from gateway.api.v1 import source_pb2

PAD = "x"


def answer_size(fields: dict[str, str]) -> int:
    return source_pb2.FetchFieldsResponse(values=fields).ByteSize()


def padded_record(record: SubjectRecord, size: int) -> SubjectRecord:
    """The record with its values lengthened (spread over the fields) so that the serialised
    answer for all its fields is ``size`` bytes; unchanged when it is already as large."""
    base = dict(record.fields)
    if not base or answer_size(base) >= size:
        return record
    names = sorted(base)
    extra = size - answer_size(base)
    # Length prefixes are varints, so a longer value can cost one byte more than its
    # padding; walk the padding down until the size is exact.
    for pad in range(extra, max(-1, extra - 8 * len(names)), -1):
        fields = _spread(base, names, pad)
        if answer_size(fields) == size:
            return SubjectRecord(record.bsn, record.role, fields)
    raise ValueError(f"cannot pad the record to exactly {size} bytes")


def _spread(base: dict[str, str], names: list[str], pad: int) -> dict[str, str]:
    share, rest = divmod(pad, len(names))
    return {
        n: base[n] + PAD * (share + (1 if i < rest else 0)) for i, n in enumerate(names)
    }
