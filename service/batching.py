"""Batch processing for the agents: each table key's changelog record sent once per batch,
one message per internal target partition per batch.

Faust sends a changelog record at every table write and every internal message costs a
produce and a consume (~100–250 µs each on this stack, BROKER.md); a settlement used to
cost ~17 changelog records and ~10 internal messages. The agents now read batches
(``stream.take_events``), write tables in memory during the batch and send, at its end,
one record per key written (:class:`BatchedTable`) and one JSON array per internal
partition (:class:`Outbox`). Both are flushed before the batch's events are acknowledged,
so a crash re-delivers the whole batch (at-least-once; every stage is idempotent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncio
import logging

import faust
import orjson
from faust.types.enums import ProcessingGuarantee

log = logging.getLogger(__name__)

# Internal messages stay well below the broker's default 1 MiB message limit. A batch holds
# its events until it is done: BATCH_MAX × the largest message bounds what it pins.
MAX_ENVELOPE_BYTES = 256 * 1024
BATCH_MAX = 128
# Measured at 300 settlements/s: p50/p99 settlement->decision 271/648 ms with 30 ms,
# 357/900 ms with 10 ms (bigger batches cost less CPU each); throughput ~5 % lower.
BATCH_WITHIN_S = 0.03


class BatchedTable(faust.Table):
    """A Faust table whose changelog records wait for :meth:`flush_changelog`.

    A key's changelog partition is ``partition_of(key)`` when the table was given one (for
    tables written by several agents, whose writes interleave), else
    :attr:`write_partition`, set by the only agent writing the table to the partition of
    the event it processes (keys are co-partitioned with their input). With neither,
    writes behave like a plain table's (current event's partition, record sent at once).
    """

    def __init__(self, *args: Any, partition_of: Callable[[Any], int] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.partition_of = partition_of
        self.write_partition: int | None = None
        self._dirty: dict[Any, int] = {}
        self._flushing = asyncio.Lock()

    def _partition(self, key: Any) -> int | None:
        if self.partition_of is not None:
            return self.partition_of(key)
        return self.write_partition

    def on_key_set(self, key: Any, value: Any) -> None:
        partition = self._partition(key)
        if partition is None:
            super().on_key_set(key, value)
        else:
            self._dirty[key] = partition

    def on_key_del(self, key: Any) -> None:
        partition = self._partition(key)
        if partition is None:
            super().on_key_del(key)
        else:
            self._dirty[key] = partition

    async def flush_changelog(self) -> int:
        """Send the latest value (or a tombstone) of every key written since the last flush.

        Serialised: when it returns, every write made before the call has been handed to
        the producer, even one taken by another agent's flush still in progress (the
        caller acknowledges its input next, and Faust commits only what the producer
        holds)."""
        async with self._flushing:
            return await self._flush_changelog()

    async def _flush_changelog(self) -> int:
        dirty, self._dirty = self._dirty, {}
        direct = Direct.of(self.app)
        topic = self.changelog_topic.get_topic_name()
        for key, partition in dirty.items():
            value = self.data.get(key)
            if direct is not None:
                await direct.send(topic, orjson.dumps(key),
                                  None if value is None else orjson.dumps(value), partition)
            elif value is None:
                self.send_changelog(partition, key, None, value_serializer="raw")
            else:
                self.send_changelog(partition, key, value)
        return len(dirty)


def batched_json_table(app: faust.App, name: str, partitions: int,
                       partition_of: Callable[[Any], int] | None = None) -> BatchedTable:
    """A :class:`BatchedTable` with JSON keys and values (keys read back as ``str``)."""
    schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
    table = BatchedTable(app, name=name, partitions=partitions, schema=schema,
                         beacon=app.tables.beacon, partition_of=partition_of)
    return app.tables.add(table)  # type: ignore[return-value]


class Outbox:
    """Internal messages gathered per (topic, partition), sent as JSON arrays by flush()."""

    def __init__(self, max_bytes: int = MAX_ENVELOPE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._parts: dict[tuple[faust.TopicT, int], list[bytes]] = {}
        self._flushing = asyncio.Lock()

    def add(self, topic: faust.TopicT, partition: int, item: bytes) -> None:
        self._parts.setdefault((topic, partition), []).append(item)

    def __len__(self) -> int:
        return sum(len(items) for items in self._parts.values())

    async def flush(self) -> int:
        """Send everything gathered (in order per partition); returns the messages sent.

        Serialised like :meth:`BatchedTable.flush_changelog`: an outbox shared by two
        agents (or an agent and a timer) must not let one acknowledge its input while
        its items are still being sent by the other's flush."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        parts, self._parts = self._parts, {}
        sent = 0
        for (topic, partition), items in parts.items():
            direct = Direct.of(topic.app)
            for envelope in envelopes(items, self.max_bytes):
                if direct is not None:
                    await direct.send(topic.get_topic_name(), None, envelope, partition)
                else:
                    await topic.send(value=envelope, partition=partition)
                sent += 1
        return sent


class Direct:
    """Produce straight through the running aiokafka producer, past Faust's per-message
    channel, future and sensor layers (~half of a send's CPU here).

    Only under at-least-once: exactly-once sends must go through Faust's transactional
    producers. Faust flushes the producer before every offset commit, so these records
    are out before their input is committed; a record that finally fails crashes the
    worker (as a failed Faust send does) instead of being lost silently.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.producer = app.producer

    @classmethod
    def of(cls, app: faust.App) -> Direct | None:
        if app.conf.processing_guarantee != ProcessingGuarantee.AT_LEAST_ONCE:
            return None
        producer = app.producer
        if getattr(producer, "_producer", None) is None:  # not started (test_context)
            return None
        cached = getattr(app, "_fund_sentinel_direct", None)
        if cached is None:
            cached = cls(app)
            app._fund_sentinel_direct = cached  # type: ignore[attr-defined]
        return cached  # type: ignore[no-any-return]

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None) -> None:
        fut = await self.producer.send(topic, key, value, partition, None, None)
        fut.add_done_callback(self._delivered)  # type: ignore[attr-defined]

    def _delivered(self, fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is None:
            return
        exc = fut.exception()
        log.error("a record could not be produced (%s): stopping the worker so that its "
                  "input is re-delivered", type(exc).__name__)
        asyncio.ensure_future(self.app.crash(exc))  # type: ignore[arg-type]


def envelopes(items: list[bytes], max_bytes: int) -> Iterator[bytes]:
    """JSON arrays of consecutive ``items``, each at most ``max_bytes`` unless one item
    alone is larger (it then travels alone)."""
    chunk: list[bytes] = []
    size = 2
    for item in items:
        if chunk and size + len(item) + 1 > max_bytes:
            yield b"[" + b",".join(chunk) + b"]"
            chunk, size = [], 2
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        yield b"[" + b",".join(chunk) + b"]"


def items_of(value: bytes | None) -> list[Any]:
    """The items of an internal message: a JSON array (a batch), or one object."""
    doc = orjson.loads(value or b"null")
    if isinstance(doc, list):
        return doc
    return [doc]


async def consume_batches(stream: faust.StreamT, table: BatchedTable,
                          prepare: Callable[[int], Awaitable[None]],
                          apply: Callable[[int, Any], Awaitable[None]],
                          before_flush: Callable[[], None] | None = None) -> None:
    """The loop of an agent that is its table's only writer: per event, ``prepare`` its
    partition and ``apply`` each item; ``before_flush`` (writes kept back during the
    batch); one changelog record per key written per batch."""
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
        for event in events:
            q = event.message.partition
            table.write_partition = q
            await prepare(q)
            for item in items_of(event.value):
                await apply(q, item)
        if before_flush is not None:
            before_flush()
        table.write_partition = None
        await table.flush_changelog()
