"""Sealed answers open only for their recipient, only unaltered, only in their context."""

from __future__ import annotations

import pytest

from adapters.sealed import open_disclosure
from gateway.api.v1 import exchange_pb2
from gateway.crypto.errors import SealOpenError
from tests.integration.harness import Harness
from tests.integration.helpers import register, to_case_meeting


async def _answer(harness: Harness) -> exchange_pb2.DisclosureResponse:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    return await police.request_disclosure_raw(
        exchange_pb2.DisclosureRequest(
            case_id=case_id, purpose="analysis_and_plan", phase="case_meeting"
        )
    )


async def test_recipient_opens_the_answer(harness: Harness) -> None:
    response = await _answer(harness)
    record = open_disclosure(
        response,
        harness.credentials("police").hpke_key,
        recipient_id="police",
        purpose="analysis_and_plan",
    )
    assert record.disclosure_id == response.disclosure_id
    assert record.fields


async def test_another_partner_cannot_open_it(harness: Harness) -> None:
    response = await _answer(harness)
    for other in ("ggz", "zvh", "municipality"):
        with pytest.raises(SealOpenError):
            open_disclosure(
                response,
                harness.credentials(other).hpke_key,
                recipient_id="police",
                purpose="analysis_and_plan",
            )


@pytest.mark.parametrize("position", [0, 31, 32, 100, -1])
async def test_a_flipped_byte_fails_to_open(harness: Harness, position: int) -> None:
    response = await _answer(harness)
    data = bytearray(response.sealed.ciphertext)
    data[position] ^= 0x01
    response.sealed.ciphertext = bytes(data)
    with pytest.raises(SealOpenError):
        open_disclosure(
            response,
            harness.credentials("police").hpke_key,
            recipient_id="police",
            purpose="analysis_and_plan",
        )


async def test_the_seal_is_bound_to_disclosure_recipient_and_purpose(harness: Harness) -> None:
    response = await _answer(harness)
    key = harness.credentials("police").hpke_key
    with pytest.raises(SealOpenError):
        open_disclosure(response, key, recipient_id="police", purpose="acute_safety")
    with pytest.raises(SealOpenError):
        open_disclosure(response, key, recipient_id="ggz", purpose="analysis_and_plan")
    response.disclosure_id = "d_" + "1" * 32
    with pytest.raises(SealOpenError):
        open_disclosure(response, key, recipient_id="police", purpose="analysis_and_plan")
