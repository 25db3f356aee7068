"""ListDisclosures at its largest page size over real gRPC: a page of the largest records fits
in one message (the gateway's 1 MiB limit), and paging on with next_after_seq returns every
record once, in order."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from gateway.broker.log_events import RecordKind
from tests.integration.harness import Harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_accounting import PHASE, PURPOSE

MAX_PAGE = 1000


async def test_a_page_of_a_thousand_large_records_fits_and_pages_on(harness: Harness) -> None:
    async with harness.client("police") as police, harness.client("zvh") as director:
        case_id = await register(police)
        await to_case_meeting(director, case_id)
        await police.request_disclosure(case_id, PURPOSE, PHASE)
    log = harness.gateway.log
    (template,) = log.list_records(case_id=case_id, kinds=[RecordKind.DISCLOSURE])
    # Copies of a real disclosure record naming every field it decided, appended through
    # the log's writer: enough of them that 1,000 exceed the message limit many times over.
    await asyncio.gather(*(
        log.append(replace(template.event, disclosure_id=f"d_{i:032x}")) for i in range(1100)
    ))
    async with harness.client("zvh", role="privacy_officer") as officer:
        seen: list[int] = []
        after = 0
        pages = 0
        while True:
            page = await officer.list_disclosures(after_seq=after, page_size=MAX_PAGE)
            assert page.ByteSize() <= harness.gateway.config.max_message_bytes
            seen.extend(e.seq for e in page.entries)
            pages += 1
            if not page.next_after_seq:
                break
            assert page.next_after_seq == page.entries[-1].seq
            after = page.next_after_seq
    total = len(log.list_records(limit=10_000))
    assert seen == list(range(1, total + 1))
    assert pages > 2  # the byte budget, not the count, ended the pages
