"""Accountability events: canonical body, exact round trip, and no place for a value."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.broker.log_events import AuditEvent, FieldEntry, RecordKind
from gateway.store import MalformedRecord, encode_event, parse_event
from gateway.store.audit_event import BODY_KEYS, FIELD_KEYS, chain_hash
from tests.store.factories import T0, event

DOCUMENTED_BODY_KEYS = {
    "kind",
    "occurred_at",
    "trace_id",
    "span_id",
    "partner_id",
    "role",
    "user_ref",
    "purpose",
    "legal_basis",
    "processing_activity",
    "phase",
    "case_id",
    "subject_pseudonym",
    "status",
    "refusal_code",
    "disclosure_id",
    "policy_version",
    "break_glass",
    "justification_ref",
    "fields",
    "schema",
    "name",
    "ended_at",
    "parent_span_id",
    "subject_id_type",
    "detail",
}
DOCUMENTED_FIELD_KEYS = {"field", "category", "outcome", "transform", "source", "availability"}


def reference_body(e: AuditEvent) -> str:
    """The canonical form spelled out with the standard library."""
    data: dict[str, Any] = {
        name: getattr(e, name)
        for name in DOCUMENTED_BODY_KEYS - {"occurred_at", "ended_at", "fields", "schema", "detail"}
    }
    data["kind"] = e.kind.value
    data["schema"] = "ketenpoort-log/2"
    data["detail"] = dict(e.detail)
    data["occurred_at"] = e.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert e.ended_at is not None
    data["ended_at"] = e.ended_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data["fields"] = [{k: getattr(f, k) for k in DOCUMENTED_FIELD_KEYS} for f in e.fields]
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_body_has_exactly_the_documented_keys() -> None:
    body = json.loads(encode_event(event()))
    assert set(body) == DOCUMENTED_BODY_KEYS == BODY_KEYS
    for item in body["fields"]:
        assert set(item) == DOCUMENTED_FIELD_KEYS == FIELD_KEYS


def test_an_event_has_no_field_for_a_value() -> None:
    with pytest.raises(TypeError):
        event(value="Anna de Vries")
    with pytest.raises(TypeError):
        FieldEntry("name", "identifying", "disclosed", None, "brp", "available", "Anna")  # type: ignore[call-arg]


def test_body_is_canonical_json() -> None:
    e = event(partner_id="politie-oost", case_id="zaak-ü-1")
    body = encode_event(e)
    assert body == reference_body(e)
    assert " " not in body.replace("wgs-art-2.3", "")  # no whitespace between tokens
    assert "zaak-ü-1" in body  # UTF-8, not \\u escapes
    assert '"occurred_at":"2026-03-02T09:30:00.123456Z"' in body


def test_time_is_written_in_utc_with_z() -> None:
    amsterdam = timezone(timedelta(hours=1))
    e = event(occurred_at=datetime(2026, 3, 2, 10, 30, tzinfo=amsterdam))
    assert e.occurred_at == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert '"occurred_at":"2026-03-02T09:30:00.000000Z"' in encode_event(e)


def test_round_trip_is_exact() -> None:
    e = event(break_glass=True, justification_ref="just-1", status="refused")
    assert parse_event(encode_event(e)) == e
    assert encode_event(parse_event(encode_event(e))) == encode_event(e)


# NUL is refused in the identifiers copied to indexed columns; tested separately.
_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
_field = st.builds(
    FieldEntry,
    field=_text,
    category=_text,
    outcome=st.sampled_from(["disclosed", "withheld"]),
    transform=st.none(),
    source=_text,
    availability=st.sampled_from(["available", "not_held", "source_unavailable", "not_requested"]),
) | st.builds(
    FieldEntry,
    field=_text,
    category=_text,
    outcome=st.just("masked"),
    transform=_text,
    source=_text,
    availability=st.just("available"),
)


@given(
    ids=st.lists(_text, min_size=10, max_size=10),
    fields=st.lists(_field, max_size=4),
    kind=st.sampled_from(list(RecordKind)),
    break_glass=st.booleans(),
    micros=st.integers(min_value=0, max_value=10**12),
)
def test_encoder_matches_json_dumps_for_any_strings(
    ids: list[str], fields: list[FieldEntry], kind: RecordKind, break_glass: bool, micros: int
) -> None:
    e = event(
        kind=kind,
        occurred_at=T0 + timedelta(microseconds=micros),
        partner_id=ids[0],
        role=ids[1],
        user_ref=ids[2],
        purpose=ids[3],
        legal_basis=ids[4],
        processing_activity=ids[5],
        phase=ids[6],
        case_id=ids[7],
        subject_pseudonym=ids[8],
        refusal_code=ids[9],
        break_glass=break_glass,
        fields=tuple(fields),
    )
    body = encode_event(e)
    assert body == reference_body(e)
    assert parse_event(body) == e


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"occurred_at": datetime(2026, 3, 2, 9, 30)}, "aware"),
        ({"trace_id": "ABCDEF" + "0" * 26}, "trace_id"),
        ({"trace_id": "0" * 32}, "trace_id"),
        ({"trace_id": "a" * 31}, "trace_id"),
        ({"span_id": "0" * 16}, "span_id"),
        ({"status": "fine"}, "status"),
        ({"kind": "gossip"}, "kind"),
        ({"break_glass": 1}, "break_glass"),
        ({"fields": [FieldEntry("a", "b", "disclosed", None, "s", "available")]}, "tuple"),
    ],
)
def test_invalid_events_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        event(**overrides)


def test_nul_is_refused_in_indexed_identifiers_only() -> None:
    for name in ("partner_id", "case_id", "subject_pseudonym", "purpose"):
        with pytest.raises(ValueError, match="NUL"):
            overrides: dict[str, Any] = {name: "a\x00b"}
            event(**overrides)
    e = event(role="a\x00b", user_ref="\x00")
    assert "\\u0000" in encode_event(e)
    assert parse_event(encode_event(e)) == e


def test_unknown_kind_string_is_accepted_only_when_valid() -> None:
    assert event(kind="refusal").kind is RecordKind.REFUSAL


@pytest.mark.parametrize(
    ("outcome", "transform", "availability"),
    [
        ("masked", None, "available"),
        ("disclosed", "initials", "available"),
        ("leaked", None, "available"),
        ("disclosed", None, "somewhere"),
    ],
)
def test_invalid_field_entries_are_refused(
    outcome: str, transform: str | None, availability: str
) -> None:
    with pytest.raises(ValueError):
        FieldEntry("name", "identifying", outcome, transform, "brp", availability)


def test_validation_messages_do_not_echo_input() -> None:
    secret = "Anna de Vries"
    cases: list[dict[str, Any]] = [{"status": secret}, {"kind": secret}]
    for overrides in cases:
        with pytest.raises(ValueError) as err:
            event(**overrides)
        assert secret not in str(err.value)
    with pytest.raises(ValueError) as err:
        FieldEntry("name", "identifying", secret, None, "brp", "available")
    assert secret not in str(err.value)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(value="Anna"),
        lambda d: d.pop("purpose"),
        lambda d: d.update(partner_id=7),
        lambda d: d.update(occurred_at="2026-03-02 09:30:00"),
        lambda d: d.update(fields={"field": "x"}),
        lambda d: d["fields"].append({"field": "x"}),
        lambda d: d["fields"][0].update(value="Anna"),
        lambda d: d["fields"][0].update(transform=3),
        lambda d: d.update(status="fine"),
    ],
)
def test_parse_refuses_other_shapes(mutate: Any) -> None:
    data = json.loads(encode_event(event()))
    mutate(data)
    with pytest.raises(MalformedRecord):
        parse_event(json.dumps(data))


def test_parse_refuses_non_json() -> None:
    with pytest.raises(MalformedRecord):
        parse_event("{not json")
    with pytest.raises(MalformedRecord):
        parse_event("[]")


def test_chain_hash_is_the_documented_construction() -> None:
    import hashlib

    body = encode_event(event()).encode()
    prev = bytes.fromhex("ab" * 32)
    expected = hashlib.sha256(
        b"ketenpoort-log-v1\x00" + (7).to_bytes(8, "big") + prev + body
    ).digest()
    assert chain_hash(7, prev, body) == expected
    assert chain_hash(8, prev, body) != expected


def test_events_are_immutable() -> None:
    e = event()
    with pytest.raises(AttributeError):
        e.partner_id = "other"  # type: ignore[misc]
    assert replace(e, partner_id="other").partner_id == "other"
