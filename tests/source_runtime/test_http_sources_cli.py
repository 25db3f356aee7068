"""`ketenpoort source check` and `source test` with the REST and FHIR mappings, against the
loopback systems; the FHIR server here requires a client certificate (mutual TLS), given in
source.toml's [system] table."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.source_runtime.cli import main
from gateway.cli.policy_catalogue import catalogue_document
from gateway.crypto.devkeys import init_dev_keys
from gateway.demo_systems.fhir_server import FhirServer, ggz_client
from gateway.demo_systems.police_rest import PoliceRecord, PoliceRestServer
from gateway.policyfiles import load_policy_dir
from tests.source_runtime.http_systems import EXAMPLES, ROOT


def _source_toml(tmp_path: Path, partner: str, mapping: str, system: str) -> Path:
    (tmp_path / "catalogue.json").write_text(json.dumps(
        catalogue_document(load_policy_dir(ROOT / "policies"))), encoding="utf-8")
    (tmp_path / mapping).write_text((EXAMPLES / mapping).read_text(encoding="utf-8"),
                                    encoding="utf-8")
    config = tmp_path / "source.toml"
    config.write_text(f"""\
partner_id = "{partner}"
listen = "127.0.0.1:0"
catalogue = "catalogue.json"
mapping = "{mapping}"
[keys]
dir = "keys"
[system]
{system}
""", encoding="utf-8")
    return config


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    init_dev_keys(tmp_path / "keys", ["ggz"])
    return tmp_path / "keys"


@pytest.fixture
def mtls_fhir(keys: Path) -> Iterator[FhirServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=keys / "ca/ca.pem")
    context.load_cert_chain(keys / "gateway/tls.pem", keys / "gateway/tls.key.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    server = FhirServer(token="t0ken")
    server.http.tls = context
    server.add(*ggz_client(patient_id="p1", bsn="111222333", given=["Jan"], family="de Vries",
                           birth_date="1985-03-04", diagnosis="Intermittent explosive disorder",
                           episode_status="onhold", care_team="FACT team Enschede"))
    with server:
        yield server


def _system_tls(keys: Path, base_url: str, *, client_cert: bool = True) -> str:
    lines = [f'base_url = "{base_url}"', 'auth = {bearer_token_file = "token"}',
             "[system.tls]", f'ca_file = "{keys / "ca/ca.pem"}"']
    if client_cert:
        lines += [f'client_cert_file = "{keys / "partners/ggz/tls.pem"}"',
                  f'client_key_file = "{keys / "partners/ggz/tls.key.pem"}"']
    return "\n".join(lines)


def test_source_test_reads_the_fhir_server_over_mutual_tls(
    tmp_path: Path, keys: Path, mtls_fhir: FhirServer, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "token").write_text("t0ken")
    config = _source_toml(tmp_path, "ggz", "ggz-fhir.yaml",
                          _system_tls(keys, mtls_fhir.base_url))
    assert main(["check", "--config", str(config)]) == 0
    assert "fhir mapping of 3 fields for partner type ggz: ok" in capsys.readouterr().out
    assert main(["test", "--config", str(config), "--bsn", "111222333"]) == 0
    out = capsys.readouterr().out
    assert "lookup: known, role 'client'" in out
    assert "treatment on hold" in out and "Intermittent explosive disorder" in out
    assert "3 supplied, 0 unavailable" in out


def test_without_the_client_certificate_the_fhir_server_is_unavailable(
    tmp_path: Path, keys: Path, mtls_fhir: FhirServer, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "token").write_text("t0ken")
    config = _source_toml(tmp_path, "ggz", "ggz-fhir.yaml",
                          _system_tls(keys, mtls_fhir.base_url, client_cert=False))
    assert main(["test", "--config", str(config), "--bsn", "111222333"]) == 1
    assert "the system could not answer" in capsys.readouterr().err


def test_source_test_shows_a_police_value_that_does_not_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "token").write_text("police-token")
    police = PoliceRestServer(token="police-token")
    police.add(PoliceRecord(id="P-1", role="suspect", name="Jan de Vries",
                            birth_date="1985-03-04", bsn="111222333",
                            raw={"warnings": {"weapon": {"text": "nested"}}}))
    with police:
        config = _source_toml(
            tmp_path, "police", "police-rest.yaml",
            f'base_url = "{police.base_url}"\ntls = {{}}\n'
            'auth = {bearer_token_file = "token"}')
        code = main(["test", "--config", str(config), "--name", "Jan de Vries",
                     "--dob", "1985-03-04"])
    out = capsys.readouterr().out
    assert code == 1
    assert "lookup: known, role 'suspect'" in out
    weapon = next(line for line in out.splitlines() if line.startswith("police.weapon_flag"))
    assert "nested" in weapon and "an object where a value was expected" in weapon
    assert "0 supplied, 1 unavailable" in out


def test_source_check_reports_a_typo_in_a_rest_mapping_with_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _source_toml(tmp_path, "police", "police-rest.yaml", 'base_url = "http://x"')
    mapping = tmp_path / "police-rest.yaml"
    mapping.write_text(mapping.read_text().replace("    items: items", "    itmes: items"))
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    line = next(i for i, text in enumerate(mapping.read_text().splitlines(), 1)
                if "itmes" in text)
    assert f"{mapping}:{line}:5: unknown key 'itmes', did you mean 'items'?" in err
