"""`ketenpoort policy catalogue` writes what the partner side's catalogue reader reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.source_runtime.catalogue import load_catalogue
from gateway.cli.main import main
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir


def test_the_catalogue_of_the_shipped_policy_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "catalogue.json"
    assert main(["policy", "catalogue", "--output", str(out)]) == 0
    catalogue = load_catalogue(out)
    policy = load_policy_dir(shipped_policy_dir())
    assert set(catalogue.fields) == {f.id for f in policy.fields}
    for spec in policy.fields:
        field = catalogue.fields[spec.id]
        assert (field.kind, field.source, field.category, field.about) == (
            str(spec.kind), spec.source, spec.category, str(spec.about))
    assert {t.id: t.identifiers for t in catalogue.partner_types.values()} == {
        t.id: t.identifiers for t in policy.policy.partner_types}
    assert not list(tmp_path.glob("*.partial"))


def test_a_broken_policy_writes_no_catalogue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "catalogue.json"
    status = main(["policy", "catalogue", "--policy-dir", str(tmp_path / "nothing"),
                   "--output", str(out)])
    assert status != 0 and not out.exists()
    assert "ketenpoort policy catalogue" in capsys.readouterr().err
