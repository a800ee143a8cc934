"""service.lag against the embedded broker: a real Faust consumer, a held-back agent.

Records are produced in multi-record batches (producer linger), the case where Tansu's
ListOffsets(latest) is wrong (BROKER.md gap 2): the lag must still be exact, because it is
computed from fetch high-water marks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from service.broker import create_topics
from service.lag import LAG_METRIC, register_lag_gauge

pytestmark = pytest.mark.broker

N = 60
PARTITIONS = 2


def _produce(bootstrap: str, topic: str, n: int) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=200)
    for i in range(n):
        producer.send(topic, key=f"k{i}".encode(), value=b"{}", partition=i % PARTITIONS)
    producer.flush(timeout=20)
    producer.close(timeout=10)


async def _until(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.1)


async def _scenario(broker_url: str, bootstrap: str, data_dir: Path) -> None:
    import faust

    tag = uuid.uuid4().hex[:8]
    topic = f"lag-{tag}"
    create_topics(bootstrap, {topic: PARTITIONS})
    _produce(bootstrap, topic, N)

    app = faust.App(
        f"fs-lag-{tag}", broker=broker_url, store="memory://", datadir=str(data_dir),
        web_enabled=False, autodiscover=False, topic_partitions=PARTITIONS,
        topic_replication_factor=1, key_serializer="raw", value_serializer="raw",
        consumer_auto_offset_reset="earliest", broker_commit_interval=0.2,
        broker_session_timeout=6.0, broker_heartbeat_interval=2.0,
    )
    gate = asyncio.Event()
    processed = 0

    @app.agent(app.topic(topic, partitions=PARTITIONS))
    async def held_back(stream):
        nonlocal processed
        async for _ in stream:
            await gate.wait()
            processed += 1

    registry = CollectorRegistry()
    register_lag_gauge(app, registry, interval_s=0.3, topics=[topic])

    def lag() -> float | None:
        return registry.get_sample_value(LAG_METRIC, {"topic": topic})

    assert lag() == 0  # initialised at start
    await app.start()
    try:
        # Nothing processed or committed: every record counts, from the log start.
        await _until(lambda: lag() == N, 30, f"lag == {N} (last: {lag()})")
        assert processed == 0
        gate.set()
        await _until(lambda: processed == N, 20, f"{N} processed (got {processed})")
        await _until(lambda: lag() == 0, 20, f"lag back to 0 after commits (last: {lag()})")
        # Only the agent's input is counted: no changelog, no leader topic.
        topics = {s.labels["topic"] for m in registry.collect() for s in m.samples}
        assert topics == {topic}
    finally:
        await asyncio.wait_for(app.stop(), timeout=20)


def test_lag_counts_unprocessed_records_and_drains_to_zero(embedded_broker, tmp_path):
    asyncio.run(_scenario(embedded_broker.url, embedded_broker.bootstrap, tmp_path))
