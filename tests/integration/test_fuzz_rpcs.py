"""Fuzzing every RPC the gateway serves, over real gRPC with mutual TLS and valid tokens.

The methods are found by walking the service descriptors (a new RPC is fuzzed without a
change here), their requests generated from the message descriptors (hypothesis), with
known-good values (a real case id, the policy's purposes, phases and fields) mixed in so the
calls reach past the first check, and raw bytes besides. Every call must end in a status
code docs/partners-and-tokens.md documents, never INTERNAL or UNKNOWN; afterwards the gateway
answers a normal call. Bounded: a fixed number of examples, derandomised for CI.

The gateway runs on an event loop of its own thread so that hypothesis can drive it from a
plain (synchronous) test with grpc's blocking client.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.api.v1 import accountability_pb2, cases_pb2, exchange_pb2, plan_pb2
from gateway.cli.demo_data import SUBJECT
from gateway.core import CompiledPolicy
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register

# docs/partners-and-tokens.md, "Status codes": what a call may end in.
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAVAILABLE,
}
SERVICES = (
    exchange_pb2.DESCRIPTOR.services_by_name["ExchangeService"],
    accountability_pb2.DESCRIPTOR.services_by_name["AccountabilityService"],
    cases_pb2.DESCRIPTOR.services_by_name["CaseService"],
    plan_pb2.DESCRIPTOR.services_by_name["CasePlanService"],
)
# WatchCaseEvents answers a good request with a stream that stays open: its own tests
# (test_case_work_surface.py) hold it to its codes.
METHODS: list[MethodDescriptor] = [
    m for s in SERVICES for m in s.methods if m.name != "WatchCaseEvents"
]
# Who calls each service: the accountability service is for privacy officers; the case
# service's intake, approach and regie calls, and the plan's, are the ZVH process director's.
CALLER = {"ExchangeService": ("police", "case_director"),
          "AccountabilityService": ("zvh", "privacy_officer"),
          "CaseService": ("zvh", "process_director"),
          "CasePlanService": ("zvh", "process_director")}
MAX_DEPTH = 3


class ThreadedGateway:
    """A harness gateway serving on its own event loop thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 60) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def fuzzed(db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy) -> Iterator[
    tuple[Harness, str]
]:
    runner = ThreadedGateway()
    context = running_harness(db_url, dev_keys, shipped_policy)
    harness: Harness = runner.run(context.__aenter__())

    async def a_case() -> str:
        async with harness.client("police") as police:
            return await register(police, ("zvh", "municipality"))

    try:
        yield harness, runner.run(a_case())
    finally:
        runner.run(context.__aexit__(None, None, None))
        runner.close()


def _known_strings(policy: CompiledPolicy, case_id: str) -> dict[str, list[str]]:
    """Good values by field name, so generated calls get past the first check; "" holds
    the values tried for any other string field."""
    p = policy.policy
    phases = ["registration", "triage", "case_meeting", "plan", "monitoring", "closure"]
    purposes = [x.id for x in p.purposes]
    partners = [x.id for x in p.partners]
    by_name = {
        "case_id": [case_id], "purpose": purposes, "phase": phases, "from_phase": phases,
        "to_phase": phases, "partner_id": partners, "invitees": partners,
        "fields": [x.id for x in p.fields], "field": ["case.notes", "case.goal"],
        "bsn": [SUBJECT.bsn], "date_of_birth": ["1984-03-07", "19840307"],
        "name": ["Jan Jansen"], "case_type": ["code_rood"], "role": ["recipient", "source"],
        "status": ["open", "closed"], "verdict": ["justified", "unjustified"],
        "format": ["json", "html"], "language": ["nl", "en"],
        "until": ["2030-01-01"], "since": ["2020-01-01T00:00:00Z"],
        "kinds": ["disclosure", "refusal", "triage"],
        "approach": ["general", "code_rood", "mensenhandel"], "to_partner": partners,
        "to_user": ["", "director-2"], "reason": ["fits the criteria"], "page_token": [""],
    }
    by_name[""] = sorted({v for values in by_name.values() for v in values})
    return by_name


def _message(
    descriptor: Descriptor, known: dict[str, list[str]], depth: int = 0
) -> st.SearchStrategy[Any]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key = _scalar(field.message_type.fields_by_name["key"], known)
            value = _scalar(field.message_type.fields_by_name["value"], known)
            fields[field.name] = st.dictionaries(key, value, max_size=2)
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None
            if depth >= MAX_DEPTH:
                continue
            one = _message(field.message_type, known, depth + 1)
        else:
            one = _scalar(field, known)
        fields[field.name] = st.lists(one, max_size=3) if field.is_repeated else one
    cls = GetMessageClass(descriptor)
    return st.fixed_dictionaries({}, optional=fields).map(lambda kw: _build(cls, kw))


def _build(cls: type[Message], values: dict[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for k, v in value.items():
                if isinstance(v, Message):
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif field.is_repeated:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value:
                    target.add().CopyFrom(item)
            else:
                target.extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
) | st.text(alphabet="\x00\x01\t\n\x7f\u0085a-", max_size=8) | st.just("x" * 300)
_INT_RANGE = {
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
}


def _scalar(field: FieldDescriptor, known: dict[str, list[str]]) -> st.SearchStrategy[Any]:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        good = st.sampled_from(known.get(field.name) or known[""])
        # Mostly values the gateway knows, so calls get past the first check.
        return st.one_of(good, good, good, _TEXT)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return st.sampled_from([v.number for v in field.enum_type.values]) | st.integers(-3, 99)
    low, high = _INT_RANGE.get(t, (-(2**31), 2**31 - 1))
    return st.one_of(st.integers(0, 5), st.integers(0, 5), st.integers(low, high),
                     st.sampled_from([high, max(low, 0)]))


def _call(harness: Harness, method: MethodDescriptor, payload: bytes) -> grpc.StatusCode:
    partner, role = CALLER[method.containing_service.name]
    creds = harness.credentials(partner)
    assert creds.tls is not None
    channel_creds = grpc.ssl_channel_credentials(
        creds.tls.ca_pem, creds.tls.key_pem, creds.tls.cert_pem
    )
    path = f"/{method.containing_service.full_name}/{method.name}"
    metadata = (("authorization", f"Bearer {harness.token(partner, role=role)}"),)
    with grpc.secure_channel(harness.address, channel_creds) as channel:
        try:
            if method.server_streaming:
                for _ in channel.unary_stream(path)(payload, metadata=metadata, timeout=20):
                    pass
            else:
                channel.unary_unary(path)(payload, metadata=metadata, timeout=20)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
            return code
    return grpc.StatusCode.OK


Call = tuple[MethodDescriptor, bytes]


def _calls(policy: CompiledPolicy, case_id: str) -> st.SearchStrategy[Call]:
    known = _known_strings(policy, case_id)
    typed = st.one_of(*(
        st.tuples(st.just(m), _message(m.input_type, known).map(_serialised))
        for m in METHODS
    ))
    raw = st.tuples(st.sampled_from(METHODS), st.binary(max_size=200))
    return st.one_of(typed, typed, typed, raw)


def _serialised(message: Message) -> bytes:
    return message.SerializeToString()


def test_every_rpc_ends_in_a_documented_status(fuzzed: tuple[Harness, str]) -> None:
    harness, case_id = fuzzed
    seen: dict[str, set[str]] = {}

    @settings(max_examples=150, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_calls(harness.policy, case_id))
    def fuzz(call: tuple[MethodDescriptor, bytes]) -> None:
        method, payload = call
        code = _call(harness, method, payload)
        seen.setdefault(method.name, set()).add(code.name)
        assert code in DOCUMENTED, f"{method.full_name} ended in {code.name}"

    fuzz()
    # Every method is called at least once, with its empty request, whatever the draw was.
    for method in METHODS:
        code = _call(harness, method, b"")
        seen.setdefault(method.name, set()).add(code.name)
        assert code in DOCUMENTED, f"{method.full_name} ended in {code.name}"
    # Every method was reached, and the gateway still answers a normal call.
    assert set(seen) == {m.name for m in METHODS}
    answer = _call(harness, SERVICES[0].methods_by_name["GetGatewayKeys"],
                   exchange_pb2.GetGatewayKeysRequest().SerializeToString())
    assert answer == grpc.StatusCode.OK
    assert harness.gateway.log.verify().ok
