"""The intake agent: validate every settlement, deduplicate ids, route to DLQ or decision.

Every input message ends in exactly one place (SPEC §9): a DLQ record or a decision.
Redelivered messages (same origin partition/offset, after a crash) re-emit their output;
consumers deduplicate decisions on settlement_id.
"""

from __future__ import annotations

import logging
import time

import faust
import orjson

from detectors.dedup import Origin, Seen, SeenId, classify
from detectors.domain import Settlement

from .app import json_table
from .runtime import Runtime
from .validation import Rejection, duplicate, parse_settlement

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


def decision_record(settlement: Settlement, rules_version: str) -> dict:
    return {"settlement_id": settlement.settlement_id, "decision": "pass",
            "rules_version": rules_version, "hits": []}


def register(app: faust.App, rt: Runtime) -> None:
    topics = rt.settings.topics
    settlements = app.topic(topics.settlements, partitions=rt.settings.partitions)
    dlq = app.topic(topics.dlq, partitions=rt.settings.partitions)
    decisions = app.topic(topics.decisions, partitions=rt.settings.partitions)
    seen_ids = json_table(app, "settlement-ids-v1", rt.settings.partitions)
    window_ms = rt.settings.dedup_window_days * DAY_MS
    m = rt.metrics

    async def reject(rej: Rejection, raw: bytes, origin: Origin) -> None:
        source = {"topic": topics.settlements, "partition": origin.partition,
                  "offset": origin.offset}
        key = rej.settlement_id.encode() if rej.settlement_id else None
        await dlq.send(key=key, value=orjson.dumps(rej.to_dlq(raw, source)))
        m.dlq.labels(reason=rej.reason).inc()
        m.events_out.labels(outcome="dlq").inc()
        log.info("rejected message at %s/%s: %s (%d errors)", origin.partition,
                 origin.offset, rej.reason, len(rej.errors))

    @app.agent(settlements, name="intake")
    async def intake(stream: faust.StreamT) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            m.events_in.inc()
            raw = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
            origin = Origin(event.message.partition, event.message.offset)
            parsed = parse_settlement(raw)
            if isinstance(parsed, Rejection):
                await reject(parsed, raw, origin)
                continue
            settlement, _doc = parsed
            sid = settlement.settlement_id
            stored = seen_ids.get(sid)
            previous = SeenId.from_dict(stored) if stored else None
            verdict = classify(previous, origin, settlement.settled_at_ms, window_ms)
            if verdict is Seen.DUPLICATE:
                await reject(duplicate(sid), raw, origin)
                continue
            if verdict is Seen.NEW:
                seen_ids[sid] = SeenId(origin, settlement.settled_at_ms).to_dict()
            record = decision_record(settlement, rt.rules_version)
            await decisions.send(key=sid.encode(), value=orjson.dumps(record))
            m.decisions.labels(decision=record["decision"]).inc()
            outcome = "decided" if verdict is Seen.NEW else "redelivered"
            m.events_out.labels(outcome=outcome).inc()
            m.processing_seconds.observe(time.perf_counter() - started)
