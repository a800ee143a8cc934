"""The claims stage (SPEC §7): patient history and trace codes in Faust tables, decisions.

Topology (every hop keyed so the table it updates is local to the event's partition):

``settlements`` → intake (validate, dedup) → ``{app}-claims-by-patient-v1`` keyed by
patient id: :meth:`ClaimsStage.on_patient` applies ``patient_step`` to table
``patient-history-v1``. A settlement without trace codes is decided there; otherwise it
travels through ``{app}-claims-by-trace-v1``, one hop per partition owning some of its
codes, in ascending partition order (:mod:`service.trace_stage`); the last hop decides.

Messages: ``{"o": [origin partition, offset], "ts": origin message time ms, "raw": the
settlement text}`` in; hops add ``"v"`` (rules version), ``"hits"``, ``"route"``, ``"pre"``.
Every step is idempotent under redelivery (the history remembers applied settlements and
their hits; a code's claim names its settlement), so a redelivered settlement re-emits an
identical decision and identical alerts (consumers deduplicate on settlement_id /
(alert_id, status)). Expired state is deleted by :meth:`ClaimsStage.prune`, relative to the
newest event time seen in each partition (event time, not wall time).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Collection, MutableMapping
from typing import Any, Protocol

import faust
import orjson
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from detectors.claims import Hit, PatientHistory, TraceCodeState, trace_expired
from detectors.domain import Settlement

from .batching import (
    BATCH_MAX,
    BATCH_WITHIN_S,
    Direct,
    Outbox,
    batched_json_table,
    items_of,
)
from .claim_alerts import claim_alert
from .claim_log import ClaimLog, record_partition
from .claims_state import (
    HISTORY_TABLE,
    PATIENT_TOPIC,
    TRACE_TABLE,
    TRACE_TOPIC,
    distinct_codes,
    error_reporter,
    partition_for,
    patient_hits,
)
from .decisions import decision_record
from .runtime import Runtime
from .trace_stage import trace_hop
from .validation import Rejection, parse_settlement

log = logging.getLogger(__name__)

Table = MutableMapping[str, Any]
Delete = Callable[[Table, int, str], None]


class Outputs(Protocol):
    async def trace(self, partition: int, key: bytes, value: bytes) -> None: ...
    async def decision(self, key: bytes, value: bytes) -> None: ...
    async def alert(self, key: bytes, value: bytes) -> None: ...


def _parsed(raw: str) -> Settlement | Rejection:
    """A settlement visits the patient hop and up to one hop per partition, mostly within
    a few batches of one worker: parse its text once (settlements are immutable values).
    Only typical sizes are cached, so the cache holds at most 8,192 × 8 KB of text."""
    if len(raw) <= _CACHED_TEXT_MAX:
        return _parsed_cached(raw)
    return _parse(raw)


def _parse(raw: str) -> Settlement | Rejection:
    parsed = parse_settlement(raw)
    return parsed if isinstance(parsed, Rejection) else parsed[0]


_CACHED_TEXT_MAX = 8 * 1024
_parsed_cached = functools.lru_cache(maxsize=8192)(_parse)


def _pop(table: Table, partition: int, key: str) -> None:
    table.pop(key, None)


class ClaimsStage:
    """The claim rules over two keyed tables; Faust-free so tests can drive it with dicts."""

    def __init__(self, rt: Runtime, histories: Table, traces: Table, out: Outputs,
                 delete: Delete = _pop) -> None:
        self.rt, self.histories, self.traces, self.out = rt, histories, traces, out
        self.delete = delete
        self.partitions = rt.settings.partitions
        self.newest_ms: dict[tuple[str, int], int] = {}  # (table, partition) -> event ms
        self.patient_topic: Any = None  # the stage's input topic, set by register()

    # ---- state ---------------------------------------------------------------------------

    def history(self, patient_id: str) -> PatientHistory:
        stored = self.histories.get(patient_id)
        return PatientHistory.from_dict(stored) if stored else PatientHistory()

    def states(self, codes: Collection[str]) -> dict[str, TraceCodeState | None]:
        out: dict[str, TraceCodeState | None] = {}
        for code in codes:
            stored = self.traces.get(code)
            out[code] = TraceCodeState.from_dict(stored) if stored else None
        return out

    def seen(self, table: str, partition: int, event_ms: int) -> None:
        key = (table, partition)
        if event_ms > self.newest_ms.get(key, event_ms - 1):
            self.newest_ms[key] = event_ms

    # ---- steps ---------------------------------------------------------------------------

    def settlement(self, msg: dict[str, Any]) -> Settlement | None:
        parsed = _parsed(msg["raw"])
        if isinstance(parsed, Rejection):  # validated by intake: only a version skew
            log.error("claims stage: settlement no longer valid (%s), skipped", parsed.reason)
            return None
        return parsed

    async def on_patient(self, value: bytes | dict[str, Any], partition: int) -> None:
        """Patient hop: apply the patient rules, then decide or start the trace hops."""
        msg = value if isinstance(value, dict) else orjson.loads(value)
        s = self.settlement(msg)
        if s is None:
            return
        rs = self.rt.ruleset
        on_error = error_reporter(self.rt.metrics, s.settlement_id)
        try:
            history = self.history(s.patient.id)
        except Exception as exc:  # noqa: BLE001 - unreadable state: decide without it
            on_error("other", exc)
            history = PatientHistory()
        new, hits = patient_hits(rs, history, s, on_error)
        if new is not history:
            self.histories[s.patient.id] = new.to_dict()
        self.seen(HISTORY_TABLE, partition, s.settled_at_ms)
        codes = distinct_codes(s)
        if not codes:
            await self.emit(s, hits, rs.version, msg.get("ts"))
            return
        route = sorted({partition_for(c, self.partitions) for c in codes})
        hop = {"o": msg.get("o"), "ts": msg.get("ts"), "raw": msg["raw"], "v": rs.version,
               "hits": [h.to_dict() for h in hits], "route": route, "pre": {}}
        await self.out.trace(route[0], s.settlement_id.encode(), orjson.dumps(hop))

    async def on_trace(self, value: bytes | dict[str, Any], partition: int) -> None:
        """A trace-code hop (:mod:`service.trace_stage`)."""
        await trace_hop(self, value, partition)

    async def emit(self, s: Settlement, hits: tuple[Hit, ...], version: str,
                   origin_ts_ms: int | None) -> None:
        """The decision, then one claim alert per hit; count them and the latency."""
        m = self.rt.metrics
        record = decision_record(s, version, hits)
        await self.out.decision(s.settlement_id.encode(), orjson.dumps(record))
        zone = self.rt.ruleset.tz_for(s.region)
        for hit in hits:
            alert = claim_alert(hit, s, version, zone)
            alert["emitted_at"] = self.rt.now_iso()
            await self.out.alert(alert["alert_id"].encode(), orjson.dumps(alert))
            m.alerts.labels(rule=hit.rule, level=alert["level"]).inc()
        m.decisions.labels(decision=record["decision"]).inc()
        if origin_ts_ms:
            m.decision_latency_seconds.observe(max(0.0, time.time() - origin_ts_ms / 1000))

    # ---- retention -----------------------------------------------------------------------

    def prune(self, active: Collection[int]) -> dict[str, int]:
        """Delete expired keys of the ``active`` partitions; returns counts per table.

        A history expires when its newest entry is older than ``patient_history``
        retention, a trace claim when ``trace_expired``; both relative to the newest event
        time this worker has processed in that partition. Synchronous (no await), so no
        agent step interleaves with it.
        """
        rs = self.rt.ruleset
        keep_ms = rs.patient_history.retention_ms
        params = rs.claims.trace_code_reuse

        def history_expired(v: Any, newest: int) -> bool:
            h = PatientHistory.from_dict(v)
            return h.newest_ms is None or h.newest_ms < newest - keep_ms

        def trace_is_expired(v: Any, newest: int) -> bool:
            return trace_expired(params, TraceCodeState.from_dict(v), newest)

        counts = {}
        for name, table, expired in ((HISTORY_TABLE, self.histories, history_expired),
                                     (TRACE_TABLE, self.traces, trace_is_expired)):
            gone = 0
            for key, value in list(table.items()):
                q = partition_for(key, self.partitions)
                newest = self.newest_ms.get((name, q))
                if q in active and newest is not None and value and expired(value, newest):
                    self.delete(table, q, key)
                    gone += 1
            counts[name] = gone
        m = self.rt.metrics
        m.state_pruned.labels(table="patient_history").inc(counts[HISTORY_TABLE])
        m.state_pruned.labels(table="trace_codes").inc(counts[TRACE_TABLE])
        return counts


# ---- Faust wiring --------------------------------------------------------------------------


class _FaustOutputs:
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


def _faust_delete(table: Any, partition: int, key: str) -> None:
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
    out = _FaustOutputs(by_trace, app.topic(s.topics.decisions, partitions=n),
                        app.topic(s.topics.alerts, partitions=n))
    # Both agents write both tables, interleaved at every await: a key's changelog
    # partition comes from the key itself (the partition its messages are routed to).
    owner = lambda key: partition_for(key, n)  # noqa: E731
    histories = batched_json_table(app, HISTORY_TABLE, n, partition_of=owner)
    trace_records = batched_json_table(app, TRACE_TABLE, n, partition_of=record_partition)
    traces = ClaimLog(trace_records, partition_of=owner)
    stage = ClaimsStage(rt, histories, traces, out, delete=_faust_delete)
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

    @app.agent(by_patient, name="claims-by-patient")
    async def claims_by_patient(stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            for event in events:
                await guarded(stage.on_patient, event)
            await end_of_batch()

    @app.agent(by_trace, name="claims-by-trace")
    async def claims_by_trace(stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            for event in events:
                await guarded(stage.on_trace, event)
            await end_of_batch()

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
