"""The embedded broker's ListOffsets gap (BROKER.md gap 2) and our fetch-based correction."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kafka import KafkaProducer

from service.broker import create_topics
from service.tansu_compat import true_end_offsets

pytestmark = pytest.mark.broker


def test_fetch_based_end_offsets_see_the_whole_last_batch(embedded_broker):
    topic = f"gap-{uuid.uuid4().hex[:8]}"
    create_topics(embedded_broker.bootstrap, {topic: 1})
    producer = KafkaProducer(bootstrap_servers=embedded_broker.bootstrap, linger_ms=200,
                             batch_size=1 << 20)
    for i in range(30):  # lingered into one multi-record batch
        producer.send(topic, key=b"k", value=str(i).encode(), partition=0)
    producer.flush()
    producer.close()

    async def ends() -> tuple[dict, dict]:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition

        tp = TopicPartition(topic, 0)
        c = AIOKafkaConsumer(bootstrap_servers=embedded_broker.bootstrap, group_id=None)
        await c.start()
        try:
            reported = await c.end_offsets([tp])
        finally:
            await c.stop()
        return reported, await true_end_offsets([embedded_broker.bootstrap], dict(reported))

    reported, corrected = asyncio.run(ends())
    (tp, end), = corrected.items()
    assert end == 30
    # Documents the gap itself: if Tansu fixes it, this line tells us the patch can go.
    assert reported[tp] < 30
