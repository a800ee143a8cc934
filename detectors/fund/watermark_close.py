"""Which months a region closes when the event-time *low watermark* advances.

The streaming fund stage closes months by the low watermark over all input partitions
(``detectors.watermarks``), not by the region's own newest event, so the set of closed
months never depends on how partitions interleave. On time-ordered input this closes the
same months, with the same complete totals, as :func:`detectors.fund.close.observe`.
"""

from __future__ import annotations

from detectors.fund.close import close_ms
from detectors.months import next_month


def months_to_close(earliest_month: str | None, closed_through: str | None, low_ms: int | None,
                    tz: str, lateness_ms: int) -> tuple[str, ...]:
    """Months after ``closed_through`` (or from ``earliest_month``) whose close time
    (month end + lateness) the watermark has passed, oldest first."""
    if low_ms is None:
        return ()
    start = next_month(closed_through) if closed_through is not None else earliest_month
    out: list[str] = []
    while start is not None and close_ms(start, tz, lateness_ms) <= low_ms:
        out.append(start)
        start = next_month(start)
    return tuple(out)


def is_late(month: str, closed_through: str | None) -> bool:
    """An event for a month the region has already closed."""
    return closed_through is not None and month <= closed_through
