"""`ketenpoort source check` and `ketenpoort source test` on real files and a real database."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import pytest

from adapters.source_runtime.cli import main
from gateway.cli.policy_catalogue import catalogue_document
from gateway.core import CompiledPolicy
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir

GOOD = """\
kind: sql
partner_type: municipality
queries:
  person: {sql: "SELECT adres, status, geboren FROM personen WHERE bsn = :bsn"}
fields:
  mun.brp_address: {type: text, query: person, column: adres}
  mun.housing_status: {type: text, query: person, column: status, convert: {map: {K: owns}}}
lookup: {query: person, role: resident}
"""
BROKEN = """\
kind: sql
partner_type: municipality
queries:
  person: {sql: "SELECT adres FROM personen WHERE bsn = :bsn"}
fields:
  mun.brp_adress: {type: text, query: person, column: adres}
  mun.debts: {type: date, query: person, column: adres}
  mun.income: {type: text, query: person, colum: adres}
  police.incidents: {type: text, query: person, column: adres}
lookup: {query: person, role: resident}
"""


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return load_policy_dir(shipped_policy_dir())


def setup(tmp_path: Path, policy: CompiledPolicy, mapping: str) -> Path:
    (tmp_path / "catalogue.json").write_text(json.dumps(catalogue_document(policy)))
    (tmp_path / "mapping.yaml").write_text(mapping)
    with sqlite3.connect(tmp_path / "system.db") as db:
        db.execute("CREATE TABLE personen (bsn, adres, status, geboren)")
        db.execute("INSERT INTO personen VALUES ('999990019', 'Dorpsstraat 1', 'X', '')")
    config = tmp_path / "source.toml"
    config.write_text(textwrap.dedent("""\
        partner_id = "municipality"
        listen = "127.0.0.1:0"
        catalogue = "catalogue.json"
        mapping = "mapping.yaml"
        [keys]
        dir = "keys"
        [system]
        url = "sqlite:///system.db"
        """))
    return config


def test_check_reports_each_problem_with_its_place(
    tmp_path: Path, policy: CompiledPolicy, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup(tmp_path, policy, BROKEN)
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    mapping = tmp_path / "mapping.yaml"
    assert (f"{mapping}:6:3: unknown field 'mun.brp_adress', did you mean 'mun.brp_address'?"
            in err)
    assert (f"{mapping}:7:21: type 'date' is not the catalogue's kind of 'mun.debts': 'text'"
            in err)
    assert f"{mapping}:8:43: unknown key 'colum', did you mean 'column'?" in err
    assert (f"{mapping}:9:3: field 'police.incidents' is held by partner type 'police', "
            "not 'municipality'") in err
    assert err[-1] == f"4 problems in {mapping}"


def test_check_passes_a_good_mapping(
    tmp_path: Path, policy: CompiledPolicy, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup(tmp_path, policy, GOOD)
    assert main(["check", "--config", str(config)]) == 0
    assert "sql mapping of 2 fields for partner type municipality: ok" in capsys.readouterr().out


def test_test_shows_raw_converted_and_problem_per_field(
    tmp_path: Path, policy: CompiledPolicy, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup(tmp_path, policy, GOOD)
    assert main(["test", "--config", str(config), "--bsn", "999990019"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "lookup: known, role 'resident'"
    rows = {line.split()[0]: line for line in out[2:-1]}
    assert "'Dorpsstraat 1'  'Dorpsstraat 1'" in rows["mun.brp_address"]
    assert "'X'" in rows["mun.housing_status"] and "map does not list" in rows[
        "mun.housing_status"]
    assert out[-1].startswith("1 supplied, 1 unavailable")
    assert main(["test", "--config", str(config), "--bsn", "123456782"]) == 0
    assert "does not know this person" in capsys.readouterr().out


def test_a_typo_in_the_configuration_is_named(
    tmp_path: Path, policy: CompiledPolicy, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup(tmp_path, policy, GOOD)
    config.write_text(config.read_text().replace("listen", "lisen"))
    assert main(["check", "--config", str(config)]) == 2
    assert "unknown key 'lisen', did you mean 'listen'?" in capsys.readouterr().err
