"""The partner side's resending of registrations and case-file entries: after which failures it
sends the same request again, how often, and with which pauses."""

from __future__ import annotations

import grpc
import pytest
from grpc import aio

from adapters.resending import is_resendable, resend_until_answered


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
    from adapters.resending import retry_while_unavailable

    pauses = Pauses()
    calls = Calls(rpc_error(grpc.StatusCode.UNAVAILABLE), rpc_error(grpc.StatusCode.UNAVAILABLE))
    assert await retry_while_unavailable(calls, attempts=3, sleep=pauses) == "answer"
    assert calls.made == 3 and pauses == [0.2, 0.4]
    # A lost answer of a call without a request id is not sent again.
    calls = Calls(rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED))
    with pytest.raises(aio.AioRpcError):
        await retry_while_unavailable(calls, attempts=3, sleep=Pauses())
    assert calls.made == 1
