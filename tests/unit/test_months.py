"""detectors.months: month buckets in the region's time zone (SPEC §4)."""

from datetime import datetime

import pytest

from detectors.months import (
    month_end_ms,
    month_of,
    month_start_ms,
    months_back,
    next_month,
    previous_month,
)


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


@pytest.mark.parametrize(
    ("instant", "tz", "month"),
    [
        # SPEC §4 case: across midnight — 00:30 on 1 Feb in Shanghai is still January in UTC.
        ("2025-01-31T16:30:00+00:00", "Asia/Shanghai", "2025-02"),
        ("2025-01-31T16:30:00+00:00", "UTC", "2025-01"),
        ("2025-01-31T15:59:59.999+00:00", "Asia/Shanghai", "2025-01"),
        ("2025-01-31T16:00:00+00:00", "Asia/Shanghai", "2025-02"),
        ("2024-12-31T23:59:59+08:00", "Asia/Shanghai", "2024-12"),
        ("2025-01-01T00:00:00+08:00", "Asia/Shanghai", "2025-01"),
        ("2025-11-18T10:02:11+08:00", "Asia/Shanghai", "2025-11"),
        ("1969-12-31T23:59:59.500+00:00", "UTC", "1969-12"),
    ],
)
def test_month_of(instant, tz, month):
    assert month_of(ms(instant), tz) == month


def test_month_of_defaults_to_shanghai():
    assert month_of(ms("2025-01-31T16:30:00+00:00")) == "2025-02"


@pytest.mark.parametrize(
    ("month", "prev", "nxt"),
    [("2025-01", "2024-12", "2025-02"), ("2025-12", "2025-11", "2026-01"),
     ("2024-03", "2024-02", "2024-04")],
)
def test_previous_and_next_month(month, prev, nxt):
    assert previous_month(month) == prev
    assert next_month(month) == nxt


def test_months_back_most_recent_first():
    assert months_back("2025-02", 3) == ("2025-01", "2024-12", "2024-11")
    assert months_back("2025-02", 0) == ()


@pytest.mark.parametrize(
    ("month", "tz", "start", "end"),
    [
        ("2025-01", "Asia/Shanghai", "2025-01-01T00:00:00+08:00", "2025-02-01T00:00:00+08:00"),
        ("2025-01", "UTC", "2025-01-01T00:00:00+00:00", "2025-02-01T00:00:00+00:00"),
        ("2024-12", "Asia/Shanghai", "2024-12-01T00:00:00+08:00", "2025-01-01T00:00:00+08:00"),
        # A DST zone: March 2025 in Berlin starts at +01:00 and ends at +02:00.
        ("2025-03", "Europe/Berlin", "2025-03-01T00:00:00+01:00", "2025-04-01T00:00:00+02:00"),
    ],
)
def test_month_bounds(month, tz, start, end):
    assert month_start_ms(month, tz) == ms(start)
    assert month_end_ms(month, tz) == ms(end)
    assert month_of(month_end_ms(month, tz) - 1, tz) == month
    assert month_of(month_end_ms(month, tz), tz) == next_month(month)


@pytest.mark.parametrize("bad", ["2025-1", "2025-13", "202501", "2025/01", "25-01"])
def test_bad_month_is_refused(bad):
    with pytest.raises(ValueError):
        previous_month(bad)
