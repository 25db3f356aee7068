"""The `ketenpoort` console command's front door.

One distribution installs both sides: a partner installs the lean base (the client library,
the source server and the formats) and perhaps the source runtime, an operator adds the
gateway extra. This module decides which side a command belongs to before anything heavy is
imported: `ketenpoort source ...` goes to the partner's source runtime
(adapters.source_runtime.cli) without loading the gateway's server, store or policy code, and
every other command goes to the gateway's CLI (gateway.cli.main). A missing extra ends in one
line that says what to install, not a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import cast

__all__ = ["GATEWAY_MISSING", "SOURCE_RUNTIME_MISSING", "main", "source_main"]

GATEWAY_MISSING = "ketenpoort: the gateway is not installed here: pip install 'ketenpoort[gateway]'"
SOURCE_RUNTIME_MISSING = (
    "ketenpoort: the source runtime (adapters.source_runtime.cli) is not part of this "
    "installation"
)
SOURCE_EXTRA_MISSING = (
    "ketenpoort: the source runtime's dependencies are not installed here: "
    "pip install 'ketenpoort[source]' (or the extra of your adapter: rest, fhir, sql, csv)"
)

# Top-level modules only the gateway extra (or postgres) brings: an import of one of them
# failing means the extra is not installed, not a fault in the code.
GATEWAY_DEPENDENCIES = frozenset(
    {"sqlalchemy", "alembic", "yaml", "grpc_health", "grpc_reflection", "prometheus_client"}
)
# What the source extra brings; each adapter's own extra adds the rest.
SOURCE_DEPENDENCIES = frozenset({"yaml", "prometheus_client"})
SOURCE_RUNTIME_MODULES = frozenset({"adapters.source_runtime", "adapters.source_runtime.cli"})

EXIT_NOT_INSTALLED = 2

Main = Callable[[Sequence[str] | None], int]


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["source"]:
        return source_main(words[1:])
    try:
        gateway_main = _load("gateway.cli.main")
        return gateway_main(words)
    except ModuleNotFoundError as exc:
        if _top(exc.name) not in GATEWAY_DEPENDENCIES:
            raise
        print(GATEWAY_MISSING, file=sys.stderr)
        return EXIT_NOT_INSTALLED


def source_main(argv: Sequence[str] | None = None) -> int:
    """`ketenpoort source ...`: the partner's source runtime, the same as `ketenpoort-source`."""
    try:
        runtime_main = _load("adapters.source_runtime.cli")
    except ModuleNotFoundError as exc:
        if exc.name in SOURCE_RUNTIME_MODULES:
            print(SOURCE_RUNTIME_MISSING, file=sys.stderr)
            return EXIT_NOT_INSTALLED
        if _top(exc.name) in SOURCE_DEPENDENCIES:
            print(SOURCE_EXTRA_MISSING, file=sys.stderr)
            return EXIT_NOT_INSTALLED
        raise
    return int(runtime_main(list(argv) if argv is not None else sys.argv[1:]))


def _load(module: str) -> Main:
    # Imported by name, late: importing this module must cost nothing of either side.
    return cast(Main, importlib.import_module(module).main)


def _top(name: str | None) -> str:
    return (name or "").split(".")[0]


if __name__ == "__main__":  # pragma: no cover - `python -m gateway.cli.entry`
    sys.exit(main())
