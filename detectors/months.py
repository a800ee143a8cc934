"""Calendar-month buckets in a region's time zone (SPEC §4).

Statistics are kept per calendar month of ``settled_at`` *in the region's time zone*
(default Asia/Shanghai): a settlement at 2025-01-31T16:30Z belongs to "2025-02" in
Shanghai and to "2025-01" in UTC. Months are plain ``"YYYY-MM"`` strings, which sort
chronologically and make readable table keys (``entity|kind|YYYY-MM``).

Pure: no clock reads. Zones come from :mod:`zoneinfo` and are cached per name.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Shanghai"


@lru_cache(maxsize=64)
def zone(tz: str) -> ZoneInfo:
    """The cached :class:`ZoneInfo` for an IANA name; raises on an unknown zone."""
    return ZoneInfo(tz)


def _parse(month: str) -> tuple[int, int]:
    year_s, sep, month_s = month.partition("-")
    if sep != "-" or len(year_s) != 4 or len(month_s) != 2:
        raise ValueError(f"month must be 'YYYY-MM', got {month!r}")
    year, mon = int(year_s), int(month_s)
    if not 1 <= mon <= 12:
        raise ValueError(f"month must be 'YYYY-MM', got {month!r}")
    return year, mon


def _fmt(year: int, mon: int) -> str:
    return f"{year:04d}-{mon:02d}"


def month_of(settled_at_ms: int, tz: str = DEFAULT_TZ) -> str:
    """Calendar month ``"YYYY-MM"`` of an epoch-millisecond instant in time zone ``tz``.

    Month boundaries fall on whole seconds in every real zone, so flooring to the second
    is exact (and correct for instants before 1970).
    """
    local = datetime.fromtimestamp(settled_at_ms // 1000, zone(tz))
    return _fmt(local.year, local.month)


def previous_month(month: str) -> str:
    """``"2025-01"`` → ``"2024-12"``."""
    year, mon = _parse(month)
    return _fmt(year - 1, 12) if mon == 1 else _fmt(year, mon - 1)


def next_month(month: str) -> str:
    """``"2024-12"`` → ``"2025-01"``."""
    year, mon = _parse(month)
    return _fmt(year + 1, 1) if mon == 12 else _fmt(year, mon + 1)


def months_back(month: str, count: int) -> tuple[str, ...]:
    """The ``count`` months before ``month``, most recent first.

    ``months_back("2025-02", 2) == ("2025-01", "2024-12")``; the keys whose card states
    give ``held_previous`` to :func:`detectors.cards.card_step`.
    """
    out: list[str] = []
    for _ in range(count):
        month = previous_month(month)
        out.append(month)
    return tuple(out)


def month_start_ms(month: str, tz: str = DEFAULT_TZ) -> int:
    """Epoch milliseconds of the first instant of ``month`` in ``tz`` (inclusive)."""
    year, mon = _parse(month)
    return int(datetime(year, mon, 1, tzinfo=zone(tz)).timestamp()) * 1000


def month_end_ms(month: str, tz: str = DEFAULT_TZ) -> int:
    """Epoch milliseconds where ``month`` ends in ``tz`` (exclusive).

    The first instant of the next month: an event belongs to ``month`` iff
    ``month_start_ms(month) <= settled_at_ms < month_end_ms(month)``.
    """
    return month_start_ms(next_month(month), tz)
