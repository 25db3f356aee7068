"""The JSON Schemas editors use to check policy files while they are written.

The schemas describe the same format the parser reads; these tests keep the two from drifting:
every shipped file validates, broken documents do not, and the schema's lists of transforms,
effects, kinds, special regimes and refusal codes are the core's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from gateway.core import Effect, FieldKind, RefusalCode, Special
from gateway.core.transforms import TRANSFORMS

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
SCHEMA_DIR = POLICIES / "schema"
FIXTURES = ROOT / "tests" / "policy_fixtures" / "valid"


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return schema


POLICY_SCHEMA = _schema("policy.schema.json")
TESTS_SCHEMA = _schema("policy-tests.schema.json")
POLICY = Draft202012Validator(POLICY_SCHEMA)
TESTS = Draft202012Validator(TESTS_SCHEMA)


def _names(paths: Iterator[Path]) -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in sorted(paths)]


POLICY_FILES = _names(POLICIES.glob("*.yaml")) + _names(POLICIES.glob("rules/*.yaml"))
TEST_FILES = _names(POLICIES.glob("tests/*.yaml"))
FIXTURE_FILES = [
    name for name in _names(FIXTURES.rglob("*.yaml")) if "/tests/" not in f"/{name}"
] if FIXTURES.is_dir() else []


def _errors(validator: Draft202012Validator, document: object) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<top>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def _load(name: str) -> object:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def test_the_schemas_are_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(POLICY_SCHEMA)
    Draft202012Validator.check_schema(TESTS_SCHEMA)
    assert POLICY_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_shipped_set_is_found() -> None:
    assert "policies/purposes.yaml" in POLICY_FILES
    assert any(name.startswith("policies/rules/") for name in POLICY_FILES)
    assert TEST_FILES


@pytest.mark.parametrize("name", POLICY_FILES + FIXTURE_FILES)
def test_every_policy_file_validates(name: str) -> None:
    assert _errors(POLICY, _load(name)) == []


@pytest.mark.parametrize("name", TEST_FILES)
def test_every_policy_test_file_validates(name: str) -> None:
    assert _errors(TESTS, _load(name)) == []


GOOD_RULE: dict[str, Any] = {
    "id": "name-initials",
    "reason": "The police need to recognise the subject, not the full name.",
    "who": {"partner_types": ["police"]},
    "purposes": ["analysis_and_plan"],
    "fields": ["subject.name"],
    "effect": "mask",
    "transform": "initials",
}
GOOD_PURPOSE: dict[str, Any] = {
    "id": "acute_safety",
    "description": "Code Rood.",
    "legal_bases": ["wgs-supply"],
    "legal_bases_by_partner_type": {"police": ["wpg-20"]},
    "processing_activity": "https://zvh.example/register/pa-acute-safety",
    "phases": ["registration"],
    "partner_types": ["police"],
    "requires_justification": True,
    "break_glass": True,
    "max_duration_minutes": 1440,
}
GOOD_DOCUMENT: dict[str, Any] = {
    "legal_bases": [{"id": "avg-9-2-g", "title": "AVG art. 9(2)(g)", "permits": ["art9"]}],
    "fields": [{"id": "ggz.diagnosis", "category": "health", "source": "ggz",
                "description": "Diagnosis.", "special": "art9"}],
    "partners": [{"id": "police", "type": "police", "display_name": "Politie",
                  "roles": ["chain_partner"], "keys": {"token": "sha256:" + "ab" * 32}}],
    "purposes": [GOOD_PURPOSE],
    "rules": [GOOD_RULE, {**GOOD_RULE, "id": "short-notes", "fields": ["case.notes"],
                          "transform": "truncate", "params": {"length": 280}}],
}


def test_a_complete_document_in_the_new_format_validates() -> None:
    assert _errors(POLICY, GOOD_DOCUMENT) == []


def _with_rule(**changes: Any) -> dict[str, Any]:
    rule = {**GOOD_RULE, **changes}
    return {"rules": [{k: v for k, v in rule.items() if v is not None}]}


def _with_purpose(**changes: Any) -> dict[str, Any]:
    purpose = {**GOOD_PURPOSE, **changes}
    return {"purposes": [{k: v for k, v in purpose.items() if v is not None}]}


BROKEN: dict[str, tuple[dict[str, Any], str]] = {
    "unknown section": ({"rulez": []}, "'rulez' was unexpected"),
    "unknown rule key": (_with_rule(efect="mask"), "'efect' was unexpected"),
    "mask without transform": (_with_rule(transform=None), "'transform' is a required"),
    "bad effect": (_with_rule(effect="hide"), "'hide' is not one of"),
    "unknown transform": (_with_rule(transform="blur"), "'blur' is not one of"),
    "transform without mask": (_with_rule(effect="disclose"), "should not be valid"),
    "truncate without length": (_with_rule(transform="truncate"), "'params' is a required"),
    "rule naming no fields": (_with_rule(fields=None), "is not valid under any"),
    "override without reason": (_with_rule(override=True), "'override_reason' is a required"),
    "old free-text legal basis": (
        _with_purpose(legal_basis="WGS", legal_bases=None), "'legal_basis' was unexpected"),
    "no legal bases": (_with_purpose(legal_bases=[]), "should be non-empty"),
    "break-glass without duration": (
        _with_purpose(max_duration_minutes=None), "'max_duration_minutes' is a required"),
    "bad legal basis id": (
        {"legal_bases": [{"id": "AVG 9", "title": "AVG art. 9"}]}, "does not match"),
    "bad special": (
        {"categories": [{"id": "health", "description": "Health.", "special": "art8"}]},
        "'art8' is not one of"),
    "bad key pin": (
        {"partners": [{**GOOD_DOCUMENT["partners"][0], "keys": {"tls": "sha1:00"}}]},
        "does not match"),
    "hold right not a boolean": (
        {"partner_types": [{"id": "police", "description": "Politie.",
                            "may_place_holds": "yes"}]},
        "'yes' is not of type 'boolean'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_document_fails_with_a_reason(case: str) -> None:
    document, expected = BROKEN[case]
    errors = _errors(POLICY, document)
    assert errors, f"{case} was accepted"
    assert any(expected in error for error in errors), errors


def test_a_broken_policy_test_fails() -> None:
    good = {"tests": [{"name": "t", "request": {"partner": "police", "role": "chain_partner",
                                                "purpose": "triage", "phase": "triage",
                                                "participant": False},
                       "expect": {"fields": {"triage.role": "mask:presence"}}}]}
    assert _errors(TESTS, good) == []
    both = json.loads(json.dumps(good))
    both["tests"][0]["expect"]["refused"] = "not_participant"
    assert _errors(TESTS, both)
    wrong = json.loads(json.dumps(good))
    wrong["tests"][0]["expect"]["fields"]["triage.role"] = "mask:blur"
    assert _errors(TESTS, wrong)


def _enum(schema: dict[str, Any], name: str) -> list[str]:
    values: list[str] = schema["$defs"][name]["enum"]
    return values


def test_the_schema_lists_exactly_the_cores_transforms() -> None:
    assert _enum(POLICY_SCHEMA, "transform") == list(TRANSFORMS)
    parameterised = {name for name, t in TRANSFORMS.items() if t.params}
    rule_conditions = json.dumps(POLICY_SCHEMA["$defs"]["rule"]["allOf"])
    for name in parameterised:
        assert f'"const": "{name}"' in rule_conditions
    expectations = _enum(TESTS_SCHEMA, "expectation")
    assert expectations == [*(e.value for e in (Effect.DISCLOSE, Effect.WITHHOLD, Effect.MASK)),
                            *(f"mask:{t}" for t in TRANSFORMS)]


def test_the_schema_lists_exactly_the_cores_effects_kinds_specials_and_refusals() -> None:
    rule = POLICY_SCHEMA["$defs"]["rule"]["properties"]
    assert rule["effect"]["enum"] == [e.value for e in Effect]
    field = POLICY_SCHEMA["$defs"]["field"]["properties"]
    assert field["kind"]["enum"] == [k.value for k in FieldKind]
    assert _enum(POLICY_SCHEMA, "special") == [s.value for s in Special]
    refused = TESTS_SCHEMA["$defs"]["test"]["properties"]["expect"]["properties"]["refused"]
    assert refused["enum"] == [c.value for c in RefusalCode]


def _undescribed(node: object, path: str = "") -> Iterator[str]:
    """Properties without a description; conditions (if/then/else/not) only restate them."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _undescribed(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("if", "then", "else", "not"):
            continue
        if key == "properties" and isinstance(value, dict):
            for name, sub in value.items():
                if not isinstance(sub, dict) or "description" not in sub:
                    yield f"{path}/properties/{name}"
        yield from _undescribed(value, f"{path}/{key}")


@pytest.mark.parametrize("schema", [POLICY_SCHEMA, TESTS_SCHEMA], ids=["policy", "tests"])
def test_every_property_has_a_description_for_the_editor(schema: dict[str, Any]) -> None:
    assert list(_undescribed(schema)) == []


@pytest.mark.parametrize(("kind", "expected"), [
    ("unknown_key", "'requires_justifcation' was unexpected"),
    ("unknown_transform", "'year_onyl' is not one of"),
])
def test_the_schema_catches_the_structural_mistakes_of_the_fixtures(
    kind: str, expected: str
) -> None:
    broken = FIXTURES.parent / "broken" / kind
    documents = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in broken.rglob("*.yaml")]
    errors = [error for document in documents for error in _errors(POLICY, document)]
    assert any(expected in error for error in errors), errors
