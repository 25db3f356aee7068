"""Which files in the policy directory are policy, and what the directory must hold.

The policy is exactly DIR/*.yaml and DIR/rules/*.yaml; everything else that looks like YAML
outside tests/ and schema/ is refused, and the hot-reload watcher sees the same files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.core import PolicyError
from gateway.policyfiles import (
    PolicyDirectoryError,
    load_policy_dir,
    read_documents,
    select_policy_files,
)
from gateway.runtime.policy_reload import policy_snapshot
from tests.policy_fixtures import VALID, fixture_documents

LAYOUT_HINT = "policy files are DIR/*.yaml and DIR/rules/*.yaml; rename or move it"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policy"
    shutil.copytree(VALID, directory)
    return directory


def _write(path: Path, text: str = "purposes: []\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _refused(directory: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(PolicyError) as caught:
        load_policy_dir(directory)
    return [(i.file, i.message, i.hint) for i in caught.value.issues]


def test_the_policy_is_the_top_level_and_rules_yaml_files(policy_dir: Path) -> None:
    assert read_documents(policy_dir) == fixture_documents()
    assert sorted(read_documents(policy_dir)) == [
        "catalogue.yaml", "legal_bases.yaml", "partners.yaml", "purposes.yaml",
        "rules/case_meeting.yaml", "rules/triage.yaml"]


def test_tests_schema_hidden_files_and_hidden_directories_are_not_read(
    policy_dir: Path,
) -> None:
    _write(policy_dir / "tests" / "extra.yaml", "tests: []\n")
    _write(policy_dir / "schema" / "notes.yml")
    _write(policy_dir / ".#purposes.yaml")  # an editor's lock file
    _write(policy_dir / "rules" / ".#triage.yaml")
    _write(policy_dir / "..2024_05_01" / "purposes.yaml")  # a ConfigMap's data directory
    _write(policy_dir / ".git" / "stray.yml")
    (policy_dir / "README.md").write_text("# policy\n", encoding="utf-8")
    assert read_documents(policy_dir) == fixture_documents()
    load_policy_dir(policy_dir)


def test_a_configmap_mount_of_symbolic_links_is_read(tmp_path: Path) -> None:
    directory = tmp_path / "policy"
    data = directory / "..2024_05_01_10_00_00"
    shutil.copytree(VALID, data)
    (directory / "..data").symlink_to(data.name)
    for name in ("catalogue.yaml", "legal_bases.yaml", "partners.yaml", "purposes.yaml",
                 "rules"):
        (directory / name).symlink_to(Path("..data") / name)
    assert read_documents(directory) == fixture_documents()


@pytest.mark.parametrize("stray", [
    "drafts/idea.yaml",  # a draft must not become policy
    "rules/privacy_officer.yml",  # a renamed rules file must not drop out silently
    "catalogue_extra.yml",
    "rules/old/care.yaml",
    "archive/2023/rules/care.yml",
])
def test_a_yaml_file_outside_the_layout_is_an_error(policy_dir: Path, stray: str) -> None:
    _write(policy_dir / stray)
    assert _refused(policy_dir) == [
        (stray, "YAML file outside the policy layout; it is not loaded", LAYOUT_HINT)]


def test_every_misplaced_file_is_named(policy_dir: Path) -> None:
    _write(policy_dir / "drafts" / "a.yaml")
    _write(policy_dir / "rules" / "b.yml")
    assert [file for file, *_ in _refused(policy_dir)] == ["drafts/a.yaml", "rules/b.yml"]


def test_an_empty_policy_directory_is_an_error(tmp_path: Path) -> None:
    directory = tmp_path / "policy"
    _write(directory / "tests" / "triage.yaml", "tests: []\n")  # tests alone are no policy
    ((_, message, _),) = _refused(directory)
    assert message == f"no policy files in {directory}"


def test_a_missing_policy_directory_is_a_directory_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyDirectoryError, match="no such policy directory"):
        load_policy_dir(tmp_path / "missing")


def test_a_policy_without_purposes_is_refused(policy_dir: Path) -> None:
    (policy_dir / "purposes.yaml").unlink()
    shutil.rmtree(policy_dir / "rules")
    assert _refused(policy_dir) == [
        ("", "the policy defines no purpose", "define at least one purpose under `purposes:`")]


def test_a_policy_without_fields_is_refused(policy_dir: Path) -> None:
    (policy_dir / "catalogue.yaml").unlink()
    shutil.rmtree(policy_dir / "rules")
    assert [message for _, message, _ in _refused(policy_dir)] == [
        "the policy defines no field"]


def test_a_policy_without_partners_is_refused(policy_dir: Path) -> None:
    partners = policy_dir / "partners.yaml"
    text = partners.read_text(encoding="utf-8")
    partners.write_text(text[: text.index("\npartners:")] + "\n", encoding="utf-8")
    shutil.rmtree(policy_dir / "rules")
    assert [message for _, message, _ in _refused(policy_dir)] == [
        "the policy defines no partner"]


def test_the_policy_tests_are_read_from_tests(policy_dir: Path) -> None:
    _write(policy_dir / "tests" / "triage.yaml", "tests: []\n")
    _write(policy_dir / "tests" / ".#triage.yaml", "tests: []\n")
    assert read_documents(policy_dir, tests=True) == {"tests/triage.yaml": "tests: []\n"}


def test_the_selection_is_one_for_loader_and_watcher(policy_dir: Path) -> None:
    _write(policy_dir / "drafts" / "idea.yaml")
    files = select_policy_files(policy_dir)
    assert sorted(files.policy) == sorted(fixture_documents())
    assert list(files.misplaced) == ["drafts/idea.yaml"]


def test_the_snapshot_watches_the_policy_files_and_misplaced_ones(policy_dir: Path) -> None:
    before = policy_snapshot(policy_dir)
    assert [name for name, *_ in before] == sorted(fixture_documents())
    # Not policy and not refused: the watcher ignores them.
    _write(policy_dir / ".#purposes.yaml")
    _write(policy_dir / "..2024_05_01" / "purposes.yaml")
    _write(policy_dir / "tests" / "extra.yaml", "tests: []\n")
    _write(policy_dir / "schema" / "extra.yaml")
    assert policy_snapshot(policy_dir) == before
    # A misplaced file makes the next load fail, so the watcher must see it come and go.
    _write(policy_dir / "rules" / "privacy_officer.yml")
    assert "rules/privacy_officer.yml" in {name for name, *_ in policy_snapshot(policy_dir)}
    (policy_dir / "rules" / "privacy_officer.yml").unlink()
    assert policy_snapshot(policy_dir) == before


def test_a_file_larger_than_the_limit_is_refused_unread(policy_dir: Path) -> None:
    # A 50 MB policy file was accepted; nothing of it is read now (checked by its size).
    big = policy_dir / "rules" / "big.yaml"
    with big.open("wb") as out:
        out.truncate(50 * 1024 * 1024)
    assert _refused(policy_dir) == [(
        "rules/big.yaml", "file is larger than 1048576 bytes; not read",
        "split it into smaller files, or raise max_policy_file_bytes")]
    # The limit is the caller's to set.
    big.write_text("rules: []\n" + "#" * 5000 + "\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_dir(policy_dir, max_file_bytes=4096)
    assert [i.file for i in caught.value.issues] == ["rules/big.yaml"]
    assert load_policy_dir(policy_dir).version


def test_a_link_to_a_rule_file_outside_the_directory_is_refused(
    policy_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "permissive.yaml"
    _write(outside, "rules: []\n")
    (policy_dir / "rules" / "permissive.yaml").symlink_to(outside)
    assert _refused(policy_dir) == [(
        "rules/permissive.yaml", "links to a file outside the policy directory; not loaded",
        "copy the file into the policy directory instead of linking to it")]


def test_deep_nesting_is_an_error_at_its_place_not_a_recursion_error(policy_dir: Path) -> None:
    _write(policy_dir / "rules" / "deep.yaml", "rules:\n  - " + "[" * 50_000 + "\n")
    ((file, message, _),) = _refused(policy_dir)
    assert (file, message) == ("rules/deep.yaml", "nesting deeper than 64 levels")
    _write(policy_dir / "rules" / "deep.yaml",
           "rules:\n  - " + "[" * 70 + "x" + "]" * 70 + "\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_dir(policy_dir)
    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.message) == (
        "rules/deep.yaml", 2, "nesting deeper than 64 levels")
