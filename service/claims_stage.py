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

import orjson

from detectors.claims import Hit, PatientHistory, TraceCodeState, trace_expired
from detectors.domain import Settlement

from .claim_alerts import claim_alert
from .claims_state import (
    HISTORY_TABLE,
    TRACE_TABLE,
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
        self.patient_topic: Any = None  # the stage's input topic, set by claims_agents.register()

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
