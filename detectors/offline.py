"""The stats stage run in-process over a time-ordered list of settlements (no Kafka).

The reference against which the streaming worker is checked (same cards whatever the
worker count) and the fast path of the quality tests. It uses exactly the functions the
stats agent uses; days close as soon as the (single, ordered) input has passed them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Protocol

from detectors.alert_identity import card_alert
from detectors.day_close import close_day, pool, row_key
from detectors.domain import Settlement
from detectors.entities import entity_updates
from detectors.entity_row import EntityRow, apply_update, new_row
from detectors.peer_stats import GroupMonth


class RuleSetLike(Protocol):
    version: str
    peer: Any

    def tz_for(self, region: str) -> str: ...


def run_cards(settlements: Iterable[Settlement], ruleset: RuleSetLike
              ) -> tuple[list[dict[str, Any]], dict[str, EntityRow]]:
    """Alerts (without ``emitted_at``) and final rows for settlements in event-time order."""
    params = ruleset.peer
    rows: dict[str, EntityRow] = {}
    pending: dict[int, set[str]] = defaultdict(set)
    groups: dict[str, GroupMonth] = {}
    alerts: list[dict[str, Any]] = []

    def held(row: EntityRow, rule: str, month: str) -> bool:
        prev = rows.get(row_key(row.group_key, row.entity, month))
        card = prev.card(rule) if prev else None
        return bool(card and card.held)

    def close_through(watermark_ms: int) -> None:
        for end_ms in sorted(e for e in pending if e <= watermark_ms):
            keys = pending.pop(end_ms)
            new_rows, new_groups, changes = close_day(
                params, end_ms, {k: rows[k] for k in keys}, groups, held)
            groups.update(new_groups)
            rows.update(new_rows)
            alerts.extend(card_alert(c, ruleset.version, r.entity, r.visit_kind, r.month)
                          for r, c in changes)

    for offset, s in enumerate(settlements):
        close_through(s.settled_at_ms)
        for u in entity_updates(s, params, ruleset.tz_for(s.region)):
            key = u.entity_month_key
            row = rows.get(key) or new_row(u, 0)
            row, bucket = apply_update(row, u, 0, offset, ruleset.tz_for(s.region),
                                       params.sample_settlements)
            if bucket is not None:
                rows[key] = row
                pending[bucket.end_ms].add(key)
    close_through(2**62)
    return alerts, rows
