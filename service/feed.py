"""Producing into and reading from the broker with kafka-python (replay, alerts tail, demo)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import orjson

from .settings import Settings

log = logging.getLogger(__name__)


def producer(settings: Settings):  # noqa: ANN201 - kafka-python type
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5,
                         acks=1, retries=5, request_timeout_ms=30_000,
                         client_id="fund-sentinel-replay")


def key_of(line: bytes) -> bytes | None:
    """The settlement_id as message key, or None when the line is not a JSON object with one."""
    try:
        sid = orjson.loads(line).get("settlement_id")
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return None
    return sid.encode() if isinstance(sid, str) and sid else None


def lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if line:
                yield line


def replay(path: Path, settings: Settings, rate: float | None = None, topic: str | None = None,
           progress: Callable[[int, int, float], None] | None = None,
           stop: Callable[[], bool] = lambda: False) -> int:
    """Send every non-empty line of ``path`` to the settlements topic; return how many the
    broker acknowledged. Sends that failed (e.g. batches expired while the broker was away
    longer than the producer's delivery timeout) are not counted, and logged as an error."""
    total = sum(1 for _ in lines(path))
    prod = producer(settings)
    topic = topic or settings.topics.settlements
    sent, started, last_report = 0, time.monotonic(), 0.0
    failed: list[BaseException] = []
    try:
        for line in lines(path):
            if stop():
                break
            prod.send(topic, key=key_of(line), value=line).add_errback(failed.append)
            sent += 1
            if rate:
                ahead_s = sent / rate - (time.monotonic() - started)
                if ahead_s > 0:
                    time.sleep(ahead_s)
            now = time.monotonic()
            if progress and now - last_report >= 0.5:
                progress(sent, total, now - started)
                last_report = now
        prod.flush()
    finally:
        prod.close()
    if progress:
        progress(sent, total, time.monotonic() - started)
    if failed:
        log.error("replay: %d of %d messages were not delivered to %s (first error: %s)",
                  len(failed), sent, topic, failed[0])
    return sent - len(failed)


def print_progress(sent: int, total: int, elapsed_s: float) -> None:
    width = 30
    done = int(width * sent / total) if total else width
    rate = sent / elapsed_s if elapsed_s > 0 else 0.0
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {sent:,}/{total:,} "
                     f"({100 * sent / max(total, 1):.1f}%) {rate:,.0f}/s")
    sys.stderr.flush()


def consume(settings: Settings, topic: str, follow: bool, idle_timeout_s: float = 3.0
            ) -> Iterator[dict]:
    """Yield JSON values of ``topic`` from the beginning; stop after an idle spell unless following."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
        consumer_timeout_ms=int(idle_timeout_s * 1000) if not follow else float("inf"))
    try:
        for msg in consumer:
            try:
                yield orjson.loads(msg.value)
            except orjson.JSONDecodeError:
                continue
    finally:
        consumer.close()


def follow_topics(settings: Settings, topics: list[str], stop: Callable[[], bool],
                  on_value: Callable[[str, dict], None]) -> None:
    """Call ``on_value(topic, value)`` for every JSON message of ``topics`` until ``stop()``."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(*topics, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None)
    try:
        while not stop():
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                for msg in msgs:
                    try:
                        on_value(tp.topic, orjson.loads(msg.value))
                    except orjson.JSONDecodeError:
                        continue
    finally:
        consumer.close()
