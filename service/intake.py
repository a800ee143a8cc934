"""The intake agent: validate every settlement, deduplicate ids, route to DLQ or onwards.

Every input message ends in exactly one place (SPEC §9): a DLQ record or a decision.
Valid settlements go to the claims stage keyed by patient id (``service.claims_stage``,
which emits the decision) and fan out to the stats stage (one update per touched entity,
keyed by peer group) with the origin coordinates that make downstream state idempotent,
and each origin partition ticks its event-time progress to every stats partition.
Redelivered messages (same origin partition/offset, after a crash) re-emit their outputs;
downstream state skips what it has applied, consumers deduplicate.

The agent reads batches: outputs to internal topics are gathered per target partition and
sent as one JSON array each (``service.batching.Outbox``), and the id table's changelog
records are sent once per batch, both before the batch's input is acknowledged.
"""

from __future__ import annotations

import logging
import time

import faust
import orjson

from detectors.dedup import Origin, Seen, SeenId, classify
from detectors.entities import entity_updates
from detectors.fund.scopes import fund_updates

from .batching import BATCH_MAX, BATCH_WITHIN_S, Outbox, batched_json_table
from .claims_state import partition_for
from .runtime import Runtime
from .fund_stage import fund_updates_to_wire
from .stats import update_to_wire
from .ticks import OriginClocks
from .validation import MAX_MESSAGE_BYTES, Rejection, duplicate, oversized, parse_settlement

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


def register(app: faust.App, rt: Runtime, updates: faust.TopicT, claims: faust.TopicT,
             fund: faust.TopicT | None = None) -> None:
    topics = rt.settings.topics
    settlements = app.topic(topics.settlements, partitions=rt.settings.partitions)
    dlq = app.topic(topics.dlq, partitions=rt.settings.partitions)
    seen_ids = batched_json_table(app, "settlement-ids-v1", rt.settings.partitions)
    n = rt.settings.partitions
    outbox = Outbox()
    window_ms = rt.settings.dedup_window_days * DAY_MS
    clocks = OriginClocks(tick_interval_ms=rt.settings.tick_interval_s * 1000)
    m = rt.metrics

    def tick(origin: int, event_ms: int) -> None:
        value = orjson.dumps({"k": "t", "p": origin, "w": event_ms})
        for topic in (updates, fund) if fund is not None else (updates,):
            for q in range(n):
                outbox.add(topic, q, value)

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
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            for event in events:
                await one(event)
            seen_ids.write_partition = None
            await seen_ids.flush_changelog()
            await outbox.flush()

    async def one(event: faust.EventT) -> None:
        started = time.perf_counter()
        m.events_in.inc()
        raw = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
        origin = Origin(event.message.partition, event.message.offset)
        clocks.seen(origin)
        if len(raw) > MAX_MESSAGE_BYTES:
            await reject(oversized(len(raw)), raw, origin)
            return
        parsed = parse_settlement(raw)
        if isinstance(parsed, Rejection):
            await reject(parsed, raw, origin)
            return
        s, _doc = parsed
        sid = s.settlement_id
        try:  # pure derivations first: a failure here is this message's, not the worker's
            tz = rt.ruleset.tz_for(s.region)
            entity_wire = [(u.group.key, update_to_wire(u))
                           for u in entity_updates(s, rt.ruleset.peer, tz)]
            fund_wire = fund_updates_to_wire(fund_updates(s, tz)) if fund is not None else []
        except Exception as exc:  # noqa: BLE001 - the worker must not stop on input
            log.error("message at %s/%s could not be processed (%s): sent to the DLQ",
                      origin.partition, origin.offset, type(exc).__name__)
            await reject(Rejection("schema", (
                f"$: valid fields but could not be processed ({type(exc).__name__})",), sid),
                raw, origin)
            return
        stored = seen_ids.get(sid)
        previous = SeenId.from_dict(stored) if stored else None
        verdict = classify(previous, origin, s.settled_at_ms, window_ms)
        if verdict is Seen.DUPLICATE:
            await reject(duplicate(sid), raw, origin)
            return
        if verdict is Seen.NEW:
            seen_ids.write_partition = origin.partition
            seen_ids[sid] = SeenId(origin, s.settled_at_ms).to_dict()
        reached_ms = clocks.advance(origin.partition, s.settled_at_ms)
        for group_key, wire in entity_wire:
            outbox.add(updates, partition_for(group_key, n), orjson.dumps(
                {"k": "u", "p": origin.partition, "o": origin.offset, "w": reached_ms,
                 "u": wire}))
        if fund is not None:
            outbox.add(fund, partition_for(s.region, n), orjson.dumps(
                {"k": "u", "p": origin.partition, "o": origin.offset, "w": reached_ms,
                 "r": s.region, "u": fund_wire}))
        if clocks.due(origin.partition):
            tick(origin.partition, reached_ms)
        outbox.add(claims, partition_for(s.patient.id, n), orjson.dumps(
            {"o": [origin.partition, origin.offset],
             "ts": event.message.timestamp and int(event.message.timestamp * 1000),
             "raw": raw.decode("utf-8")}))
        outcome = "decided" if verdict is Seen.NEW else "redelivered"
        m.events_out.labels(outcome=outcome).inc()
        m.processing_seconds.observe(time.perf_counter() - started)

    @app.timer(interval=1.0)
    async def idle_ticks() -> None:
        """Origins with nothing left to read tell the stats stage they hold nothing back."""
        try:
            assigned = [tp for tp in app.consumer.assignment() if tp.topic == topics.settlements]
            highwaters = {tp: app.consumer.highwater(tp) for tp in assigned}
        except Exception as exc:  # consumer not started or rebalancing: try next second
            log.debug("idle check skipped: %s", exc)
            return
        # Faust's next offset to read per partition, as committed (processed and flushed).
        committed = getattr(app.consumer, "_committed_offset", {})
        for tp in sorted(assigned, key=lambda t: t.partition):
            if clocks.idle(tp.partition, highwaters[tp], rt.settings.idle_after_s,
                           committed.get(tp)):
                tick(tp.partition, clocks.mark_idle(tp.partition))
        await outbox.flush()

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: object, assigned: set, **kwargs: object) -> None:
        clocks.rebalanced()
