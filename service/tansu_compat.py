"""Workarounds for the embedded broker (Tansu) applied to aiokafka/Faust, embedded mode only.

1. *End offsets from a fetch.* Tansu answers ListOffsets(latest) with the last batch's
   base offset + 1, which is short when that batch held several records (BROKER.md gap 2);
   Faust trusts it to know where table recovery ends, so a changelog written in
   multi-record batches would recover short and silently lose state. One record per batch
   avoids it but serialises every partition behind one produce round trip per record (a
   hot changelog partition then caps the pipeline). Instead recovery's end offsets are
   corrected with the high-water mark a fetch returns, which Tansu reports right.
2. *Short fetch wait.* Tansu answers a fetch only when fetch.max.wait expires; Faust
   hard-codes 1500 ms for its worker consumer, adding ~0.75 s per internal hop.
3. *No gap skipping.* When the offsets a worker reads jump, Faust records a "gap" and
   later commits past it (meant for compacted topics and transaction markers). Nothing
   we read on Tansu is compacted or transactional, so a jump means messages were not
   delivered (the jumps seen in crash runs came from the end-of-recovery race that
   ``service.faust_fixes`` removes). A jump is logged as an error and not skipped: the
   commit waits at the hole and a restart reads it again (rows that already applied a
   later offset of the same input partition would still skip it).
"""

from __future__ import annotations

def shorten_fetch_wait(max_wait_ms: int) -> None:
    """Make Faust's worker consumer use ``max_wait_ms`` for fetch.max.wait (process-wide)."""
    from faust.transport.drivers import aiokafka as driver

    original = driver.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(original, "fund_sentinel_wait_ms", None) == max_wait_ms:
        return
    original = getattr(original, "__wrapped__", original)

    def create_worker_consumer(self, transport):  # type: ignore[no-untyped-def]
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms  # read by AIOKafkaConsumer.start()
        return consumer

    create_worker_consumer.__wrapped__ = original  # type: ignore[attr-defined]
    create_worker_consumer.fund_sentinel_wait_ms = max_wait_ms  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer


async def true_end_offsets(bootstrap: list[str], reported: dict) -> dict:
    """Correct end offsets reported by ListOffsets with the high-water mark of a fetch.

    Tansu's ListOffsets(latest) can fall short by the size of the last batch; a fetch
    from just before the reported end returns the true high-water mark.
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    tps = [tp for tp, end in reported.items() if end]
    if not tps:
        return dict(reported)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=50)
    await probe.start()
    try:
        atps = [TopicPartition(tp.topic, tp.partition) for tp in tps]
        probe.assign(atps)
        for tp, atp in zip(tps, atps):
            probe.seek(atp, max(reported[tp] - 1, 0))
        corrected = dict(reported)
        pending = set(atps)
        for _ in range(20):
            await probe.getmany(*pending, timeout_ms=200)
            for tp, atp in zip(tps, atps):
                hw = probe.highwater(atp)
                if atp in pending and hw is not None:
                    corrected[tp] = max(reported[tp], hw)
                    pending.discard(atp)
            if not pending:
                break
        return corrected
    finally:
        await probe.stop()


def fetch_based_highwaters() -> None:
    """Make Faust's recovery use :func:`true_end_offsets` (process-wide, idempotent)."""
    from faust.transport.drivers import aiokafka as driver

    cls = driver.AIOKafkaConsumerThread
    if getattr(cls._highwaters, "fund_sentinel", False):
        return
    original = cls._highwaters

    async def _highwaters(self, partitions):  # type: ignore[no-untyped-def]
        reported = await original(self, partitions)
        if self.consumer.in_transaction:
            return reported
        consumer = self._ensure_consumer()
        bootstrap = consumer._client._bootstrap_servers
        return await true_end_offsets(bootstrap, dict(reported))

    _highwaters.fund_sentinel = True  # type: ignore[attr-defined]
    cls._highwaters = _highwaters


def never_skip_gaps() -> None:
    """Make Faust log offset jumps instead of committing past them (process-wide)."""
    import logging

    from faust.transport.consumer import Consumer

    if getattr(Consumer._add_gap, "fund_sentinel", False):
        return
    log = logging.getLogger(__name__)

    async def _add_gap(self, tp, offset_from: int, offset_to: int) -> None:  # type: ignore[no-untyped-def]
        log.error("offsets jumped in %s[%s]: %d..%d not delivered; not committing past them",
                    tp.topic, tp.partition, offset_from, offset_to - 1)

    _add_gap.fund_sentinel = True  # type: ignore[attr-defined]
    Consumer._add_gap = _add_gap  # type: ignore[method-assign]
