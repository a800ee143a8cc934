"""Per-origin event-time clocks of the intake agent (in memory; re-learned after a restart).

An origin partition's clock is the highest ``settled_at`` it has produced. It ticks to the
stats stage every ``tick_interval`` of event time, and once it has nothing left to read
(consumed up to the high-water mark and quiet for ``idle_after_s``) it sends an IDLE tick.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from detectors.dedup import Origin
from detectors.watermarks import IDLE, should_tick


@dataclass
class _Clock:
    reached_ms: int | None = None
    last_tick_ms: int | None = None
    next_offset: int = 0
    last_seen_s: float = field(default_factory=lambda: time.monotonic())
    idle_sent_s: float | None = None


@dataclass
class OriginClocks:
    tick_interval_ms: int
    clocks: dict[int, _Clock] = field(default_factory=dict)

    def _clock(self, partition: int) -> _Clock:
        return self.clocks.setdefault(partition, _Clock())

    def seen(self, origin: Origin) -> None:
        c = self._clock(origin.partition)
        c.next_offset = max(c.next_offset, origin.offset + 1)
        c.last_seen_s = time.monotonic()
        c.idle_sent_s = None

    def advance(self, partition: int, event_ms: int) -> int:
        c = self._clock(partition)
        c.reached_ms = event_ms if c.reached_ms is None else max(c.reached_ms, event_ms)
        return c.reached_ms

    def due(self, partition: int) -> bool:
        c = self._clock(partition)
        if c.reached_ms is None or not should_tick(c.last_tick_ms, c.reached_ms,
                                                   self.tick_interval_ms):
            return False
        c.last_tick_ms = c.reached_ms
        return True

    def idle(self, partition: int, highwater: int | None, idle_after_s: float,
             committed: int | None = None) -> bool:
        """Drained and quiet: due for an IDLE tick. Repeated every ``10 × idle_after_s``
        while idle, and at once after a rebalance (:meth:`rebalanced`), because a rebalance
        hands stats partitions to workers that have not heard the earlier ticks (their
        watermarks live in memory). ``committed`` (the group's next offset to read) counts
        as read: a partition taken over after its previous owner processed everything
        never shows this worker an event, yet it is drained."""
        c = self._clock(partition)
        done = max(c.next_offset, committed or 0)
        if highwater is None or done < highwater:
            return False
        now = time.monotonic()
        if c.idle_sent_s is not None:
            return now - c.idle_sent_s >= 10 * idle_after_s
        return now - c.last_seen_s >= idle_after_s

    def rebalanced(self) -> None:
        """Partitions moved: idle origins tick again at once (see :meth:`idle`)."""
        for c in self.clocks.values():
            c.idle_sent_s = None

    def mark_idle(self, partition: int) -> int:
        self._clock(partition).idle_sent_s = time.monotonic()
        return IDLE
