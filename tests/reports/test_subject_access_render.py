"""The report as JSON and as HTML: stable, in its documented shape, and escaped throughout."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from gateway.broker.log_events import SUBJECT_ID_TYPE, FieldEntry
from gateway.core import CompiledPolicy
from gateway.reports.subject_access import SubjectAccessReport, build_report
from gateway.reports.subject_access_html import render_html
from gateway.reports.subject_access_json import REPORT_SCHEMA, report_document, report_json
from gateway.reports.subject_access_text import WITHHELD_STATEMENT
from tests.reports.conftest import SUBJECT_A, T0, hold, record

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Draft202012Validator(
    json.loads((ROOT / "docs/schema/subject-access-report.schema.json").read_text("utf-8"))
)
HOSTILE = '<script>alert("x")</script>'


def report(policy: CompiledPolicy, *, held: bool = False) -> SubjectAccessReport:
    records = [
        record(1),
        record(
            2,
            partner_id=HOSTILE,
            role=HOSTILE,
            case_id='c_"><img src=x onerror=y>',
            processing_activity="javascript:alert(1)",
            break_glass=True,
            status="incomplete",
        ),
        record(3, partner_id="police"),
    ]
    return build_report(
        subject_pseudonym=SUBJECT_A,
        subject_id_type=SUBJECT_ID_TYPE,
        records=records,
        holds=[hold("police")] if held else [],
        policy=policy,
        prove=lambda seq: None,
        now=T0 + timedelta(days=1),
    )


def test_the_json_has_its_documented_shape_and_is_stable(policy: CompiledPolicy) -> None:
    for held in (False, True):
        made = replace(report(policy, held=held), record_seq=42)
        document = report_document(made, "en")
        assert [f"{e.absolute_path}: {e.message}" for e in SCHEMA.iter_errors(document)] == []
        assert document["schema"] == REPORT_SCHEMA
        text = report_json(made, "en")
        assert text == report_json(made, "en")
        assert json.loads(text) == document
        keys = list(json.loads(text))
        assert keys == sorted(keys)
    held_doc = report_document(report(policy, held=True), "nl")
    assert held_doc["statement"] == WITHHELD_STATEMENT
    assert "withheld" not in json.dumps(held_doc).replace("withheld_under_exception", ""), (
        "no count of what is held back"
    )
    assert [d["seq"] for d in held_doc["disclosures"]] == [1, 2]


def test_transforms_are_described_in_the_reports_language(policy: CompiledPolicy) -> None:
    masked = record(
        1,
        fields=(
            FieldEntry(
                "subject.date_of_birth", "identifying", "masked", "year_only", "zvh", "available"
            ),
        ),
    )
    made = build_report(
        subject_pseudonym=SUBJECT_A,
        subject_id_type=SUBJECT_ID_TYPE,
        records=[masked],
        holds=[],
        policy=policy,
        prove=lambda seq: None,
        now=T0,
    )
    nl = report_document(made, "nl")["disclosures"][0]["fields"][0]
    en = report_document(made, "en")["disclosures"][0]["fields"][0]
    assert (nl["transform"], nl["transform_description"]) == ("year_only", "alleen het jaartal")
    assert en["transform_description"] == "the year only"
    assert "alleen het jaartal" in render_html(made, "nl")


@pytest.mark.parametrize("language", ["nl", "en"])
def test_everything_from_the_log_is_escaped(policy: CompiledPolicy, language: str) -> None:
    page = render_html(replace(report(policy), record_seq=7), language)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "c_&quot;&gt;&lt;img src=x onerror=y&gt;" in page
    assert 'href="javascript' not in page
    assert "default-src 'none'" in page
    assert f'<html lang="{language}">' in page


def test_the_page_says_information_is_withheld_only_when_it_is(policy: CompiledPolicy) -> None:
    assert WITHHELD_STATEMENT["nl"] not in render_html(report(policy), "nl")
    held = render_html(report(policy, held=True), "nl")
    assert WITHHELD_STATEMENT["nl"] in held
    assert WITHHELD_STATEMENT["en"] in render_html(report(policy, held=True), "en")


def test_an_unknown_language_is_refused(policy: CompiledPolicy) -> None:
    with pytest.raises(ValueError, match="language"):
        render_html(report(policy), "de")
    with pytest.raises(ValueError, match="language"):
        report_document(report(policy), "fr")
