"""Two gateway processes on one PostgreSQL database keep one accountability log.

Both replicas serve disclosures and triage questions concurrently for the same case. Each
appends through its own writer, and the head row lock must keep their batches from forking
or skipping the chain: afterwards the log verifies, its seqs run 1..N, and it holds exactly
one record for every answer the clients received and no disclosure or triage record more.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

import pytest

from adapters.client import PartnerClient
from gateway.broker.log_events import RecordKind
from gateway.crypto.devkeys import init_dev_keys
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir
from tests.integration.helpers import accept, register, to_case_meeting
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

DISCLOSURES = 300
TRIAGES = 100
WORKERS = 24
MIN_TURNS = 20

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("replica-keys") / "keys"
    init_dev_keys(keys, sorted(load_policy_dir(shipped_policy_dir()).partners))
    return keys


def disclosure(client: PartnerClient, case_id: str, served: dict[int, int], by: int) -> Call:
    async def call() -> Answer:
        answer = await client.request_disclosure(case_id, PURPOSE, PHASE)
        assert answer.values, "the sealed answer opened to no values"
        response = answer.response
        served[response.log_seq] = by
        return Answer(RecordKind.DISCLOSURE, response.disclosure_id, response.log_seq)

    return call


def triage(client: PartnerClient, case_id: str, served: dict[int, int], by: int) -> Call:
    async def call() -> Answer:
        response = await client.triage(case_id)
        served[response.log_seq] = by
        return Answer(RecordKind.TRIAGE, response.triage_id, response.log_seq)

    return call


async def test_two_replicas_under_load_write_one_unbroken_log(tmp_path: Path, keys: Path) -> None:
    with fresh_pg_database("ketenpoort_replicas") as database_url:
        async with running_sources(keys) as sources:
            configs = [
                write_config(
                    tmp_path / f"replica-{n}.toml",
                    database_url=database_url,
                    keys=keys,
                    data=tmp_path / f"data-{n}",
                    sources=sources,
                )
                for n in (1, 2)
            ]
            replicas: list[ServeProcess] = list(
                await asyncio.gather(
                    *(asyncio.to_thread(start_serve, c, tmp_path / "home") for c in configs)
                )
            )
            try:
                answers = await _load(replicas, keys)
            finally:
                codes = [r.stop() for r in replicas]
            assert codes == [0, 0], "\n".join(r.output for r in replicas)

        kinds = [a.kind for a in answers]
        assert (kinds.count(RecordKind.DISCLOSURE), kinds.count(RecordKind.TRIAGE)) == (
            DISCLOSURES,
            TRIAGES,
        )
        contents = read_log(database_url, keys)
        check_accounts_for(contents, answers)
        # No disclosure or triage record without an answer: nothing was cut off here.
        logged = [r.event.kind for r in contents.records]
        assert logged.count(RecordKind.DISCLOSURE) == DISCLOSURES
        assert logged.count(RecordKind.TRIAGE) == TRIAGES
        assert verify_with_cli(database_url, keys) == 0


async def _load(replicas: list[ServeProcess], keys: Path) -> list[Answer]:
    """Two cases about the subject are registered at one replica and moved on at the other,
    one to the case meeting (disclosures), one to triage; then disclosures and triage
    questions, shuffled, go to both replicas at once."""
    first, second = replicas
    police = [r.client(keys, "police") for r in replicas]
    director = [r.client(keys, "zvh") for r in replicas]
    try:
        meeting = await register(police[0])
        await to_case_meeting(director[1], meeting)
        asked = await register(police[1])
        await accept(director[0], asked)
        await director[0].change_phase(asked, "registration", "triage")
        served: dict[int, int] = {}  # record seq -> the replica that answered
        jobs = [disclosure(police[n % 2], meeting, served, n % 2) for n in range(DISCLOSURES)]
        jobs += [triage(director[n % 2], asked, served, n % 2) for n in range(TRIAGES)]
        random.Random(7).shuffle(jobs)
        answers: list[Answer] = []
        failures = await run_jobs(jobs, WORKERS, answers)
        assert not failures, f"{failures[0]!r}\n{first.output}\n{second.output}"
        # The replicas' batches took turns on the chain head, not one replica after the other.
        order = [served[seq] for seq in sorted(served)]
        assert sum(a != b for a, b in itertools.pairwise(order)) >= MIN_TURNS, order
        return answers
    finally:
        for client in police + director:
            await client.close()
