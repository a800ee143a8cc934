"""kafka-python clients of the benchmark: producers, the decision collector, group lag,
changelog sizes.

Offsets: under load the worker's producer puts several records in one batch, so Tansu's
ListOffsets(latest) can be short for the worker's own topics (BROKER.md gap 2): readers
read on past the reported ends until idle and report by how much they were short; for
``settlements``, written here, the end offsets come from the producer's acknowledgements.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from service.claims_state import TRACE_TABLE
from service.settings import Settings

from common import settlement_id

CLIENT = dict(session_timeout_ms=6000, heartbeat_interval_ms=2000)


def producer(settings: Settings, linger_ms: int = 5) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=linger_ms,
                         acks=1, retries=5, client_id="fs-bench")


def prefill(settings: Settings, lines: list[bytes]) -> dict:
    """Produce ``lines`` (keyed by settlement_id) as fast as possible; end offsets and rate."""
    prod = producer(settings)
    ends: dict[int, int] = defaultdict(int)
    started = time.perf_counter()
    futures = [prod.send(settings.topics.settlements, key=settlement_id(line).encode(),
                         value=line) for line in lines]
    prod.flush()
    elapsed = time.perf_counter() - started
    for f in futures:
        md = f.get(timeout=30)
        ends[md.partition] = max(ends[md.partition], md.offset + 1)
    prod.close()
    return {"count": len(lines), "seconds": round(elapsed, 2),
            "rate_per_s": round(len(lines) / elapsed), "ends": dict(ends)}


def paced(settings: Settings, lines: list[bytes], rate_per_s: float) -> tuple[dict, dict]:
    """Produce ``lines`` at ``rate_per_s``; returns ({settlement_id: send wall time}, ends)."""
    prod = producer(settings, linger_ms=0)
    sent: dict[str, float] = {}
    futures = []
    started = time.monotonic()
    for i, line in enumerate(lines):
        ahead_s = started + i / rate_per_s - time.monotonic()
        if ahead_s > 0:
            time.sleep(ahead_s)
        sid = settlement_id(line)
        sent[sid] = time.time()
        futures.append(prod.send(settings.topics.settlements, key=sid.encode(), value=line))
    prod.flush()
    ends: dict[int, int] = defaultdict(int)
    for f in futures:
        md = f.get(timeout=30)
        ends[md.partition] = max(ends[md.partition], md.offset + 1)
    prod.close()
    return sent, dict(ends)


class DecisionCollector(threading.Thread):
    """Reads ``decisions`` and the DLQ from the start; first sighting of each settlement_id.

    ``first[sid] = (decision record timestamp ms, receive wall time s)``; re-emitted
    decisions (at-least-once) only raise ``records``.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="decision-collector")
        self.settings = settings
        self.first: dict[str, tuple[int, float]] = {}
        self.dlq = 0
        self.records = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        t = self.settings.topics
        try:
            consumer = KafkaConsumer(t.decisions, t.dlq,
                                     bootstrap_servers=self.settings.bootstrap_servers,
                                     auto_offset_reset="earliest", enable_auto_commit=False,
                                     group_id=None, fetch_max_wait_ms=10, **CLIENT)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc
            return
        try:
            while not self.stopping.is_set():
                for tp, msgs in consumer.poll(timeout_ms=200).items():
                    now = time.time()
                    with self.lock:
                        for m in msgs:
                            if tp.topic == t.dlq:
                                self.dlq += 1
                                continue
                            self.records += 1
                            sid = orjson.loads(m.value)["settlement_id"]
                            if sid not in self.first:
                                self.first[sid] = (m.timestamp, now)
        finally:
            consumer.close()

    def done(self) -> int:
        with self.lock:
            return len(self.first) + self.dlq

    def wait_for(self, total: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.error is not None:
                raise RuntimeError(f"decision collector failed: {self.error!r}")
            if self.done() >= total:
                return True
            time.sleep(0.1)
        return False

    def snapshot(self) -> tuple[dict[str, tuple[int, float]], int, int]:
        with self.lock:
            return dict(self.first), self.dlq, self.records

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


class GroupLag:
    """Messages the worker group has not yet committed on its input topics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                                      client_id="fs-bench-lag")
        self.consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                                      group_id=None, enable_auto_commit=False, **CLIENT)
        # Partitions where the group committed past ListOffsets(latest): the broker's end
        # offset is short (BROKER.md gap 2), which table recovery would trust.
        self.short_ends: dict[str, int] = {}

    def input_topics(self) -> list[str]:
        app = self.settings.app_id
        internal = [t for t in self.consumer.topics() if t.startswith(app + "-")
                    and not t.endswith("-changelog") and "__assignor" not in t]
        return [self.settings.topics.settlements, *sorted(internal)]

    def lag(self, settlement_ends: dict[int, int]) -> dict[str, int]:
        """``{topic: lag}`` (end − committed, never negative) over the group's inputs."""
        group = self.settings.app_id
        if hasattr(self.admin, "list_group_offsets"):  # kafka-python 3
            committed = self.admin.list_group_offsets({group: None}).get(group, {})
        else:  # kafka-python 2
            committed = self.admin.list_consumer_group_offsets(group)
        out: dict[str, int] = {}
        for topic in self.input_topics():
            tps = [TopicPartition(topic, p)
                   for p in sorted(self.consumer.partitions_for_topic(topic) or ())]
            if topic == self.settings.topics.settlements:
                ends = {tp: settlement_ends.get(tp.partition, 0) for tp in tps}
            else:
                ends = self.consumer.end_offsets(tps)
            total = 0
            for tp in tps:
                c = committed.get(tp)
                done = c.offset if c and c.offset >= 0 else 0
                total += max(0, ends.get(tp, 0) - done)
                if done > ends.get(tp, 0):
                    name = topic.removeprefix(self.settings.app_id + "-")
                    self.short_ends[name] = max(self.short_ends.get(name, 0),
                                                done - ends.get(tp, 0))
            out[topic] = total
        return out

    def records(self, topics: list[str]) -> dict[str, int]:
        """Records ever written to each topic (one record per batch topics only)."""
        out = {}
        for topic in topics:
            tps = [TopicPartition(topic, p)
                   for p in sorted(self.consumer.partitions_for_topic(topic) or ())]
            out[topic] = sum(self.consumer.end_offsets(tps).values()) if tps else 0
        return out

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def app_census(settings: Settings, idle_s: float = 3.0, timeout_s: float = 180.0) -> dict:
    """Everything the app wrote to its own topics, read back from the start.

    ``tables``: per table changelog, records written, live keys (latest value per key,
    tombstones removed), mean key and value bytes, live bytes. ``topics``: per internal
    topic, records by message kind (``"k"``: ``u`` update, ``t`` tick; ``-`` none).
    ``end_offset_short_by``: per topic, records found past ListOffsets(latest).
    """
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=50, **CLIENT)
    prefix = settings.app_id + "-"
    latest: dict[str, dict[bytes, bytes]] = {}
    kinds: dict[str, dict[str, int]] = {}
    written: dict[str, int] = defaultdict(int)
    try:
        topics = sorted(t for t in consumer.topics()
                        if t.startswith(prefix) and "__assignor" not in t)
        tps = [TopicPartition(t, p) for t in topics
               for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not tps:
            return {"tables": {}, "topics": {}}
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        for t in topics:
            (latest if t.endswith("-changelog") else kinds)[t] = {}  # type: ignore[index]
        deadline, last_data = time.monotonic() + timeout_s, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_data < idle_s:
            for tp, msgs in consumer.poll(timeout_ms=200, max_records=5000).items():
                last_data = time.monotonic()
                for m in msgs:
                    written[tp.topic] += 1
                    if tp.topic in latest:
                        if m.value is None:
                            latest[tp.topic].pop(m.key, None)
                        else:
                            latest[tp.topic][m.key] = m.value
                    else:
                        for kind in _kinds(m.value):
                            kinds[tp.topic][kind] = kinds[tp.topic].get(kind, 0) + 1
            if all(consumer.position(tp) >= ends[tp] for tp in tps):
                idle_s = 1.0  # at the reported ends: read on briefly, they may be short
        short: dict[str, int] = defaultdict(int)
        for tp in tps:
            short[tp.topic[len(prefix):]] += max(0, consumer.position(tp) - ends[tp])
    finally:
        consumer.close()
    tables = {}
    for topic, live in latest.items():
        kb = sum(len(k or b"") for k in live)
        vb = sum(len(v) for v in live.values())
        tables[topic[len(prefix):-len("-changelog")]] = {
            "records_written": written[topic], "keys": len(live),
            "mean_key_bytes": round(kb / len(live), 1) if live else None,
            "mean_value_bytes": round(vb / len(live), 1) if live else None,
            "live_bytes": kb + vb}
        if topic.endswith(f"-{TRACE_TABLE}-changelog"):  # batch records: count the claims
            claims = sum(len(orjson.loads(v)) for v in live.values())
            tables[topic[len(prefix):-len("-changelog")]]["claims"] = claims
    internal = {t[len(prefix):]: {"records": written[t], "by_kind": dict(sorted(k.items()))}
                for t, k in kinds.items()}
    return {"tables": tables, "topics": internal,
            "end_offset_short_by": {t: n for t, n in short.items() if n}}


def _kinds(value: bytes | None) -> list[str]:
    """Kinds of a message's items: a batch (JSON array, service.batching) counts as
    ``batch`` plus each item's kind (``u`` update, ``t`` tick, ``-`` other)."""
    if value and value.startswith(b"["):
        try:
            items = orjson.loads(value)
        except orjson.JSONDecodeError:
            return ["batch"]
        return ["batch"] + [str(i.get("k", "-")) if isinstance(i, dict) else "-" for i in items]
    if not value or not value.startswith(b'{"k":'):
        return ["-"]
    try:
        return [str(orjson.loads(value).get("k", "-"))]
    except orjson.JSONDecodeError:
        return ["-"]
