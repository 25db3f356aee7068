"""The one periodic-task class every background task of the gateway is built on. Runs are
counted and ordered by events, never timed."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.runtime.periodic import PeriodicTask

LONG_S = 3600.0


async def _until(condition: object) -> None:
    for _ in range(2000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("never happened")


async def test_it_runs_at_start_and_again_when_woken() -> None:
    runs = 0

    async def tick() -> None:
        nonlocal runs
        runs += 1

    task = PeriodicTask("t", tick, interval_s=LONG_S)
    task.start()
    await _until(lambda: runs == 1)
    task.wake()
    await _until(lambda: runs == 2)
    assert task.running
    await task.stop()
    assert not task.running and task.ticks == 2


async def test_a_first_delay_waits_for_the_interval_or_a_wake() -> None:
    runs = 0

    async def tick() -> None:
        nonlocal runs
        runs += 1

    task = PeriodicTask("t", tick, interval_s=LONG_S, first_delay_s=LONG_S)
    task.start()
    await asyncio.sleep(0.05)
    assert runs == 0
    task.wake()
    await _until(lambda: runs == 1)
    await task.stop()


async def test_interval_zero_is_off() -> None:
    async def tick() -> None:
        raise AssertionError("an interval of 0 runs nothing")

    task = PeriodicTask("off", tick, interval_s=0)
    task.start()
    assert not task.running
    await task.stop()
    assert task.stopping.is_set()


async def test_the_tick_chooses_its_next_delay() -> None:
    runs = 0

    async def tick() -> float:
        nonlocal runs
        runs += 1
        return 0.0 if runs < 5 else LONG_S

    task = PeriodicTask("t", tick, interval_s=LONG_S)
    task.start()
    await _until(lambda: runs == 5)
    await task.stop()
    assert runs == 5


async def test_a_failed_run_is_logged_by_type_and_the_task_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = 0

    async def tick() -> float:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("secret detail of the run")
        return LONG_S

    task = PeriodicTask("flaky", tick, interval_s=0.01)
    with caplog.at_level(logging.ERROR, logger="ketenpoort.runtime"):
        task.start()
        await _until(lambda: runs == 2)
        await task.stop()
    assert "flaky: a run failed (RuntimeError)" in caplog.text
    assert "secret detail" not in caplog.text


async def test_stop_lets_the_run_in_progress_finish_and_starts_no_other() -> None:
    inside, release = asyncio.Event(), asyncio.Event()
    finished = 0

    async def tick() -> float:
        nonlocal finished
        inside.set()
        await release.wait()
        finished += 1
        return 0.0  # would run again at once, were it not stopping

    task = PeriodicTask("finish", tick, interval_s=LONG_S)
    task.start()
    await inside.wait()
    stopping = asyncio.create_task(task.stop())
    await _until(task.stopping.is_set)
    assert not stopping.done()
    release.set()
    await stopping
    assert finished == 1


async def test_a_cancelling_stop_cuts_the_run_in_progress() -> None:
    inside = asyncio.Event()
    cancelled = False

    async def tick() -> None:
        nonlocal cancelled
        inside.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled = True
            raise

    task = PeriodicTask("cancel", tick, interval_s=LONG_S, stop_mode="cancel")
    task.start()
    await inside.wait()
    await task.stop()
    assert cancelled and not task.running


async def test_a_stopped_task_does_not_start_again() -> None:
    async def tick() -> None:
        raise AssertionError("never")

    task = PeriodicTask("t", tick, interval_s=LONG_S, first_delay_s=LONG_S)
    await task.stop()
    task.start()
    assert not task.running


def test_negative_intervals_are_refused() -> None:
    async def tick() -> None:
        return None

    with pytest.raises(ValueError, match="0 \\(off\\) or more"):
        PeriodicTask("t", tick, interval_s=-1)
    with pytest.raises(ValueError):
        PeriodicTask("t", tick, interval_s=1, first_delay_s=-1)
