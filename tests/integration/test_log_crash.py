"""A gateway killed mid-load loses no record of an answer it gave.

`ketenpoort serve` answers disclosures from concurrent clients until SIGKILL ends it without
warning, with requests in flight and a batch possibly half written. Restarted on the same
data it must find an intact log that holds a record for every disclosure a client received
(a record is durable before its answer leaves), and go on appending to the same chain.
Records of requests whose answer was cut off may or may not be there; nothing else may be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.client import PartnerClient
from gateway.broker.log_events import RecordKind
from gateway.crypto.devkeys import init_dev_keys
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_accounting import (
    PHASE,
    PURPOSE,
    Answer,
    Call,
    check_accounts_for,
    read_log,
    run_jobs,
    verify_with_cli,
)
from tests.integration.serve_process import (
    ServeProcess,
    fresh_pg_database,
    running_sources,
    start_serve,
    write_config,
)

KILL_AFTER = 300  # answers received before the gateway is killed
MORE_THAN_IT_CAN_ANSWER = 20_000
WORKERS = 16
AFTER_RESTART = 20


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("crash-keys") / "keys"
    init_dev_keys(keys, sorted(load_policy_dir(shipped_policy_dir()).partners))
    return keys


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        # Where the embedded default keeps it: a file in the data directory.
        yield f"sqlite:///{tmp_path / 'data' / 'ketenpoort.db'}"
        return
    with fresh_pg_database("ketenpoort_crash") as url:
        yield url


def disclosure(client: PartnerClient, case_id: str) -> Call:
    async def call() -> Answer:
        answer = await client.request_disclosure(case_id, PURPOSE, PHASE)
        assert answer.values, "the sealed answer opened to no values"
        response = answer.response
        return Answer(RecordKind.DISCLOSURE, response.disclosure_id, response.log_seq)

    return call


async def test_every_answer_given_before_a_kill_has_its_record(
    tmp_path: Path, keys: Path, database_url: str
) -> None:
    async with running_sources(keys) as sources:
        config = write_config(
            tmp_path / "gateway.toml",
            database_url=database_url,
            keys=keys,
            data=tmp_path / "data",
            sources=sources,
        )
        home = tmp_path / "home"
        gateway = await asyncio.to_thread(start_serve, config, home)
        try:
            answers, case_id = await _load_until_killed(gateway, keys)
        finally:
            gateway.kill()

        restarted = await asyncio.to_thread(start_serve, config, home)
        try:
            police = restarted.client(keys, "police")
            async with police:
                after = [disclosure(police, case_id) for _ in range(AFTER_RESTART)]
                failures = await run_jobs(after, 4, answers)
            assert not failures, f"{failures[0]!r}\n{restarted.output}"
        finally:
            code = restarted.stop()
        assert code == 0, restarted.output

    contents = read_log(database_url, keys)
    check_accounts_for(contents, answers)
    # The restarted gateway went on from the chain the killed one left.
    newest = max(a.seq for a in answers[-AFTER_RESTART:])
    assert newest > max(a.seq for a in answers[:-AFTER_RESTART])
    assert verify_with_cli(database_url, keys) == 0


async def _load_until_killed(gateway: ServeProcess, keys: Path) -> tuple[list[Answer], str]:
    """Disclosures from concurrent clients; SIGKILL once KILL_AFTER answers have arrived."""
    police, director = gateway.client(keys, "police"), gateway.client(keys, "zvh")
    try:
        case_id = await register(police)
        await to_case_meeting(director, case_id)
        answers: list[Answer] = []

        async def kill_mid_load() -> None:
            while len(answers) < KILL_AFTER:
                await asyncio.sleep(0.002)
            await asyncio.to_thread(gateway.kill)

        killer = asyncio.create_task(kill_mid_load())
        jobs = [disclosure(police, case_id) for _ in range(MORE_THAN_IT_CAN_ANSWER)]
        failures = await run_jobs(jobs, WORKERS, answers)
        await killer
        # Cut off mid-load: every worker lost its gateway with a request in flight.
        assert len(failures) == WORKERS and len(answers) < MORE_THAN_IT_CAN_ANSWER, failures[:1]
        assert len(answers) >= KILL_AFTER
        return answers, case_id
    finally:
        await police.close()
        await director.close()
