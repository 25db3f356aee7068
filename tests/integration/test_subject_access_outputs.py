"""What a subject receives: the HTML page holds no BSN and no case value and renders on its
own; `ketenpoort audit report` writes JSON and HTML and records each report in the log."""

from __future__ import annotations

import io
import json
import re
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gateway.broker.log_events import RecordKind
from gateway.cli.demo_data import GOAL, REASON, SOURCE_RECORDS, SUBJECT
from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.reports.subject_access_text import WITHHELD_STATEMENT
from gateway.server.config import shipped_policy_dir
from gateway.store.audit_log import AuditLog
from gateway.store.db import create_engine_for
from tests.integration.access_helpers import (
    OTHER,
    access_report,
    check_proofs,
    covered_by,
    listed_seqs,
    place_hold,
    reported_records,
    rfc3339,
    schema_errors,
    two_subjects,
)
from tests.integration.harness import running_harness

HOLD_REASON = "Lopend onderzoek."
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}
CHROMIUM = Path("/usr/bin/chromium")


def case_values() -> list[str]:
    """Every value the partners' systems and the registration hold about the subjects."""
    values = [v for record in SOURCE_RECORDS.values() for v in record.fields.values()]
    values += [
        SUBJECT.name,
        SUBJECT.address,
        SUBJECT.postcode,
        SUBJECT.date_of_birth,
        REASON,
        GOAL,
        OTHER.name,
        OTHER.address,
        OTHER.postcode,
        OTHER.date_of_birth,
    ]
    # "2" (children in the household) or "yes" would match any page; the rest must not.
    return [v for v in values if len(v) >= 4]


class Structure(HTMLParser):
    """Checks that tags nest and that nothing would be fetched from elsewhere."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "link", "img", "iframe", "object", "embed", "base", "form"}:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name in {"src", "srcset", "action", "background"} or name.startswith("on"):
                self.problems.append(f"{tag} {name}")
            if name == "href" and not (value or "").startswith("#"):
                self.problems.append(f"href {value}")
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problems.append(f"</{tag}> out of place")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_page(page: str) -> str:
    parser = Structure()
    parser.feed(page)
    parser.close()
    assert parser.problems == [] and parser.open == []
    assert "url(" not in page and "@import" not in page
    return " ".join(parser.text)


async def test_the_page_holds_no_bsn_no_value_and_stands_alone(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    async with running_harness(url, dev_keys, shipped_policy) as harness:
        scenario = await two_subjects(harness)
        until = rfc3339(datetime.now(UTC) + timedelta(days=30))
        await place_hold(
            harness, "police", case_id=scenario.case_a1, until=until, reason=HOLD_REASON
        )
        pages = {
            language: (await access_report(harness, fmt="html", language=language))
            for language in ("nl", "en")
        }
        listed = [r.seq for r in reported_records(harness, SUBJECT.bsn)]
    for language, response in pages.items():
        assert response.media_type == "text/html; charset=utf-8"
        page = response.document.decode("utf-8")
        assert page.startswith("<!DOCTYPE html>") and f'<html lang="{language}">' in page
        text = check_page(page)
        for bsn in (SUBJECT.bsn, OTHER.bsn):
            assert bsn not in page
        leaked = [v for v in case_values() if v in page]
        assert leaked == []
        assert HOLD_REASON not in page
        assert WITHHELD_STATEMENT[language] in text
        assert "@media print" in page
        # Each listed record is there with its proof; held ones are not.
        shown = {int(s) for s in re.findall(r'id="r(\d+)"', page)}
        assert shown and shown < set(listed)
        assert {int(s) for s in re.findall(r'id="p(\d+)"', page)} == shown
    assert "Controleren dat dit overzicht klopt" in pages["nl"].document.decode()
    assert "Checking that this report is right" in pages["en"].document.decode()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no headless Chromium at /usr/bin/chromium")
async def test_chromium_prints_the_page(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    async with running_harness(url, dev_keys, shipped_policy) as harness:
        await two_subjects(harness)
        page = (await access_report(harness, fmt="html")).document
    source = tmp_path / "report.html"
    source.write_bytes(page)
    pdf = tmp_path / "report.pdf"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--print-to-pdf={pdf}",
            source.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert pdf.read_bytes().startswith(b"%PDF")


async def test_the_command_writes_json_and_html_and_records_each_report(
    tmp_path: Path,
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    async with running_harness(url, dev_keys, shipped_policy) as harness:
        scenario = await two_subjects(harness)
        until = rfc3339(datetime.now(UTC) + timedelta(days=30))
        await place_hold(
            harness, "police", case_id=scenario.case_a1, until=until, reason=HOLD_REASON
        )
        records = reported_records(harness, SUBJECT.bsn)
    hidden = covered_by(records, partner="police", partner_type="police", case_id=scenario.case_a1)
    source = ["--database", url, "--keys", str(dev_keys), "--policy", str(shipped_policy_dir())]

    # The BSN from standard input keeps it out of the shell history.
    out = tmp_path / "report.json"
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{SUBJECT.bsn}\n"))
    assert main(["audit", "report", "--subject", "-", *source, "-o", str(out)]) == 0
    document = json.loads(out.read_text("utf-8"))
    assert schema_errors(document) == []
    assert listed_seqs(document) == [r.seq for r in records if r.seq not in hidden]
    assert document["statement"] == WITHHELD_STATEMENT
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    page_file = tmp_path / "rapport.html"
    args = ["audit", "report", "--subject", SUBJECT.bsn, *source, "--language", "en"]
    assert main([*args, "-o", str(page_file)]) == 0
    page = page_file.read_text("utf-8")
    check_page(page)
    assert WITHHELD_STATEMENT["en"] in page and SUBJECT.bsn not in page

    # Without -o the report goes to stdout; a bad BSN is refused without repeating it.
    capsysbinary.readouterr()
    assert main(["audit", "report", "--subject", OTHER.bsn, *source]) == 0
    other = json.loads(capsysbinary.readouterr().out)
    assert {d["case_id"] for d in other["disclosures"]} == {scenario.case_b}
    assert main(["audit", "report", "--subject", "123456789", *source]) == 2
    assert b"123456789" not in capsysbinary.readouterr().err

    engine = create_engine_for(url)
    try:
        log = AuditLog(engine)
        check_proofs(document, log, dev_keys)
        made = log.list_records(kinds=[RecordKind.SUBJECT_ACCESS])
        assert [r.seq for r in made] == [document["record_seq"], made[1].seq, made[2].seq]
        assert [dict(r.event.detail)["format"] for r in made] == ["json", "html", "json"]
        for r in made:
            e = r.event
            assert (e.partner_id, e.role, e.user_ref) == (
                "zvh",
                "privacy_officer",
                "ketenpoort-cli",
            )
            assert e.name == "ketenpoort audit report"
        assert dict(made[0].event.detail)["withheld"] == str(len(hidden))
        for r in log.list_records(limit=10_000):
            assert SUBJECT.bsn not in json.dumps(r.event.detail) + r.event.subject_pseudonym
        assert log.verify().ok
    finally:
        engine.dispose()
