"""The stats stage: entity-month statistics re-keyed by peer group, cards at day close.

Input ``entity-updates-v1`` is keyed by peer-group key, so one partition holds a group's
members and can pool them locally (SPEC §4 "peer aggregates across partitions"). Messages:
``{"k": "u", "p": origin partition, "o": origin offset, "w": origin event time reached,
"u": update}`` and ticks ``{"k": "t", "p": origin, "w": ms}`` (see detectors.watermarks),
travelling as JSON arrays, one message per partition per intake batch (service.batching).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
import orjson

from detectors.alert_identity import card_alert
from detectors.day_close import close_day, row_key
from detectors.entities import EntityRef, EntityUpdate, PeerGroupKey
from detectors.entity_row import EntityRow, apply_update, new_row

from .batching import batched_json_table, consume_batches
from .runtime import Runtime
from .stats_memory import StatsMemory

log = logging.getLogger(__name__)
UPDATES_TOPIC = "entity-updates-v1"
ROWS_TABLE = "entity-months-v1"


def update_to_wire(u: EntityUpdate) -> dict[str, Any]:
    return {"e": u.entity.to_dict(), "gk": u.group.kind, "gf": [list(f) for f in u.group.fields],
            "vk": u.visit_kind, "m": u.month, "sid": u.settlement_id, "at": u.settled_at,
            "ms": u.settled_at_ms, "t": u.total_fen, "d": u.drug_fen, "f": u.fund_fen}


def update_from_wire(d: dict[str, Any]) -> EntityUpdate:
    group = PeerGroupKey(kind=d["gk"], visit_kind=d["vk"],
                         fields=tuple((f[0], f[1]) for f in d["gf"]))
    return EntityUpdate(EntityRef.from_dict(d["e"]), group, d["vk"], d["m"], d["sid"], d["at"],
                        int(d["ms"]), int(d["t"]), int(d["d"]), int(d["f"]))


def register(app: faust.App, rt: Runtime) -> faust.TopicT:
    # Internal topics carry the app id, like Faust's changelogs, so two apps never share one.
    updates = app.topic(f"{rt.settings.app_id}-{UPDATES_TOPIC}",
                        partitions=rt.settings.partitions, internal=True)
    alerts = app.topic(rt.settings.topics.alerts, partitions=rt.settings.partitions)
    rows = batched_json_table(app, ROWS_TABLE, rt.settings.partitions)
    mem = StatsMemory(origins=rt.settings.partitions)
    rt.stats_rows, rt.stats_memory = rows, mem  # read by the entity API
    m = rt.metrics

    # Decoded rows, and those changed in the current batch: a row is decoded once and
    # encoded once per batch (decoding every row at every update and close was ~10 % of
    # the worker's CPU). This agent is the table's only writer, so the two agree.
    decoded: dict[str, EntityRow] = {}
    changed: dict[str, EntityRow] = {}

    def load(key: str) -> EntityRow | None:
        row = decoded.get(key)
        if row is None:
            raw = rows.get(key)
            if not raw:
                return None
            row = decoded[key] = EntityRow.from_dict(raw)
        return row

    def store(key: str, row: EntityRow) -> None:
        decoded[key] = changed[key] = row

    def write_changed() -> None:
        for key, row in changed.items():
            rows.write_partition = row.partition
            rows[key] = row.to_dict()
        changed.clear()

    def held(row: EntityRow, rule: str, month: str) -> bool:
        prev = load(row_key(row.group_key, row.entity, month))
        card = prev.card(rule) if prev else None
        return bool(card and card.held)

    async def send_alert(alert: dict[str, Any]) -> None:
        alert["emitted_at"] = rt.now_iso()
        await alerts.send(key=alert["alert_id"].encode(), value=orjson.dumps(alert))
        m.alerts.labels(rule=alert["rule"], level=alert["level"]).inc()

    async def reemit(row: EntityRow) -> None:
        """After a restart, cards whose alert may not have been flushed are sent again."""
        for change in rt.card_replays(row):
            await send_alert(card_alert(change, rt.rules_version, row.entity, row.visit_kind,
                                        row.month))

    async def ensure_indexed(q: int) -> None:
        if mem.is_indexed(q):
            return
        started = time.perf_counter()
        items = ((k, EntityRow.from_dict(v)) for k, v in rows.items())
        mine = mem.index(q, items, rt.ruleset.peer.min_visits)
        for row in mine:
            await reemit(row)
        log.info("stats partition %d indexed: %d rows in %.2fs", q, len(mine),
                 time.perf_counter() - started)

    async def close(q: int, end_ms: int) -> None:
        keys = mem.partitions[q].pending.pop(end_ms)
        dirty = {k: r for k in keys if (r := load(k)) is not None}
        params = rt.ruleset.peer
        new_rows, groups, changes = close_day(params, end_ms, dirty, mem.groups, held)
        mem.groups.update(groups)
        for row, change in changes:
            await send_alert(card_alert(change, rt.rules_version, row.entity, row.visit_kind,
                                        row.month))
        for key, row in new_rows.items():
            if row is not dirty[key]:
                store(key, row)

    async def apply(q: int, msg: dict[str, Any]) -> None:
        idx = mem.partitions[q]
        if msg["k"] == "u":
            update = update_from_wire(msg["u"])
            key = update.entity_month_key
            row = load(key)
            if row is None:
                row = new_row(update, q)
                mem.note_entity(key, row)
            tz = rt.ruleset.tz_for(update.entity.region)
            row, bucket = apply_update(row, update, msg["p"], msg["o"], tz,
                                       rt.ruleset.peer.sample_settlements)
            if bucket is not None:
                store(key, row)
                idx.add_pending(bucket.end_ms, key)
        idx.watermarks = idx.watermarks.advance(msg["p"], msg["w"])
        for end_ms in idx.closable():
            await close(q, end_ms)

    @app.agent(updates, name="entity-stats")
    async def entity_stats(stream: faust.StreamT) -> None:
        await consume_batches(stream, rows, ensure_indexed, apply, before_flush=write_changed)

    @app.timer(interval=10.0)
    async def count_entities() -> None:
        counts = {kind: 0 for kind in ("hospital", "department", "doctor", "pharmacy")}
        for ident in mem.entities:
            kind = ident.split("|", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        for kind, n in counts.items():
            m.tracked_entities.labels(kind=kind).set(n)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: object, revoked: set, **kwargs: object) -> None:
        for tp in revoked:
            if tp.topic == updates.get_topic_name():
                mem.forget(tp.partition)
                for cache in (decoded, changed):
                    for key in [k for k, r in cache.items() if r.partition == tp.partition]:
                        del cache[key]

    return updates
