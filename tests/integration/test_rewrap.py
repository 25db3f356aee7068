"""Re-wrapping through a running gateway: after a rotation of the key-encryption key the
gateway's re-wrap task moves every case's data key to the new key while the gateway answers
requests, every answer stays the same, and once the old key file is deleted (retired) every
case still reads and new cases are wrapped under the new key."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.crypto import Keystore, rotate_kek
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.live_keystore import LiveKeystore
from gateway.runtime.rewrap import RewrapTask
from gateway.server.metrics import Metrics
from gateway.store import create_engine_for, init_schema
from gateway.store.rewrap import Rewrapper, data_keys_under
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register

CASES = 12
WAIT_S = 15.0


def own_keys(dev_keys: Path, tmp_path: Path) -> Path:
    """A copy of the development keys that this test may rotate and retire."""
    keys = tmp_path / "keys"
    shutil.copytree(dev_keys, keys)
    return keys


async def until(condition: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


def sample(harness: Harness, name: str) -> float:
    return harness.gateway.metrics.registry.get_sample_value(name) or 0.0


async def answers(harness: Harness, case_ids: list[str]) -> dict[str, dict[str, str]]:
    police = harness.client("police")
    return {
        case_id: (
            await police.request_disclosure(case_id, "assess_and_accept", "registration")
        ).values
        for case_id in case_ids
    }


async def test_the_gateway_rewraps_after_a_rotation_while_serving_and_survives_retiring(
    db_url: str, dev_keys: Path, tmp_path: Path, shipped_policy: CompiledPolicy
) -> None:
    keys = own_keys(dev_keys, tmp_path)
    old = Keystore.open(keys).current_kek.kek_id
    async with running_harness(db_url, keys, shipped_policy) as harness:
        engine = harness.gateway.engine
        task = harness.gateway.rewrap
        assert task is not None
        police = harness.client("police")
        case_ids = [await register(police) for _ in range(CASES)]
        before = await answers(harness, case_ids)
        assert all(before.values()) and data_keys_under(engine, old) == CASES

        new = rotate_kek(keys)
        # The gateway looks at its keys every few seconds; wake it instead of waiting.
        task.wake()
        # Requests go on while it re-wraps, and get the same answers.
        during = await answers(harness, case_ids)
        await until(lambda: data_keys_under(engine, old) == 0)
        await until(lambda: sample(harness, "ketenpoort_data_keys_rewrapped_total") == CASES)
        assert data_keys_under(engine, new) == CASES
        assert during == before
        assert await answers(harness, case_ids) == before
        assert sample(harness, "ketenpoort_data_keys_pending_rewrap") == 0
        for reason in ("malformed", "unknown_kek", "does_not_open", "run_failed"):
            errors = harness.gateway.metrics.registry.get_sample_value(
                "ketenpoort_rewrap_errors_total", {"reason": reason}
            )
            assert errors == 0, reason

        # Retire the old key: its file goes; the gateway drops it at its next look.
        GatewayKeyPaths.under(keys).kek_file(old).unlink()
        task.wake()
        later = await register(police)
        await until(lambda: data_keys_under(engine, new) == CASES + 1)
        assert await answers(harness, case_ids) == before
        assert (await answers(harness, [later]))[later]

    # A gateway started on the retired key directory reads every case.
    async with running_harness(db_url, keys, shipped_policy) as restarted:
        assert Keystore.open(keys).kek_ids == (new,)
        assert await answers(restarted, case_ids) == before


async def test_a_failed_run_is_counted_and_the_next_one_goes_on(
    dev_keys: Path, tmp_path: Path
) -> None:
    # A database without the gateway's tables: every statement of the run fails.
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.db'}")
    keys = LiveKeystore(Keystore.open(dev_keys))
    metrics = Metrics()
    task = RewrapTask(Rewrapper(engine, keys), engine, keys, metrics, interval_s=60)
    registry = metrics.registry
    try:
        assert await task.run_once() is None
        failed = {"reason": "run_failed"}
        assert registry.get_sample_value("ketenpoort_rewrap_errors_total", failed) == 1
        init_schema(engine)
        report = await task.run_once()
        assert report is not None and report.rewrapped == 0
        assert registry.get_sample_value("ketenpoort_rewrap_errors_total", failed) == 1
        assert registry.get_sample_value("ketenpoort_data_keys_pending_rewrap") == 0
    finally:
        await task.stop()
        engine.dispose()


async def test_with_the_rewrap_switched_off_the_gateway_still_takes_up_rotated_keys(
    dev_keys: Path, tmp_path: Path
) -> None:
    keys_dir = own_keys(dev_keys, tmp_path)
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.db'}")
    init_schema(engine)
    keystore = Keystore.open(keys_dir)
    keys = LiveKeystore(keystore, recheck_s=3600)  # no request looks in this test
    task = RewrapTask(
        Rewrapper(engine, keys), engine, keys, Metrics(), interval_s=0, key_check_s=0.05
    )
    task.start()
    try:
        before = keystore.hpke_keys().current_id
        rotate_kek(keys_dir)
        assert main(["keys", "rotate", "hpke", "--keys", str(keys_dir)]) == 0
        await until(lambda: keystore.hpke_keys().current_id != before)
        rotated_kek = Keystore.open(keys_dir).current_kek.kek_id
        await until(lambda: keystore.current_kek.kek_id == rotated_kek)
    finally:
        await task.stop()
        engine.dispose()
