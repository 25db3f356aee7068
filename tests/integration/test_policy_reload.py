"""The policy is reloaded in a running gateway: on request, on SIGHUP and when its files
change. A valid new policy is in force for the next request; a request in flight finishes
under the policy it started with; a broken policy never replaces the one in force.

Every test works on its own copy of the valid policy fixture, so it may change the files. The
change a test makes is found from the fixture itself (`find_scenario`): a rule that withholds
one field a police request receives, so the tests do not depend on the fixture's wording.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from grpc import aio
from prometheus_client import generate_latest

from adapters.client import PartnerClient, PartnerCredentials
from adapters.source_server import InMemoryBackend, SourceServicer
from gateway.api.v1 import common_pb2, source_pb2, source_pb2_grpc
from gateway.broker.casefile import INITIAL_PHASE, PHASE_DIRECTOR_ROLE
from gateway.broker.log_events import LogRecord
from gateway.broker.sources import Source
from gateway.cli.demo_data import GOAL, REASON, SOURCE_RECORDS, SUBJECT
from gateway.core import AccessRequest, CompiledPolicy, Effect, PolicyError
from gateway.crypto.devkeys import init_dev_keys
from gateway.policyfiles import load_policy_dir
from gateway.runtime.policy_reload import ReloadResult, SettledChange, policy_snapshot
from gateway.server.app import Gateway, start_gateway
from gateway.sources.grpc_source import GrpcSource
from tests.integration.harness import dev_registry, gateway_config
from tests.integration.helpers import accept
from tests.policy_fixtures import VALID as FIXTURE_POLICY

REQUESTER = "police"
RULE_FILE = "rules/reload_check.yaml"
WAIT_S = 30.0  # generous: a condition the tests wait for is met long before
WITHHELD = common_pb2.OUTCOME_WITHHELD


# --- the change the tests make ----------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """`partner`, acting as `role`, asks for every field for `purpose` in `phase` and receives
    `field`; the rule file RULE_FILE then withholds that field from it."""

    partner: str
    partner_type: str
    role: str
    purpose: str
    phase: str
    field: str
    director: str  # the partner that moves the case to `phase`

    def rule(self, effect: str = "withhold") -> str:
        return (
            "rules:\n"
            "  - id: reload-check\n"
            "    reason: Withheld while the reload of the policy is checked.\n"
            "    who:\n"
            f"      partner_types: [{self.partner_type}]\n"
            f"      roles: [{self.role}]\n"
            f"    purposes: [{self.purpose}]\n"
            f"    phases: [{self.phase}]\n"
            f"    fields: [{self.field}]\n"
            f"    effect: {effect}\n"
        )

    def write_change(self, policy_dir: Path) -> None:
        (policy_dir / RULE_FILE).write_text(self.rule(), encoding="utf-8")

    def write_broken(self, policy_dir: Path) -> int:
        """A misspelt effect; returns the line it is on."""
        text = self.rule("withold")
        (policy_dir / RULE_FILE).write_text(text, encoding="utf-8")
        return text[: text.index("effect: withold")].count("\n") + 1

    def withholds(self, policy: CompiledPolicy) -> bool:
        decision = policy.decide(self._request())
        return {d.field: d.effect for d in decision.fields}[self.field] is Effect.WITHHOLD

    def _request(self) -> AccessRequest:
        return AccessRequest(self.partner, self.role, self.purpose, self.phase, participant=True)


def find_scenario(fixture: Path, scratch: Path) -> Scenario:
    """The first request of the police that a withhold rule for one of its fields changes,
    with the rule accepted by the policy checks (no contradiction, nothing shadowed), and
    that also asks a partner's source system."""
    policy = load_policy_dir(fixture)
    requester = policy.partner(REQUESTER)
    director = next(p.id for p in policy.partners.values() if PHASE_DIRECTOR_ROLE in p.roles)
    shutil.copytree(fixture, scratch)
    for purpose in policy.purposes.values():
        if purpose.break_glass or purpose.requires_justification:
            continue
        for role in requester.roles:
            for phase in purpose.phases:
                if phase == INITIAL_PHASE:
                    continue
                request = AccessRequest(REQUESTER, role, purpose.id, phase, participant=True)
                decision = policy.decide(request)
                released = [d for d in decision.fields if d.effect is not Effect.WITHHOLD]
                if decision.refusal or len(released) < 2:
                    continue
                if not any(d.source in SOURCE_RECORDS for d in released):
                    continue
                for d in released:
                    s = Scenario(
                        REQUESTER, requester.type, role, purpose.id, phase, d.field, director
                    )
                    s.write_change(scratch)
                    try:
                        if s.withholds(load_policy_dir(scratch)):
                            return s
                    except PolicyError:  # a candidate the checks refuse: try the next
                        continue
    raise AssertionError(f"no request in {fixture} that a withhold rule changes")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return find_scenario(FIXTURE_POLICY, tmp_path_factory.mktemp("scenario") / "policies")


@pytest.fixture(scope="module")
def reload_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("reload-keys") / "keys"
    init_dev_keys(keys, sorted(load_policy_dir(FIXTURE_POLICY).partners))
    return keys


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "policies"
    shutil.copytree(FIXTURE_POLICY, copy)
    return copy


# --- a gateway on the copy, with partner systems that can be held up ------------------------


class Gate:
    """Holds the partner systems' answers until opened: a slow source, on cue."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.opened.set()
        self.entered = asyncio.Event()  # a fetch has arrived and waits

    def close(self) -> None:
        self.opened.clear()
        self.entered.clear()


class GatedSourceServicer(SourceServicer):
    def __init__(self, backend: InMemoryBackend, gate: Gate) -> None:
        super().__init__(backend)
        self._gate = gate

    async def FetchFields(  # noqa: N802 (gRPC method name)
        self, request: source_pb2.FetchFieldsRequest, context: aio.ServicerContext[Any, Any]
    ) -> source_pb2.FetchFieldsResponse:
        self._gate.entered.set()
        await self._gate.opened.wait()
        return await super().FetchFields(request, context)


@dataclass
class Running:
    gateway: Gateway
    policy_dir: Path
    keys: Path
    gate: Gate
    source_servicers: list[GatedSourceServicer]

    def client(self, partner: str, role: str) -> PartnerClient:
        creds = PartnerCredentials.from_key_dir(self.keys, partner)
        return PartnerClient(f"127.0.0.1:{self.gateway.port}", creds, role=role)

    def record(self, case_id: str, disclosure_id: str) -> LogRecord:
        records = self.gateway.log.list_records(case_id=case_id, limit=100)
        return next(r for r in records if r.event.disclosure_id == disclosure_id)

    def sample(self, name: str, **labels: str) -> float | None:
        return self.gateway.metrics.registry.get_sample_value(name, labels)

    def reloads(self, result: ReloadResult) -> float | None:
        return self.sample("ketenpoort_policy_reloads_total", result=result.value)


@asynccontextmanager
async def running(
    tmp_path: Path, policy_dir: Path, keys: Path, *, interval_s: float = 0.0
) -> AsyncIterator[Running]:
    """A gateway loading `policy_dir` itself (as `ketenpoort serve` does), on SQLite."""
    gate = Gate()
    servers: list[aio.Server] = []
    servicers: list[GatedSourceServicer] = []
    adapters: dict[str, Source] = {}
    for partner_type, record in SOURCE_RECORDS.items():
        backend = InMemoryBackend()
        backend.add(record)
        servicer = GatedSourceServicer(backend, gate)
        server = aio.server()
        source_pb2_grpc.add_SourceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        servicers.append(servicer)
        adapters[partner_type] = GrpcSource(f"127.0.0.1:{port}", clear_requests=True)
    config = gateway_config(
        f"sqlite:///{tmp_path / 'data' / 'ketenpoort.db'}",
        keys,
        policy_dir=policy_dir,
        policy_reload_interval_s=interval_s,
        source_deadline_s=WAIT_S,  # a held-up source is waited for, not given up on
    )
    gateway = await start_gateway(config, sources=adapters)
    try:
        yield Running(gateway, policy_dir, keys, gate, servicers)
    finally:
        gate.opened.set()
        await gateway.stop(grace=None)
        for server in servers:
            await server.stop(None)


async def open_case(env: Running, s: Scenario) -> tuple[PartnerClient, str]:
    """A case the requester registered, moved to the scenario's phase by the director."""
    requester = env.client(s.partner, s.role)
    director = env.client(s.director, PHASE_DIRECTOR_ROLE)
    try:
        registered = await requester.register_case(
            SUBJECT, "general", reason=REASON, goal=GOAL, invitees=[s.director]
        )
        await accept(director, registered.case_id)
        await director.change_phase(registered.case_id, INITIAL_PHASE, s.phase)
    finally:
        await director.close()
    return requester, registered.case_id


async def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "the condition was not met in time"
        await asyncio.sleep(0.02)


# --- the tests ----------------------------------------------------------------------------------


async def test_a_changed_rule_is_in_force_for_the_next_request(
    tmp_path: Path, policy_dir: Path, reload_keys: Path, scenario: Scenario
) -> None:
    s = scenario
    async with running(tmp_path, policy_dir, reload_keys) as env:
        old = env.gateway.policy.current.version
        requester, case_id = await open_case(env, s)
        async with requester:
            before = await requester.request_disclosure(case_id, s.purpose, s.phase)
            assert before.outcomes[s.field].outcome != WITHHELD

            s.write_change(policy_dir)
            outcome = await env.gateway.reload_policy()
            assert outcome.result is ReloadResult.APPLIED
            assert (outcome.previous, outcome.version) == (old, load_policy_dir(policy_dir).version)
            assert env.gateway.policy.current.version == outcome.version

            after = await requester.request_disclosure(case_id, s.purpose, s.phase)
        assert after.response.policy_version == outcome.version
        assert after.outcomes[s.field].outcome == WITHHELD
        assert after.outcomes[s.field].rule_id == "reload-check"
        assert s.field not in after.values
        record = env.record(case_id, after.response.disclosure_id)
        assert record.event.policy_version == outcome.version
        assert {f.field: f.outcome for f in record.event.fields}[s.field] == "withheld"
        earlier = env.record(case_id, before.response.disclosure_id)
        assert earlier.event.policy_version == old

        assert env.reloads(ReloadResult.APPLIED) == 1
        assert env.reloads(ReloadResult.REJECTED) == 0
        text = generate_latest(env.gateway.metrics.registry).decode()
        assert f'ketenpoort_policy_info{{version="{outcome.version}"}} 1.0' in text
        assert old not in text
        loaded_at = env.sample("ketenpoort_policy_last_load_timestamp_seconds")
        assert loaded_at is not None and loaded_at > 0

        # Reading the same files again puts nothing new in force.
        again = await env.gateway.reload_policy()
        assert (again.result, again.version) == (ReloadResult.UNCHANGED, outcome.version)
        assert env.reloads(ReloadResult.UNCHANGED) == 1


async def test_a_disclosure_in_flight_finishes_under_the_policy_it_started_with(
    tmp_path: Path, policy_dir: Path, reload_keys: Path, scenario: Scenario
) -> None:
    s = scenario
    async with running(tmp_path, policy_dir, reload_keys) as env:
        old = env.gateway.policy.current.version
        requester, case_id = await open_case(env, s)
        async with requester:
            env.gate.close()
            in_flight = asyncio.create_task(
                requester.request_disclosure(case_id, s.purpose, s.phase, timeout=WAIT_S)
            )
            # The request has decided and waits for a partner's system: swap the policy now.
            await asyncio.wait_for(env.gate.entered.wait(), WAIT_S)
            s.write_change(policy_dir)
            outcome = await env.gateway.reload_policy()
            assert outcome.result is ReloadResult.APPLIED
            assert env.gateway.policy.current.version == outcome.version != old
            assert not in_flight.done()
            env.gate.opened.set()
            answer = await in_flight

            assert answer.response.policy_version == old
            assert answer.outcomes[s.field].outcome != WITHHELD
            assert not answer.response.incomplete
            released = [f for f in answer.response.fields if f.outcome != WITHHELD]
            assert all(
                f.availability != common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE for f in released
            )
            record = env.record(case_id, answer.response.disclosure_id)
            assert (record.event.policy_version, record.event.status) == (old, "ok")
            assert {f.field for f in record.event.fields} == {
                f.field for f in answer.response.fields
            }
            fetched = [seen for sv in env.source_servicers for seen in sv.seen]
            assert fetched and {f.disclosure_id for f in fetched} == {answer.response.disclosure_id}

            following = await requester.request_disclosure(case_id, s.purpose, s.phase)
        assert following.response.policy_version == outcome.version
        assert following.outcomes[s.field].outcome == WITHHELD
        assert env.record(case_id, following.response.disclosure_id).event.policy_version == (
            outcome.version
        )


async def test_a_broken_policy_is_rejected_and_the_old_one_keeps_serving(
    tmp_path: Path,
    policy_dir: Path,
    reload_keys: Path,
    scenario: Scenario,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = scenario
    caplog.set_level(logging.INFO, logger="ketenpoort.policy")
    async with running(tmp_path, policy_dir, reload_keys) as env:
        old = env.gateway.policy.current.version
        requester, case_id = await open_case(env, s)
        async with requester:
            line = s.write_broken(policy_dir)
            outcome = await env.gateway.reload_policy()
            assert (outcome.result, outcome.version) == (ReloadResult.REJECTED, old)
            where = f"{policy_dir / RULE_FILE}:{line}:"
            assert any(p.startswith(where) for p in outcome.problems)
            assert env.gateway.policy.current.version == old

            answer = await requester.request_disclosure(case_id, s.purpose, s.phase)
            assert answer.response.policy_version == old
            assert answer.outcomes[s.field].outcome != WITHHELD

            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert any(r.getMessage().startswith(where) for r in errors)
            assert any(str(policy_dir) in r.getMessage() and old in r.getMessage() for r in errors)
            assert SUBJECT.name not in caplog.text and SUBJECT.bsn not in caplog.text
            assert env.reloads(ReloadResult.REJECTED) == 1
            assert env.sample("ketenpoort_policy_last_reload_successful") == 0
            text = generate_latest(env.gateway.metrics.registry).decode()
            assert f'ketenpoort_policy_info{{version="{old}"}} 1.0' in text

            # Mended, the change goes in.
            s.write_change(policy_dir)
            mended = await env.gateway.reload_policy()
            assert mended.result is ReloadResult.APPLIED and mended.previous == old
            answer = await requester.request_disclosure(case_id, s.purpose, s.phase)
        assert answer.response.policy_version == mended.version
        assert answer.outcomes[s.field].outcome == WITHHELD
        assert env.reloads(ReloadResult.APPLIED) == 1
        assert env.sample("ketenpoort_policy_last_reload_successful") == 1


async def test_a_missing_policy_directory_is_rejected_and_the_policy_kept(
    tmp_path: Path, policy_dir: Path, reload_keys: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ketenpoort.policy")
    async with running(tmp_path, policy_dir, reload_keys) as env:
        old = env.gateway.policy.current.version
        moved = policy_dir.rename(tmp_path / "elsewhere")
        outcome = await env.gateway.reload_policy()
        assert (outcome.result, outcome.version) == (ReloadResult.REJECTED, old)
        assert "no such policy directory" in caplog.text
        moved.rename(policy_dir)
        back = await env.gateway.reload_policy()
        assert (back.result, back.version) == (ReloadResult.UNCHANGED, old)
        assert env.sample("ketenpoort_policy_last_reload_successful") == 1


async def test_the_watcher_loads_a_changed_file_without_being_asked(
    tmp_path: Path, policy_dir: Path, reload_keys: Path, scenario: Scenario
) -> None:
    async with running(tmp_path, policy_dir, reload_keys, interval_s=0.05) as env:
        old = env.gateway.policy.current.version
        scenario.write_change(policy_dir)
        new = load_policy_dir(policy_dir).version
        await eventually(lambda: env.gateway.policy.current.version == new)
        assert env.reloads(ReloadResult.APPLIED) == 1

        # A broken save is seen, refused once, and the policy in force stays.
        scenario.write_broken(policy_dir)
        await eventually(lambda: env.reloads(ReloadResult.REJECTED) == 1)
        assert env.gateway.policy.current.version == new != old
        # Restoring the file that is in force is a reload with nothing new.
        scenario.write_change(policy_dir)
        await eventually(lambda: env.reloads(ReloadResult.UNCHANGED) == 1)
        assert env.reloads(ReloadResult.APPLIED) == 1
        assert env.reloads(ReloadResult.REJECTED) == 1


def test_a_burst_of_changes_is_loaded_once_it_has_settled() -> None:
    loaded = (("catalogue.yaml", 1, 100, 10),)
    half = (("catalogue.yaml", 1, 200, 4),)
    whole = (("catalogue.yaml", 1, 300, 12), ("rules/new.yaml", 2, 300, 5))
    settled = SettledChange(loaded)
    polls = [loaded, half, whole, whole]
    assert [settled.observe(p) for p in polls] == [False, False, False, True]
    settled.loaded = whole  # what the reload read
    assert [settled.observe(p) for p in (whole, whole)] == [False, False]


def test_the_snapshot_covers_the_policy_files_and_not_the_policy_tests(
    policy_dir: Path, scenario: Scenario
) -> None:
    before = policy_snapshot(policy_dir)
    assert before and not any(name.startswith("tests/") for name, *_ in before)
    (policy_dir / "tests").mkdir(exist_ok=True)
    (policy_dir / "tests" / "extra.yaml").write_text("tests: []\n", encoding="utf-8")
    assert policy_snapshot(policy_dir) == before
    scenario.write_change(policy_dir)
    assert RULE_FILE in {name for name, *_ in policy_snapshot(policy_dir)}
    assert policy_snapshot(policy_dir / "missing") == ()


# --- SIGHUP on `ketenpoort serve` ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text: str = answer.read().decode()
            return text
    except (urllib.error.URLError, OSError):
        return ""


def _wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_sighup_reloads_the_policy_of_a_running_server(
    tmp_path: Path, policy_dir: Path, reload_keys: Path, scenario: Scenario
) -> None:
    port, metrics_port = _free_port(), _free_port()
    data = tmp_path / "data"
    dev_registry(reload_keys, data / "registry")
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"listen = '127.0.0.1:{port}'\n"
        f"database_url = 'sqlite:///{data / 'ketenpoort.db'}'\n"
        f"policy_dir = '{policy_dir}'\n"
        "policy_reload_interval_s = 0  # only SIGHUP reloads\n"
        f"keys_dir = '{reload_keys}'\n"
        f"data_dir = '{data}'\n"
        "tls_mode = 'insecure'\n"
        f"metrics_port = {metrics_port}\n",
        encoding="utf-8",
    )
    old = load_policy_dir(policy_dir).version
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config)],
        env={**os.environ, "KETENPOORT_HOME": str(tmp_path / "home")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert _wait_for(lambda: f'version="{old}"' in _scrape(metrics_port))
        scenario.write_change(policy_dir)
        new = load_policy_dir(policy_dir).version
        proc.send_signal(signal.SIGHUP)
        assert _wait_for(
            lambda: f'ketenpoort_policy_info{{version="{new}"}} 1.0' in _scrape(metrics_port)
        )
        assert 'ketenpoort_policy_reloads_total{result="applied"} 1.0' in _scrape(metrics_port)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"reloaded (SIGHUP): version {new} is in force (was {old})" in out


async def test_a_large_broken_policy_costs_the_serving_process_little(
    tmp_path: Path, policy_dir: Path, reload_keys: Path
) -> None:
    """A large broken file is parsed by a separate process: the serving process spends a
    fraction of the CPU time the parse takes (in the process, 400 KB took about 2 s and a
    megabyte 5 s, and every request waited on it), and an oversized file is refused unread."""
    broken = policy_dir / "rules" / "large.yaml"
    rule = "  - id: r{0}\n    reason: x\n    fields: [a]\n    effect: withhold\n"
    text = "rules:\n" + "".join(rule.format(i) for i in range(8_000))
    async with running(tmp_path, policy_dir, reload_keys) as env:
        old = env.gateway.policy.current.version
        broken.write_text(text[: 400 * 1024] + "\n  - id: [unclosed\n")
        cpu = time.process_time()
        outcome = await env.gateway.reload_policy()
        spent = time.process_time() - cpu
        assert outcome.result is ReloadResult.REJECTED and outcome.version == old
        assert any("rules/large.yaml:" in p and "invalid YAML" in p for p in outcome.problems)
        assert spent < 0.5, f"the serving process spent {spent:.2f} s CPU on the reload"

        with broken.open("wb") as out:
            out.truncate(15 * 1024 * 1024)
        started = time.monotonic()
        outcome = await env.gateway.reload_policy()
        assert time.monotonic() - started < 2.0
        assert outcome.result is ReloadResult.REJECTED
        assert any("larger than 1048576 bytes" in p for p in outcome.problems)
        assert env.gateway.policy.current.version == old
