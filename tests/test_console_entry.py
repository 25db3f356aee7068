"""The `ketenpoort` front door (gateway.cli.entry): `source` commands go to the partner's
source runtime without loading the gateway, everything else to the gateway's CLI, and a
missing extra ends in one line saying what to install, exit 2.

Each case runs in a fresh interpreter in which the named modules cannot be imported, as in an
installation without them (tests/integration/test_partner_install.py does it for real)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.cli.entry import GATEWAY_MISSING, SOURCE_RUNTIME_MISSING

ROOT = Path(__file__).resolve().parents[1]

# Makes the modules in argv[1] (JSON) unimportable, runs the entry with argv[2:], and prints
# which gateway-side modules were loaded on the way, as the last line of stdout.
PROBE = """
import importlib.abc, json, sys
blocked = json.loads(sys.argv[1])
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Missing())
from gateway.cli.entry import main
try:
    status = main(sys.argv[2:])
except SystemExit as exc:
    status = exc.code
loaded = sorted(m for m in sys.modules if m.startswith(("gateway.server", "gateway.store",
    "gateway.core", "gateway.broker", "gateway.cli.main", "sqlalchemy")))
print(json.dumps({"status": status, "loaded": loaded}))
"""


def _entry(blocked: list[str], *words: str) -> tuple[int, list[str], str]:
    ran = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(blocked), *words], cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    return int(result["status"]), list(result["loaded"]), ran.stderr


def test_without_the_gateway_extra_a_gateway_command_says_what_to_install() -> None:
    for missing in ("sqlalchemy", "yaml", "alembic"):
        status, _, stderr = _entry([missing], "serve", "--help")
        assert status == 2, missing
        assert stderr.strip() == GATEWAY_MISSING, missing


def test_with_the_gateway_installed_the_gateway_cli_answers() -> None:
    status, loaded, _ = _entry([], "serve", "--help")
    assert status == 0
    assert "gateway.cli.main" in loaded


def test_a_source_command_loads_nothing_of_the_gateway() -> None:
    status, loaded, stderr = _entry(["adapters.source_runtime"], "source", "serve")
    assert status == 2
    assert stderr.strip() == SOURCE_RUNTIME_MISSING
    assert loaded == []
