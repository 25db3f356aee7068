"""A checkpoint's tree size is ASCII decimal: other digits are a malformed note
(``CheckpointError``), also where the signature is not required, never another exception."""

from __future__ import annotations

import base64

import pytest

from gateway.store.checkpoints import CheckpointError, open_checkpoint

ROOT = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize("size", ["\u00b2", "\u0661\u0662", "\uff11"])
def test_a_size_in_other_digits_is_a_malformed_note(size: str) -> None:
    note = f"o\n{size}\n{ROOT}\ntime 2026-01-01T00:00:00.000000Z\n\n\u2014 o AAAA\n"
    with pytest.raises(CheckpointError, match="tree size"):
        open_checkpoint(note, (), require_signature=False)
