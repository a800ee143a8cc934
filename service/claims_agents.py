"""The claims stage's Faust wiring: its two topics and tables, the agents that drive
:class:`service.claims_stage.ClaimsStage` batch by batch, the prune timer, and where its
outputs go (trace hops through an outbox, decisions and alerts as public records)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import faust
import orjson
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from .batching import BATCH_MAX, BATCH_WITHIN_S, Direct, Outbox, batched_json_table, items_of
from .claim_log import ClaimLog, record_partition
from .claims_stage import ClaimsStage
from .claims_state import HISTORY_TABLE, PATIENT_TOPIC, TRACE_TABLE, TRACE_TOPIC, partition_for
from .runtime import Runtime

log = logging.getLogger(__name__)


class FaustOutputs:
    """Trace hops gathered in an outbox (one message per partition per batch); decisions
    and alerts are public records, one message each."""

    def __init__(self, by_trace: faust.TopicT, decisions: faust.TopicT,
                 alerts: faust.TopicT) -> None:
        self.by_trace, self.decisions, self.alerts = by_trace, decisions, alerts
        self.outbox = Outbox()

    async def trace(self, partition: int, key: bytes, value: bytes) -> None:
        self.outbox.add(self.by_trace, partition, value)

    async def decision(self, key: bytes, value: bytes) -> None:
        direct = Direct.of(self.decisions.app)
        if direct is None:
            await self.decisions.send(key=key, value=value)
        else:  # a record per settlement: the hottest public send
            await direct.send(self.decisions.get_topic_name(), key, value, None)

    async def alert(self, key: bytes, value: bytes) -> None:
        await self.alerts.send(key=key, value=value)


def faust_delete(table: Any, partition: int, key: str) -> None:
    """Delete a key outside an event: tombstone in the key's own changelog partition."""
    if isinstance(table, ClaimLog):  # tombstones its record once no claim in it is live
        del table[key]
        return
    table.send_changelog(partition, key, None, value_serializer="raw")
    table.data.pop(key, None)


def register(app: faust.App, rt: Runtime) -> ClaimsStage:
    """Topics, tables, both agents and the prune timer; returns the stage (for web views).

    ``stage.patient_topic`` is where intake sends valid settlements, keyed by patient id.
    """
    s, n = rt.settings, rt.settings.partitions
    by_patient = app.topic(f"{s.app_id}-{PATIENT_TOPIC}", partitions=n, internal=True)
    by_trace = app.topic(f"{s.app_id}-{TRACE_TOPIC}", partitions=n, internal=True)
    out = FaustOutputs(by_trace, app.topic(s.topics.decisions, partitions=n),
                        app.topic(s.topics.alerts, partitions=n))
    # Both agents write both tables, interleaved at every await: a key's changelog
    # partition comes from the key itself (the partition its messages are routed to).
    owner = lambda key: partition_for(key, n)  # noqa: E731
    histories = batched_json_table(app, HISTORY_TABLE, n, partition_of=owner)
    trace_records = batched_json_table(app, TRACE_TABLE, n, partition_of=record_partition)
    traces = ClaimLog(trace_records, partition_of=owner)
    stage = ClaimsStage(rt, histories, traces, out, delete=faust_delete)
    stage.patient_topic = by_patient

    async def guarded(step: Callable[[dict[str, Any], int], Any], event: faust.EventT) -> None:
        q = event.message.partition
        try:
            items = items_of(event.value)
        except orjson.JSONDecodeError:
            items = []
            rt.metrics.rule_errors.labels(rule="other").inc()
            log.error("claims stage: unreadable message on %s[%s]@%s, skipped",
                      event.message.topic, q, event.message.offset)
        for item in items:
            try:
                await step(item, q)
            except (KafkaError, ProducerSendError):
                raise
            except Exception as exc:  # noqa: BLE001 - never crash the agent on one message
                rt.metrics.rule_errors.labels(rule="other").inc()
                log.error("claims stage: %s on %s[%s]@%s, message skipped",
                          type(exc).__name__, event.message.topic, q, event.message.offset)

    async def end_of_batch() -> None:
        await histories.flush_changelog()
        traces.flush()
        await trace_records.flush_changelog()
        await out.outbox.flush()

    def agent(topic: faust.TopicT, name: str,
              step: Callable[[dict[str, Any], int], Any]) -> None:
        async def run(stream: faust.StreamT) -> None:
            async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
                for event in events:
                    await guarded(step, event)
                await end_of_batch()

        run.__name__ = run.__qualname__ = name.replace("-", "_")
        app.agent(topic, name=name)(run)

    agent(by_patient, "claims-by-patient", stage.on_patient)
    agent(by_trace, "claims-by-trace", stage.on_trace)

    @app.timer(interval=float(s.prune_interval_s))
    async def prune_claim_state() -> None:
        changelog = histories.changelog_topic.get_topic_name()
        active = {tp.partition for tp in app.assignor.assigned_actives()
                  if tp.topic == changelog}
        counts = stage.prune(active)
        await trace_records.flush_changelog()  # tombstones of records with no live claim left
        if any(counts.values()):
            log.info("claim state pruned: %s", counts)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: object, revoked: set, **kwargs: object) -> None:
        for tp in revoked:
            if tp.topic == by_trace.get_topic_name():
                traces.forget(tp.partition)

    return stage
