"""Reading a request's content whether it came sealed to the gateway or in clear: the
gateway's side of sealed submissions (the conversions both sides share are in
gateway.formats.sealed_content)."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from gateway.api.v1 import common_pb2
from gateway.broker.errors import InvalidRequest
from gateway.broker.submission_gate import SubmissionGate
from gateway.broker.text_checks import check_strings
from gateway.crypto.submissions import SUBMISSION_FORMAT_VERSION
from gateway.formats.sealed_content import sealed_submission

__all__ = ["BOTH_GIVEN", "opened_content"]

M = TypeVar("M", bound=Message)

BOTH_GIVEN = "give the content either in clear or sealed, not both"


def opened_content(
    gate: SubmissionGate,
    *,
    operation: str,
    sender_id: str,
    request_id: str,
    sealed: common_pb2.SealedSubmission | None,
    clear: M,
    version: int = SUBMISSION_FORMAT_VERSION,
) -> M:
    """The content of a request: ``clear`` (the request's clear fields as the content message)
    when nothing came sealed and the gate admits clear content, else the sealed content opened
    for this operation, sender and request id and parsed as the same message type (a box of
    ``version`` only).

    Content given both ways is refused rather than merged: which copy counts would otherwise
    be up to the reader.
    """
    if sealed is None:
        gate.admit_clear()
        _check_content(clear, "")
        return clear
    if clear.ByteSize():
        raise InvalidRequest(BOTH_GIVEN)
    plaintext = gate.open(
        sealed_submission(sealed),
        operation=operation,
        sender_id=sender_id,
        request_id=request_id,
        version=version,
    )
    content = type(clear)()
    try:
        content.ParseFromString(plaintext)
    except DecodeError:
        # It opened, so the sender sealed it; say what was expected, never what came.
        raise InvalidRequest(
            f"the sealed content is not a {content.DESCRIPTOR.name}"
        ) from None
    _check_content(content, "sealed content: ")
    return content


def _check_content(content: Message, where: str) -> None:
    """Content obeys the string rules of gateway.broker.text_checks (NUL, control characters,
    lengths) whichever way it came; the message names the field, never its value."""
    try:
        check_strings(content)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}{exc}") from None
