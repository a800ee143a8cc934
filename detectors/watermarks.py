"""Event-time watermarks across input partitions, for deterministic closing of days/months.

Why: one stats partition receives updates from every partition of the ``settlements``
topic, interleaved in an order that depends on timing (worker count, batch sizes, replay
speed). Anything evaluated "as of now" would depend on that order. Instead each stats
partition tracks, per origin partition, the event time that origin has reached (carried on
every update and on periodic ticks); a day closes once *every* origin has passed its end.
Evaluated at close, cards see exactly the events of the closed days: the same input gives
the same cards whatever the interleaving (the Dataflow/Flink low-watermark idea).

An origin that has gone idle sends an ``IDLE`` tick: it holds nothing back until it
produces again. Events older than an already closed day are *late*: they still count and
are evaluated at the next close.
"""

from __future__ import annotations

from dataclasses import dataclass

IDLE = 2**62  # "this origin has nothing pending": larger than any event time in ms


@dataclass(frozen=True, slots=True)
class Watermarks:
    """Per origin partition: the event time (ms) it has reached; ``None`` = not heard yet."""

    reached_ms: tuple[int | None, ...]

    @classmethod
    def empty(cls, origins: int) -> "Watermarks":
        return cls((None,) * origins)

    def advance(self, origin: int, event_ms: int) -> "Watermarks":
        """Move an origin's clock forward (never back), or mark it idle with ``IDLE``.

        Real data from an origin that was idle resumes its clock at that data's time.
        """
        if not 0 <= origin < len(self.reached_ms):
            return self
        current = self.reached_ms[origin]
        if current == IDLE and event_ms != IDLE:
            new = event_ms
        elif current is None:
            new = event_ms
        else:
            new = max(current, event_ms)
        if new == current:
            return self
        values = list(self.reached_ms)
        values[origin] = new
        return Watermarks(tuple(values))

    @property
    def low_ms(self) -> int | None:
        """The low watermark: every origin has reached it; ``None`` until all have spoken."""
        if any(v is None for v in self.reached_ms):
            return None
        return min(v for v in self.reached_ms if v is not None)

    def to_dict(self) -> dict:
        return {"r": list(self.reached_ms)}

    @classmethod
    def from_dict(cls, d: dict) -> "Watermarks":
        return cls(tuple(None if v is None else int(v) for v in d["r"]))


def should_tick(last_tick_ms: int | None, event_ms: int, interval_ms: int) -> bool:
    """An origin broadcasts a tick when its event time has moved ``interval_ms`` past the last."""
    return last_tick_ms is None or event_ms - last_tick_ms >= interval_ms
