"""Every configuration error is one line on stderr and a non-zero exit, never a traceback:
`ketenpoort serve --config` and `ketenpoort config check` run as the processes an operator runs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.crypto.devkeys import init_dev_keys
from gateway.crypto.layout import GatewayKeyPaths, PartnerKeyPaths
from gateway.policyfiles import load_policy_dir
from gateway.registry.dev import register_dev_partners
from gateway.server.config import shipped_policy_dir
from tests.conftest import pg_server_url

# Generous: a process imports the gateway before it can say anything.
RUN_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def module_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("keys") / "keys"
    init_dev_keys(keys, sorted(load_policy_dir(shipped_policy_dir()).partners))
    return keys


@pytest.fixture
def setup(module_keys: Path, tmp_path: Path) -> Path:
    """A data directory with keys and registry of its own."""
    keys = tmp_path / "keys"
    shutil.copytree(module_keys, keys)
    partners = sorted(p.name for p in (keys / "partners").iterdir() if p.is_dir())
    register_dev_partners(keys, tmp_path / "registry", partners)
    return tmp_path


def write(data: Path, **settings: object) -> Path:
    """A configuration that serves, with ``settings`` replacing or adding top-level keys."""
    values: dict[str, object] = {
        "listen": "127.0.0.1:0",
        "database_url": f"sqlite:///{data / 'gateway.db'}",
        "policy_dir": str(shipped_policy_dir()),
        "policy_reload_interval_s": 0,
        "keys_dir": str(data / "keys"),
        "data_dir": str(data),
        "metrics_port": 0,
    }
    values.update(settings)
    lines = []
    for key, value in values.items():
        if isinstance(value, str):
            lines.append(f"{key} = {value!r}")
        else:
            lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    path = data / "gateway.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli.main", *args],
        env={**os.environ, "KETENPOORT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _garbage_tls_key(data: Path) -> None:
    GatewayKeyPaths.under(data / "keys").tls_key.write_text("not a key\n")


def _another_tls_key(data: Path) -> None:
    # A key that parses, but is not the one of the gateway's certificate.
    other = PartnerKeyPaths.under(data / "keys", "police").tls_key
    shutil.copyfile(other, GatewayKeyPaths.under(data / "keys").tls_key)


def _no_pseudonym_key(data: Path) -> None:
    GatewayKeyPaths.under(data / "keys").pseudonym_key.unlink()


def _pseudonym_key_is_a_directory(data: Path) -> None:
    path = GatewayKeyPaths.under(data / "keys").pseudonym_key
    path.unlink()
    path.mkdir()


def _unclosed_list(data: Path) -> None:
    with (data / "gateway.toml").open("a", encoding="utf-8") as f:
        f.write("algorithms = [\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVE_CASES: list[tuple[str, dict[str, object], Callable[[Path], None] | None, str]] = [
    ("bad database URL", {"database_url": "not a url"}, None, "database: database_url"),
    (
        "unreachable PostgreSQL",
        {"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/test"},
        None,
        "database: cannot open postgresql+psycopg://postgres@127.0.0.1:",
    ),
    ("MySQL", {"database_url": "mysql://u@localhost/db"}, None, "unsupported database backend"),
    ("wrong type", {"token_leeway_s": "thirty"}, None, "token_leeway_s must be a whole number"),
    ("negative deadline", {"source_deadline_s": -1.5}, None, "source_deadline_s must be"),
    ("string port", {"metrics_port": "9464"}, None, "metrics_port must be a port number"),
    ("bad log level", {"log_level": "LOUD"}, None, "log_level must be one of"),
    ("missing key file", {}, _no_pseudonym_key, "keys: cannot load the keys"),
    ("unreadable key file", {}, _pseudonym_key_is_a_directory, "keys: cannot load the keys"),
    ("garbage TLS key", {}, _garbage_tls_key, "tls: "),
    ("TLS key of another", {}, _another_tls_key, "is not the private key of"),
    ("missing policy dir", {"policy_dir": "/nonexistent/policies"}, None, "policy: "),
    ("TOML syntax error", {}, _unclosed_list, "gateway.toml"),
]


@pytest.mark.parametrize(
    ("settings", "breaks", "says"),
    [case[1:] for case in SERVE_CASES],
    ids=[case[0] for case in SERVE_CASES],
)
def test_serve_says_what_is_wrong_in_one_line(
    setup: Path, settings: dict[str, object], breaks: Callable[[Path], None] | None, says: str
) -> None:
    config = write(setup, **settings)
    if breaks is not None:
        breaks(setup)
    line = one_line_error(run("serve", "--config", str(config), home=setup))
    assert line.startswith("ketenpoort: ")
    assert says in line


@pytest.mark.postgres
def test_a_missing_postgresql_database_is_one_line(setup: Path) -> None:
    url = pg_server_url().set(database="ketenpoort_no_such_database")
    config = write(setup, database_url=url.render_as_string(hide_password=False))
    line = one_line_error(run("serve", "--config", str(config), home=setup))
    if "Connection refused" in line:
        pytest.skip("PostgreSQL is not running here")
    assert 'database "ketenpoort_no_such_database" does not exist' in line


def test_the_database_password_is_never_shown(setup: Path) -> None:
    port = _free_port()
    config = write(setup, database_url=f"postgresql+psycopg://u:s3cr3t-pw@127.0.0.1:{port}/x")
    result = run("serve", "--config", str(config), home=setup)
    line = one_line_error(result)
    assert "s3cr3t-pw" not in result.stderr + result.stdout
    assert "u:***@127.0.0.1" in line


def test_a_second_gateway_on_an_address_in_use_does_not_start(setup: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        line = one_line_error(run("serve", "--config", str(write(setup, listen=address)),
                                  home=setup))
    assert line == (
        f"ketenpoort: listen: {address} is already in use: another process (a second "
        "gateway?) listens there"
    )


def test_config_check_says_ok_for_a_configuration_that_serves(setup: Path) -> None:
    result = run("config", "check", "--config", str(write(setup)), home=setup)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")
    assert "Traceback" not in result.stderr


def test_config_check_lists_each_problem_on_a_line_and_exits_1(setup: Path) -> None:
    config = write(setup, database_url="postgresql+psycopg://u@127.0.0.1:1/x")
    _no_pseudonym_key(setup)
    result = run("config", "check", "--config", str(config), home=setup)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["database", "keys"]
    assert all(line.startswith("ketenpoort config check: ") for line in lines)


def test_config_check_of_a_broken_file_is_one_line_and_exit_1(setup: Path) -> None:
    config = write(setup, source_deadline_s=-1)
    result = run("config", "check", "--config", str(config), home=setup)
    assert result.returncode == 1
    assert one_line_error(result).startswith("ketenpoort config check: source_deadline_s")
