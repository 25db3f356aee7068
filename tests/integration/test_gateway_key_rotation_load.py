"""The gateway rolls over each of its own keys with `ketenpoort keys` while partners keep
calling: the log-signing key, the HPKE key partners and sources seal to, and the key-encryption
key of the case file. Each old key is retired (without grace) while the load runs. No call is
lost, no answer misses a source, and the log accounts for every answer and verifies across the
rotations, in the gateway and with `ketenpoort audit verify`.

The load registers cases (sealed to the gateway's HPKE key), adds to case files, and reads case
records whose data keys sit under the key-encryption key and whose source answers are sealed to
the gateway's HPKE key."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.api.v1 import exchange_pb2
from gateway.broker.log_events import RecordKind
from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.crypto.keystore import Keystore
from gateway.crypto.provider import HpkeRecipient, KeyRing, LogSigningKey
from gateway.store.rewrap import data_keys_under
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_accounting import verify_with_cli

WORKERS = 6
STEP = 12  # answers the load must give between two steps of a rotation
WAIT_S = 30.0


class Load:
    """Partners calling the gateway on ``WORKERS`` tasks until stopped; every failure is a lost
    call and every answer is kept."""

    def __init__(self, harness: Harness, meeting_case: str, early_cases: list[str]) -> None:
        self.police = harness.client("police")
        self.ggz = harness.client("ggz")
        self.meeting_case = meeting_case
        self.cases = list(early_cases)
        self.disclosures: list[exchange_pb2.DisclosureResponse] = []
        self.entries: list[str] = []
        self.errors: list[BaseException] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def answered(self) -> int:
        return len(self.disclosures) + len(self.entries)

    def start(self) -> None:
        jobs: list[Callable[[int], Awaitable[None]]] = [
            self._register, self._read_registration, self._read_meeting,
        ]
        for n, job in zip(range(WORKERS), itertools.cycle(jobs), strict=False):
            self._tasks.append(asyncio.create_task(self._run(job, n)))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self.police.close()
        await self.ggz.close()

    async def _run(self, job: Callable[[int], Awaitable[None]], n: int) -> None:
        for i in itertools.count():
            if self._stop.is_set():
                return
            try:
                await job(n + i)
            except Exception as exc:  # every failure is a lost call
                self.errors.append(exc)

    async def _register(self, _: int) -> None:
        # A sealed registration and a sealed addition: both to the gateway's current HPKE key.
        case_id = await register(self.police)
        self.cases.append(case_id)
        self.entries.append(await self.police.add_to_case_file(case_id, "case.notes", "note"))

    async def _read_registration(self, i: int) -> None:
        # Old and new cases: their data keys sit under the old or the new key-encryption key.
        case_id = self.cases[i % len(self.cases)]
        opened = await self.police.request_disclosure(case_id, "assess_and_accept", "registration")
        assert opened.values
        self.disclosures.append(opened.response)

    async def _read_meeting(self, _: int) -> None:
        opened = await self.ggz.request_disclosure(
            self.meeting_case, "analysis_and_plan", "case_meeting"
        )
        assert opened.values
        self.disclosures.append(opened.response)

    async def answers(self, more: int = STEP) -> None:
        """Wait until the load has given ``more`` answers beyond those it has now."""
        mark = self.answered
        await until(lambda: self.answered >= mark + more or bool(self.errors))


async def until(condition: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


async def keys_cli(keys: Path, db_url: str, *args: str) -> int:
    # An operator's command is a process of its own. Here gateway, sources and partners share
    # one event loop: run on it, the command would stop them all while it opens the database
    # (up to a second on a loaded PostgreSQL), and source calls in flight would miss their
    # deadline. So it runs in a thread, beside them, as it does beside a real gateway.
    database = ["--db", db_url] if args[0] == "retire" else []  # retire checks the data keys
    return await asyncio.to_thread(main, ["keys", *args, "--keys", str(keys), *database])


async def current_id_beside(keys: Path, kind: str) -> str:
    """``current_id`` read in a thread, beside the running gateway."""
    return await asyncio.to_thread(current_id, keys, kind)


def current_id(keys: Path, kind: str) -> str:
    keystore = Keystore.open(keys)
    try:
        if kind == "signing":
            return keystore.signing_keys().current_id
        if kind == "hpke":
            return keystore.hpke_keys().current_id
        return keystore.current_kek.kek_id
    finally:
        keystore.close()


def signing_ring(harness: Harness) -> KeyRing[LogSigningKey]:
    assert harness.gateway.keystore is not None
    return harness.gateway.keystore.signing_keys()


def hpke_ring(harness: Harness) -> KeyRing[HpkeRecipient]:
    assert harness.gateway.keystore is not None
    return harness.gateway.keystore.hpke_keys()


async def taken_up(harness: Harness, check: Callable[[], bool]) -> None:
    """Let the gateway look at its keys (it does so every few seconds on its own) until
    ``check`` holds; asked in a thread, as it may read the database."""
    task = harness.gateway.rewrap
    assert task is not None
    task.wake()
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not await asyncio.to_thread(check):
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


async def test_each_gateway_key_rotates_and_retires_under_load_without_a_lost_call(
    db_url: str, dev_keys: Path, tmp_path: Path, shipped_policy: CompiledPolicy
) -> None:
    keys = tmp_path / "keys"
    shutil.copytree(dev_keys, keys)
    async with running_harness(db_url, keys, shipped_policy) as harness:
        police, director = harness.client("police"), harness.client("zvh")
        meeting_case = await register(police, invitees=("zvh", "ggz"))
        await to_case_meeting(director, meeting_case)
        early = [await register(police) for _ in range(4)]
        gateway = harness.gateway
        log = gateway.log
        load = Load(harness, meeting_case, early)
        load.start()
        await load.answers()
        signed_by = {(await asyncio.to_thread(log.checkpoint_now)).key_id}

        # 1. Log-signing key: checkpoints are signed with the new key from the gateway's next
        # look; the old one, retired, stays trusted for what it signed.
        old_signing = await current_id_beside(keys, "signing")
        assert await keys_cli(keys, db_url, "rotate", "signing") == 0
        new_signing = await current_id_beside(keys, "signing")
        await taken_up(harness, lambda: signing_ring(harness).current_id == new_signing)
        await load.answers()
        signed_by.add((await asyncio.to_thread(log.checkpoint_now)).key_id)
        assert await keys_cli(keys, db_url, "retire", "signing", old_signing, "--grace-s", "0") == 0
        await load.answers()
        signed_by.add((await asyncio.to_thread(log.checkpoint_now)).key_id)
        assert len(signed_by) == 2 and "" not in signed_by  # both keys signed, both trusted

        # 2. HPKE key: partners whose cached key is retired fetch the keys again and resend;
        # sources follow the key id the gateway names in each request.
        old_hpke = await current_id_beside(keys, "hpke")
        assert await keys_cli(keys, db_url, "rotate", "hpke") == 0
        new_hpke = await current_id_beside(keys, "hpke")
        await taken_up(harness, lambda: hpke_ring(harness).current_id == new_hpke)
        await load.answers()
        assert await keys_cli(keys, db_url, "retire", "hpke", old_hpke, "--grace-s", "0") == 0
        await taken_up(harness, lambda: old_hpke not in hpke_ring(harness).keys)
        await load.answers()
        advertised = await police.gateway_keys()
        assert [k.key_id for k in advertised.keys] == [new_hpke]

        # 3. Key-encryption key: new cases are wrapped under the new key, the re-wrap task
        # moves the old ones, and the old key is retired once nothing is under it.
        old_kek = await current_id_beside(keys, "kek")
        assert await keys_cli(keys, db_url, "rotate", "kek") == 0
        new_kek = await current_id_beside(keys, "kek")
        await taken_up(harness, lambda: data_keys_under(gateway.engine, old_kek) == 0)
        await load.answers()
        while await keys_cli(keys, db_url, "retire", "kek", old_kek, "--grace-s", "0") != 0:
            # A case registered just before the gateway took the new key up is moved next.
            await taken_up(harness, lambda: data_keys_under(gateway.engine, old_kek) == 0)
        await load.answers(2 * STEP)

        await load.stop()
        assert data_keys_under(gateway.engine, new_kek) == len(load.cases) + 1
        await police.close()
        await director.close()

        assert load.errors == []
        assert all(not d.incomplete and not d.unavailable_sources for d in load.disclosures)
        disclosures = log.list_records(kinds=[RecordKind.DISCLOSURE], limit=10_000)
        assert {a.disclosure_id for a in load.disclosures} <= {
            r.event.disclosure_id for r in disclosures
        }
        assert log.list_records(kinds=[RecordKind.AUTH_REFUSAL]) == []
        assert log.verify().ok
    # Retired signing keys stay trusted from the key directory, as an operator verifies.
    assert verify_with_cli(db_url, keys) == 0
