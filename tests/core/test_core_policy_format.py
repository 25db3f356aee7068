"""The policy format's grounds, field regimes and key pins: parsed, checked and located."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from gateway.core import (
    KeyUse,
    LegalBasisSpec,
    PartnerKeys,
    PolicyError,
    PolicyIssue,
    Special,
    load_policy,
    parse_policy,
)

Docs = Callable[[str], dict[str, str]]
PIN = "sha256:" + "ab" * 32


def issues_of(documents: dict[str, str]) -> tuple[PolicyIssue, ...]:
    with pytest.raises(PolicyError) as caught:
        load_policy(documents)
    assert all(issue.hint.strip() for issue in caught.value.issues)
    return caught.value.issues


def at(issues: tuple[PolicyIssue, ...], fragment: str) -> tuple[int, int]:
    found = [i for i in issues if fragment in i.message]
    assert len(found) == 1, (fragment, [str(i) for i in issues])
    return found[0].line, found[0].column


def with_extra(mini_docs: Docs, extra: str) -> dict[str, str]:
    documents = mini_docs("rules: []\n")
    documents["extra.yaml"] = textwrap.dedent(extra)
    return documents


def test_legal_bases_are_parsed_with_their_places(mini_docs: Docs) -> None:
    policy = parse_policy(mini_docs("rules: []\n"))
    grounds = {g.id: g for g in policy.legal_bases}
    assert list(grounds) == ["wgs", "avg-6-1-e", "avg-9-2-h", "avg-9-2-c"]
    vital = grounds["avg-9-2-c"]
    assert vital == LegalBasisSpec("avg-9-2-c", "AVG art. 9(2)(c) - vital interests",
                                   "Someone's life or safety is at stake.",
                                   (Special.ART9, Special.ART10))
    assert (vital.at("permits[1]").line, vital.at("permits[1]").column) == (27, 21)
    assert grounds["wgs"].permits == () and grounds["wgs"].description == ""


def test_a_purpose_lists_grounds_and_extra_grounds_per_partner_type(mini_docs: Docs) -> None:
    policy = parse_policy(mini_docs("rules: []\n"))
    meeting = next(p for p in policy.purposes if p.id == "meeting")
    assert meeting.legal_bases == ("wgs", "avg-6-1-e")
    assert meeting.legal_bases_by_partner_type == (("care", ("avg-9-2-h",)),)
    assert meeting.grounds("care") == ("wgs", "avg-6-1-e", "avg-9-2-h")
    assert meeting.grounds("police") == ("wgs", "avg-6-1-e")
    where = meeting.at("legal_bases_by_partner_type.care")
    assert (where.file, where.line, where.column) == ("parties.yaml", 40, 7)
    assert meeting.at("legal_bases_by_partner_type.care[0]").column == 14


def test_grounds_are_listed_once_each() -> None:
    documents = {"p.yaml": textwrap.dedent("""\
        partner_types: [{id: t, description: T.}]
        phases: [{id: one, description: One.}]
        legal_bases: [{id: a, title: A.}, {id: b, title: B.}]
        purposes:
          - {id: p, description: P., legal_bases: [a, b], phases: [one], partner_types: [t],
             processing_activity: "urn:register:p", legal_bases_by_partner_type: {t: [b, a]}}
        """)}
    (purpose,) = parse_policy(documents).purposes
    assert purpose.grounds("t") == ("a", "b")


def test_the_old_free_text_legal_basis_says_what_replaced_it(mini_docs: Docs) -> None:
    documents = with_extra(mini_docs, """\
        purposes:
          - id: old
            description: Old style.
            legal_basis: WGS art. 2.3
            processing_activity: urn:register:old
            phases: [meeting]
            partner_types: [care]
        """)
    issues = issues_of(documents)
    unknown = next(i for i in issues if "unknown key 'legal_basis'" in i.message)
    assert (unknown.line, unknown.column) == (4, 5)
    assert "(did you mean 'legal_bases'?)" in unknown.message
    assert "legal_bases section" in unknown.hint
    assert at(issues, "missing required key 'legal_bases'") == (2, 5)


def test_ground_references_are_checked_where_they_are_written(mini_docs: Docs) -> None:
    documents = with_extra(mini_docs, """\
        purposes:
          - id: new
            description: New.
            legal_bases: [wgs, avg-6-1-f]
            legal_bases_by_partner_type:
              police: [wpg-20]
              polce: [wgs]
              care: [avg-9-2-h]
              zvh: []
            processing_activity: urn:register:new
            phases: [meeting]
            partner_types: [police, zvh]
        """)
    issues = issues_of(documents)
    assert at(issues, "unknown legal basis 'avg-6-1-f' (did you mean 'avg-6-1-e'?)") == (4, 24)
    assert at(issues, "unknown legal basis 'wpg-20'") == (6, 16)
    assert at(issues, "unknown partner type 'polce' (did you mean 'police'?)") == (7, 7)
    assert at(issues, "partner type 'care' may not use purpose 'new'") == (8, 7)
    assert at(issues, "legal_bases_by_partner_type.zvh must list at least one legal "
                      "basis") == (9, 7)
    assert len(issues) == 5


def test_a_purpose_needs_at_least_one_ground(mini_docs: Docs) -> None:
    documents = with_extra(mini_docs, """\
        purposes:
          - {id: bare, description: B., legal_bases: [], processing_activity: "urn:r:b",
             phases: [meeting], partner_types: [care]}
        """)
    issue = next(i for i in issues_of(documents) if "legal_bases must list" in i.message)
    assert (issue.line, issue.column) == (2, 46)
    assert "wgs, avg-6-1-e" in issue.hint


def test_legal_basis_mistakes_are_located(mini_docs: Docs) -> None:
    documents = with_extra(mini_docs, """\
        legal_bases:
          - id: AVG-6-1-c
            title: Legal obligation.
          - id: avg-6-1-f
            titel: Legitimate interest.
          - id: uavg-32
            title: Criminal data.
            permits: [art10, art99, none]
        """)
    issues = issues_of(documents)
    lower = next(i for i in issues if "legal basis id 'AVG-6-1-c'" in i.message)
    assert (lower.line, lower.column) == (2, 9)
    assert lower.hint == "write it as 'avg-6-1-c'"
    assert at(issues, "unknown key 'titel' in legal basis (did you mean 'title'?)") == (5, 5)
    assert at(issues, "legal basis is missing required key 'title'") == (4, 5)
    assert at(issues, "not 'art99'") == (8, 22)
    assert at(issues, "not 'none'") == (8, 29)
    assert len(issues) == 5


def test_a_field_may_carry_its_own_regime(mini_docs: Docs) -> None:
    documents = with_extra(mini_docs, """\
        fields:
          - {id: notes.police, category: notes, source: police, description: P.,
             special: art10}
          - {id: notes.odd, category: notes, source: zvh, description: O., special: art8}
        """)
    issues = issues_of(documents)
    assert at(issues, "field special must be one of none, art9, art10, not 'art8'") == (4, 77)
    assert len(issues) == 1
    del documents["extra.yaml"]
    policy = parse_policy(documents)
    assert [f.special for f in policy.fields] == [None] * 5
    assert policy.specials()["care.diagnosis"] is Special.ART9


def test_partner_keys_are_pinned_in_lower_case(mini_docs: Docs) -> None:
    documents = with_extra(mini_docs, f"""\
        partners:
          - id: fire
            type: police
            display_name: Fire brigade
            roles: [worker]
            keys:
              token: {PIN.upper().replace("SHA256", "sha256")}
              tls: {PIN}
        """)
    policy = parse_policy(documents)
    fire = next(p for p in policy.partners if p.id == "fire")
    assert fire.keys == PartnerKeys(token=PIN, tls=PIN)
    assert fire.keys.pin(KeyUse.TOKEN) == PIN and fire.keys.pin(KeyUse.SEALING) is None
    assert fire.at("keys.tls").line == 8
    assert next(p for p in policy.partners if p.id == "care-1").keys == PartnerKeys()


def test_partner_key_mistakes_are_located(mini_docs: Docs) -> None:
    documents = with_extra(mini_docs, f"""\
        partners:
          - id: fire
            type: police
            display_name: Fire brigade
            roles: [worker]
            keys:
              token: sha256:abc
              tsl: {PIN}
              sealing: [{PIN}]
        """)
    issues = issues_of(documents)
    pin = next(i for i in issues if "partner keys token must be a key pin" in i.message)
    assert (pin.line, pin.column) == (7, 14)
    assert "sha256sum" in pin.hint
    assert at(issues, "unknown key 'tsl' in partner keys (did you mean 'tls'?)") == (8, 7)
    assert at(issues, "partner keys sealing must be text") == (9, 16)
    assert len(issues) == 3


def test_a_partner_type_may_be_allowed_to_place_holds(mini_docs: Docs) -> None:
    documents = with_extra(mini_docs, """\
        partner_types:
          - id: prosecutor
            description: Public prosecutor.
            may_place_holds: true
        """)
    policy = parse_policy(documents)
    types = {t.id: t for t in policy.partner_types}
    assert types["prosecutor"].may_place_holds is True
    assert types["prosecutor"].at("may_place_holds").line == 4
    assert not any(t.may_place_holds for t in policy.partner_types if t.id != "prosecutor")


def test_may_place_holds_takes_true_or_false_only(mini_docs: Docs) -> None:
    documents = with_extra(mini_docs, """\
        partner_types:
          - id: prosecutor
            description: Public prosecutor.
            may_place_holds: "yes"
        """)
    issues = issues_of(documents)
    assert at(issues, "partner type may_place_holds must be true or false") == (4, 22)
