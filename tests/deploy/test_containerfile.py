"""The Containerfile: a builder stage that makes the wheel and the virtual environment, a final
stage without compilers or pip that runs as a non-root user with its writable paths declared
as volumes; and its install step, run here in a clean virtual environment: the wheel built
from this tree installs with the extras the image names, from published wheels only, and the
gateway's command and PostgreSQL driver work."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "container" / "Containerfile"


def _stages() -> list[list[str]]:
    """The instructions of each stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text(encoding="utf-8"))
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def _image_install() -> tuple[str, list[str]]:
    """The extras and the options of the builder's `pip install` of the wheel."""
    builder = _stages()[0]
    (run,) = [i for i in builder if "/opt/ketenpoort/bin/pip install" in i]
    words = shlex.split(run.split("/opt/ketenpoort/bin/pip install", 1)[1])
    (target,) = [w for w in words if "ketenpoort-*.whl" in w]
    extras = re.fullmatch(r".*ketenpoort-\*\.whl\)\[([a-z,]+)\]", target)
    assert extras, target
    return extras.group(1), [w for w in words if w.startswith("--")]


def test_two_stages_and_a_final_image_without_build_tools() -> None:
    builder, final = _stages()
    assert builder[0].endswith(" AS builder")
    assert any(i.startswith("RUN python -m pip wheel") for i in builder)
    final_text = "\n".join(final)
    assert "COPY --from=builder /opt/ketenpoort /opt/ketenpoort" in final_text
    for tool in ("gcc", "build-essential", "apt-get install", "pip install", "COPY . "):
        assert tool not in final_text, tool
    (user,) = [i for i in final if i.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in ("0", "root")
    assert any(i.startswith("VOLUME ") for i in final)
    assert any(i.startswith("HEALTHCHECK ") and "8081/livez" in i for i in final)


def test_the_image_install_step_in_a_clean_virtual_environment(tmp_path: Path) -> None:
    extras, options = _image_install()
    assert "--only-binary=:all:" in options
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = wheels.glob("ketenpoort-*.whl")
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *options,
         f"{wheel}[{extras}]"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr
    # The command the image runs, and what the gateway needs on PostgreSQL.
    help_text = subprocess.run([str(env / "bin" / "ketenpoort"), "serve", "--help"],
                               capture_output=True, text=True, timeout=60, check=True).stdout
    assert "--config" in help_text and "--metrics-address" in help_text
    subprocess.run(
        [str(python), "-c", "import psycopg, gateway.server.app, gateway.api.v1.exchange_pb2"],
        check=True, timeout=60,
    )
    # An installed (not editable) gateway carries its shipped policies: the embedded default
    # finds them and they pass the policy check.
    checked = subprocess.run(
        [str(env / "bin" / "ketenpoort"), "policy", "check"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
