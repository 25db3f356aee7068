"""`ketenpoort source serve` as a process of its own, with the CSV drop adapter, asked by a
real gateway over mutual TLS, sealed: a housing corporation known by name and postcode (its
partner type gets no BSN) answers triage and a disclosure from its imported export, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.api.v1 import common_pb2
from gateway.cli.demo_data import SUBJECT
from gateway.cli.policy_catalogue import catalogue_document
from gateway.core import CompiledPolicy
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import accept, register

ROOT = Path(__file__).resolve().parents[2]
PURPOSE, MEETING = "analysis_and_plan", "case_meeting"
RISK = "Four months of rent arrears; eviction hearing pending"
MAPPING = """\
kind: csv
partner_type: housing_corporation
csv: {delimiter: "|"}
identify: {name: naam, postcode: postcode, reference: huurder}
fields:
  housing.eviction_risk: {type: text, column: risico}
  housing.nuisance_reports: {type: text, column: overlast}
lookup: {role: tenant}
"""


@pytest.fixture
def source_process(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "export-1.csv").write_text(
        "huurder|naam|postcode|risico|overlast\n"
        f"H-7|{SUBJECT.name}|{SUBJECT.postcode.replace(' ', '')}|{RISK}|\n"
        "H-8|Someone Else|1234 AB|None|\n",
        encoding="utf-8",
    )
    (tmp_path / "store.key").write_text(base64.b64encode(os.urandom(32)).decode())
    (tmp_path / "catalogue.json").write_text(json.dumps(catalogue_document(shipped_policy)))
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    (tmp_path / "source.toml").write_text(textwrap.dedent(f"""\
        partner_id = "housing"
        listen = "127.0.0.1:0"
        catalogue = "catalogue.json"
        mapping = "mapping.yaml"
        access_log = "access.jsonl"
        [keys]
        dir = "{dev_keys}"
        [system]
        inbox = "inbox"
        store = "store.bin"
        key_file = "store.key"
        """))
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.source_runtime.cli", "serve", "--config",
         str(tmp_path / "source.toml")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        match = None
        while match is None:
            line = proc.stdout.readline()
            assert line, "".join(seen)  # the process ended before it served
            seen.append(line)
            match = re.search(r"serving on 127\.0\.0\.1:(\d+)", line)
        assert "imported export-1.csv: 2 rows, 0 rejected" in "".join(seen)
        yield proc, int(match.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
async def gateway(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy,
    source_process: tuple[subprocess.Popen[str], int],
) -> AsyncIterator[Harness]:
    async with running_harness(
        db_url, dev_keys, shipped_policy,
        external_sources={"housing": f"127.0.0.1:{source_process[1]}"},
    ) as running:
        yield running


async def test_a_served_csv_source_answers_triage_and_a_disclosure(
    gateway: Harness, source_process: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    police, director = gateway.client("police"), gateway.client("zvh")
    case_id = await register(police, ("zvh", "housing", "municipality"))
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    triage = await director.triage(case_id)
    hit = {h.partner_type: h for h in triage.hits}["housing_corporation"]
    assert hit.answered and hit.known
    await director.change_phase(case_id, "triage", MEETING)
    # The municipality receives the housing corporation's fields in a case meeting.
    answer = await gateway.client("municipality").request_disclosure(case_id, PURPOSE, MEETING)
    disclosed = {
        f.field for f in answer.response.fields
        if f.source == "housing_corporation" and f.outcome == common_pb2.OUTCOME_DISCLOSED
    }
    assert "housing.eviction_risk" in disclosed
    assert answer.values["housing.eviction_risk"] == RISK

    proc, _ = source_process
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    log = (tmp_path / "access.jsonl").read_text()
    outcomes = [json.loads(line)["outcome"] for line in log.splitlines()]
    assert outcomes == ["known", "answered"]
    for secret in (SUBJECT.name, RISK, "H-7"):
        assert secret not in log
