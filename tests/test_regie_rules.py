"""The regie rules (gateway.broker.regie) as plain functions: what a role claim counts for on
a case, and what registration decides about the approach and the casusregie."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from gateway.broker.caller import Principal
from gateway.broker.errors import InvalidRequest
from gateway.broker.regie import (
    effective_role,
    initial_casusregie,
    is_procesregisseur,
    registration_approach,
)
from gateway.core import CompiledPolicy
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir
from gateway.store.cases import CaseRow

CASE = CaseRow(
    case_id="c_1",
    subject_pseudonym="ps_x",
    case_type="code_rood",
    phase="triage",
    registered_by="police",
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
    closed_at=None,
    wrapped_data_key=b"k",
    participants=("police", "zvh", "municipality"),
    approach="code_rood",
    intake="accepted",
    procesregie_partner="zvh",
    procesregie_user="director-1",
    casusregie_partner="municipality",
)


@pytest.fixture(scope="module")
def shipped_policy() -> CompiledPolicy:
    return load_policy_dir(shipped_policy_dir())


def who(partner: str, role: str, user: str = "", partner_type: str | None = None) -> Principal:
    return Principal(partner, partner_type or partner, role, user, "jti", 0)


@pytest.mark.parametrize(
    ("caller", "role"),
    [
        (who("zvh", "process_director", "director-1"), "process_director"),
        (who("zvh", "process_director", "director-2"), "chain_partner"),
        (who("police", "process_director"), "chain_partner"),
        (who("municipality", "case_director", "anyone"), "case_director"),
        (who("police", "case_director"), "chain_partner"),
        (who("police", "chain_partner"), "chain_partner"),
        (who("zvh", "privacy_officer"), "privacy_officer"),
    ],
)
def test_a_regie_claim_counts_only_for_its_holder(caller: Principal, role: str) -> None:
    assert effective_role(CASE, caller) == role


def test_before_the_intake_any_zvh_director_acts_as_one_but_holds_no_procesregie() -> None:
    pending = replace(CASE, intake="pending", procesregie_partner="", procesregie_user="")
    director = who("zvh", "process_director", "director-9")
    assert effective_role(pending, director) == "process_director"
    assert not is_procesregisseur(pending, director)
    assert effective_role(pending, who("police", "process_director")) == "chain_partner"
    declined = replace(pending, intake="declined")
    assert effective_role(declined, director) == "chain_partner"


def test_registration_decides_the_approach(shipped_policy: CompiledPolicy) -> None:
    assert registration_approach(shipped_policy, "", "") == "general"
    assert registration_approach(shipped_policy, "", "code_rood") == "code_rood"
    assert registration_approach(shipped_policy, "mensenhandel", "") == "mensenhandel"
    for approach, case_type in (("", "burglary"), ("top_x", ""), ("general", "code_rood")):
        with pytest.raises(InvalidRequest):
            registration_approach(shipped_policy, approach, case_type)


def test_registration_decides_the_casusregie(shipped_policy: CompiledPolicy) -> None:
    municipality = who("municipality", "chain_partner")
    police = who("police", "case_director")
    assert initial_casusregie(shipped_policy, municipality, "") == "municipality"
    assert initial_casusregie(shipped_policy, police, "") == ""
    assert initial_casusregie(shipped_policy, police, "ggz") == "ggz"
    assert initial_casusregie(shipped_policy, municipality, "ggz") == "ggz"
    with pytest.raises(InvalidRequest):
        initial_casusregie(shipped_policy, police, "nobody")
