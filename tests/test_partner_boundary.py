"""The partner side (package ``adapters``) is installable without the gateway: it never imports
the gateway's server, store, use cases, registry, policy core or CLI, nor the gateway's
dependencies (SQLAlchemy, Alembic); its lean client modules not even YAML or the Prometheus
client, which only the source runtime (``adapters.source_runtime``, ``adapters.systems``)
may use. Checked twice: by importing every module in a fresh interpreter and looking at what
got loaded, and statically, by every ``import`` in every file under adapters/ (which also
covers imports inside functions that the first check would not run)."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = ROOT / "adapters"

# Never loaded by any partner-side module (CONTRACT §2).
GATEWAY_ONLY = (
    "sqlalchemy", "alembic", "gateway.server", "gateway.store", "gateway.core",
    "gateway.broker", "gateway.registry", "gateway.cli.main",
)
# The gateway's own modules and dependencies the static check refuses (gateway.cli.entry, the
# console front door, is the one gateway.cli module a partner may reach).
STATIC_FORBIDDEN = (
    "sqlalchemy", "alembic", "psycopg", "grpc_health", "grpc_reflection", "gateway.server",
    "gateway.store", "gateway.core", "gateway.broker", "gateway.registry", "gateway.cli",
    "gateway.reports", "gateway.sources", "gateway.policyfiles",
)
# What the partner side may take from the gateway package: the generated contract, the lean
# crypto (CONTRACT §2: no keystore, envelope or key providers), the log formats and the
# two-sided formats.
ALLOWED_GATEWAY = (
    "gateway.api", "gateway.tlog", "gateway.formats", "gateway.cli.entry",
    *(f"gateway.crypto.{m}" for m in (
        "sealing", "submissions", "source_requests", "source_answers", "keyids", "_pem",
        "errors", "layout", "devkeys", "hpke_base",
    )),
)
# Only the source runtime and its adapters read mapping files and serve metrics.
RUNTIME_PACKAGES = ("adapters.source_runtime", "adapters.systems")
RUNTIME_ONLY = ("yaml", "prometheus_client")
# An adapter may use the library its own extra brings (CONTRACT §1: the sql extra is
# SQLAlchemy), and only that adapter: the SQL adapter talks to the partner's own database.
ADAPTER_LIBRARIES = {"adapters.systems.sql": ("sqlalchemy",)}
# The lean client modules a partner's own code imports; with RUNTIME_ONLY not loaded.
LEAN = (
    "adapters", "adapters.client", "adapters.case_client", "adapters.channels",
    "adapters.gateway_keys", "adapters.gateway_trust", "adapters.log_witness",
    "adapters.resending", "adapters.sealed", "adapters.source_requests",
    "adapters.source_server", "adapters.submitting", "adapters.tokens",
)


def _within(module: str, names: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in names)


def partner_modules() -> list[str]:
    """Every module of the adapters package, its subpackages included (the source runtime
    and the systems when they exist)."""
    found = ["adapters"]
    for info in pkgutil.walk_packages([str(ADAPTERS)], "adapters."):
        found.append(info.name)
    return sorted(found)


def _loaded_after_import(modules: list[str]) -> dict[str, list[str]]:
    """Per module: the modules of interest loaded by importing it alone, in a fresh
    interpreter."""
    probe = (
        "import importlib, json, sys\n"
        "watch = json.loads(sys.argv[1])\n"
        "importlib.import_module(sys.argv[2])\n"
        "print(json.dumps(sorted(m for m in sys.modules if any("
        "m == w or m.startswith(w + '.') for w in watch))))\n"
    )
    watch = json.dumps([*GATEWAY_ONLY, *RUNTIME_ONLY])
    loaded: dict[str, list[str]] = {}
    for module in modules:
        result = subprocess.run(
            [sys.executable, "-c", probe, watch, module], cwd=ROOT, capture_output=True,
            text=True, timeout=120,
        )
        assert result.returncode == 0, f"importing {module} failed:\n{result.stderr}"
        loaded[module] = json.loads(result.stdout)
    return loaded


def test_the_walk_finds_the_partner_modules() -> None:
    modules = partner_modules()
    assert set(LEAN) <= set(modules)
    for package in RUNTIME_PACKAGES:
        if (ROOT / package.replace(".", "/") / "__init__.py").exists():
            assert package in modules


def test_no_partner_module_loads_the_gateway() -> None:
    loaded = _loaded_after_import(partner_modules())
    violations = {
        module: [m for m in names if _within(m, GATEWAY_ONLY)
                 and not _within(m, ADAPTER_LIBRARIES.get(module, ()))]
        for module, names in loaded.items()
    }
    violations = {m: v for m, v in violations.items() if v}
    assert not violations, f"partner modules load gateway-only modules: {violations}"


def test_the_lean_client_modules_load_no_yaml_or_metrics() -> None:
    loaded = _loaded_after_import(list(LEAN))
    violations = {
        module: [m for m in names if _within(m, RUNTIME_ONLY)] for module, names in loaded.items()
    }
    violations = {m: v for m, v in violations.items() if v}
    assert not violations, f"lean partner modules load runtime-only modules: {violations}"


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_violations(path: Path, module: str) -> list[str]:
    """Every import in ``path`` (the file of ``module``) that the partner side may not make."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    runtime = _within(module, RUNTIME_PACKAGES)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            base = node.module or ""
            names = [base] if base != "gateway" else [f"gateway.{a.name}" for a in node.names]
        else:
            continue  # relative imports stay inside adapters
        for name in names:
            if _within(name, ADAPTER_LIBRARIES.get(module, ())):
                continue
            problem = _refused(name, runtime)
            if problem:
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                found.append(f"{shown}:{node.lineno}: {problem} {name}")
    return found


def _refused(name: str, runtime: bool) -> str:
    if _within(name, ("gateway.cli.entry",)):
        return ""
    if _within(name, STATIC_FORBIDDEN):
        return "imports gateway-only"
    if name.split(".")[0] == "gateway" and name != "gateway" and not _within(
        name, ALLOWED_GATEWAY
    ):
        return "imports a gateway module outside the partner's allowed list:"
    if _within(name, RUNTIME_ONLY) and not runtime:
        return "imports (runtime only)"
    return ""


def test_every_partner_file_imports_only_what_it_may() -> None:
    paths = sorted(ADAPTERS.rglob("*.py"))
    assert paths
    violations = [v for p in paths for v in import_violations(p, _module_of(p))]
    assert not violations, "\n".join(violations)


def test_the_static_check_catches_what_it_should(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sqlalchemy\n"
        "from gateway.broker.sealed_content import sealed_box\n"
        "from gateway import server\n"
        "from gateway.policyfiles import x\n"
        "from gateway.reports import y\n"
        "import yaml\n"
        "from gateway.formats.sealed_content import sealed_box\n"
        "from gateway.crypto.sealing import SealedBox\n"
        "from gateway.crypto.keystore import Keystore\n"
        "from gateway.cli.entry import main\n"
        "from gateway.cli.main import main\n"
        "from . import tokens\n",
        encoding="utf-8",
    )
    found = [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in
             import_violations(sample, "adapters.sample")]
    assert found == ["1", "2", "3", "4", "5", "6", "9", "11"]
    # The source runtime may read YAML, and nothing else changes for it.
    runtime = [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in
               import_violations(sample, "adapters.source_runtime.sample")]
    assert runtime == ["1", "2", "3", "4", "5", "9", "11"]


def test_the_formats_load_no_gateway_side() -> None:
    """gateway.formats, what both sides share, stays as lean as the partner side."""
    probe = (
        "import sys, gateway.formats.sealed_content, gateway.formats.gateway_key_statement, "
        "gateway.formats.log_origin\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'alembic', 'yaml', 'prometheus_client'} or m.startswith(("
        "'gateway.server', 'gateway.store', 'gateway.core', 'gateway.broker', "
        "'gateway.registry', 'gateway.cli')))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""
    for path in sorted((ROOT / "gateway" / "formats").glob("*.py")):
        # The key statement is signed by the gateway with its key ring: the formats may name
        # the ring's protocols (gateway.crypto.provider: types only, no keys, no I/O).
        violations = [v for v in import_violations(path, "adapters.formats")
                      if not v.endswith(" gateway.crypto.provider")]
        assert not violations, violations
