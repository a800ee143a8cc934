"""Fixes for a race in faust-streaming 0.15.3 that loses messages after a rebalance.

When recovery ends, Faust resumes the stream partitions, seeks them to their committed
offsets (``Consumer.perform_seek``, one broker round trip per partition) and then calls
``app.flow_control.resume()``. During recovery the flow is already running (changelogs
are read through it), so the fetcher delivers stream messages *while* the seek runs:

1. ``flow_control.resume()`` clears every stream buffer, also when the flow was not
   suspended. Messages delivered during the seek are dropped from the buffers although
   Faust has marked them read; the rest of the fetch is delivered after them, so the
   dropped ones form a hole that is only read again after a restart. Downstream state,
   which remembers the highest offset applied per origin, then skips them as applied:
   crash runs (three restarts each) lost one settlement's statistics in ~1 of 4 runs.
2. ``perform_seek`` sets the read and committed offsets back to the committed offsets it
   fetched, behind what the fetcher delivered (and Faust committed) meanwhile: the next
   message looks like a jump, and the commit waits for offsets that were already
   committed.

The fixes: resuming a flow that is not suspended clears nothing (buffers are cleared
when a suspension ends, as before, and on revocation), and ``perform_seek`` never moves
a partition's read or committed offset backwards. Applied in every mode: the race is
Faust's, not the embedded broker's.
"""

from __future__ import annotations

from typing import Any


def resume_clears_only_after_suspend() -> None:
    """Make ``FlowControlEvent.resume`` clear the queues only when it ends a suspension."""
    from mode.utils.queues import FlowControlEvent

    if getattr(FlowControlEvent.resume, "fund_sentinel", False):
        return

    def resume(self: FlowControlEvent) -> None:
        was_suspended = self._suspend.is_set()
        self._suspend.clear()
        self._resume.set()
        if was_suspended:
            self.clear()

    resume.fund_sentinel = True  # type: ignore[attr-defined]
    FlowControlEvent.resume = resume  # type: ignore[method-assign]


def later(current: int | None, new: int | None) -> int | None:
    """The later of two offsets (``None``: unknown)."""
    if current is None:
        return new
    if new is None:
        return current
    return max(current, new)


def seek_keeps_offsets_monotonic() -> None:
    """Make ``Consumer.perform_seek`` never move read/committed offsets backwards."""
    from faust.transport.consumer import Consumer
    from faust.types import TP

    if getattr(Consumer.perform_seek, "fund_sentinel", False):
        return

    async def perform_seek(self: Any) -> None:
        fetched = await self.seek_to_committed()
        for tp, offset in fetched.items():
            tp = TP(tp.topic, tp.partition)
            committed = offset if offset is not None and offset >= 0 else None
            self._read_offset[tp] = later(self._read_offset.get(tp), committed)
            if committed:
                self._committed_offset[tp] = later(self._committed_offset.get(tp), committed)

    perform_seek.fund_sentinel = True  # type: ignore[attr-defined]
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]


def apply() -> None:
    resume_clears_only_after_suspend()
    seek_keeps_offsets_monotonic()
