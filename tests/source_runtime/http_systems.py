"""Shared by the REST and FHIR adapter tests: the real catalogue (exported from policies/ as
`ketenpoort policy catalogue` does) and a mapping copied from deploy/source/ with its secret
files written beside it."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from adapters.source_runtime.catalogue import Catalogue, parse_catalogue
from adapters.source_runtime.mapping import MappingFile, load_mapping
from gateway.cli.policy_catalogue import catalogue_document
from gateway.policyfiles import load_policy_dir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "source"


@functools.cache
def real_catalogue() -> Catalogue:
    return parse_catalogue(catalogue_document(load_policy_dir(ROOT / "policies")))


def example_mapping(tmp_path: Path, name: str, secrets: dict[str, str]) -> MappingFile:
    """deploy/source/``name`` copied to ``tmp_path``, with ``secrets`` (relative path ->
    contents) written beside it, loaded and checked against the real catalogue."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    target = tmp_path / name
    shutil.copy(EXAMPLES / name, target)
    for relative, contents in secrets.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(contents, encoding="utf-8")
    return load_mapping(target, real_catalogue())
