"""End to end, for generated policies: nothing the policy withholds ever reaches the recipient.

A real gateway on loopback serves a partner over real gRPC while hypothesis swaps in policies
made of the shipped catalogue, partners and purposes with generated rules (shadowed and
contradicting ones included: the tables must hold for whatever a policy says). Every source
system here over-shares: it answers every field it holds, whatever it was asked. For each
request the sealed answer is opened with the recipient's key and checked against the compiled
decision: exactly the released fields are in it, with the transform decided, and no value of a
withheld field appears anywhere in the answer or in the clear response.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.client import PartnerClient, PartnerCredentials
from gateway.api.v1 import common_pb2
from gateway.broker.sources import FetchContext, FetchResult, LookupResult, Source, Subject
from gateway.core import (
    AccessRequest,
    CompiledPolicy,
    Effect,
    PolicySet,
    Rule,
    Who,
)
from gateway.core.model import ZVH_SOURCE
from gateway.core.transforms import TRANSFORMS
from gateway.server.app import Gateway, start_gateway
from tests.integration.harness import gateway_config
from tests.integration.helpers import accept, register

REGISTRANT = "police"
DIRECTOR = "zvh"
PHASES = ("registration", "triage", "case_meeting", "plan", "monitoring")
JUSTIFICATION = "Acute danger: the partner and two children are at home."
# Transforms that accept any kind of field, with the parameters they need.
ANY_KIND = {"redact": (), "presence": (), "pseudonym": (), "truncate": (("length", 3),)}


@dataclass
class OverSharingSource:
    """A partner system that answers every field it holds, asked or not."""

    values: Mapping[str, str]
    asked: dict[str, tuple[str, ...]] = field(default_factory=dict)

    async def fetch(self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *,
                    timeout_s: float) -> FetchResult:
        self.asked[ctx.disclosure_id] = tuple(fields)
        return FetchResult(dict(self.values))

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        return LookupResult(True, "known")

    async def close(self) -> None:
        return None


@dataclass
class World:
    gateway: Gateway
    base: CompiledPolicy
    sources: dict[str, OverSharingSource]
    clients: dict[str, PartnerClient]
    roles: dict[str, str]  # partner id -> the role its client acts in
    cases: dict[str, str]  # phase -> case id in that phase
    markers: dict[str, str]  # source field -> its unique value

    def swap(self, policy: CompiledPolicy) -> None:
        self.gateway.policy.swap(policy)


@pytest.fixture
async def world(tmp_path: Path, dev_keys: Path,
                shipped_policy: CompiledPolicy) -> AsyncIterator[World]:
    markers = {f.id: f"<{f.id}:{secrets.token_hex(6)}>" for f in shipped_policy.fields
               if f.source != ZVH_SOURCE}
    sources = {t: OverSharingSource({f.id: markers[f.id] for f in shipped_policy.fields
                                     if f.source == t})
               for t in {f.source for f in shipped_policy.fields} - {ZVH_SOURCE}}
    adapters: dict[str, Source] = dict(sources)
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    gateway = await start_gateway(gateway_config(url, dev_keys), policy=shipped_policy,
                                  sources=adapters)
    address = f"127.0.0.1:{gateway.port}"
    clients: dict[str, PartnerClient] = {}
    roles: dict[str, str] = {}
    for partner_id, spec in shipped_policy.partners.items():
        roles[partner_id] = next(r for r in spec.roles if r != "privacy_officer")
        creds = PartnerCredentials.from_key_dir(dev_keys, partner_id)
        clients[partner_id] = PartnerClient(address, creds, role=roles[partner_id])
    everyone = tuple(p for p in shipped_policy.partners if p != REGISTRANT)
    cases: dict[str, str] = {}
    for target in PHASES:
        case_id = await register(clients[REGISTRANT], everyone)
        await accept(clients[DIRECTOR], case_id)
        for before, after in zip(PHASES, PHASES[1:PHASES.index(target) + 1], strict=False):
            await clients[DIRECTOR].change_phase(case_id, before, after)
        cases[target] = case_id
    try:
        yield World(gateway, shipped_policy, sources, clients, roles, cases, markers)
    finally:
        for client in clients.values():
            await client.close()
        await gateway.stop(grace=None)


def _subset(items: Sequence[str], min_size: int = 1) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(items), min_size=min_size, max_size=min(len(items), 6),
                    unique=True).map(tuple)


@st.composite
def generated_rules(draw: st.DrawFn, base: PolicySet) -> tuple[Rule, ...]:
    fields = [f.id for f in base.fields]
    categories = [c.id for c in base.categories]
    types = [t.id for t in base.partner_types]
    roles = [r.id for r in base.roles]
    purposes = [p.id for p in base.purposes]
    phases = [p.id for p in base.phases]
    rules: list[Rule] = []
    for index in range(draw(st.integers(1, 25))):
        effect = draw(st.sampled_from(list(Effect)))
        transform = draw(st.sampled_from(sorted(ANY_KIND))) if effect is Effect.MASK else None
        named = draw(_subset(fields, 0))
        override = draw(st.booleans())
        rules.append(Rule(
            id=f"generated-{index}", reason="Generated.",
            purposes=draw(_subset(purposes)), effect=effect,
            who=Who(partner_types=draw(st.none() | _subset(types)),
                    roles=draw(st.none() | _subset(roles))),
            phases=draw(st.none() | _subset(phases)),
            fields=named, categories=draw(_subset(categories, 0 if named else 1)),
            transform=transform, params=ANY_KIND[transform] if transform else (),
            override=override, override_reason="Generated." if override else ""))
    return tuple(rules)


def _values_in(answer: bytes, markers: Mapping[str, str]) -> set[str]:
    return {f for f, marker in markers.items() if marker.encode() in answer}


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_withheld_fields_never_reach_the_recipient(world: World, data: st.DataObject) -> None:
    base = world.base.policy
    rules = data.draw(generated_rules(base), label="rules")
    version = "sha256:" + secrets.token_hex(32)
    policy = CompiledPolicy(dataclasses.replace(base, rules=rules, version=version))
    world.swap(policy)
    try:
        for _ in range(3):
            await _one_request(world, policy, data)
    finally:
        world.swap(world.base)


async def _one_request(world: World, policy: CompiledPolicy, data: st.DataObject) -> None:
    partner_id = data.draw(st.sampled_from(sorted(world.clients)), label="partner")
    client = world.clients[partner_id]
    # Mostly requests the purpose admits, so that answers are released; sometimes any.
    partner_type = policy.partner(partner_id).type
    open_to = sorted(p.id for p in policy.purposes.values() if partner_type in p.partner_types)
    purpose = data.draw(st.sampled_from(open_to or sorted(policy.purposes))
                        | st.sampled_from(sorted(policy.purposes)), label="purpose")
    in_phase = [p for p in PHASES if p in policy.purpose(purpose).phases]
    phase = data.draw(st.sampled_from(in_phase or PHASES) | st.sampled_from(PHASES),
                      label="phase")
    fields = data.draw(_subset([f.id for f in policy.fields], 0), label="fields")
    justification = data.draw(st.sampled_from(("", JUSTIFICATION)), label="justification")
    role = world.roles[partner_id]
    decision = policy.decide(AccessRequest(partner_id, role, purpose, phase, True, fields,
                                           justification))
    try:
        opened = await client.request_disclosure(world.cases[phase], purpose, phase,
                                                 fields=fields, justification=justification)
    except grpc.aio.AioRpcError as exc:
        assert not decision.permitted, (decision, exc.details())
        assert exc.code() is grpc.StatusCode.PERMISSION_DENIED
        event("refused")
        return
    assert decision.permitted
    event("released some fields" if decision.released else "released nothing")
    record, response = opened.record, opened.response
    assert record.policy_version == policy.version
    released = {d.field: d for d in decision.released}
    answered = {f.field: f for f in record.fields}
    assert set(answered) == set(released)
    for name, got in answered.items():
        expected = released[name]
        assert got.outcome == (common_pb2.OUTCOME_MASKED if expected.effect is Effect.MASK
                               else common_pb2.OUTCOME_DISCLOSED)
        assert got.transform == (expected.transform or "")
        raw = world.markers.get(name)
        if expected.effect is Effect.DISCLOSE and raw is not None:
            assert got.value == raw
        if expected.effect is Effect.MASK and raw is not None:
            assert expected.transform in TRANSFORMS
            assert got.value != raw
    withheld = {d.field for d in decision.fields if d.effect is Effect.WITHHOLD}
    masked = {f for f, d in released.items() if d.effect is Effect.MASK}
    plaintext = record.SerializeToString()
    assert not _values_in(plaintext, world.markers) & (withheld | masked)
    assert not _values_in(response.SerializeToString(), world.markers)
    # Sources were asked for exactly the released fields they hold, and nothing else.
    disclosure_id = record.disclosure_id
    for source_type, source in world.sources.items():
        mine = {f for f, d in released.items() if d.source == source_type}
        assert set(source.asked.get(disclosure_id, ())) == mine
