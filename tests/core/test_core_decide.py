"""decide(): the order of checks, refusals, unknown ids, field selection, policy version."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from gateway.core import (
    AccessRequest,
    CompiledPolicy,
    Effect,
    RefusalCode,
    RequestError,
    UnknownField,
    UnknownPartner,
    UnknownPhase,
    UnknownPurpose,
    UnknownRole,
    load_policy,
)

Make = Callable[[str], CompiledPolicy]

RULES = """\
    rules:
      - {id: role, reason: Triage., purposes: [triage], fields: [triage.role], effect: mask,
         transform: presence}
      - {id: names, reason: Names., purposes: [meeting, acute], fields: [subject.name],
         effect: disclose}
      - {id: dob, reason: Year., purposes: [meeting], fields: [subject.dob], effect: mask,
         transform: year_only}
    """


@pytest.fixture
def policy(make_policy: Make) -> CompiledPolicy:
    return make_policy(RULES)


def request(partner: str = "police-1", role: str = "worker", purpose: str = "meeting",
            phase: str = "meeting", participant: bool = True, fields: tuple[str, ...] = (),
            justification: str = "") -> AccessRequest:
    return AccessRequest(partner, role, purpose, phase, participant, fields, justification)


@pytest.mark.parametrize(("req", "code"), [
    (request(partner="care-1", role="director"), RefusalCode.ROLE_NOT_ALLOWED),
    (request(partner="care-1", purpose="acute", justification="x"),
     RefusalCode.PURPOSE_NOT_ALLOWED),
    (request(phase="intake"), RefusalCode.PHASE_NOT_ALLOWED),
    (request(participant=False), RefusalCode.NOT_PARTICIPANT),
    (request(purpose="acute", phase="intake", justification=" \n"),
     RefusalCode.JUSTIFICATION_REQUIRED),
    (request(fields=("case.notes", "care.diagnosis")), RefusalCode.NOTHING_PERMITTED),
])
def test_each_refusal(policy: CompiledPolicy, req: AccessRequest, code: RefusalCode) -> None:
    decision = policy.decide(req)
    assert decision.refusal is not None
    assert decision.refusal.code is code
    assert not decision.permitted
    assert decision.released == ()
    assert all(d.effect is Effect.WITHHOLD for d in decision.fields)


def refusal_code(policy: CompiledPolicy, req: AccessRequest) -> RefusalCode | None:
    refusal = policy.decide(req).refusal
    return None if refusal is None else refusal.code


def test_checks_run_in_the_documented_order(policy: CompiledPolicy) -> None:
    everything_wrong = request(partner="care-1", role="director", purpose="acute",
                               phase="closure", participant=False)
    assert refusal_code(policy, everything_wrong) is RefusalCode.ROLE_NOT_ALLOWED
    purpose_and_phase = request(partner="care-1", purpose="acute", phase="closure",
                                participant=False)
    assert refusal_code(policy, purpose_and_phase) is RefusalCode.PURPOSE_NOT_ALLOWED
    phase_and_participation = request(phase="closure", participant=False)
    assert refusal_code(policy, phase_and_participation) is RefusalCode.PHASE_NOT_ALLOWED
    participation_and_justification = request(purpose="acute", phase="intake",
                                              participant=False)
    assert refusal_code(policy, participation_and_justification) is (
        RefusalCode.NOT_PARTICIPANT)


def test_a_refused_decision_lists_the_requested_fields(policy: CompiledPolicy) -> None:
    decision = policy.decide(request(participant=False, fields=("subject.name", "subject.dob")))
    assert [d.field for d in decision.fields] == ["subject.name", "subject.dob"]
    assert all(d.rule_id is None and d.reason == "request refused: not_participant"
               for d in decision.fields)
    assert decision.refusal is not None
    assert "meeting" in decision.refusal.message


def test_nothing_permitted_keeps_the_reasons_per_field(policy: CompiledPolicy) -> None:
    decision = policy.decide(request(fields=("care.diagnosis",)))
    assert decision.refusal is not None
    assert decision.fields[0].reason == "no rule grants this field"


def test_triage_is_open_to_non_participants(policy: CompiledPolicy) -> None:
    decision = policy.decide(request(purpose="triage", phase="intake", participant=False))
    assert decision.permitted
    assert [(d.field, d.transform) for d in decision.released] == [("triage.role", "presence")]


@pytest.mark.parametrize(("req", "error", "ref"), [
    (request(partner="nobody"), UnknownPartner, "nobody"),
    (request(purpose="gossip"), UnknownPurpose, "gossip"),
    (request(phase="later"), UnknownPhase, "later"),
    (request(role="boss"), UnknownRole, "boss"),
    (request(fields=("subject.name", "subject.shoe_size")), UnknownField, "subject.shoe_size"),
])
def test_unknown_ids_raise(policy: CompiledPolicy, req: AccessRequest,
                           error: type[RequestError], ref: str) -> None:
    with pytest.raises(error) as caught:
        policy.decide(req)
    assert isinstance(caught.value, ValueError)
    assert caught.value.ref == ref
    assert repr(ref) in str(caught.value)


def test_unknown_field_is_raised_even_when_the_request_would_be_refused(
        policy: CompiledPolicy) -> None:
    with pytest.raises(UnknownField):
        policy.decide(request(participant=False, fields=("nope",)))


def test_lookups_raise_for_unknown_ids(policy: CompiledPolicy) -> None:
    assert policy.partner("care-1").type == "care"
    assert policy.purpose("acute").break_glass
    assert policy.field("subject.dob").kind == "date"
    with pytest.raises(UnknownPartner):
        policy.partner("x")
    with pytest.raises(UnknownPurpose):
        policy.purpose("x")
    with pytest.raises(UnknownField):
        policy.field("x")


def test_empty_field_list_means_the_whole_catalogue_in_order(policy: CompiledPolicy) -> None:
    decision = policy.decide(request())
    assert [d.field for d in decision.fields] == [f.id for f in policy.fields]
    assert policy.phases == ("intake", "meeting", "closure")
    assert [(d.field, d.effect) for d in decision.released] == [
        ("subject.name", Effect.DISCLOSE), ("subject.dob", Effect.MASK)]


def test_requested_fields_keep_their_order_once_each(policy: CompiledPolicy) -> None:
    decision = policy.decide(request(fields=("subject.dob", "subject.name", "subject.dob")))
    assert [d.field for d in decision.fields] == ["subject.dob", "subject.name"]


def test_a_decision_names_partner_type_purpose_and_version(policy: CompiledPolicy) -> None:
    req = request()
    decision = policy.decide(req)
    assert decision.request is req
    assert decision.partner_type == "police"
    assert decision.purpose is policy.purpose("meeting")
    assert decision.policy_version == policy.version
    assert policy.decide(req) == decision


def test_policy_version_is_a_content_hash(mini_docs: Callable[[str], dict[str, str]]) -> None:
    documents = mini_docs(RULES)
    version = load_policy(documents).version
    assert version.startswith("sha256:") and len(version) == len("sha256:") + 64
    assert load_policy(dict(reversed(list(documents.items())))).version == version
    changed = dict(documents)
    changed["rules/test.yaml"] += "# a comment is a change of text\n"
    assert load_policy(changed).version != version
    renamed = dict(documents)
    renamed["rules/other.yaml"] = renamed.pop("rules/test.yaml")
    assert load_policy(renamed).version != version


def _wide_policy(field_count: int) -> CompiledPolicy:
    fields = "".join(
        f"  - {{id: f{i:02d}, category: c{i % 4}, source: zvh, description: F.}}\n"
        for i in range(field_count))
    categories = "".join(f"  - {{id: c{i}, description: C.}}\n" for i in range(4))
    return load_policy({"policy.yaml": textwrap.dedent("""\
        partner_types: [{id: t, description: T.}]
        roles: [{id: r, description: R.}]
        partners: [{id: p, type: t, display_name: P, roles: [r]}]
        phases: [{id: ph, description: Ph.}]
        legal_bases: [{id: lb, title: L.}]
        purposes:
          - {id: pu, description: Pu., legal_bases: [lb], phases: [ph], partner_types: [t],
             processing_activity: "https://zvh.example/register/pa"}
        rules:
          - {id: a, reason: A., purposes: [pu], categories: [c0, c1], effect: disclose}
          - {id: b, reason: B., who: {roles: [r]}, purposes: [pu], categories: [c1, c2],
             effect: mask, transform: redact}
        """) + "categories:\n" + categories + "fields:\n" + fields})


def test_a_forty_field_record_gets_one_decision_per_field_in_order() -> None:
    # How fast this is belongs to bench/policy_decision_bench.py; here only what comes out.
    policy = _wide_policy(40)
    decision = policy.decide(AccessRequest("p", "r", "pu", "ph", True))
    assert [d.field for d in decision.fields] == [f"f{i:02d}" for i in range(40)]
    expected = {0: (Effect.DISCLOSE, None), 1: (Effect.MASK, "redact"),
                2: (Effect.MASK, "redact"), 3: (Effect.WITHHOLD, None)}
    for i, d in enumerate(decision.fields):
        assert (d.effect, d.transform) == expected[i % 4], d
    assert decision.fields[3].rule_id is None
    assert {d.rule_id for d in decision.fields[:3]} == {"a", "b"}


def test_partners_and_purposes_are_read_only_views_by_id(policy: CompiledPolicy) -> None:
    assert list(policy.partners) == ["care-1", "police-1", "zvh"]
    assert list(policy.purposes) == ["triage", "meeting", "acute"]
    assert policy.partners["zvh"].roles == ("director",)
    with pytest.raises(TypeError):
        policy.partners["x"] = policy.partners["zvh"]  # type: ignore[index]
