"""Back-pressure (reliability issue, item 3): a replay far faster than the worker keeps the
worker's memory bounded and loses nothing.

Half the settlements are in the topic before the worker starts, the other half are
replayed at full speed while it works through that backlog. Each settlement carries 128 KB
of padding in an unknown extra field (kept and ignored, SPEC §3), so the backlog (~500 MB)
is larger than what the worker may grow by: a worker that read ahead without bound,
or kept what it had read, would hold it. Faust bounds what it reads ahead
(``stream_buffer_maxsize`` events per stream, then the consumer pauses) and aiokafka
bounds each fetch (``max_partition_fetch_bytes`` per partition).

The worker runs with ``MALLOC_MMAP_THRESHOLD_=65536`` so that RSS shows what the process
holds rather than what glibc caches: with glibc's default *dynamic* mmap threshold, freed
128 KB buffers are kept in the heap and RSS stays ~60-80 MiB higher (measured after two
rounds of 900 such settlements: +73/+90 MiB by default, +11/+15 MiB with the fixed
threshold), bounded too but by the allocator, not by the program. Production can set the
same variable for a predictable RSS.
"""

from __future__ import annotations

import time

import orjson
import pytest

from service.broker import wait_for_port
from service.settings import Settings
from support.cluster import WorkerProcess, create_all_topics, unique_settings
from support.reliability import RssSampler, metric, rss_mb, spawn_worker

pytestmark = pytest.mark.broker

N_BEFORE = 2000  # in the topic before the worker starts
N_WHILE = 2000  # replayed at full speed while it runs
PAD_BYTES = 128 * 1024
# Measured with batched agents: with 256 events per batch and stream_buffer_maxsize=256,
# peaks of +193 MiB for a 175 MiB backlog and +209..275 MiB for a 500 MiB one (bounded:
# it no longer follows the backlog; with the default 2048-event stream buffer it did,
# +340..610 MiB for 500 MiB). Now 128 and 128. The backlog here is ~500 MiB.
RSS_GROWTH_LIMIT_MB = 260
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def padded_lines(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    out = []
    for line in lines:
        doc = orjson.loads(line)
        doc["x_padding"] = "x" * PAD_BYTES
        out.append((doc["settlement_id"].encode(), orjson.dumps(doc)))
    return out


def produce_fast(settings: Settings, messages: list[tuple[bytes, bytes]]) -> float:
    """Send at full speed, uncompressed, with aiokafka (C-accelerated CRC; kafka-python's
    pure-Python CRC would spend ~20 s on this backlog); return the seconds it took.

    Uncompressed on purpose: fetch limits count compressed bytes, so 64 KB of repeated
    padding in gzip batches would let one 1 MB fetch carry ~1,000 records (~60 MB)."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def send_all() -> None:
        prod = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks=1,
                                linger_ms=5, max_batch_size=1 << 20,
                                max_request_size=4 << 20, client_id="backpressure-replay")
        await prod.start()
        try:
            futures = [await prod.send(settings.topics.settlements, key=k, value=v)
                       for k, v in messages]
            await prod.flush()
            for f in futures:
                await f
        finally:
            await prod.stop()

    started = time.monotonic()
    asyncio.run(send_all())
    return time.monotonic() - started


def read_decided(settings: Settings, expected: set[str], timeout_s: float
                 ) -> tuple[set[str], list[dict]]:
    from kafka import KafkaConsumer

    t = settings.topics
    consumer = KafkaConsumer(t.decisions, t.dlq, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None)
    decided: set[str] = set()
    dlq: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not expected <= decided:
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                for m in msgs:
                    v = orjson.loads(m.value)
                    (dlq.append(v) if tp.topic == t.dlq else decided.add(v["settlement_id"]))
    finally:
        consumer.close()
    return decided, dlq


def test_fast_replay_keeps_memory_bounded_and_loses_nothing(embedded_broker, tmp_path):
    from service.synth import generate

    generate(tmp_path / "data", months=1, seed=17, scale="small")
    lines = (tmp_path / "data" / "settlements.jsonl").read_bytes().splitlines()
    messages = padded_lines(lines[:N_BEFORE + N_WHILE])
    expected = {k.decode() for k, _ in messages}
    backlog_mb = sum(len(v) for _, v in messages) / 2**20
    assert backlog_mb > RSS_GROWTH_LIMIT_MB

    settings = unique_settings(embedded_broker.url)
    create_all_topics(settings)
    produce_fast(settings, messages[:N_BEFORE])
    worker = spawn_worker(WorkerProcess(settings, tmp_path / "worker"), WORKER_ENV)
    sampler = None
    try:
        assert wait_for_port(worker.web_port, 60), worker.log_tail()
        baseline = rss_mb(worker.proc.pid)
        sampler = RssSampler(worker.proc.pid).start()
        started = time.monotonic()
        while metric(worker.web_port, "fund_sentinel_events_in_total") == 0:
            assert time.monotonic() - started < 60, worker.log_tail()
            time.sleep(0.2)
        replay_s = produce_fast(settings, messages[N_BEFORE:])  # while it works
        read_when_replayed = metric(worker.web_port, "fund_sentinel_events_in_total")
        decided, dlq = read_decided(settings, expected, timeout_s=90)
        elapsed = time.monotonic() - started
        alive = worker.proc.poll() is None
    finally:
        if sampler:
            sampler.stop()
        worker.stop()
    print(f"backpressure: {len(messages)} settlements ({backlog_mb:.0f} MiB); second half "
          f"replayed in {replay_s:.1f}s while the worker had read {read_when_replayed:.0f}; "
          f"all decided after {elapsed:.1f}s; RSS baseline {baseline:.0f} MiB, "
          f"{sampler.summary()}")
    assert alive, worker.log_tail()
    # the replay really was far ahead of the worker
    assert read_when_replayed < 0.5 * len(messages)
    assert decided == expected, (f"{len(expected - decided)} settlements not decided\n"
                                 f"{worker.log_tail()}")
    assert dlq == []
    assert sampler.peak - baseline < RSS_GROWTH_LIMIT_MB, sampler.summary()
