"""The vector generators of tests/vectors, loaded by path: they are scripts, not a package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"


def load_generator(name: str) -> ModuleType:
    """The generator ``tests/vectors/<name>.py``, freshly executed."""
    spec = importlib.util.spec_from_file_location(name, VECTOR_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules while the module executes.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module
