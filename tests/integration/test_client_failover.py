"""A partner's client given the addresses of two gateway replicas on one database keeps
working when the replica it uses is stopped mid-run: calls that find it unavailable (draining,
then refusing connections) go to the other one, and nothing is done twice.

Both replicas are `ketenpoort serve` processes (tests/integration/serve_process.py); the load
runs on several tasks sharing one client per partner, as a partner system would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.client import PartnerClient, PartnerCredentials
from gateway.broker.log_events import RecordKind
from tests.integration.harness import ROLES
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_accounting import (
    PHASE,
    PURPOSE,
    Answer,
    check_accounts_for,
    read_log,
    run_jobs,
)
from tests.integration.serve_process import (
    ServeProcess,
    running_sources,
    start_serve,
    write_config,
)

CALLS = 80  # every fourth a case-file entry, the others disclosures
WORKERS = 4
# The first replica is stopped once this many answers arrived.
STOP_AFTER = 15


def failover_client(replicas: list[ServeProcess], keys: Path, partner: str) -> PartnerClient:
    return PartnerClient(
        [r.address for r in replicas],
        PartnerCredentials.from_key_dir(keys, partner, tls=False),
        role=ROLES[partner],
    )


async def test_calls_keep_succeeding_when_a_replica_is_stopped(
    db_url: str, dev_keys: Path, tmp_path: Path
) -> None:
    async with running_sources(dev_keys) as sources:
        configs = [
            write_config(
                tmp_path / f"replica-{n}.toml",
                database_url=db_url,
                keys=dev_keys,
                data=tmp_path / f"data-{n}",
                sources=sources,
            )
            for n in (1, 2)
        ]
        replicas = [
            await asyncio.to_thread(start_serve, config, tmp_path / "home") for config in configs
        ]
        first, second = replicas
        police = failover_client(replicas, dev_keys, "police")
        director = failover_client(replicas, dev_keys, "zvh")
        try:
            case_id = await register(police)
            await to_case_meeting(director, case_id)
            assert police.addresses.current == first.address

            answers: list[Answer] = []
            entries: list[str] = []

            async def disclosure() -> Answer:
                answer = await police.request_disclosure(case_id, PURPOSE, PHASE)
                assert answer.values
                response = answer.response
                return Answer(RecordKind.DISCLOSURE, response.disclosure_id, response.log_seq)

            async def entry() -> Answer:
                # Sent again with the same request id after UNAVAILABLE: never twice.
                entries.append(
                    await police.add_to_case_file(case_id, "case.notes", "Seen at the address.")
                )
                return Answer(RecordKind.DISCLOSURE, "", 0)

            jobs = [entry if n % 4 == 0 else disclosure for n in range(CALLS)]
            load = asyncio.create_task(run_jobs(jobs, WORKERS, answers))
            while len(answers) < STOP_AFTER and not load.done():
                await asyncio.sleep(0.05)
            # SIGTERM: the first replica drains (UNAVAILABLE to new calls), then is gone.
            assert await asyncio.to_thread(first.stop) == 0
            failures = await load
            assert not failures, f"{failures[0]!r}\n{second.output}"
            assert len(answers) == len(jobs)
            assert police.addresses.current == second.address
            # The director's next call finds the first replica gone and moves on by itself.
            await director.cases.get_case(case_id)
            assert director.addresses.current == second.address
        finally:
            await police.close()
            await director.close()
            for replica in replicas:
                replica.stop()

    disclosed = [a for a in answers if a.id]
    assert (len(disclosed), len(entries)) == (CALLS - CALLS // 4, CALLS // 4)
    # Every disclosure answered has exactly one record; every entry was made once.
    check_accounts_for(read_log(db_url, dev_keys), disclosed)
    assert len(set(entries)) == len(entries)
