"""The README's main job: the demo plays its three cases and every check passes; and its
checks are real: against a policy that says otherwise, the demo fails. Four partners answer
through the source runtime in front of a REST API, a FHIR server, a SQLite database and a CSV
drop; a mapping that does not pass `ketenpoort source check` fails the demo."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from gateway.cli.demo import run_demo
from gateway.cli.demo_mappings import MAPPINGS, mapping_text
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir


async def test_demo_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_demo(tmp_path / "demo") == 0
    out = capsys.readouterr().out
    assert "0 failed" in out
    assert "[FAIL]" not in out
    assert "incomplete: probation down" in out
    for title in ("Case 1: Code Rood", "Case 2: Drang en dwang", "Case 3: Mensenhandel"):
        assert title in out
    # The summary tables show where the persons of a case are treated differently.
    assert "persons: 1=perpetrator (alleged_perpetrator), 2=victim (victim)" in out
    assert "··DD" in out
    assert "made before the BSN was known" in out

    # Each runtime partner's mapping passed the check, and its own kind of system answered
    # through the source runtime: asked for fields, and its system asked in turn.
    for partner, kind in (("police", "rest"), ("ggz", "fhir"), ("municipality", "sql"),
                          ("housing", "csv")):
        assert f"[ok] ketenpoort source check --config {partner}/source.toml: " \
            f"{partner}/{MAPPINGS[partner][1]}: {kind} mapping" in out
    systems = {
        "police": r"its REST/JSON API, through the source runtime: (\d+) field requests.*"
                  r"the API answered (\d+) requests",
        "ggz": r"its FHIR R4 server, through the source runtime: (\d+) field requests.*"
               r"the server answered (\d+) requests",
        "municipality": r"its SQLite database, through the source runtime: (\d+) field requests",
        "housing": r"its CSV drop, through the source runtime: (\d+) field requests.*"
                   r"huurders.csv was imported: (\d+) rows, 0 rejected",
    }
    for partner, pattern in systems.items():
        found = re.search(rf"^  {partner} +{pattern}", out, re.MULTILINE)
        assert found is not None, partner
        assert all(int(n) > 0 for n in found.groups()), partner
    assert re.search(r"^  om +in-memory test system", out, re.MULTILINE)
    # The runtimes' access logs: one line per call, field ids and outcomes only.
    log = tmp_path / "demo" / "sources" / "police" / "access.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["outcome"] for e in entries} <= {"answered", "known", "not_known"}
    assert any("police.incidents" in e["supplied"] for e in entries)


async def test_demo_fails_when_a_view_differs_from_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gateway runs the shipped policy; the demo checks its answers against one in which
    the police's AVIM no longer learns who the presumed trafficking victim is. Its answers,
    which do name her, must count as wrong; the others stay right."""
    changed = tmp_path / "policies"
    shutil.copytree(shipped_policy_dir(), changed)
    rules = changed / "rules" / "approaches.yaml"
    text = rules.read_text()
    marker = "partner_types: [trafficking_care_coordination, police, zvh]"
    assert text.count(marker) == 1
    rules.write_text(text.replace(marker, "partner_types: [trafficking_care_coordination, zvh]"))

    assert await run_demo(tmp_path / "demo", expect=load_policy_dir(changed)) == 1
    out = capsys.readouterr().out
    assert "demo FAILED" in out
    assert "[FAIL] police_avim / analysis_and_plan" in out
    assert "[ok] trafficking-care-coordination / analysis_and_plan" in out


async def test_a_mapping_error_fails_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The police's mapping with a typo'd key: `ketenpoort source check` reports it with its
    place, and the demo fails before it starts the gateway."""
    good = mapping_text("police")
    marker = "path: warnings.weapon"
    assert good.count(marker) == 1
    bad = good.replace(marker, "paht: warnings.weapon")
    line = next(n for n, text in enumerate(bad.splitlines(), start=1) if "paht" in text)

    assert await run_demo(tmp_path / "demo", mappings={"police": bad}) == 1
    out = capsys.readouterr().out
    assert "[FAIL] ketenpoort source check --config police/source.toml" in out
    assert re.search(rf"police/police-rest.yaml:{line}:\d+: unknown key 'paht', "
                     r"did you mean 'path'\?", out)
    assert "[ok] ketenpoort source check --config ggz/source.toml" in out
    assert "demo FAILED" in out
    assert "Case 1" not in out


async def test_a_value_a_mapping_carries_wrongly_fails_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The municipality's mapping passes the check but reads the address from the household
    column: the values its database gives through the runtime are not what its records say,
    and the demo's value checks catch it."""
    good = mapping_text("municipality")
    marker = "mun.brp_address: {type: text, query: person, column: adres}"
    assert good.count(marker) == 1
    wrong = good.replace(marker, marker.replace("adres", "huishouden"))

    assert await run_demo(tmp_path / "demo", mappings={"municipality": wrong}) == 1
    out = capsys.readouterr().out
    assert "[ok] ketenpoort source check --config municipality/source.toml" in out
    assert re.search(r"\[FAIL\] .*mun.brp_address: value is not the policy's form", out)
    assert "demo FAILED" in out
