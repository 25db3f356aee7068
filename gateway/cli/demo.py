"""`ketenpoort demo`: a Code Rood case played through a real gateway.

It starts a gateway on the embedded default (SQLite, shipped policies, fresh development
keys) with mutual TLS, starts the source systems of the partners that hold fields (police,
OM, child protection, prison service, GGZ, addiction care, Veilig Thuis, municipality,
housing corporation) that serve their own fields through the source contract, leaves
probation's system down, and lets the partners and the ZVH process director work a case
through the client library. Every answer is opened with the recipient's key and checked
against what the policy says, value by value; the demo exits 0 only if every step did.
"""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

from adapters.client import OpenedDisclosure, PartnerClient, PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.source_requests import RequestOpening, SourceKeyRing
from adapters.source_server import AnswerSealing, InMemoryBackend, RunningSource, serve_source
from gateway.api.v1 import cases_pb2, common_pb2, exchange_pb2
from gateway.cli.demo_data import GOAL, REASON, SOURCE_RECORDS, SUBJECT
from gateway.core import (
    About,
    AccessRequest,
    CompiledPolicy,
    Effect,
    FieldDecision,
    apply_transform,
)
from gateway.crypto._pem import load_ed25519_public_key
from gateway.crypto.devkeys import init_dev_keys, load_partner_private_keys
from gateway.crypto.keystore import Keystore
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.source_answers import SourceAnswerSigner
from gateway.policyfiles import load_policy_dir
from gateway.registry.dev import register_dev_partners
from gateway.server.app import Gateway, start_gateway
from gateway.server.config import GatewayConfig, SourceEndpoint, TlsMode, shipped_policy_dir
from gateway.store.checkpoints import open_checkpoint
from gateway.store.merkle import leaf_hash, verify_inclusion

# Which partner acts in which role in the demo.
ACTORS = {
    "police": "case_director",
    "ggz": "chain_partner",
    "municipality": "chain_partner",
    "veilig-thuis": "chain_partner",
    "zvh": "process_director",
}
# One partner per partner type that holds fields; its system answers for the whole type.
SOURCE_PARTNERS = (
    "police",
    "om",
    "rvdk",
    "dji",
    "ggz",
    "addiction-care",
    "veilig-thuis",
    "municipality",
    "housing",
)
DOWN_PARTNER = "probation"
REGISTRATION_VALUES = {
    "subject.bsn": SUBJECT.bsn,
    "subject.name": SUBJECT.name,
    "subject.date_of_birth": SUBJECT.date_of_birth,
    "subject.address": SUBJECT.address,
    "subject.postcode": SUBJECT.postcode,
    "case.reason": REASON,
    "case.goal": GOAL,
}
# The case the demo plays: Code Rood, about one person in the role "subject".
APPROACH = "code_rood"
SUBJECT_ROLE = "subject"
SYMBOL = {Effect.DISCLOSE: "D", Effect.MASK: "M", Effect.WITHHOLD: "·"}


@dataclass
class Checks:
    results: list[tuple[bool, str]] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> bool:
        self.results.append((ok, what))
        print(f"  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
        return ok

    @property
    def all_ok(self) -> bool:
        return all(ok for ok, _ in self.results)


@dataclass
class Demo:
    gateway: Gateway
    policy: CompiledPolicy
    clients: dict[str, PartnerClient]
    sources: dict[str, RunningSource]
    pseudonym_key: bytes
    checks: Checks = field(default_factory=Checks)
    notes: dict[str, str] = field(default_factory=dict)
    table: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def raw_value(self, field_id: str) -> str | None:
        if field_id in REGISTRATION_VALUES:
            return REGISTRATION_VALUES[field_id]
        if field_id in self.notes:
            return self.notes[field_id]
        for record in SOURCE_RECORDS.values():
            if field_id in record.fields:
                return record.fields[field_id]
        return None

    def source_of_type(self, partner_type: str) -> RunningSource | None:
        for partner_id, running in self.sources.items():
            if self.policy.partner(partner_id).type == partner_type:
                return running
        return None


async def run_demo(data_dir: Path | None = None) -> int:
    with _workdir(data_dir) as work:
        async with _running_demo(work) as demo:
            await _play(demo)
            _print_table(demo)
            ok = demo.checks.all_ok
            passed = sum(1 for good, _ in demo.checks.results if good)
            print(f"\n{passed} passed, {len(demo.checks.results) - passed} failed")
            print(
                "demo " + ("succeeded: every step behaved as the policy says" if ok else "FAILED")
            )
            return 0 if ok else 1


@contextmanager
def _workdir(data_dir: Path | None) -> Iterator[Path]:
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        yield data_dir
        return
    with tempfile.TemporaryDirectory(prefix="ketenpoort-demo-") as tmp:
        yield Path(tmp)


@asynccontextmanager
async def _running_demo(work: Path) -> AsyncIterator[Demo]:
    policy = load_policy_dir(shipped_policy_dir())
    keys = work / "keys"
    init_dev_keys(keys, sorted(policy.partners))
    register_dev_partners(keys, work / "registry", sorted(policy.partners))
    sources = {p: await _start_source(keys, policy, p) for p in SOURCE_PARTNERS}
    endpoints = [SourceEndpoint(p, f"localhost:{s.port}") for p, s in sources.items()]
    endpoints.append(SourceEndpoint(DOWN_PARTNER, f"localhost:{_closed_port()}"))
    config = GatewayConfig(
        listen="127.0.0.1:0",
        database_url=f"sqlite:///{work / 'ketenpoort.db'}",
        policy_dir=shipped_policy_dir(),
        keys_dir=keys,
        data_dir=work,
        tls_mode=TlsMode.MUTUAL,
        metrics_port=None,
        source_deadline_s=1.0,
        sources=tuple(endpoints),
        # Every partner system here seals what it sends in; anything in clear is refused.
        require_sealed_submissions=True,
        # And every source is asked sealed to its partner's registered key.
        seal_source_requests=True,
    )
    gateway = await start_gateway(config, policy=policy)
    address = f"localhost:{gateway.port}"
    clients = {
        partner: PartnerClient(
            address,
            PartnerCredentials.from_key_dir(keys, partner),
            role=role,
            user_ref=f"demo-{partner}-user",
        )
        for partner, role in ACTORS.items()
    }
    clients["privacy-officer"] = PartnerClient(
        address,
        PartnerCredentials.from_key_dir(keys, "zvh"),
        role="privacy_officer",
        user_ref="demo-fg",
    )
    print(
        f"gateway on {address} (mutual TLS), policy {policy.version[:19]}…; "
        f"sources up: {', '.join(SOURCE_PARTNERS)}; down: {DOWN_PARTNER}"
    )
    try:
        yield Demo(gateway, policy, clients, sources, Keystore.open(keys).pseudonym_key)
    finally:
        for client in clients.values():
            await client.close()
        await gateway.stop()
        for running in sources.values():
            await running.stop()


async def _start_source(keys: Path, policy: CompiledPolicy, partner_id: str) -> RunningSource:
    backend = InMemoryBackend()
    backend.add(SOURCE_RECORDS[policy.partner(partner_id).type])
    own = load_partner_private_keys(keys, partner_id)
    creds = grpc.ssl_server_credentials(
        [(own.tls_key_pem, own.tls_cert_pem)],
        root_certificates=own.ca_pem,
        require_client_auth=True,
    )
    # The partner system is configured with the gateway's public key and seals and signs its
    # answers, and with its partner's private sealing key, which opens what the gateway asks it.
    gateway_keys = GatewayKeys.from_public_key_file(GatewayKeyPaths.under(keys).hpke_pub)
    return await serve_source(
        backend,
        "127.0.0.1:0",
        credentials=creds,
        # Signed with the partner's token key: the gateway accepts only answers its registry
        # shows to come from the partner.
        sealing=AnswerSealing(
            partner_id, gateway_keys, SourceAnswerSigner(own.token_key, own.token_key_id)
        ),
        requests=RequestOpening(partner_id, SourceKeyRing([own.hpke_key])),
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def _play(demo: Demo) -> None:
    c, checks = demo.clients, demo.checks
    print(
        "\n1. Police register a Code Rood case, invite Veilig Thuis (the ZVH always takes part) "
        "and take the casusregie"
    )
    reg = await c["police"].register_case(
        SUBJECT,
        "",
        approach=APPROACH,
        reason=REASON,
        goal=GOAL,
        invitees=["veilig-thuis"],
        casusregie_partner="police",
    )
    case_id = reg.case_id
    checks.check(
        reg.phase == "registration",
        f"case {case_id[:10]}… registered in phase registration (sealed to the gateway's key)",
    )
    await _expect_clear_registration_refused(demo)
    checks.check(
        reg.participants[0] == "police"
        and set(reg.participants) == {"police", "veilig-thuis", "zvh"},
        f"participants: {', '.join(reg.participants)}",
    )

    print("\n2. Veilig Thuis uses acute safety (break-glass) with a written justification")
    await _disclose(
        demo,
        "veilig-thuis",
        case_id,
        "acute_safety",
        "registration",
        justification="Children at home tonight; safety plan needed before 18:00",
    )
    await _expect_refusal(
        demo,
        "veilig-thuis",
        case_id,
        "acute_safety",
        "registration",
        grpc.StatusCode.PERMISSION_DENIED,
        "break-glass without justification is refused",
    )

    print(
        "\n3. The ZVH's process director accepts the case at intake (taking the procesregie), "
        "moves it to triage and asks hit/no-hit"
    )
    intake = await c["zvh"].cases.decide_intake(
        case_id, cases_pb2.ACCEPT, "Acute domestic violence with children: a Code Rood case"
    )
    checks.check(
        intake.procesregie.partner_id == "zvh",
        "intake accepted: the ZVH holds the procesregie",
    )
    await c["zvh"].change_phase(case_id, "registration", "triage")
    triage = await c["zvh"].triage(case_id)
    hits = {h.partner_type: h for h in triage.hits}
    down_type = demo.policy.partner(DOWN_PARTNER).type
    for partner_type, record in SOURCE_RECORDS.items():
        if partner_type == down_type:
            continue
        hit = hits.get(partner_type)
        checks.check(
            hit is not None
            and hit.answered
            and hit.known
            and _triage_role_ok(demo, hit.role, record.role),
            f"triage: {partner_type} knows the subject"
            + (f" as {hit.role!r}" if hit is not None and hit.role else " (hit/no-hit only)"),
        )
    checks.check(
        down_type in hits and not hits[down_type].answered,
        f"triage: {down_type}'s system is down and reported as not answered",
    )
    checks.check(
        _asked_sealed(demo),
        "every source was asked sealed to its partner's registered key: "
        "no BSN or name in clear on the way",
    )

    print(
        "\n4. Case meeting: GGZ and the municipality are invited; each partner asks for the record"
    )
    await c["zvh"].change_phase(case_id, "triage", "case_meeting")
    await _expect_refusal(
        demo,
        "municipality",
        case_id,
        "analysis_and_plan",
        "case_meeting",
        grpc.StatusCode.PERMISSION_DENIED,
        "municipality asking before it is invited is refused",
    )
    await c["zvh"].invite(case_id, "ggz")
    await c["zvh"].invite(case_id, "municipality")
    note = "Case meeting 2026-11-23: safety plan agreed; GGZ to contact subject within 48 hours."
    await c["zvh"].add_to_case_file(case_id, "case.notes", note)
    demo.notes["case.notes"] = note
    for partner in ("police", "ggz", "municipality", "veilig-thuis", "zvh"):
        await _disclose(demo, partner, case_id, "analysis_and_plan", "case_meeting")
    await _expect_refusal(
        demo,
        "police",
        case_id,
        "analysis_and_plan",
        "triage",
        grpc.StatusCode.FAILED_PRECONDITION,
        "a request declaring the wrong phase fails its precondition",
    )

    print("\n5. The privacy officer reads and verifies the accountability log")
    officer = c["privacy-officer"]
    listing = await officer.list_disclosures(case_id=case_id, page_size=1000)
    kinds = [e.kind for e in listing.entries]
    checks.check(
        kinds.count("disclosure") == 6
        and kinds.count("refusal") == 3
        and kinds.count("triage") == 1,
        f"log holds {kinds.count('disclosure')} disclosures, {kinds.count('refusal')} refusals, "
        f"{kinds.count('triage')} triage question for the case",
    )
    incomplete = [e for e in listing.entries if e.kind == "disclosure" and e.status == "incomplete"]
    checks.check(
        all(
            any(f.availability == common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE for f in e.fields)
            for e in incomplete
        ),
        f"{len(incomplete)} disclosure record(s) say a source was unavailable",
    )
    leaked = [v for e in listing.entries for v in _all_values() if v in str(e)]
    checks.check(not leaked, "no field value appears in any log record")
    verified = await officer.verify_log()
    checks.check(
        verified.ok,
        f"log verifies: {verified.records_checked} records, hash chain intact, "
        f"{verified.checkpoints_checked} signed checkpoint(s) match",
    )
    await _prove_and_review(demo, officer, listing.entries)


async def _prove_and_review(demo: Demo, officer: PartnerClient, entries: Sequence[Any]) -> None:
    """A proof anyone can check with the log key, the break-glass review, the access report."""
    checks = demo.checks
    disclosure = next(e for e in entries if e.kind == "disclosure")
    proof = await officer.prove_inclusion(disclosure.seq)
    keys = GatewayKeyPaths.under(demo.gateway.config.keys_dir)
    log_key = load_ed25519_public_key(keys.signing_pub)
    checkpoint = open_checkpoint(proof.checkpoint.note, [log_key])
    checks.check(
        verify_inclusion(
            leaf_hash(proof.body.encode()), proof.leaf_index, proof.tree_size,
            list(proof.path), checkpoint.root_hash,
        ),
        f"record {disclosure.seq} is proven in the signed tree of {proof.tree_size} records",
    )
    waiting = await officer.list_break_glass_reviews()
    checks.check(
        len(waiting.reviews) == 1 and waiting.reviews[0].disclosure.break_glass,
        f"{len(waiting.reviews)} break-glass disclosure waits for the privacy officer's review",
    )
    for review in waiting.reviews:
        await officer.close_break_glass_review(
            review.disclosure.seq, "justified", "Acute danger; justification on file."
        )
    after = await officer.list_break_glass_reviews()
    checks.check(not after.reviews, "the review is closed and recorded in the log")
    report = await officer.subject_access_report(SUBJECT.bsn, language="en")
    document = json.loads(report.document)
    listed = {d["seq"] for d in document["disclosures"]}
    expected = {
        e.seq for e in entries
        if e.kind in ("disclosure", "triage") and e.status in ("ok", "incomplete")
    }
    checks.check(
        listed == expected and SUBJECT.bsn not in report.document.decode(),
        f"the subject's access report lists all {len(listed)} disclosures, with proofs, "
        "and no BSN",
    )


async def _disclose(
    demo: Demo, partner: str, case_id: str, purpose: str, phase: str, justification: str = ""
) -> OpenedDisclosure:
    client = demo.clients[partner]
    answer = await client.request_disclosure(case_id, purpose, phase, justification=justification)
    expected_fields = _expected_fields(
        demo.policy,
        AccessRequest(
            partner_id=partner,
            role=ACTORS[partner],
            purpose=purpose,
            phase=phase,
            participant=True,
            justification=justification,
            approach=APPROACH,
        ),
    )
    released = tuple(d for d in expected_fields if d.effect is not Effect.WITHHOLD)
    got = {f.field: f for f in answer.response.fields}
    record = {f.field: f for f in answer.record.fields}
    column: dict[str, str] = {}
    problems: list[str] = []
    for d in expected_fields:
        outcome = got.get(d.field)
        if outcome is None or _effect_of(outcome.outcome) is not d.effect:
            problems.append(f"{d.field}: outcome differs from the policy")
            continue
        column[d.field] = SYMBOL[d.effect] + (f"({d.transform})" if d.transform else "")
        if d.effect is Effect.WITHHOLD:
            if d.field in record:
                problems.append(f"{d.field}: withheld but present in the sealed record")
            continue
        problems += _check_value(
            demo, d.field, d.effect, d.transform, d.params, d.source, record.get(d.field)
        )
        if (
            record.get(d.field)
            and record[d.field].availability == common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE
        ):
            column[d.field] += "!"
    problems += _check_sources(demo, answer, released)
    demo.table[(partner, purpose)] = column
    shown = len(released)
    suffix = (
        f"; incomplete: {', '.join(answer.response.unavailable_sources)} down"
        if answer.response.incomplete
        else ""
    )
    demo.checks.check(
        not problems,
        f"{partner} / {purpose}: {shown} of {len(expected_fields)} fields released, "
        f"sealed answer opened, values as the policy says{suffix}"
        + ("" if not problems else " — " + "; ".join(problems[:3])),
    )
    return answer


def _expected_fields(policy: CompiledPolicy, request: AccessRequest) -> tuple[FieldDecision, ...]:
    """What the policy says of every field for the case's one person: fields about a person
    decided for the subject's role in the case, fields about the case for the case."""
    for_case = policy.decide(request).fields
    for_person = policy.decide(replace(request, person_role=SUBJECT_ROLE)).fields
    return tuple(
        p if policy.field(c.field).about is About.PERSON else c
        for c, p in zip(for_case, for_person, strict=True)
    )


def _check_value(
    demo: Demo,
    field_id: str,
    effect: Effect,
    transform: str | None,
    params: tuple[tuple[str, str | int], ...],
    source: str,
    got: common_pb2.DisclosedField | None,
) -> list[str]:
    if got is None:
        return [f"{field_id}: released but missing from the sealed record"]
    if got.availability == common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE:
        down = demo.policy.partner(DOWN_PARTNER).type
        return [] if source == down else [f"{field_id}: marked unavailable but its source is up"]
    raw = demo.raw_value(field_id)
    if effect is Effect.MASK and transform:
        want = apply_transform(transform, params, raw, pseudonym_key=demo.pseudonym_key)
    else:
        want = raw or ""
    if raw is None and transform != "presence":
        return (
            []
            if got.availability == common_pb2.AVAILABILITY_NOT_HELD
            else [f"{field_id}: not held"]
        )
    return [] if got.value == want else [f"{field_id}: value is not the policy's form"]


def _asked_sealed(demo: Demo) -> bool:
    """Each running source opened the gateway's questions with its partner's private key; it
    refuses questions in clear, so every one it answered came sealed."""
    for running in demo.sources.values():
        opening = running.servicer.requests
        if opening is None or opening.accept_clear:
            return False
        if not any(opening.keys.last_used(kid) is not None for kid in opening.keys.key_ids):
            return False
    return True


def _check_sources(demo: Demo, answer: OpenedDisclosure, released: tuple) -> list[str]:  # type: ignore[type-arg]
    """Each source was asked for exactly the released fields it holds, never a withheld one."""
    problems = []
    wanted: dict[str, set[str]] = {}
    for d in released:
        wanted.setdefault(d.source, set()).add(d.field)
    for partner_type in SOURCE_RECORDS:
        running = demo.source_of_type(partner_type)
        if running is None:
            continue
        asked = {
            f
            for seen in running.servicer.seen
            if seen.disclosure_id == answer.response.disclosure_id
            for f in seen.fields
        }
        if asked != wanted.get(partner_type, set()):
            problems.append(f"{partner_type} source was asked for other fields than released")
    return problems


async def _expect_refusal(
    demo: Demo,
    partner: str,
    case_id: str,
    purpose: str,
    phase: str,
    code: grpc.StatusCode,
    what: str,
) -> None:
    try:
        await demo.clients[partner].request_disclosure(case_id, purpose, phase)
    except grpc.aio.AioRpcError as exc:
        demo.checks.check(exc.code() == code, f"{what}: {exc.code().name}: {exc.details()}")
        return
    demo.checks.check(False, f"{what}: the request was answered")


async def _expect_clear_registration_refused(demo: Demo) -> None:
    clear = exchange_pb2.RegisterCaseRequest(subject=SUBJECT, case_type="code_rood", reason=REASON)
    what = "a registration sent in clear is refused"
    try:
        await demo.clients["police"].register_case_raw(clear)
    except grpc.aio.AioRpcError as exc:
        demo.checks.check(
            exc.code() == grpc.StatusCode.FAILED_PRECONDITION,
            f"{what}: {exc.code().name}: {exc.details()}",
        )
        return
    demo.checks.check(False, f"{what}: it was registered")


def _triage_role_ok(demo: Demo, shown: str, actual: str) -> bool:
    expected = demo.policy.decide(
        AccessRequest(
            partner_id="zvh",
            role="process_director",
            purpose="triage",
            phase="triage",
            participant=True,
            fields=("triage.role",),
            approach=APPROACH,
            person_role=SUBJECT_ROLE,
        )
    ).fields[0]
    return shown == (actual if expected.effect is Effect.DISCLOSE else "")


def _effect_of(outcome: int) -> Effect | None:
    effects: dict[int, Effect] = {
        common_pb2.OUTCOME_DISCLOSED: Effect.DISCLOSE,
        common_pb2.OUTCOME_MASKED: Effect.MASK,
        common_pb2.OUTCOME_WITHHELD: Effect.WITHHOLD,
    }
    return effects.get(outcome)


def _all_values() -> list[str]:
    values = [v for v in REGISTRATION_VALUES.values() if len(v) > 3]
    values += [v for r in SOURCE_RECORDS.values() for v in r.fields.values() if len(v) > 3]
    return values


def _print_table(demo: Demo) -> None:
    columns = list(demo.table)
    print(
        "\nWho saw which field how "
        "(D disclosed, M masked with transform, · withheld, ! source down)"
    )
    headers = [f"{p}/{purpose}" for p, purpose in columns]
    width = max(len(f.id) for f in demo.policy.fields) + 2
    print("field".ljust(width) + " | ".join(h.ljust(max(len(h), 14)) for h in headers))
    for f in demo.policy.fields:
        if f.id == "triage.role":
            continue
        cells = [
            demo.table[col].get(f.id, "").ljust(max(len(h), 14))
            for col, h in zip(columns, headers, strict=True)
        ]
        print(f.id.ljust(width) + " | ".join(cells))
