"""The privacy officer's break-glass review queue over real gRPC, on SQLite and PostgreSQL.

A Code Rood case gets one break-glass disclosure (acute_safety, with a justification) and one
regular disclosure; only the first is queued for review.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import text

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.log_events import RecordKind, detail_of
from gateway.broker.records import event
from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.crypto.free_text import TextKind, text_digest, text_digest_key
from gateway.store.db import create_engine_for
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register, to_case_meeting

BREAK_GLASS = "acute_safety"
JUSTIFICATION = "Threat of violence tonight; children at home."
COMMENT = "Acute threat confirmed by the police report of that night (ref. 77-Q)."
OPEN_GAUGE = "ketenpoort_break_glass_reviews_open"


@pytest.fixture
async def sqlite_harness(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Harness]:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    async with running_harness(url, dev_keys, shipped_policy) as running:
        yield running


async def _disclosures(harness: Harness) -> tuple[int, int]:
    """Seqs of a break-glass disclosure and of a regular one, in one Code Rood case."""
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, ("zvh", "veilig-thuis"))
    responder = harness.client("veilig-thuis")
    acute = await responder.request_disclosure(
        case_id, BREAK_GLASS, "registration", justification=JUSTIFICATION
    )
    await to_case_meeting(director, case_id)
    regular = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    return acute.response.log_seq, regular.response.log_seq


def _gauge(harness: Harness) -> float | None:
    return harness.gateway.metrics.registry.get_sample_value(OPEN_GAUGE)


def _log_table_text(db_url: str) -> str:
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT * FROM audit_log")).all()
    finally:
        engine.dispose()
    return "\n".join(" ".join(str(value) for value in row) for row in rows)


def _keyed_digest(harness: Harness, comment: str) -> str:
    """What the log keeps of a comment: HMAC-SHA256 under a key derived from the gateway's
    pseudonym key, never a plain hash anyone could confirm a guess with."""
    keystore = harness.gateway.keystore
    assert keystore is not None
    key = text_digest_key(keystore.pseudonym_key)
    return text_digest(key, TextKind.REVIEW_COMMENT, comment)


async def _code(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_break_glass_disclosures_are_reviewed_once(harness: Harness) -> None:
    acute_seq, regular_seq = await _disclosures(harness)
    officer = harness.client("zvh", role="privacy_officer", user_ref="fg-0042")

    listing = await officer.list_break_glass_reviews()
    assert [r.disclosure.seq for r in listing.reviews] == [acute_seq]
    queued = listing.reviews[0]
    assert queued.status == "open" and not queued.verdict and not queued.review_seq
    assert queued.disclosure.break_glass and queued.disclosure.kind == "disclosure"
    assert queued.disclosure.purpose == BREAK_GLASS
    assert queued.disclosure.partner_id == "veilig-thuis"
    assert _gauge(harness) == 1
    everything = await officer.list_break_glass_reviews(status="all")
    assert regular_seq not in [r.disclosure.seq for r in everything.reviews]

    closed = await officer.close_break_glass_review(acute_seq, "justified", COMMENT)
    assert closed.status == "closed" and closed.verdict == "justified"
    assert closed.comment == COMMENT
    assert closed.reviewed_by == "zvh:fg-0042"
    assert closed.review_seq > acute_seq
    assert closed.disclosure.seq == acute_seq
    assert _gauge(harness) == 0

    log = harness.gateway.log
    [review] = log.list_records(after_seq=closed.review_seq - 1, limit=1)
    [acute] = log.list_records(after_seq=acute_seq - 1, limit=1)
    assert review.seq == closed.review_seq
    assert review.event.kind is RecordKind.BREAK_GLASS_REVIEW
    assert dict(review.event.detail) == {
        "reviewed_seq": str(acute_seq),
        "verdict": "justified",
        "comment_hmac": _keyed_digest(harness, COMMENT),
    }
    assert review.event.case_id == acute.event.case_id
    assert review.event.subject_pseudonym == acute.event.subject_pseudonym
    assert (review.event.partner_id, review.event.role, review.event.user_ref) == (
        "zvh",
        "privacy_officer",
        "fg-0042",
    )
    assert not review.event.break_glass
    stored = _log_table_text(harness.db_url)
    assert acute.event.case_id in stored, "the dump holds the log's rows"
    assert COMMENT not in stored and "77-Q" not in stored

    again = officer.close_break_glass_review(acute_seq, "not_justified", "second opinion")
    assert await _code(again) == grpc.StatusCode.FAILED_PRECONDITION
    regular = officer.close_break_glass_review(regular_seq, "justified", "not break-glass")
    assert await _code(regular) == grpc.StatusCode.NOT_FOUND
    missing = officer.close_break_glass_review(10**9, "justified", "no such record")
    assert await _code(missing) == grpc.StatusCode.NOT_FOUND

    assert not (await officer.list_break_glass_reviews()).reviews
    [done] = (await officer.list_break_glass_reviews(status="closed")).reviews
    assert (done.disclosure.seq, done.verdict, done.review_seq) == (
        acute_seq,
        "justified",
        closed.review_seq,
    )
    reviews = log.list_records(kinds=[RecordKind.BREAK_GLASS_REVIEW])
    assert [r.seq for r in reviews] == [closed.review_seq], "refused closes write no record"
    verified = await officer.verify_log()
    assert verified.ok, verified.reason


async def test_only_the_privacy_officer_reviews(sqlite_harness: Harness) -> None:
    harness = sqlite_harness
    acute_seq, _ = await _disclosures(harness)
    for partner, role in (("zvh", "process_director"), ("police", "case_director")):
        other = harness.client(partner, role=role)
        assert await _code(other.list_break_glass_reviews()) == grpc.StatusCode.PERMISSION_DENIED
        closing = other.close_break_glass_review(acute_seq, "justified", COMMENT)
        assert await _code(closing) == grpc.StatusCode.PERMISSION_DENIED
    officer = harness.client("zvh", role="privacy_officer")
    [still_open] = (await officer.list_break_glass_reviews()).reviews
    assert still_open.disclosure.seq == acute_seq


@pytest.mark.parametrize(
    ("verdict", "comment"),
    [
        ("fine", COMMENT),
        ("", COMMENT),
        ("justified", ""),
        ("justified", "   \n"),
        ("justified", "x" * 4001),
        ("justified", "a\x00b"),
    ],
)
async def test_a_review_needs_a_verdict_and_a_comment(
    sqlite_harness: Harness, verdict: str, comment: str
) -> None:
    harness = sqlite_harness
    acute_seq, _ = await _disclosures(harness)
    officer = harness.client("zvh", role="privacy_officer")
    closing = officer.close_break_glass_review(acute_seq, verdict, comment)
    assert await _code(closing) == grpc.StatusCode.INVALID_ARGUMENT
    assert len((await officer.list_break_glass_reviews()).reviews) == 1
    assert not harness.gateway.log.list_records(kinds=[RecordKind.BREAK_GLASS_REVIEW])


async def test_review_list_pages_and_checks_its_input(sqlite_harness: Harness) -> None:
    harness = sqlite_harness
    first, _ = await _disclosures(harness)
    second, _ = await _disclosures(harness)
    officer = harness.client("zvh", role="privacy_officer")
    page = await officer.list_break_glass_reviews(page_size=1)
    assert [r.disclosure.seq for r in page.reviews] == [first]
    assert page.next_after_seq == first
    rest = await officer.list_break_glass_reviews(after_seq=page.next_after_seq, page_size=1)
    assert [r.disclosure.seq for r in rest.reviews] == [second]
    assert rest.next_after_seq == 0
    assert await officer.close_break_glass_review(first, "not_justified", COMMENT)
    assert [r.disclosure.seq for r in (await officer.list_break_glass_reviews()).reviews] == [
        second
    ]
    bad_status = officer.list_break_glass_reviews(status="pending")
    assert await _code(bad_status) == grpc.StatusCode.INVALID_ARGUMENT
    most = await officer.list_break_glass_reviews(status="all", page_size=1000)
    assert [r.disclosure.seq for r in most.reviews] == [first, second]
    too_many = officer.list_break_glass_reviews(page_size=1001)
    assert await _code(too_many) == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_close_interrupted_after_its_log_record_can_be_repeated(
    sqlite_harness: Harness,
) -> None:
    """The review record is committed but the process stops before the review row: the
    review stays open, a second close succeeds, and its row names the record that counts."""
    harness = sqlite_harness
    acute_seq, _ = await _disclosures(harness)
    log = harness.gateway.log
    [acute] = log.list_records(after_seq=acute_seq - 1, limit=1)
    officer_principal = Principal("zvh", "zvh", "privacy_officer", "fg-1", "", 0)
    orphan = await log.append(
        event(
            RecordKind.BREAK_GLASS_REVIEW,
            principal=officer_principal,
            trace=TraceContext.from_traceparent(None, "AccountabilityService/Close"),
            at=acute.event.occurred_at,
            case_id=acute.event.case_id,
            subject_pseudonym=acute.event.subject_pseudonym,
            phase="",
            policy_version="",
            detail=detail_of(
                reviewed_seq=acute_seq, verdict="justified", comment_hmac="hmac-sha256:" + "0" * 64
            ),
        )
    )
    officer = harness.client("zvh", role="privacy_officer")
    [still_open] = (await officer.list_break_glass_reviews()).reviews
    assert still_open.disclosure.seq == acute_seq

    closed = await officer.close_break_glass_review(acute_seq, "justified", COMMENT)
    assert closed.review_seq > orphan.seq
    records = log.list_records(kinds=[RecordKind.BREAK_GLASS_REVIEW])
    assert [r.seq for r in records] == [orphan.seq, closed.review_seq]
    assert {dict(r.event.detail)["reviewed_seq"] for r in records} == {str(acute_seq)}
    [done] = (await officer.list_break_glass_reviews(status="closed")).reviews
    assert done.review_seq == closed.review_seq


async def test_concurrent_closes_of_one_review_one_wins(harness: Harness) -> None:
    acute_seq, _ = await _disclosures(harness)
    officers = [harness.client("zvh", role="privacy_officer", user_ref=f"fg-{n}") for n in range(2)]
    codes = await asyncio.gather(
        *(
            _code(o.close_break_glass_review(acute_seq, "justified", f"{COMMENT} ({n})"))
            for n, o in enumerate(officers)
        )
    )
    assert sorted(c.name for c in codes) == ["FAILED_PRECONDITION", "OK"]
    [done] = (await officers[0].list_break_glass_reviews(status="closed")).reviews
    winner = codes.index(grpc.StatusCode.OK)
    assert done.reviewed_by == f"zvh:fg-{winner}"
    [record] = [
        r
        for r in harness.gateway.log.list_records(kinds=[RecordKind.BREAK_GLASS_REVIEW])
        if r.seq == done.review_seq
    ]
    assert dict(record.event.detail)["comment_hmac"] == _keyed_digest(harness, done.comment)


async def test_the_command_line_lists_and_closes_reviews(
    sqlite_harness: Harness, dev_keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ketenpoort audit review` on the gateway's SQLite file, beside the running gateway."""
    harness = sqlite_harness
    acute_seq, regular_seq = await _disclosures(harness)
    where = ["--db", harness.db_url, "--keys", str(dev_keys)]

    assert await asyncio.to_thread(main, ["audit", "review", "list", *where]) == 0
    out = capsys.readouterr().out
    assert f"seq={acute_seq} " in out and "purpose=acute_safety" in out
    assert f"seq={regular_seq} " not in out
    assert "1 open review(s)" in out

    close = ["audit", "review", "close", str(acute_seq), "--verdict", "not_justified"]
    closing = [*close, "--comment", COMMENT, "--reviewer", "fg-cli", *where]
    assert await asyncio.to_thread(main, closing) == 0
    assert f"review of seq={acute_seq} closed: not_justified" in capsys.readouterr().out

    assert await asyncio.to_thread(main, closing) == 1
    assert "already closed" in capsys.readouterr().err
    regular = ["audit", "review", "close", str(regular_seq), "--verdict", "justified"]
    assert await asyncio.to_thread(main, [*regular, "--comment", COMMENT, *where]) == 1
    assert "not a break-glass disclosure" in capsys.readouterr().err
    assert await asyncio.to_thread(main, [*close, "--comment", " ", *where]) == 2
    # The comments are encrypted: without the gateway's keys the command says so.
    keyless = ["audit", "review", "list", "--db", harness.db_url, "--keys", "/nonexistent"]
    assert await asyncio.to_thread(main, keyless) == 2
    assert "the gateway's keys are needed" in capsys.readouterr().err

    assert await asyncio.to_thread(main, ["audit", "review", "list", *where]) == 0
    assert "0 open review(s)" in capsys.readouterr().out
    listing = ["audit", "review", "list", "--status", "closed", *where]
    assert await asyncio.to_thread(main, listing) == 0
    out = capsys.readouterr().out
    assert "verdict=not_justified by=zvh:fg-cli" in out and COMMENT in out

    [review] = harness.gateway.log.list_records(kinds=[RecordKind.BREAK_GLASS_REVIEW])
    assert dict(review.event.detail)["reviewed_seq"] == str(acute_seq)
    assert review.event.user_ref == "fg-cli"
    assert COMMENT not in _log_table_text(harness.db_url)
    officer = harness.client("zvh", role="privacy_officer")
    [done] = (await officer.list_break_glass_reviews(status="closed")).reviews
    assert done.review_seq == review.seq
    assert await asyncio.to_thread(main, ["audit", "verify", *where]) == 0


async def test_the_open_review_gauge_is_counted_at_start(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    async with running_harness(url, dev_keys, shipped_policy) as first:
        assert _gauge(first) == 0
        await _disclosures(first)
        await _disclosures(first)
    async with running_harness(url, dev_keys, shipped_policy) as second:
        assert _gauge(second) == 2
