"""The policy core stays pure: no transport, storage, file system, process or clock imports;
the use cases take no store from the storage layer, only its rows, values and errors."""

from __future__ import annotations

import ast
import dataclasses
import enum
import importlib
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
    of the gateway (tests/test_partner_boundary.py holds the whole partner side to its
    boundary)."""
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


# What the use cases (gateway/broker) may take from the storage layer: the rows and values
# the stores hand over, the errors they raise and a few constants. Every store itself reaches
# the use cases through a protocol (gateway.broker.ports, and beside the use case that needs
# it), so the use cases run as well on the in-memory fakes of tests/broker.
BROKER_MAY_IMPORT_FROM_STORE = {
    "gateway.store.cases": {"CaseRow", "CaseSnapshot", "EntryRow", "IdentifiedBy", "PersonRow"},
    "gateway.store.errors": {
        "CaseNotFound", "CaseShredded", "PersonConflict", "PersonNotFound", "PhaseConflict",
        "StoreError",
    },
    "gateway.store.request_ids": {"PriorRequest", "RequestClaim"},
    "gateway.store.case_events": {"CaseEventRow", "MAX_PAGE"},
    "gateway.store.case_plan": {
        "ActionFinished", "ActionNotFound", "ActionRow", "ActionStatus", "LIVE_STATUSES",
        "MeetingAlreadyRecorded", "MeetingNotFound", "MeetingRow", "Notice",
    },
    "gateway.store.case_work": {
        "CaseListing", "CasePersonRow", "Holder", "ListFilter", "RegieKind", "StateConflict",
    },
    "gateway.store.holds": {"ALL_CASES", "Hold"},
    "gateway.store.partner_export": {"ExportScope", "ExportView", "RELEASED_OUTCOMES"},
    "gateway.store.persons": {"PersonLink", "pseudonyms_of"},
    "gateway.store.retention": {"DEFAULT_PAGE", "DueCase", "RecordOf", "ShreddedCase"},
    "gateway.store.reviews": {
        "NotBreakGlassDisclosure", "Review", "ReviewAlreadyClosed", "ReviewClosure",
        "ReviewStatus", "SealedComment", "Verdict",
    },
}


def _store_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) of every name ``path`` takes from gateway.store."""
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, "*") for alias in node.names
                         if _forbidden_store(alias.name))
        elif isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            if module == "gateway" and any(a.name == "store" for a in node.names):
                found.append((node.lineno, "gateway.store", "*"))
            elif _forbidden_store(module):
                found.extend((node.lineno, module, alias.name) for alias in node.names)
    return found


def _forbidden_store(module: str) -> bool:
    return module == "gateway.store" or module.startswith("gateway.store.")


def test_the_use_cases_take_only_rows_values_and_errors_from_the_store() -> None:
    paths = sorted((ROOT / "gateway" / "broker").glob("*.py"))
    assert paths, "gateway/broker has no modules"
    violations = [
        f"{path.name}:{line}: imports {name} from {module}"
        for path in paths
        for line, module, name in _store_imports(path)
        if name not in BROKER_MAY_IMPORT_FROM_STORE.get(module, set())
    ]
    assert not violations, "\n".join(violations)


def test_what_the_use_cases_may_import_from_the_store_holds_no_store() -> None:
    """The allowed names are rows, values, errors, constants and pure helpers: no class that
    holds a database engine may slip into the list."""
    for module_name, names in BROKER_MAY_IMPORT_FROM_STORE.items():
        module = importlib.import_module(module_name)
        for name in names:
            obj = getattr(module, name)
            if not isinstance(obj, type):
                continue  # a constant, a type alias or a function of values
            assert (
                dataclasses.is_dataclass(obj) or issubclass(obj, (Exception, enum.Enum))
            ), f"{module_name}.{name} is neither a row, a value nor an error"


def test_the_store_check_catches_what_it_should(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from gateway.store.cases import CaseRepository, CaseRow\n"
        "import gateway.store.audit_log\n"
        "from gateway import store\n",
        encoding="utf-8",
    )
    assert _store_imports(sample) == [
        (1, "gateway.store.cases", "CaseRepository"),
        (1, "gateway.store.cases", "CaseRow"),
        (2, "gateway.store.audit_log", "*"),
        (3, "gateway.store", "*"),
    ]
