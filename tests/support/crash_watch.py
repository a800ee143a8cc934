"""Reading a crash run's outputs and state from the broker: decisions, DLQ and alerts in
the background (:class:`OutputTail`), the final value per key of the changelogs, every
record of a set of topics."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import orjson

from service.claim_log import claims_from_records
from service.settings import Settings
from support.crash_feed import KAFKA_TIMEOUTS, TABLES

# ---- watching the outputs ------------------------------------------------------------------


class OutputTail(threading.Thread):
    """Reads ``decisions``, the DLQ and ``alerts`` from the beginning, in the background."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="output-tail")
        self.settings = settings
        self.lock = threading.Lock()
        self.decisions: dict[str, list[dict]] = defaultdict(list)
        self.dlq: dict[tuple[int, int], dict] = {}  # by source (partition, offset)
        self.dlq_copies = 0
        self.alerts: list[dict] = []
        self.last_alert_s = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        from kafka import KafkaConsumer

        t = self.settings.topics
        consumer = KafkaConsumer(t.decisions, t.dlq, t.alerts,
                                 bootstrap_servers=self.settings.bootstrap_servers,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 group_id=None, **KAFKA_TIMEOUTS)
        try:
            while not self._halt.is_set():
                for tp, msgs in consumer.poll(timeout_ms=300).items():
                    values = [orjson.loads(m.value) for m in msgs]
                    with self.lock:
                        if tp.topic == t.decisions:
                            for v in values:
                                self.decisions[v["settlement_id"]].append(v)
                        elif tp.topic == t.dlq:
                            for v in values:
                                src = v["source"]
                                self.dlq[(src["partition"], src["offset"])] = v
                                self.dlq_copies += 1
                        else:
                            self.alerts.extend(values)
                            self.last_alert_s = time.monotonic()
        finally:
            consumer.close()

    def progress(self) -> int:
        """Input messages accounted for: distinct decided ids + distinct DLQ sources."""
        with self.lock:
            return len(self.decisions) + len(self.dlq)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def _read_all(settings: Settings, topics: list[str], on_batch: Any, timeout_s: float = 120.0,
              quiet_s: float = 5.0) -> None:
    """Read ``topics`` from the beginning to their end, calling ``on_batch(tp, msgs)``.

    The end is the high-water mark of fetch responses (right on Tansu, whose
    ListOffsets(latest) is not: BROKER.md gap 2); ``quiet_s`` without a record ends it too.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, **KAFKA_TIMEOUTS)
    tps = [TopicPartition(t, q) for t in topics
           for q in sorted(consumer.partitions_for_topic(t) or ())]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    deadline = time.monotonic() + timeout_s
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline and time.monotonic() - last_new < quiet_s:
            for tp, msgs in consumer.poll(timeout_ms=300).items():
                last_new = time.monotonic()
                on_batch(tp, msgs)
            ends = [consumer.highwater(tp) for tp in tps]
            if all(e is not None and consumer.position(tp) >= e for tp, e in zip(tps, ends)):
                return
    finally:
        consumer.close()


def read_changelogs(settings: Settings, tables: tuple[str, ...] = TABLES) -> dict[str, dict]:
    """Final value per key of each ``<app_id>-<table>-changelog``, read from the beginning
    (last record wins; a ``None`` value deletes the key)."""
    topics = {f"{settings.app_id}-{t}-changelog": t for t in tables}
    state: dict[str, dict] = {t: {} for t in tables}

    def apply(tp: Any, msgs: list) -> None:
        table = state[topics[tp.topic]]
        for m in msgs:
            key = orjson.loads(m.key)
            if m.value is None:
                table.pop(key, None)
            else:
                table[key] = orjson.loads(m.value)

    _read_all(settings, list(topics), apply)
    if "trace-code-batches-v1" in state:  # compare claims (code → claim), not batch records
        state["trace-code-batches-v1"] = claims_from_records(state["trace-code-batches-v1"])
    return state

def read_partitions(settings: Settings, topics: list[str]) -> dict[str, dict[int, list[bytes]]]:
    """Every record value of ``topics``, per partition in offset order."""
    out: dict[str, dict[int, list[bytes]]] = {t: defaultdict(list) for t in topics}

    def keep(tp: Any, msgs: list) -> None:
        out[tp.topic][tp.partition].extend(m.value for m in msgs)

    _read_all(settings, topics, keep)
    return out
