"""Sending content sealed to the gateway: registrations and case-file entries.

Each submission is sealed to the gateway's current key for its operation, this partner and
its request id (the caller's, or a fresh one), and is sent. When the gateway answers that the
key is no longer in use, the keys are fetched once more and the same request (same id, new
seal) is sent once more: the gateway does a request id's work once, so this resend cannot
register a case twice. Any other failure is the caller's (see ``adapters.resending``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio

from adapters.gateway_keys import GatewayKeys
from gateway.api.v1 import common_pb2
from gateway.crypto.submissions import GatewayPublicKey, SubmissionBinding, seal_submission
from gateway.formats.sealed_content import sealed_submission_message

__all__ = ["REASON_METADATA_KEY", "SubmissionSealer", "is_unknown_gateway_key", "new_request_id"]

R = TypeVar("R")
# Trailing metadata the gateway sets on errors a client acts on (gateway/server/status.py).
REASON_METADATA_KEY = "ketenpoort-reason"
_GATEWAY_KEY_UNKNOWN = "gateway_key_unknown"

Send = Callable[[common_pb2.SealedSubmission, str], Awaitable[R]]


def new_request_id() -> str:
    """128 random bits: unique per request without coordination."""
    return "r_" + secrets.token_hex(16)


def is_unknown_gateway_key(exc: BaseException) -> bool:
    """True for the gateway's answer to a submission sealed to a key it no longer uses."""
    if not isinstance(exc, aio.AioRpcError):
        return False
    if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
        return False
    # grpc.aio hands trailing metadata as an aio.Metadata (the stubs say otherwise).
    trailing: object = exc.trailing_metadata()
    if not isinstance(trailing, aio.Metadata):
        return False
    return _GATEWAY_KEY_UNKNOWN in trailing.get_all(REASON_METADATA_KEY)


class SubmissionSealer:
    """Seals a partner's submissions to the gateway's keys and sends them."""

    def __init__(self, partner_id: str, keys: GatewayKeys) -> None:
        self._partner_id = partner_id
        self._keys = keys

    @property
    def keys(self) -> GatewayKeys:
        return self._keys

    async def send(
        self, operation: str, content: Message, send: Send[R], *, request_id: str = ""
    ) -> R:
        """Seal ``content`` for ``operation`` and ``request_id`` (a fresh one when empty) and
        hand it, with the request id, to ``send``."""
        request_id = request_id or new_request_id()
        plaintext = content.SerializeToString(deterministic=True)
        key = await self._keys.current()
        try:
            return await send(self._seal(plaintext, key, operation, request_id), request_id)
        except aio.AioRpcError as exc:
            if not is_unknown_gateway_key(exc):
                raise
        fresh = await self._keys.refresh(key)
        return await send(self._seal(plaintext, fresh, operation, request_id), request_id)

    def _seal(
        self, plaintext: bytes, key: GatewayPublicKey, operation: str, request_id: str
    ) -> common_pb2.SealedSubmission:
        binding = SubmissionBinding(operation, self._partner_id, request_id)
        return sealed_submission_message(seal_submission(plaintext, key, binding))
