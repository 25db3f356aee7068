"""A partner's first sealed answer, from a partner install alone.

Run by tests/integration/test_partner_install.py with the python of a fresh virtual
environment holding only the base `ketenpoort` package (no gateway extra): the police register
a case over mutual TLS with their development keys, the ZVH's process director accepts it and
moves it to the case meeting, and the police ask for a disclosure and open the sealed answer
with their own key. Prints one JSON object: what came back, and where `adapters` was imported
from and which gateway-only modules got loaded (none, if the partner side keeps its boundary).

Usage: python partner_first_answer.py ADDRESS KEYS_DIR [REQUESTER [INVITEE...]]
(REQUESTER: who asks for the disclosure, "police" or "zvh"; INVITEES: who is invited besides
the ZVH, e.g. a partner whose source the test runs.)
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import adapters
from adapters.client import PartnerClient, PartnerCredentials
from gateway.api.v1 import cases_pb2, common_pb2

GATEWAY_ONLY = (
    "sqlalchemy", "alembic", "yaml", "gateway.server", "gateway.store", "gateway.core",
    "gateway.broker", "gateway.registry", "gateway.cli",
)
SUBJECT = common_pb2.SubjectIdentity(
    bsn="111222333",
    name="Jan de Vries",
    date_of_birth="1984-03-07",
    address="Lindenstraat 12",
    postcode="7511 AB",
)


async def first_answer(
    address: str, keys: Path, requester: str = "police", invitees: tuple[str, ...] = ()
) -> dict[str, object]:
    police_keys = PartnerCredentials.from_key_dir(keys, "police")
    zvh_keys = PartnerCredentials.from_key_dir(keys, "zvh")
    async with (
        PartnerClient(address, police_keys, role="case_director") as police,
        PartnerClient(address, zvh_keys, role="process_director") as director,
    ):
        registered = await police.register_case(
            SUBJECT,
            "",
            approach="general",
            reason="Third police call-out this month; partner and two children at home.",
            invitees=["zvh", *invitees],
            casusregie_partner="police",
        )
        case_id = registered.case_id
        await director.cases.decide_intake(case_id, cases_pb2.ACCEPT, "fits the ZVH's criteria")
        await director.change_phase(case_id, "registration", "triage")
        await director.change_phase(case_id, "triage", "case_meeting")
        asking = police if requester == "police" else director
        answer = await asking.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    return {
        "case_id": case_id,
        "disclosure_id": answer.record.disclosure_id,
        "sealed_to": answer.response.sealed.recipient_key_id,
        "values": answer.values,
        "incomplete": answer.response.incomplete,
        "source_unavailable": sorted(
            f.field for f in answer.record.fields
            if f.availability == common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE
        ),
        "adapters_from": str(Path(adapters.__file__).resolve().parent),
        "gateway_only_loaded": sorted(
            m for m in sys.modules
            if any(m == name or m.startswith(name + ".") for name in GATEWAY_ONLY)
        ),
    }


def main() -> None:
    address, keys = sys.argv[1], Path(sys.argv[2])
    requester = sys.argv[3] if len(sys.argv) > 3 else "police"
    answer = asyncio.run(first_answer(address, keys, requester, tuple(sys.argv[4:])))
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
