"""Closing one event-time day in one stats partition: fold, pool, then evaluate cards.

Order matters for determinism and is fixed here: first every dirty row folds the closed
day into its month totals and the group aggregates move accordingly (rows in key order);
only then is each row's card evaluated against the complete group (again in key order).
The result depends only on the rows' contents, not on arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Protocol

from detectors.cards import RULES, CardChange, card_step
from detectors.entities import EntityRef, join_fields
from detectors.entity_row import EntityRow, fold_through
from detectors.months import months_back
from detectors.peer_stats import GroupMonth, group_apply, peer_view


class PeerParamsLike(Protocol):
    threshold: float
    consecutive_months: int
    hysteresis: float
    min_peers: int
    sample_settlements: int
    min_visits: Mapping[str, int]
    enabled_rules: frozenset[str]


@dataclass(frozen=True, slots=True)
class CloseEvent:
    """What a card evaluation at day close is 'about': the entity's latest closed visit."""

    entity: EntityRef
    settled_at: str
    settled_at_ms: int


def group_month_key(row: EntityRow) -> str:
    return join_fields(row.group_key, row.month)


def row_key(group_key: str, entity: EntityRef, month: str) -> str:
    """Table key of an entity-month row (same layout as ``EntityUpdate.entity_month_key``)."""
    return join_fields(group_key, entity.key, month)


def pool(rows: Iterable[EntityRow], min_visits: Mapping[str, int]) -> dict[str, GroupMonth]:
    """Group aggregates recomputed from rows' closed totals (used to rebuild after restart)."""
    groups: dict[str, GroupMonth] = {}
    for row in rows:
        gk = group_month_key(row)
        groups[gk] = group_apply(groups.get(gk), None, row.closed,
                                 min_visits[row.entity.kind])
    return groups


def close_day(params: PeerParamsLike, end_ms: int, rows: Mapping[str, EntityRow],
              groups: Mapping[str, GroupMonth],
              held_lookup: Callable[[EntityRow, str, str], bool]
              ) -> tuple[dict[str, EntityRow], dict[str, GroupMonth],
                         list[tuple[EntityRow, CardChange]]]:
    """Fold the day ending at ``end_ms`` into ``rows`` and evaluate their cards.

    Args:
        params: peer parameters of the active rule set.
        end_ms: the day's end (exclusive) in epoch ms; pending days ending by then fold.
        rows: the dirty rows by table key.
        groups: current group aggregates by group-month key (not mutated).
        held_lookup: ``(row, rule, month) -> held`` for an earlier month of the same entity.

    Returns:
        New rows (all of them, to write back), the changed group aggregates, and the card
        changes in emission order, each with the row it belongs to.
    """
    new_groups: dict[str, GroupMonth] = {}
    folded: dict[str, EntityRow] = {}
    for key in sorted(rows):
        row = rows[key]
        after = fold_through(row, end_ms, params.sample_settlements)
        folded[key] = after
        if after is row:
            continue
        gk = group_month_key(row)
        current = new_groups.get(gk, groups.get(gk))
        new_groups[gk] = group_apply(current, row.closed if row.closed.visits else None,
                                     after.closed, params.min_visits[row.entity.kind])
    changes: list[tuple[EntityRow, CardChange]] = []
    out: dict[str, EntityRow] = {}
    for key in sorted(folded):
        row = folded[key]
        group = new_groups.get(group_month_key(row), groups.get(group_month_key(row)))
        if row is rows[key] or group is None or row.last_at is None:
            out[key] = row
            continue
        view = peer_view(group, row.closed, params.min_peers)
        event = CloseEvent(row.entity, row.last_at, row.last_at_ms or 0)
        previous = months_back(row.month, max(params.consecutive_months - 1, 0))
        for rule in RULES:
            held_prev = tuple(held_lookup(row, rule, m) for m in previous)
            state, rule_changes = card_step(params, row.card(rule), rule, row.closed, view,
                                            held_prev, event)
            row = row.with_card(rule, state) if state != row.card(rule) else row
            changes.extend((row, c) for c in rule_changes)
        out[key] = row
    return out, new_groups, changes



def standing_changes(row: EntityRow, threshold: float) -> list[CardChange]:
    """The changes that produced the row's current card states, rebuilt from the stored
    evidence: re-sent after a restart so an alert lost before the crash reaches consumers
    (they deduplicate on alert_id and status)."""
    out: list[CardChange] = []
    for rule, state in row.cards:
        for level in ("red", "yellow"):
            lv = getattr(state, level)
            if lv.fired is None:
                continue
            out.append(CardChange(rule, level, "firing", "replay", threshold, lv.fired))
            if lv.status == "resolved":
                out.append(CardChange(rule, level, "resolved", lv.resolved_reason or "replay",
                                      threshold, lv.fired))
    return out
