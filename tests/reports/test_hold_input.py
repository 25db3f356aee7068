"""The end of a hold as a partner writes it, and how far ahead it may lie."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.broker.errors import InvalidRequest
from gateway.broker.holds import latest_end, parse_until


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-31", datetime(2027, 1, 31, tzinfo=UTC)),
        ("2027-01-31T12:00:00Z", datetime(2027, 1, 31, 12, tzinfo=UTC)),
        ("2027-01-31t12:00:00z", datetime(2027, 1, 31, 12, tzinfo=UTC)),
        ("2027-01-31 12:00:00+01:00", datetime(2027, 1, 31, 11, tzinfo=UTC)),
        ("2027-01-31T12:00:00.5-02:30", datetime(2027, 1, 31, 14, 30, 0, 500000, tzinfo=UTC)),
        ("2027-01-31T12:00:00.123456789Z", datetime(2027, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_rfc3339_dates_and_times_are_read_in_utc(text: str, expected: datetime) -> None:
    assert parse_until(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tomorrow",
        "2027-1-31",
        "2027-02-30",
        "2027-01-31T12:00",
        "2027-01-31T12:00:00",
        "2027-01-31T25:00:00Z",
        "31-01-2027",
        "2027-01-31T12:00:00+0100",
    ],
)
def test_anything_else_is_invalid(text: str) -> None:
    with pytest.raises(InvalidRequest, match="RFC 3339"):
        parse_until(text)


def test_a_hold_lies_at_most_five_calendar_years_ahead() -> None:
    assert latest_end(datetime(2026, 11, 23, 8, tzinfo=UTC)) == datetime(
        2031, 11, 23, 8, tzinfo=UTC
    )
    assert latest_end(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(2033, 2, 28, tzinfo=UTC)
