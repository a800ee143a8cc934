"""Month close by event time for one region (SPEC §7b).

A month closes for a region once an event of that region with
``settled_at ≥ month end + lateness`` has been seen (month end in the region's time zone,
exclusive; lateness from the rule set, default 24 h). Closing depends only on the event
times seen, never on the wall clock, so replaying history gives the same closes as the
live run. Nothing closes at the end of input: a month still open when the feed stops
stays open until a later event arrives.

:func:`observe` is the step: ``(clock, settled_at_ms) -> (clock, Closing | None)``.

- ``Closing.closed``: months that closed with this event, oldest first — evaluate every
  scope of the region that has data in them. The first month that can close is the month
  of the earliest event seen; a jump in time closes every month in between.
- ``Closing.late``: the event's own month when it was already closed (its close time had
  passed, or it was announced closed before). The event still counts (the shell adds it to
  its totals first); the monitors of the event's scopes are re-evaluated for that month
  and for the closed months whose baseline includes it (:func:`affected_months`).

A month is *closed* when announced (``≤ closed_through``) or when its close time is
≤ the latest event time seen; the first guard keeps a month closed if a new rule set
raises the lateness. The fund rules each carry ``lateness_hours``: keep one clock per
region and distinct lateness (with the defaults, one clock per region).

An event far in the future (a bad clock upstream) closes every month up to it; that is
what event time means, and later events then count as late.

State size: one int and two month strings (≈ 60 bytes as JSON). Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detectors.months import month_end_ms, month_of, next_month, zone

DEFAULT_LATENESS_MS = 24 * 3_600_000


def close_ms(month: str, tz: str, lateness_ms: int) -> int:
    """Event time (epoch ms) from which ``month`` is closed: month end + lateness."""
    return month_end_ms(month, tz) + lateness_ms


def iso_local(t_ms: int, tz: str) -> str:
    """RFC 3339 with the zone's offset, milliseconds only when non-zero."""
    local = datetime.fromtimestamp(t_ms // 1000, zone(tz)).replace(
        microsecond=(t_ms % 1000) * 1000)
    return local.isoformat(timespec="milliseconds" if t_ms % 1000 else "seconds")


@dataclass(frozen=True, slots=True)
class RegionClock:
    """Event-time progress of one region.

    Attributes:
        max_event_ms: latest ``settled_at`` seen; ``None`` before the first event.
        closed_through: latest month announced closed; ``None`` before the first close.
        earliest_month: before the first close, the earliest month seen (where closing
            starts); ``None`` once something has closed.
    """

    max_event_ms: int | None = None
    closed_through: str | None = None
    earliest_month: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"max": self.max_event_ms, "through": self.closed_through,
                "earliest": self.earliest_month}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegionClock:
        mx = d.get("max")
        return cls(None if mx is None else int(mx), d.get("through"), d.get("earliest"))


@dataclass(frozen=True, slots=True)
class Closing:
    """What one event closed (``closed``, oldest first) or reopened (``late``)."""

    closed: tuple[str, ...] = ()
    late: str | None = None


def is_closed(clock: RegionClock, month: str, tz: str, lateness_ms: int) -> bool:
    """Whether ``month`` is closed for this region's clock."""
    if clock.closed_through is not None and month <= clock.closed_through:
        return True
    return clock.max_event_ms is not None and close_ms(month, tz, lateness_ms) <= clock.max_event_ms


def observe(clock: RegionClock, settled_at_ms: int, tz: str, lateness_ms: int
            ) -> tuple[RegionClock, Closing | None]:
    """Advance a region's clock by one event (any order; old events are late, not dropped).

    Args:
        clock: the region's clock.
        settled_at_ms: the event's ``settled_at`` in epoch ms.
        tz: the region's IANA time zone.
        lateness_ms: allowed lateness (``params.lateness_ms``).

    Returns:
        The new clock and a :class:`Closing`, or ``None`` when nothing closed and the event
        was on time.
    """
    month = month_of(settled_at_ms, tz)
    late = is_closed(clock, month, tz, lateness_ms)
    new_max = settled_at_ms if clock.max_event_ms is None else max(clock.max_event_ms,
                                                                     settled_at_ms)
    if clock.closed_through is not None:
        start: str | None = next_month(clock.closed_through)
        earliest = None
    else:
        earliest = clock.earliest_month
        if not late and (earliest is None or month < earliest):
            earliest = month
        start = earliest
    closed: list[str] = []
    while start is not None and close_ms(start, tz, lateness_ms) <= new_max:
        closed.append(start)
        start = next_month(start)
    through = closed[-1] if closed else clock.closed_through
    new = RegionClock(new_max, through, None if through is not None else earliest)
    change = Closing(tuple(closed), month if late else None)
    return new, (change if closed or late else None)


def affected_months(clock: RegionClock, month: str, lookahead: int, tz: str,
                    lateness_ms: int) -> tuple[str, ...]:
    """Closed months whose evaluation reads ``month``: itself and the ``lookahead`` after it.

    For a late event in ``month``: growth monitors (baseline = previous month) use
    ``lookahead = 1``, ``fund.disease_cost_swing`` its ``baseline_months`` (3).
    """
    out: list[str] = []
    m = month
    for _ in range(lookahead + 1):
        if not is_closed(clock, m, tz, lateness_ms):
            break
        out.append(m)
        m = next_month(m)
    return tuple(out)
