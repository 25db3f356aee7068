"""The policy core stays pure: no transport, storage, file system, process or clock imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "gateway" / "core"

FORBIDDEN = (
    "grpc", "sqlalchemy", "psycopg", "gateway.server", "gateway.store", "gateway.crypto",
    "gateway.cli", "gateway.api", "adapters", "os", "pathlib", "io", "socket", "subprocess",
    "asyncio", "time", "datetime", "shutil", "tempfile", "importlib", "urllib.request",
    "http", "threading", "multiprocessing", "random", "secrets",
)
FORBIDDEN_CALLS = {"open", "__import__", "exec", "eval", "input"}


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # Relative imports stay inside the core package.
                continue
            base = node.module or ""
            modules = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in FORBIDDEN_CALLS):
            found.append(f"{path.name}:{node.lineno}: calls {node.func.id}()")
            continue
        else:
            continue
        for module in modules:
            if _forbidden(module):
                found.append(f"{path.name}:{node.lineno}: imports {module}")
    return found


def test_core_modules_import_nothing_impure() -> None:
    paths = sorted(CORE.glob("*.py"))
    assert paths, "gateway/core has no modules"
    violations = [v for path in paths for v in _violations(path)]
    assert not violations, "\n".join(violations)


def test_the_checker_catches_what_it_should(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os.path\nfrom gateway.store import x\nfrom grpc import aio\n"
                      "import yaml\nfrom . import model\nopen('f')\n", encoding="utf-8")
    assert _violations(sample) == [
        "sample.py:1: imports os.path",
        "sample.py:2: imports gateway.store",
        "sample.py:2: imports gateway.store.x",
        "sample.py:3: imports grpc",
        "sample.py:3: imports grpc.aio",
        "sample.py:6: calls open()",
    ]


def test_importing_the_core_loads_no_transport_or_storage() -> None:
    probe = (
        "import sys, gateway.core\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'grpc', 'sqlalchemy', 'psycopg', 'cryptography', 'google', 'adapters'} "
        "or m.startswith(('gateway.server', 'gateway.store', 'gateway.crypto', 'gateway.cli')))\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""


def test_the_witness_side_loads_no_storage_or_server() -> None:
    """The formats a partner's witness checks (gateway.tlog) load without the gateway's
    storage or server, and the witness itself (adapters/log_witness.py) imports nothing else
    of the gateway. (The adapters package's own __init__ still loads more; not this one's.)"""
    probe = (
        "import sys, gateway.tlog.cosignature, gateway.tlog.notes, gateway.tlog.merkle\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'psycopg'} "
        "or m.startswith(('gateway.server', 'gateway.store', 'gateway.cli', 'adapters')))\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""
    tree = ast.parse((ROOT / "adapters" / "log_witness.py").read_text(encoding="utf-8"))
    gateway_imports = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gateway")
    }
    assert gateway_imports <= {
        "gateway.api.v1", "gateway.tlog.cosignature", "gateway.tlog.merkle", "gateway.tlog.notes"
    }
