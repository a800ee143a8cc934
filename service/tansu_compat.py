"""Workarounds for the embedded broker (Tansu) applied to aiokafka/Faust, embedded mode only.

1. *Single-record batches on changelog topics.* Tansu answers ListOffsets(latest) with the
   last batch's base offset + 1, which is wrong when that batch held several records
   (BROKER.md gap 2); Faust trusts it to know where table recovery ends, so a changelog
   written in multi-record batches recovers short and silently loses state. Limiting the
   whole producer to one record per batch fixes that but serialises every partition
   behind one round trip per record. Instead only ``*-changelog`` partitions get one
   record per batch, queued back to back; other topics batch normally.
2. *Short fetch wait.* Tansu answers a fetch only when fetch.max.wait expires; Faust
   hard-codes 1500 ms for its worker consumer, adding ~0.75 s per internal hop.
"""

from __future__ import annotations

CHANGELOG_SUFFIX = "-changelog"


def single_record_changelog_batches() -> None:
    """Patch aiokafka's accumulator (process-wide, idempotent)."""
    from aiokafka.producer import message_accumulator as acc

    cls = acc.MessageAccumulator
    if getattr(cls.add_message, "fund_sentinel", False):
        return
    original = cls.add_message

    async def add_message(self, tp, key, value, timeout, timestamp_ms=None,
                          headers=[]):  # type: ignore[no-untyped-def]  # noqa: B006
        if not tp.topic.endswith(CHANGELOG_SUFFIX):
            return await original(self, tp, key, value, timeout, timestamp_ms=timestamp_ms,
                                  headers=headers)
        if self._closed:
            raise acc.ProducerClosed()
        if self._exception is not None:
            raise acc.copy.copy(self._exception)
        # A fresh batch for every record: it is closed for appends as soon as it holds one.
        batch = self._append_batch(self.create_builder(), tp)
        future = batch.append(key, value, timestamp_ms, headers=headers)
        batch._builder.close()  # type: ignore[attr-defined]
        return future

    add_message.fund_sentinel = True  # type: ignore[attr-defined]
    cls.add_message = add_message


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
