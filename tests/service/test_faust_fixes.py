"""The patches for Faust's end-of-recovery race (service.faust_fixes)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from faust.transport.consumer import Consumer
from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from service import faust_fixes


def _queue_with(flow: FlowControlEvent, *items: int) -> FlowControlQueue:
    queue: FlowControlQueue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    for item in items:
        queue.put_nowait(item)
    return queue


def test_resuming_a_running_flow_keeps_what_the_buffers_hold():
    faust_fixes.resume_clears_only_after_suspend()

    async def scenario() -> tuple[int, int]:
        flow = FlowControlEvent(initially_suspended=False)
        queue = _queue_with(flow, 155, 156)
        flow.resume()  # recovery's last resume: the flow never stopped
        kept = queue.qsize()
        flow.suspend()  # a rebalance: what was fetched before it is stale
        flow.resume()
        return kept, queue.qsize()

    kept, after_suspension = asyncio.run(scenario())
    assert kept == 2
    assert after_suspension == 0


def test_a_flow_created_suspended_is_cleared_by_its_first_resume():
    faust_fixes.resume_clears_only_after_suspend()

    async def scenario() -> int:
        flow = FlowControlEvent()  # Faust's: initially suspended
        queue = _queue_with(flow, 1)
        flow.resume()
        return queue.qsize()

    assert asyncio.run(scenario()) == 0


class _SeekingConsumer:
    """What ``perform_seek`` touches: the offsets and the broker's committed offsets."""

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self._broker_committed = committed
        self._read_offset: dict = defaultdict(lambda: None)
        self._committed_offset: dict = defaultdict(lambda: None)

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return dict(self._broker_committed)


def test_seek_never_moves_offsets_back_behind_what_was_delivered_meanwhile():
    faust_fixes.seek_keeps_offsets_monotonic()
    ahead, fresh, uncommitted = TP("settlements", 0), TP("settlements", 1), TP("settlements", 2)
    consumer = _SeekingConsumer({ahead: 96, fresh: 101, uncommitted: None})
    # during the seek the fetcher delivered 96..154 of partition 0 and Faust committed 150
    consumer._read_offset[ahead] = 154
    consumer._committed_offset[ahead] = 150

    asyncio.run(Consumer.perform_seek(consumer))

    assert consumer._read_offset[ahead] == 154
    assert consumer._committed_offset[ahead] == 150
    assert consumer._read_offset[fresh] == 101
    assert consumer._committed_offset[fresh] == 101
    assert consumer._read_offset[uncommitted] is None
    assert consumer._committed_offset[uncommitted] is None


def test_later_offset():
    assert faust_fixes.later(None, 5) == 5
    assert faust_fixes.later(7, None) == 7
    assert faust_fixes.later(7, 5) == 7
    assert faust_fixes.later(3, 5) == 5
