"""Random identifiers: well formed, never repeated, not even across a fork."""

from __future__ import annotations

import os
import re

import pytest

from gateway.broker.caller import TraceContext
from gateway.broker.ids import RandomBuffer, new_id, random_hex


def test_ids_are_well_formed_and_distinct() -> None:
    ids = [new_id("d_") for _ in range(5000)]
    assert all(re.fullmatch(r"d_[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert re.fullmatch(r"[0-9a-f]{16}", random_hex(8))


def test_trace_context_ids() -> None:
    own = TraceContext.from_traceparent(None)
    assert re.fullmatch(r"[0-9a-f]{32}", own.trace_id)
    assert re.fullmatch(r"[0-9a-f]{16}", own.span_id)
    caller = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    joined = TraceContext.from_traceparent(caller)
    assert joined.trace_id == "ab" * 16 and joined.parent_span_id == "cd" * 8
    assert joined.span_id != own.span_id


def test_the_buffer_hands_out_each_byte_once() -> None:
    buffer = RandomBuffer(size=64)
    chunks = [buffer.take(16) for _ in range(40)]  # crosses several refills
    assert all(len(c) == 16 for c in chunks)
    assert len(set(chunks)) == len(chunks)
    assert len(buffer.take(100)) == 100  # more than the buffer holds
    with pytest.raises(ValueError):
        RandomBuffer(size=8)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    new_id("d_")  # the parent's buffer is filled and partly used
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        try:
            os.write(write, " ".join(new_id("d_") for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [new_id("d_") for _ in range(4)]
    assert len(child) == 4
    assert not set(child) & set(parent)
