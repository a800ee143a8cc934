"""Origin clocks of the intake: when an input partition ticks and when it counts as idle."""

import time

import pytest

from detectors.dedup import Origin
from detectors.watermarks import IDLE
from service.ticks import OriginClocks

HOUR_MS = 3_600_000


@pytest.mark.parametrize("events_ms,expected_ticks", [
    ([0], 1),                                  # the first event always ticks
    ([0, HOUR_MS, 5 * HOUR_MS], 1),            # under the 6 h interval: no second tick
    ([0, 6 * HOUR_MS], 2),                     # exactly one interval later: a tick
    ([0, 7 * HOUR_MS, 3 * HOUR_MS], 2),        # an older event never moves the clock back
])
def test_ticks_follow_event_time(events_ms, expected_ticks):
    clocks = OriginClocks(tick_interval_ms=6 * HOUR_MS)
    ticks = 0
    for offset, ms in enumerate(events_ms):
        clocks.seen(Origin(0, offset))
        clocks.advance(0, ms)
        ticks += clocks.due(0)
    assert ticks == expected_ticks


def test_idle_only_when_drained_and_quiet(monkeypatch):
    clocks = OriginClocks(tick_interval_ms=HOUR_MS)
    clocks.seen(Origin(2, 9))
    assert not clocks.idle(2, highwater=20, idle_after_s=0)   # 10 messages still to read
    assert not clocks.idle(2, highwater=None, idle_after_s=0)  # nothing fetched yet
    assert not clocks.idle(2, highwater=10, idle_after_s=60)   # drained but not quiet yet
    assert clocks.idle(2, highwater=10, idle_after_s=0)
    assert clocks.mark_idle(2) == IDLE


def test_idle_tick_is_repeated_for_workers_that_joined_later(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    clocks = OriginClocks(tick_interval_ms=HOUR_MS)
    clocks.seen(Origin(0, 0))
    now[0] += 5
    assert clocks.idle(0, highwater=1, idle_after_s=3)
    clocks.mark_idle(0)
    now[0] += 5
    assert not clocks.idle(0, highwater=1, idle_after_s=3)
    now[0] += 30
    assert clocks.idle(0, highwater=1, idle_after_s=3)


def test_a_rebalance_makes_idle_origins_tick_again_at_once(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    clocks = OriginClocks(tick_interval_ms=HOUR_MS)
    clocks.seen(Origin(0, 0))
    now[0] += 5
    assert clocks.idle(0, highwater=1, idle_after_s=3)
    clocks.mark_idle(0)
    now[0] += 1
    assert not clocks.idle(0, highwater=1, idle_after_s=3)
    clocks.rebalanced()  # the stats partitions may have moved: their watermarks are gone
    assert clocks.idle(0, highwater=1, idle_after_s=3)


def test_a_partition_taken_over_drained_is_idle_by_its_committed_offset(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    clocks = OriginClocks(tick_interval_ms=HOUR_MS)
    assert not clocks.idle(3, highwater=50, idle_after_s=3)  # never saw an event
    now[0] += 5
    assert not clocks.idle(3, highwater=50, idle_after_s=3, committed=49)  # one unprocessed
    assert clocks.idle(3, highwater=50, idle_after_s=3, committed=50)
