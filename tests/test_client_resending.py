"""The partner side's resending of registrations and case-file entries: after which failures it
sends the same request again, how often, and with which pauses."""

from __future__ import annotations

import grpc
import pytest
from grpc import aio

from adapters.resending import (
    GatewayAddresses,
    is_resendable,
    resend_until_answered,
    retry_when_limited,
    retry_while_unavailable,
)


def rpc_error(code: grpc.StatusCode, reason: str = "") -> aio.AioRpcError:
    trailing = aio.Metadata(("ketenpoort-reason", reason)) if reason else aio.Metadata()
    return aio.AioRpcError(code, aio.Metadata(), trailing, "failed", None)


class Calls:
    """Answers with the given failures first, then with "answer"; remembers each call."""

    def __init__(self, *failures: aio.AioRpcError) -> None:
        self.failures = list(failures)
        self.made = 0

    async def __call__(self) -> str:
        self.made += 1
        if self.failures:
            raise self.failures.pop(0)
        return "answer"


class Pauses(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize(
    ("code", "resendable"),
    [
        (grpc.StatusCode.UNAVAILABLE, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, True),
        (grpc.StatusCode.ALREADY_EXISTS, False),
        (grpc.StatusCode.INVALID_ARGUMENT, False),
        (grpc.StatusCode.PERMISSION_DENIED, False),
        (grpc.StatusCode.FAILED_PRECONDITION, False),
        (grpc.StatusCode.INTERNAL, False),
    ],
)
def test_only_a_lost_or_unfinished_answer_is_resent(
    code: grpc.StatusCode, resendable: bool
) -> None:
    assert is_resendable(rpc_error(code)) is resendable
    assert not is_resendable(ValueError("not a call's failure"))


async def test_a_lost_answer_is_resent_with_growing_pauses() -> None:
    calls = Calls(
        rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED),
        rpc_error(grpc.StatusCode.UNAVAILABLE, "request_in_progress"),
    )
    pauses = Pauses()
    assert await resend_until_answered(calls, attempts=3, first_pause_s=0.1, sleep=pauses) == (
        "answer"
    )
    assert calls.made == 3
    assert pauses == [0.1, 0.2]


async def test_resending_stops_after_the_last_attempt() -> None:
    calls = Calls(*(rpc_error(grpc.StatusCode.UNAVAILABLE) for _ in range(5)))
    pauses = Pauses()
    with pytest.raises(aio.AioRpcError) as err:
        await resend_until_answered(calls, attempts=3, sleep=pauses)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert calls.made == 3 and len(pauses) == 2


async def test_a_refusal_or_a_reused_id_is_not_resent() -> None:
    calls = Calls(rpc_error(grpc.StatusCode.ALREADY_EXISTS, "request_id_reused"))
    pauses = Pauses()
    with pytest.raises(aio.AioRpcError):
        await resend_until_answered(calls, attempts=3, sleep=pauses)
    assert calls.made == 1 and pauses == []


async def test_one_attempt_sends_once() -> None:
    calls = Calls(rpc_error(grpc.StatusCode.UNAVAILABLE))
    with pytest.raises(aio.AioRpcError):
        await resend_until_answered(calls, attempts=1, sleep=Pauses())
    assert calls.made == 1
    with pytest.raises(ValueError):
        await resend_until_answered(calls, attempts=0)


async def test_reads_are_retried_after_unavailable_only() -> None:
    pauses = Pauses()
    calls = Calls(rpc_error(grpc.StatusCode.UNAVAILABLE), rpc_error(grpc.StatusCode.UNAVAILABLE))
    assert await retry_while_unavailable(calls, attempts=3, sleep=pauses) == "answer"
    assert calls.made == 3 and pauses == [0.2, 0.4]
    # A lost answer of a call without a request id is not sent again.
    calls = Calls(rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED))
    with pytest.raises(aio.AioRpcError):
        await retry_while_unavailable(calls, attempts=3, sleep=Pauses())
    assert calls.made == 1


class Replicas:
    """Calls to the replicas of ``addresses``: those named down answer UNAVAILABLE and move the
    client on, as the client's FailoverInterceptor does; the others answer with their name."""

    def __init__(self, addresses: GatewayAddresses, *down: str, code: grpc.StatusCode = (
        grpc.StatusCode.UNAVAILABLE
    )) -> None:
        self.addresses = addresses
        self.down = set(down)
        self.code = code
        self.asked: list[str] = []

    async def __call__(self) -> str:
        position = self.addresses.position
        address = self.addresses.current
        self.asked.append(address)
        if address in self.down:
            if self.code == grpc.StatusCode.UNAVAILABLE:
                self.addresses.failed(position)
            raise rpc_error(self.code)
        return address


def test_one_address_or_several() -> None:
    assert GatewayAddresses("gw:443").addresses == ("gw:443",)
    assert GatewayAddresses(["a:1", "b:1"]).current == "a:1"
    for nonsense in ([], [""], ""):
        with pytest.raises(ValueError):
            GatewayAddresses(nonsense)


def test_many_failures_at_one_address_move_the_client_on_once() -> None:
    addresses = GatewayAddresses(["a:1", "b:1", "c:1"])
    for _ in range(5):  # five calls in flight at a:1 all fail
        addresses.failed(0)
    assert addresses.current == "b:1"
    addresses.failed(1)
    addresses.failed(2)
    assert addresses.current == "a:1"  # round again
    single = GatewayAddresses("a:1")
    single.failed(0)
    assert single.current == "a:1"


async def test_an_unavailable_replica_is_left_for_the_next_at_once() -> None:
    addresses = GatewayAddresses(["a:1", "b:1"])
    replicas = Replicas(addresses, "a:1")
    pauses = Pauses()
    answer = await resend_until_answered(replicas, attempts=1, sleep=pauses, failover=addresses)
    # Not counted against the attempts, not paused for: the other replica was never tried.
    assert answer == "b:1" and replicas.asked == ["a:1", "b:1"] and pauses == []
    # Later calls go straight there.
    assert await retry_while_unavailable(replicas, failover=addresses) == "b:1"
    assert replicas.asked[-1] == "b:1" and len(replicas.asked) == 3


async def test_when_every_replica_is_down_the_pauses_and_attempts_are_as_for_one() -> None:
    addresses = GatewayAddresses(["a:1", "b:1"])
    replicas = Replicas(addresses, "a:1", "b:1")
    pauses = Pauses()
    with pytest.raises(aio.AioRpcError):
        await retry_while_unavailable(replicas, attempts=3, sleep=pauses, failover=addresses)
    # a, b at once; then a paused-for resend round: three attempts beyond the free move.
    assert replicas.asked == ["a:1", "b:1", "a:1", "b:1"]
    assert pauses == [0.2, 0.4]


async def test_a_call_that_may_not_be_repeated_is_not_sent_elsewhere_either() -> None:
    addresses = GatewayAddresses(["a:1", "b:1"])
    replicas = Replicas(addresses, "a:1")
    with pytest.raises(aio.AioRpcError):
        await retry_when_limited(replicas, sleep=Pauses(), failover=addresses)
    assert replicas.asked == ["a:1"]
    # ... but the caller's next call goes to the other replica.
    assert addresses.current == "b:1"


async def test_a_lost_answer_is_resent_where_it_was_sent() -> None:
    # DEADLINE_EXCEEDED does not move the client: the replica may be finishing the work.
    addresses = GatewayAddresses(["a:1", "b:1"])
    replicas = Replicas(addresses, "a:1", code=grpc.StatusCode.DEADLINE_EXCEEDED)
    with pytest.raises(aio.AioRpcError):
        await resend_until_answered(replicas, attempts=2, sleep=Pauses(), failover=addresses)
    assert replicas.asked == ["a:1", "a:1"]
