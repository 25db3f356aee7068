"""Policy tests: example requests with the outcome a privacy officer expects.

A test file (``policies/tests/*.yaml``) holds::

    tests:
      - name: police see the weapon flag in Code Rood
        request: {partner: police, role: case_director, purpose: acute_safety,
                  phase: registration, participant: true, justification: "..."}
        expect:
          fields:
            police.weapon_flag: disclose
            subject.bsn: "mask:pseudonym"   # or just "mask" for any transform
            ggz.diagnosis: withhold
      - name: triage is hit/no-hit only
        request: {...}
        expect: {refused: not_participant}

``request`` may also list ``fields``; without it the whole catalogue is asked. It may name
the case's ``approach`` (default: the policy's default approach) and the ``person_role`` of
the person the fields are about (default: a case-level request, where rules with
``persons:`` do not apply). For a
break-glass purpose, ``break_glass_minutes`` says how long ago the case's break-glass access
was first used. A test that expects fields fails when the request is refused, unless the
refusal is ``nothing_permitted`` (then every field is withheld and the expectations are
compared).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from yaml.nodes import Node

from gateway.core.compiler import CompiledPolicy
from gateway.core.decisions import AccessRequest, Decision, RefusalCode
from gateway.core.errors import PolicyError, PolicyIssue, RequestError
from gateway.core.model import Effect, Location
from gateway.core.transforms import TRANSFORMS
from gateway.core.yamlread import Reader, pick_hint, suggest

_REQUEST_KEYS = ("partner", "role", "purpose", "phase", "participant", "justification", "fields",
                 "break_glass_minutes", "approach", "person_role")


@dataclass(frozen=True, slots=True)
class FieldExpectation:
    """Expected outcome for one field; a MASK with ``transform`` None accepts any transform."""

    field: str
    effect: Effect
    transform: str | None = None

    def __str__(self) -> str:
        if self.effect is Effect.MASK and self.transform:
            return f"mask:{self.transform}"
        return str(self.effect)


@dataclass(frozen=True, slots=True)
class PolicyTestCase:
    name: str
    request: AccessRequest
    refused: RefusalCode | None
    fields: tuple[FieldExpectation, ...]
    loc: Location


@dataclass(frozen=True, slots=True)
class PolicyTestResult:
    case: PolicyTestCase
    failures: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def passed(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        head = f"{self.case.loc}: {'PASS' if self.passed else 'FAIL'} {self.case.name}"
        return "\n".join([head, *(f"    {failure}" for failure in self.failures)])


def parse_policy_tests(documents: Mapping[str, str]) -> tuple[PolicyTestCase, ...]:
    """Parse policy test files (file name -> YAML text). Raises PolicyError."""
    issues: list[PolicyIssue] = []
    cases: list[PolicyTestCase] = []
    for name in sorted(documents):
        reader = Reader(name, issues)
        root = reader.compose(documents[name])
        top = None if root is None else reader.entries(root, "a policy test file")
        if root is None or top is None:
            continue
        reader.check_keys(top, root, "a policy test file", ("tests",), ("tests",))
        if "tests" not in top:
            continue
        seen: set[str] = set()
        for item in reader.items(top["tests"][1], "tests") or ():
            case = _case(reader, item)
            if case is None:
                continue
            if case.name in seen:
                reader.report(item, f"duplicate test name {case.name!r}",
                              hint="give each test its own name; results are listed by name")
            seen.add(case.name)
            cases.append(case)
    if issues:
        raise PolicyError(issues)
    return tuple(cases)


def _case(r: Reader, node: Node) -> PolicyTestCase | None:
    entries = r.entries(node, "test")
    if entries is None or not r.check_keys(entries, node, "test",
                                           ("name", "description", "request", "expect"),
                                           ("name", "request", "expect")):
        return None
    name = r.text(entries["name"][1], "test name")
    request = _request(r, entries["request"][1])
    expect_node = entries["expect"][1]
    expect = r.entries(expect_node, "expect")
    if expect is None:
        return None
    r.check_keys(expect, expect_node, "expect", ("refused", "fields"), ())
    if ("refused" in expect) == ("fields" in expect):
        r.report(expect_node, "expect must hold exactly one of 'refused' or 'fields'",
                 hint="write `refused: <code>` for a refused request, or `fields: {...}` "
                      "with the expected outcome per field")
        return None
    refused: RefusalCode | None = None
    fields: tuple[FieldExpectation, ...] = ()
    if "refused" in expect:
        code = r.choice(expect["refused"][1], "expected refusal",
                        [c.value for c in RefusalCode])
        if code is None:
            return None
        refused = RefusalCode(code)
    else:
        parsed = _expectations(r, expect["fields"][1])
        if parsed is None:
            return None
        fields = parsed
    if name is None or request is None:
        return None
    return PolicyTestCase(name, request, refused, fields, r.loc(node))


def _request(r: Reader, node: Node) -> AccessRequest | None:
    entries = r.entries(node, "request")
    if entries is None or not r.check_keys(entries, node, "request", _REQUEST_KEYS,
                                           _REQUEST_KEYS[:5]):
        return None
    texts = [r.text(entries[key][1], f"request {key}") for key in _REQUEST_KEYS[:4]]
    participant = r.flag(entries["participant"][1], "request participant")
    justification = ""
    if "justification" in entries:
        justification = r.raw_text(entries["justification"][1], "request justification") or ""
    minutes: int | None = None
    if "break_glass_minutes" in entries:
        minutes = r.integer(entries["break_glass_minutes"][1], "request break_glass_minutes")
        if minutes is None:
            return None
    fields: list[str] = []
    if "fields" in entries:
        for item in r.items(entries["fields"][1], "request fields") or ():
            value = r.text(item, "requested field")
            if value is not None:
                fields.append(value)
    approach = person_role = ""
    if "approach" in entries:
        approach = r.text(entries["approach"][1], "request approach") or ""
        if not approach:
            return None
    if "person_role" in entries:
        person_role = r.text(entries["person_role"][1], "request person_role") or ""
        if not person_role:
            return None
    partner, role, purpose, phase = texts
    if partner is None or role is None or purpose is None or phase is None or participant is None:
        return None
    return AccessRequest(partner, role, purpose, phase, participant, tuple(fields),
                         justification, minutes, approach=approach, person_role=person_role)


def _expectations(r: Reader, node: Node) -> tuple[FieldExpectation, ...] | None:
    entries = r.entries(node, "expected fields")
    if entries is None:
        return None
    expected: list[FieldExpectation] = []
    for field_id, (_, value_node) in entries.items():
        value = r.text(value_node, f"expectation for {field_id!r}")
        if value is None:
            continue
        effect_text, _, transform = value.partition(":")
        if effect_text not in list(Effect) or (transform and effect_text != Effect.MASK):
            r.report(value_node, f"expectation {value!r} must be disclose, withhold, mask or "
                                 "mask:<transform>",
                     hint='write e.g. disclose, withhold, mask, or "mask:pseudonym" in quotes')
            continue
        if transform and transform not in TRANSFORMS:
            r.report(value_node, f"unknown transform {transform!r}"
                                 f"{suggest(transform, TRANSFORMS)}",
                     hint=pick_hint(transform, TRANSFORMS, "transforms"))
            continue
        expected.append(FieldExpectation(field_id, Effect(effect_text), transform or None))
    return tuple(expected)


def _check(case: PolicyTestCase, decision: Decision) -> Iterable[str]:
    got_code = decision.refusal.code if decision.refusal else None
    if case.refused is not None:
        if got_code != case.refused:
            yield f"expected refusal {case.refused}, got {got_code or 'a permitted request'}"
        return
    if got_code is not None and got_code is not RefusalCode.NOTHING_PERMITTED:
        yield f"expected field outcomes, but the request was refused: {got_code}"
        return
    decided = {d.field: d for d in decision.fields}
    for expectation in case.fields:
        actual = decided.get(expectation.field)
        if actual is None:
            yield (f"field {expectation.field!r} is not in the decision: unknown to the "
                   "policy, or not among the requested fields")
            continue
        matches = actual.effect is expectation.effect and (
            expectation.transform is None or actual.transform == expectation.transform)
        if not matches:
            shown = f"mask:{actual.transform}" if actual.effect is Effect.MASK else actual.effect
            yield (f"field {expectation.field!r}: expected {expectation}, got {shown} "
                   f"(rule {actual.rule_id or 'none: deny by default'})")


def run_policy_tests(compiled: CompiledPolicy,
                     cases: Iterable[PolicyTestCase]) -> tuple[PolicyTestResult, ...]:
    """Run every case against the compiled policy; a failing case never stops the others."""
    results: list[PolicyTestResult] = []
    for case in cases:
        try:
            decision = compiled.decide(case.request)
        except RequestError as exc:
            results.append(PolicyTestResult(case, (str(exc),)))
            continue
        results.append(PolicyTestResult(case, tuple(_check(case, decision))))
    return tuple(results)
