"""The example configuration and mapping files under deploy/source/ stay valid: each
source.toml loads, and each mapping passes `source check` against the shipped policy's
catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.source_runtime.catalogue import parse_catalogue
from adapters.source_runtime.config import load_config
from adapters.source_runtime.mapping import load_mapping
from gateway.cli.policy_catalogue import catalogue_document
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "source"


@pytest.mark.parametrize("name", ["source.toml", "source-csv.toml"])
def test_the_example_configurations_load_and_their_mappings_check(name: str) -> None:
    config = load_config(EXAMPLES / name)
    catalogue = parse_catalogue(catalogue_document(load_policy_dir(shipped_policy_dir())))
    mapping = load_mapping(config.mapping, catalogue)
    assert mapping.fields
    assert mapping.partner_type in catalogue.partner_types
