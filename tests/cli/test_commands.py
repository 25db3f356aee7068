"""The `ketenpoort` command as a user runs it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.cli.main import main
from gateway.server.config import shipped_policy_dir


def test_keys_init_creates_keys_for_every_partner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "init", str(tmp_path / "keys")]) == 0
    assert "development" in capsys.readouterr().out
    for partner in ("police", "ggz", "municipality", "veilig-thuis", "probation", "zvh"):
        key = tmp_path / "keys" / "partners" / partner / "token.key.pem"
        assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys" / "gateway" / "hpke" / "current").exists()


def test_policy_check_and_test_pass_on_the_shipped_policies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["policy", "check", str(shipped_policy_dir())]) == 0
    assert "policy ok" in capsys.readouterr().out
    assert main(["policy", "test", str(shipped_policy_dir())]) == 0
    assert " 0 failed" in capsys.readouterr().out


def test_policy_check_names_file_and_line_of_a_broken_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "policies"
    shutil.copytree(shipped_policy_dir(), broken)
    rules = broken / "rules" / "care.yaml"
    text = rules.read_text()
    assert "effect: withhold" in text
    rules.write_text(text.replace("effect: withhold", "effect: withold", 1))
    line = text[: text.index("effect: withhold")].count("\n") + 1
    assert main(["policy", "check", str(broken)]) == 1
    err = capsys.readouterr().err
    assert f"rules/care.yaml:{line}:" in err
    assert "did you mean 'withhold'" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_serve_on_the_embedded_default(tmp_path: Path) -> None:
    """Without a configuration the gateway creates its data directory and development keys,
    serves mutual TLS and reports how a partner connects; SIGTERM stops it cleanly."""
    port = _free_port()
    env = {**os.environ, "KETENPOORT_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli.main",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--metrics-port",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    keys = tmp_path / "home" / "keys"
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status is None:
            time.sleep(0.2)
            if not (keys / "partners" / "police" / "tls.pem").exists():
                continue
            partner = keys / "partners" / "police"
            creds = grpc.ssl_channel_credentials(
                (keys / "ca" / "ca.pem").read_bytes(),
                (partner / "tls.key.pem").read_bytes(),
                (partner / "tls.pem").read_bytes(),
            )
            with grpc.secure_channel(f"localhost:{port}", creds) as channel:
                try:
                    status = (
                        health_pb2_grpc.HealthStub(channel)
                        .Check(health_pb2.HealthCheckRequest(), timeout=2)
                        .status
                    )
                except grpc.RpcError:
                    status = None
        assert status == health_pb2.HealthCheckResponse.SERVING
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert f"serving on 127.0.0.1:{port} (mtls)" in out
    assert "how a partner connects" in out
    assert (tmp_path / "home" / "ketenpoort.db").exists()


def test_policy_check_reports_deep_nesting_as_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "policies"
    shutil.copytree(shipped_policy_dir(), broken)
    (broken / "rules" / "deep.yaml").write_text("rules:\n  - " + "[" * 100_000 + "\n")
    assert main(["policy", "check", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "rules/deep.yaml:2:" in err and "nesting deeper than 64 levels" in err
    assert "Traceback" not in err and "RecursionError" not in err
