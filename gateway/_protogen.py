"""Generate the Python protobuf and gRPC modules from proto/ into gateway/api/.

The generated modules are build output: `pip install` runs this (see setup.py), and
``python -m gateway._protogen`` runs it by hand after a change to proto/. A test
regenerates into a temporary directory and fails when the checked-out modules differ.

grpcio-tools writes absolute imports named after the proto package
(``from ketenpoort.v1 import common_pb2``); they are rewritten to live under
``gateway.api.v1`` so that the generated code needs no top-level package of its own.
This module uses only the standard library and grpc_tools, so setup.py can load it
before the project is installed.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

PROTO_PACKAGE = "ketenpoort.v1"
TARGET_PACKAGE = "gateway.api.v1"
HEADER = "# Generated from proto/ by gateway/_protogen.py. Do not edit.\n"

_IMPORT_RE = re.compile(r"^from ketenpoort\.v1 import ", re.MULTILINE)
_IMPORT_PLAIN_RE = re.compile(r"^import ketenpoort\.v1\.(\w+) as (\w+)", re.MULTILINE)


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def proto_files(proto_root: Path) -> list[Path]:
    return sorted((proto_root / "ketenpoort" / "v1").glob("*.proto"))


def _rewrite(text: str) -> str:
    text = _IMPORT_RE.sub(f"from {TARGET_PACKAGE} import ", text)
    text = _IMPORT_PLAIN_RE.sub(rf"from {TARGET_PACKAGE} import \1 as \2", text)
    return HEADER + text


def generate(proto_root: Path, out_dir: Path) -> list[Path]:
    """Generate modules for every proto under proto_root into out_dir/v1; return the files."""
    import grpc_tools
    from grpc_tools import protoc  # imported late: only the build needs it

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    with tempfile.TemporaryDirectory() as raw:
        raw_dir = Path(raw)
        args = [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{include}",
            f"--python_out={raw_dir}",
            f"--pyi_out={raw_dir}",
            f"--grpc_python_out={raw_dir}",
            *[str(p) for p in proto_files(proto_root)],
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed; see the messages above")
        target = out_dir / "v1"
        target.mkdir(parents=True, exist_ok=True)
        (out_dir / "__init__.py").write_text(HEADER)
        (target / "__init__.py").write_text(HEADER)
        written = [out_dir / "__init__.py", target / "__init__.py"]
        for src in sorted((raw_dir / "ketenpoort" / "v1").iterdir()):
            dst = target / src.name
            dst.write_text(_rewrite(src.read_text()))
            written.append(dst)
    return written


def main() -> int:
    root = repo_root()
    files = generate(root / "proto", root / "gateway" / "api")
    print(f"generated {len(files)} files into gateway/api/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
