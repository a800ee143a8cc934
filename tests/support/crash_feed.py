"""The crash runs' feed: synthetic settlements with broken, invalid and duplicate messages
mixed in, and how it is produced (same partition and offset for every message in every
run, paced so that kills land mid-stream)."""

from __future__ import annotations

import random
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from service.feed import key_of
from service.settings import Settings
from support.reliability import expected_fates

# The tables whose changelogs are compared between runs (name without app id / suffix).
TABLES = ("entity-months-v1", "fund-months-v1", "patient-history-v1", "trace-code-batches-v1",
          "settlement-ids-v1")
PARTITIONS = 4
# Messages/s into ``settlements`` after the first FEED_HEAD, and never more than
# FEED_AHEAD messages beyond what is accounted for: a restart takes ~10-15 s and the
# restarted worker catches up on its backlog in a burst, so a feed that ran on while it
# was down would be accounted for before the next kill lands.
FEED_RATE = 50.0
FEED_HEAD = 20
FEED_AHEAD = 200
KAFKA_TIMEOUTS = dict(session_timeout_ms=6000, heartbeat_interval_ms=2000)

# ---- the feed ------------------------------------------------------------------------------


@dataclass
class Feed:
    """A JSONL file to replay and what a correct pipeline must make of it."""

    path: Path
    lines: list[bytes]
    valid_ids: set[str]            # settlement ids that must get a decision
    dlq_reasons: Counter           # reason -> count that must reach the DLQ
    settlements: list[Any]         # parsed valid settlements, input order (for references)
    valid_lines: list[bytes]       # their messages (sent again by the duplicate probe)

    @property
    def total(self) -> int:
        return len(self.lines)


def _bad_lines(lines: list[bytes], rng: random.Random, n: int) -> list[tuple[int, bytes]]:
    """``n`` defective messages to splice in (position, text): broken JSON, schema errors
    and exact copies of an earlier settlement (same id → ``duplicate``)."""
    out = []
    for i in range(n):
        pos = rng.randrange(1, len(lines))
        kind = i % 3
        if kind == 0:
            text = b'{"settlement_id": "broken-%d", ' % i
        elif kind == 1:
            doc = orjson.loads(lines[pos])
            doc["settlement_id"] = f"schema-bad-{i}"
            doc.pop("patient")
            text = orjson.dumps(doc)
        else:
            text = lines[rng.randrange(max(0, pos - 50), pos)]
        out.append((pos, text))
    return out


CI_SIZE = 0  # ``build_feed(n=CI_SIZE)``: the small fixed feed below


def build_feed(out: Path, n: int = CI_SIZE, seed: int = 4, bad: int = 12) -> Feed:
    """Synthetic settlements (``service.synth``, small scale, seed 4) in time order, plus
    ``bad`` defective messages spliced in (broken JSON, schema errors, duplicate ids).

    - ``n=CI_SIZE``: region 610303 over 3 months, only the patients with
      ``crc32(patient id) % 4 == 1``: ~1,970 settlements that still hold whole patient
      histories (claim pairs), ~6 peer cards, ~4 fund alerts (two months close), ~6
      patient-rule hits plus trace-code reuse. One pooling region keeps peer groups whole.
    - ``n`` ≤ 8,000: region 610303, its first ``n`` settlements (6,000 reach the third
      month: ~38 peer cards, ~5 fund alerts).
    - larger: every region, enough months, the first ``n``.
    """
    from service.synth import generate

    out.mkdir(parents=True, exist_ok=True)
    if n <= 8000:
        generate(out, months=3, seed=seed, scale="small")
        tag = b'"region":"610303"'
        lines = [x for x in (out / "settlements.jsonl").read_bytes().splitlines() if tag in x]
        if n == CI_SIZE:
            lines = [x for x in lines
                     if zlib.crc32(orjson.loads(x)["patient"]["id"].encode()) % 4 == 1]
        else:
            lines = lines[:n]
    else:
        generate(out, months=max(3, min(12, 1 + n // 7000)), seed=seed,
                 scale="small" if n < 60_000 else "medium")
        lines = (out / "settlements.jsonl").read_bytes().splitlines()[:n]
    rng = random.Random(seed)
    for pos, text in sorted(_bad_lines(lines, rng, bad), reverse=True):
        lines.insert(pos, text)
    path = out / "feed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    valid_ids: set[str] = set()
    reasons: Counter = Counter()
    settlements, valid_lines = [], []
    for line, fate in zip(lines, expected_fates(lines)):
        if isinstance(fate, str):
            reasons[fate] += 1
        else:
            valid_ids.add(fate.settlement_id)
            settlements.append(fate)
            valid_lines.append(line)
    return Feed(path, lines, valid_ids, reasons, settlements, valid_lines)


def replay_in_order(lines: list[bytes], settings: Settings, rate: float | None = None,
                    accounted: Callable[[], int] | None = None) -> None:
    """Produce the feed like ``service.feed.replay`` (same key, same default partitioner
    for keyed messages), except that a message without a key (broken JSON) goes to a
    partition chosen from its bytes instead of a random one, and one request is in flight
    at a time: every run then puts every message at the same partition and offset, so
    state that records input offsets (``applied``, the id table) compares exactly.
    ``rate`` (messages/s) paces it: the batched pipeline drains a 2k feed in ~2 s, too
    fast for a kill to land before everything is accounted for; ``accounted`` (messages
    accounted for so far) holds it at most FEED_AHEAD ahead. Two calls in sequence keep
    the order (each flushes before returning)."""
    from aiokafka.partitioner import murmur2
    from kafka import KafkaProducer

    prod = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5, acks=1,
                         retries=5, max_in_flight_requests_per_connection=1,
                         client_id="crash-test-replay")
    try:
        started = time.monotonic()
        for i, line in enumerate(lines):
            key = key_of(line)
            partition = (murmur2(key or line) & 0x7FFFFFFF) % PARTITIONS
            prod.send(settings.topics.settlements, key=key, value=line, partition=partition)
            if rate and i % 50 == 49:
                time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
            if accounted is not None and i % 50 == 49:
                while i + 1 - accounted() > FEED_AHEAD:
                    time.sleep(0.05)
                    started += 0.05  # the pace resumes where it stopped
        prod.flush()
    finally:
        prod.close()
