"""Privacy officers fetch checkpoints and proofs over gRPC and check them with the log key
alone; the log records carry the Logboek Dataverwerkingen attributes."""

from __future__ import annotations

import grpc
import pytest

from gateway.crypto._pem import load_ed25519_public_key
from gateway.crypto.layout import GatewayKeyPaths
from gateway.store.checkpoints import open_checkpoint
from gateway.store.merkle import leaf_hash, verify_consistency, verify_inclusion
from tests.integration.harness import Harness
from tests.integration.helpers import register, to_case_meeting

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_proofs_over_grpc_check_against_the_log_key(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    officer = harness.client("zvh", role="privacy_officer")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    await police.request_disclosure(
        case_id, "analysis_and_plan", "case_meeting", traceparent=TRACEPARENT
    )
    key = load_ed25519_public_key(GatewayKeyPaths.under(harness.keys).signing_pub)
    listing = await officer.list_disclosures(kinds=["disclosure"])
    entry = listing.entries[-1]
    # The Logboek Dataverwerkingen shape: the caller's trace and span, operation, times.
    assert entry.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert entry.parent_span_id == "00f067aa0ba902b7"
    assert entry.span_id != entry.parent_span_id
    assert entry.name == "ExchangeService/RequestDisclosure"
    assert entry.ended_at >= entry.occurred_at
    assert entry.subject_id_type.startswith("urn:ketenpoort:subject-id:")
    assert entry.processing_activity  # the purpose's art. 30 register entry

    proof = await officer.prove_inclusion(entry.seq)
    checkpoint = open_checkpoint(proof.checkpoint.note, [key])
    assert checkpoint.tree_size == proof.tree_size >= entry.seq
    assert proof.body == entry.body
    assert verify_inclusion(
        leaf_hash(proof.body.encode()), entry.seq - 1, proof.tree_size, list(proof.path),
        checkpoint.root_hash,
    )
    first = await officer.get_checkpoint()
    await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    later = await officer.prove_inclusion(first.tree_size + 1)
    consistency = await officer.prove_consistency(first.tree_size, later.tree_size)
    old = open_checkpoint(consistency.old_checkpoint.note, [key])
    new = open_checkpoint(consistency.new_checkpoint.note, [key])
    assert verify_consistency(
        old.tree_size, new.tree_size, old.root_hash, new.root_hash, list(consistency.path)
    )
    verified = await officer.verify_log()
    assert verified.ok and verified.checkpoints_checked >= 2
    assert verified.last_checkpoint_size == later.tree_size


async def test_proof_requests_are_checked(harness: Harness) -> None:
    officer = harness.client("zvh", role="privacy_officer")
    police = harness.client("police")
    await register(police)
    harness.gateway.log.checkpoint_now()
    await register(police)  # records no checkpoint covers yet
    checkpoints_before = harness.gateway.log.latest_checkpoint()
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await officer.prove_inclusion(10_000)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    # A record the log does not hold is not worth a new signed checkpoint.
    assert harness.gateway.log.latest_checkpoint() == checkpoints_before
    with pytest.raises(grpc.aio.AioRpcError) as no_checkpoint:
        await officer.prove_consistency(1, 10_000)
    assert no_checkpoint.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as backwards:
        await officer.prove_consistency(5, 2)
    assert backwards.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as not_officer:
        await harness.client("zvh").get_checkpoint()
    assert not_officer.value.code() == grpc.StatusCode.PERMISSION_DENIED
