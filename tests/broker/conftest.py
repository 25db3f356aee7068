"""Use cases wired to in-memory fakes and the shipped policy: no database, no gRPC."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.case_persons import CasePersons
from gateway.broker.casefile import CaseFile, Registration
from gateway.broker.context import BrokerContext, PolicyHolder, SealingKey
from gateway.broker.disclosure import Disclosures
from gateway.broker.free_texts import FreeTexts
from gateway.broker.persons import PersonInput
from gateway.core import CompiledPolicy
from gateway.crypto.local_keys import KeyEncryptionKey
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir
from tests.broker.fakes import FakeCaseStore, FakeLog, FakeSource

# The police system knows the alleged perpetrator by BSN, and nobody else.
KEK_ID = "kek_" + "0" * 15 + "1"
PERPETRATOR_BSN = "123456782"
POLICE_HOLDS = {
    PERPETRATOR_BSN: {"police.incidents": "2 incidents (2025)", "police.weapons": "none"},
}


@cache
def shipped_policy() -> CompiledPolicy:
    return load_policy_dir(shipped_policy_dir())


class FakeTextKeys:
    """The free-text key store as a dict (break-glass justifications)."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}

    def get(self, key_id: str) -> bytes | None:
        return self.keys.get(key_id)

    def add(
        self, key_id: str, text_class: str, case_id: str, wrapped: bytes, at: datetime
    ) -> bytes:
        return self.keys.setdefault(key_id, wrapped)


class FakeKeys:
    """The gateway keys a use case needs, in memory: one key-encryption key, a pseudonym key."""

    def __init__(self) -> None:
        self.current_kek = KeyEncryptionKey(KEK_ID, os.urandom(32))
        self.pseudonym_key = os.urandom(32)

    def kek(self, kek_id: str) -> KeyEncryptionKey:
        assert kek_id == KEK_ID
        return self.current_kek


@dataclass
class World:
    ctx: BrokerContext
    store: FakeCaseStore
    log: FakeLog
    police_source: FakeSource
    casefile: CaseFile
    disclosures: Disclosures
    persons: CasePersons
    policy: CompiledPolicy


def caller(partner_id: str, role: str = "chain_partner", user: str = "u-1") -> Principal:
    partner_type = shipped_policy().partners[partner_id].type
    return Principal(partner_id, partner_type, role, user, token_id="t-1", expires_at=0.0)


def trace() -> TraceContext:
    return TraceContext.from_traceparent(None, "test")


@pytest.fixture
def world() -> World:
    policy = shipped_policy()
    keystore = FakeKeys()
    sealing: Mapping[str, SealingKey] = {
        partner: SealingKey(X25519PrivateKey.generate().public_key(), f"{partner}-seal")
        for partner in policy.partners
    }
    store, log = FakeCaseStore(), FakeLog()
    police_source = FakeSource(POLICE_HOLDS)
    ctx = BrokerContext(
        policy=PolicyHolder(policy),
        cases=store,
        reader=store,
        log=log,
        keystore=keystore,
        sealing_keys=lambda: sealing,
        sources={"police": police_source},
        source_deadline_s=1.0,
        clock=lambda: datetime.now(UTC),
    )
    casefile = CaseFile(ctx, texts=FreeTexts(FakeTextKeys(), keystore, ctx.clock))
    return World(
        ctx, store, log, police_source, casefile, Disclosures(ctx, casefile),
        CasePersons(ctx, casefile), policy,
    )


ZVH_DIRECTOR_USER = "zvh-pr-1"


async def register_family(world: World, approach: str = "code_rood") -> tuple[str, list[str]]:
    """A case registered by the police about a family: the case id and the person ids (the
    alleged perpetrator with a BSN, a victim by name and year of birth, a described child)."""
    view = await world.casefile.register(
        caller("police"),
        trace(),
        Registration(
            subject=None,
            case_type="",
            reason="Threats against his former partner",
            goal="Safety of the family",
            invitees=(),
            persons=(
                PersonInput("alleged_perpetrator", bsn=PERPETRATOR_BSN, name="Jan de Vries",
                            date_of_birth="1980-04-12"),
                PersonInput("victim", name="Anna de Vries", date_of_birth="1990"),
                PersonInput("child", description="Toddler seen at the address"),
            ),
            approach=approach,
        ),
    )
    return view.case_id, [p.person_id for p in view.persons]


def take_on(world: World, case_id: str, phase: str = "case_meeting") -> None:
    """The ZVH took the case on at intake (procesregie with its director) and brought it to
    ``phase``: what the work-surface use cases would have done."""
    world.store.change(
        case_id,
        intake="accepted",
        procesregie_partner="zvh",
        procesregie_user=ZVH_DIRECTOR_USER,
        phase=phase,
    )


def zvh_director(user: str = ZVH_DIRECTOR_USER) -> Principal:
    return caller("zvh", "process_director", user)


def join(world: World, case_id: str, partner_id: str) -> None:
    """``partner_id`` was invited to the case (the invitation's own use case is tested apart)."""
    case = world.store.cases[case_id]
    world.store.change(case_id, participants=(*case.participants, partner_id))
