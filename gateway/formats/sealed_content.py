"""The sealed parts of contract messages, converted between their protobuf form and the crypto
layer's: sealed records (answers to a partner), sealed submissions (content sealed to the
gateway) and sealed source queries. Both sides use these: the gateway's servicers and source
client, and the partner side (adapters/)."""

from __future__ import annotations

from gateway.api.v1 import common_pb2, source_pb2
from gateway.crypto.sealing import SealedBox
from gateway.crypto.submissions import SealedSubmission

__all__ = [
    "sealed_box",
    "sealed_query_box",
    "sealed_query_message",
    "sealed_record_message",
    "sealed_submission",
    "sealed_submission_message",
]


def sealed_submission(message: common_pb2.SealedSubmission) -> SealedSubmission:
    return SealedSubmission(
        version=message.format_version,
        suite=message.suite,
        gateway_key_id=message.gateway_key_id,
        ciphertext=message.ciphertext,
        signer_key_id=message.signer_key_id,
        signature=message.signature,
    )


def sealed_submission_message(box: SealedSubmission) -> common_pb2.SealedSubmission:
    return common_pb2.SealedSubmission(
        format_version=box.version,
        suite=box.suite,
        gateway_key_id=box.gateway_key_id,
        ciphertext=box.ciphertext,
        signer_key_id=box.signer_key_id,
        signature=box.signature,
    )


def sealed_box(message: common_pb2.SealedRecord) -> SealedBox:
    return SealedBox(
        version=message.format_version,
        suite=message.suite,
        recipient_key_id=message.recipient_key_id,
        ciphertext=message.ciphertext,
    )


def sealed_record_message(box: SealedBox) -> common_pb2.SealedRecord:
    return common_pb2.SealedRecord(
        format_version=box.version,
        suite=box.suite,
        recipient_key_id=box.recipient_key_id,
        ciphertext=box.ciphertext,
    )


def sealed_query_message(box: SealedBox) -> source_pb2.SealedQuery:
    return source_pb2.SealedQuery(
        format_version=box.version,
        suite=box.suite,
        recipient_key_id=box.recipient_key_id,
        ciphertext=box.ciphertext,
    )


def sealed_query_box(message: source_pb2.SealedQuery) -> SealedBox:
    return SealedBox(
        version=message.format_version,
        suite=message.suite,
        recipient_key_id=message.recipient_key_id,
        ciphertext=message.ciphertext,
    )
