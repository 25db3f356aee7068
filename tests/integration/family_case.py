"""A family case written straight into the store: case rows through ``CaseRepository``, its
persons as ``case_persons`` rows, and disclosure records through the gateway's own
``AuditLog``, one record per person a disclosure concerns (as the log contract has it).

Until persons are registered over gRPC, this is how a case of several persons (some without
a BSN, one whose BSN is learnt later) reaches the access report and the holds.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, update

from gateway.broker.log_events import SUBJECT_ID_TYPE, AuditEvent, FieldEntry, RecordKind
from gateway.crypto.envelope import DataKey, wrap_data_key
from gateway.crypto.pseudonym import subject_pseudonym
from gateway.store.audit_log import AuditLog
from gateway.store.cases import CaseRepository
from gateway.store.tables import case_persons
from tests.integration.harness import Harness

# Invented BSNs that pass the eleven test.
FATHER_BSN = "111222333"
CHILD_BSN = "123456782"
GROUNDS = "wgs-joint-processing, wgs-supply-to-participant"


@dataclass(frozen=True)
class Member:
    person_id: str
    role: str
    pseudonym: str


@dataclass
class Family:
    case_id: str
    father: Member  # BSN known when added: his pseudonym is the BSN's
    mother: Member  # no BSN
    child1: Member  # no BSN
    child2: Member  # no BSN when added; the BSN is learnt later
    # child2 again, in a later case where the BSN was known when added
    later_case_id: str
    child2_later: Member
    # Seqs of the records written, by what they are.
    seqs: dict[str, int]


def person_pseudonym() -> str:
    """A pseudonym for a person added without a BSN. How the case file keys it on the
    person id is its own business; the reports only need it fixed and in the log's form."""
    return "ps_" + secrets.token_hex(16)


def new_case(harness: Harness, case_id: str, subject: str, now: datetime) -> None:
    keystore = harness.gateway.keystore
    assert keystore is not None
    wrapped = wrap_data_key(DataKey.generate(), keystore.current_kek, case_id)
    CaseRepository(harness.gateway.engine).create_case(
        case_id=case_id,
        subject_pseudonym=subject,
        case_type="code_rood",
        phase="case_meeting",
        registered_by="police",
        wrapped_data_key=wrapped.to_bytes(),
        entries=[],
        invitees=[("zvh", "police"), ("municipality", "police")],
        now=now,
    )


def add_person(
    engine: Engine,
    case_id: str,
    member: Member,
    *,
    identified_by: str,
    bsn_pseudonym: str | None = None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(case_persons).values(
                case_id=case_id,
                person_id=member.person_id,
                role_in_case=member.role,
                pseudonym=member.pseudonym,
                bsn_pseudonym=bsn_pseudonym,
                identified_by=identified_by,
                added_by="police",
                added_at=datetime.now(UTC),
            )
        )


def learn_bsn(engine: Engine, case_id: str, person_id: str, bsn_pseudonym: str) -> None:
    """The person's BSN became known: kept beside its pseudonym, which stays."""
    t = case_persons.c
    with engine.begin() as conn:
        conn.execute(
            update(case_persons)
            .where(t.case_id == case_id, t.person_id == person_id)
            .values(bsn_pseudonym=bsn_pseudonym, identified_by="bsn")
        )


def disclosure(
    case_id: str,
    pseudonym: str,
    *,
    to: str,
    disclosure_id: str,
    fields: tuple[FieldEntry, ...],
    kind: RecordKind = RecordKind.DISCLOSURE,
    status: str = "ok",
    refusal_code: str = "",
) -> AuditEvent:
    now = datetime.now(UTC)
    return AuditEvent(
        kind=kind,
        occurred_at=now,
        ended_at=now,
        trace_id=os.urandom(16).hex(),
        span_id=os.urandom(8).hex(),
        partner_id=to,
        role="chain_partner",
        user_ref="u-7",
        purpose="analysis_and_plan",
        legal_basis=GROUNDS,
        processing_activity="https://zvh.example/register/pa-p2-analysis-and-plan",
        phase="case_meeting",
        case_id=case_id,
        subject_pseudonym=pseudonym,
        subject_id_type=SUBJECT_ID_TYPE,
        status=status,
        refusal_code=refusal_code,
        disclosure_id=disclosure_id,
        policy_version="sha256:" + "0" * 64,
        break_glass=False,
        justification_ref="",
        fields=fields,
    )


def field(name: str, source: str, category: str, outcome: str = "disclosed") -> FieldEntry:
    availability = "available" if outcome != "withheld" else "not_requested"
    return FieldEntry(name, category, outcome, None, source, availability)


NAME = field("subject.name", "zvh", "identifying")
DEBTS = field("mun.debts", "municipality", "housing_finances")
INCIDENTS = field("police.incidents", "police", "police_data")
DIAGNOSIS = field("ggz.diagnosis", "ggz", "health")


async def family_case(harness: Harness) -> Family:
    """A case about a father (BSN), a mother and two children (no BSN), with disclosures
    that concern several of them at once; then child2's BSN is learnt and child2 turns up,
    by BSN, in a later case.

    Records (one per person a disclosure concerns):
      d1 to the police about child1 and child2;
      d2 to the municipality about the father and the mother;
      d3 to the municipality about child1, a field the police supplied;
      d4 to the municipality about child1, the municipality's own field only;
      a refusal to the housing corporation about child1 (never listed);
      d5, after child2's BSN is known, to the GGZ about child2 in the later case.
    """
    engine = harness.gateway.engine
    log: AuditLog = harness.gateway.log
    keystore = harness.gateway.keystore
    assert keystore is not None
    key = keystore.pseudonym_key
    now = datetime.now(UTC)
    case_id, later = f"c_family_{secrets.token_hex(4)}", f"c_later_{secrets.token_hex(4)}"
    father_ps = subject_pseudonym(key, FATHER_BSN)
    child_bsn_ps = subject_pseudonym(key, CHILD_BSN)
    family = Family(
        case_id=case_id,
        father=Member("p_father", "alleged_perpetrator", father_ps),
        mother=Member("p_mother", "victim", person_pseudonym()),
        child1=Member("p_child1", "child", person_pseudonym()),
        child2=Member("p_child2", "child", person_pseudonym()),
        later_case_id=later,
        child2_later=Member("p_1", "subject", child_bsn_ps),
        seqs={},
    )
    new_case(harness, case_id, father_ps, now)
    add_person(engine, case_id, family.father, identified_by="bsn", bsn_pseudonym=father_ps)
    for member in (family.mother, family.child1, family.child2):
        add_person(engine, case_id, member, identified_by="unidentified")

    async def write(name: str, event: AuditEvent) -> None:
        family.seqs[name] = (await log.append(event)).seq

    c1, c2 = family.child1.pseudonym, family.child2.pseudonym
    await write(
        "d1_child1", disclosure(case_id, c1, to="police", disclosure_id="d1", fields=(NAME,))
    )
    await write(
        "d1_child2", disclosure(case_id, c2, to="police", disclosure_id="d1", fields=(NAME,))
    )
    for who, member in (("father", family.father), ("mother", family.mother)):
        await write(
            f"d2_{who}",
            disclosure(
                case_id,
                member.pseudonym,
                to="municipality",
                disclosure_id="d2",
                fields=(DEBTS, NAME),
            ),
        )
    await write(
        "d3_child1",
        disclosure(
            case_id,
            c1,
            to="municipality",
            disclosure_id="d3",
            fields=(INCIDENTS, field("ggz.diagnosis", "ggz", "health", "withheld")),
        ),
    )
    await write(
        "d4_child1", disclosure(case_id, c1, to="municipality", disclosure_id="d4", fields=(DEBTS,))
    )
    await write(
        "refusal_child1",
        disclosure(
            case_id,
            c1,
            to="housing",
            disclosure_id="",
            fields=(),
            kind=RecordKind.REFUSAL,
            status="refused",
            refusal_code="not_participant",
        ),
    )

    learn_bsn(engine, case_id, family.child2.person_id, child_bsn_ps)
    new_case(harness, later, child_bsn_ps, now)
    add_person(engine, later, family.child2_later, identified_by="bsn", bsn_pseudonym=child_bsn_ps)
    await write(
        "d5_child2",
        disclosure(later, child_bsn_ps, to="ggz", disclosure_id="d5", fields=(DIAGNOSIS,)),
    )
    return family
