"""`ketenpoort keys rewrap`: counts per key, re-wraps in batches with a line per batch, exits
0 only when nothing is left under an older key; a key that is gone is reported, not skipped
silently. Cases are registered through a real gateway and read through one afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.crypto import Keystore, rotate_kek
from gateway.crypto.layout import GatewayKeyPaths
from tests.integration.harness import running_harness
from tests.integration.helpers import register
from tests.integration.test_rewrap import answers, own_keys

CASES = 5


@dataclass
class Registered:
    keys: Path
    db_url: str
    case_ids: list[str]
    answers: dict[str, dict[str, str]]
    kek_id: str

    def rewrap(self, *extra: str) -> int:
        return main(["keys", "rewrap", "--db", self.db_url, "--keys", str(self.keys), *extra])


@pytest.fixture
async def registered(
    db_url: str, dev_keys: Path, tmp_path: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Registered]:
    """Cases registered through a gateway, which is stopped again."""
    keys = own_keys(dev_keys, tmp_path)
    async with running_harness(db_url, keys, shipped_policy) as harness:
        police = harness.client("police")
        case_ids = [await register(police) for _ in range(CASES)]
        seen = await answers(harness, case_ids)
    yield Registered(keys, db_url, case_ids, seen, Keystore.open(keys).current_kek.kek_id)


def test_status_counts_per_key_and_exits_0_when_nothing_is_left(
    registered: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    assert registered.rewrap("--status") == 0
    out = capsys.readouterr().out
    assert f"current key-encryption key: {registered.kek_id}" in out
    assert f"  {registered.kek_id}  {CASES} data keys  (current)" in out
    assert f"0 of {CASES} live data keys not under the current key" in out


async def test_after_a_rotation_it_rewraps_in_batches_and_the_old_key_can_go(
    registered: Registered,
    capsys: pytest.CaptureFixture[str],
    shipped_policy: CompiledPolicy,
) -> None:
    old = registered.kek_id
    new = rotate_kek(registered.keys)
    assert registered.rewrap("--status") == 1
    out = capsys.readouterr().out
    assert f"  {old}  {CASES} data keys\n" in out
    assert f"{CASES} of {CASES} live data keys not under the current key" in out

    assert registered.rewrap("--batch", "2") == 0
    out = capsys.readouterr().out
    assert f"re-wrapping {CASES} data keys under {new} in batches of 2" in out
    assert [line for line in out.splitlines() if " done: " in line] == [
        "2/5 done: 2 re-wrapped",
        "4/5 done: 2 re-wrapped",
        "5/5 done: 1 re-wrapped",
    ]
    assert f"{CASES} data keys re-wrapped under {new}, 0 changed meanwhile" in out
    assert f"  {new}  {CASES} data keys  (current)" in out
    assert old not in out.split("re-wrapped under")[-1]
    assert registered.rewrap("--status") == 0
    capsys.readouterr()

    GatewayKeyPaths.under(registered.keys).kek_file(old).unlink()
    async with running_harness(
        registered.db_url, registered.keys, shipped_policy
    ) as harness:
        assert await answers(harness, registered.case_ids) == registered.answers


def test_keys_under_a_key_that_is_gone_are_reported_and_exit_1(
    registered: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    old = registered.kek_id
    rotate_kek(registered.keys)
    # Retired before its keys were re-wrapped: those cases cannot be read any more.
    GatewayKeyPaths.under(registered.keys).kek_file(old).unlink()
    assert registered.rewrap() == 1
    captured = capsys.readouterr()
    assert f"  {old}  {CASES} data keys  (not loaded: these cases cannot be read)" in captured.out
    assert "0 data keys re-wrapped" in captured.out
    for case_id in registered.case_ids:
        assert f"case {case_id}: data key under {old} left as it was (unknown_kek)" in (
            captured.err
        )


def test_a_batch_below_1_is_refused(
    registered: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        registered.rewrap("--batch", "0")
    assert exit_.value.code == 2
    assert "must be 1 or more" in capsys.readouterr().err
