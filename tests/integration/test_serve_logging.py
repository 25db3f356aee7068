"""`ketenpoort serve` writes its log as configured: JSON lines at the configured level, one
request line per call; and a second gateway on the same address does not start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.crypto.devkeys import init_dev_keys
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir
from tests.integration.helpers import register
from tests.integration.serve_process import start_serve, write_config

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("serve-log-keys") / "keys"
    init_dev_keys(keys, sorted(load_policy_dir(shipped_policy_dir()).partners))
    return keys


async def test_serve_writes_json_request_lines(
    db_url: str, tmp_path: Path, keys: Path
) -> None:
    config = write_config(tmp_path / "gateway.toml", database_url=db_url, keys=keys,
                          data=tmp_path / "data", sources={})
    # Top-level keys go before the file's first table.
    config.write_text('log_format = "json"\nlog_level = "INFO"\n' + config.read_text())
    serving = start_serve(config, tmp_path / "home")
    try:
        case_id = await register(serving.client(keys, "police"))
    finally:
        assert serving.stop() == 0, serving.output
    lines = [json.loads(line) for line in serving.output.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "ketenpoort.request"]
    # The client library asks for the gateway's keys before it seals the registration.
    assert [(r["rpc"], r["partner"], r["status"]) for r in requests] == [
        ("ExchangeService/GetGatewayKeys", "police", "OK"),
        ("ExchangeService/RegisterCase", "police", "OK"),
    ]
    assert case_id not in serving.output
    # Every line on stderr is JSON: nothing of the log is left in the text format.
    assert not [line for line in serving.output.splitlines()
                if " INFO " in line or " WARNING " in line]

    # A second gateway on the address the first one took (and still might): refused.
    second = start_serve(config, tmp_path / "home")
    try:
        third = subprocess.run(
            [sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config),
             "--listen", second.address],
            capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        assert second.stop() == 0, second.output
    assert third.returncode != 0
    assert third.stderr.strip() == (
        f"ketenpoort: listen: {second.address} is already in use: another process "
        "(a second gateway?) listens there"
    )
