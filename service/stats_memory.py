"""In-memory indexes of the stats stage, rebuilt from the table after a restart/rebalance.

Nothing here is the source of truth: the ``entity-months`` table is. Per stats partition we
keep the watermarks (re-learned from the next messages), which rows have pending days by
day end, and the group aggregates (recomputed from rows' closed totals).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from detectors.day_close import group_month_key, pool
from detectors.entity_row import EntityRow
from detectors.peer_stats import GroupMonth
from detectors.watermarks import Watermarks


@dataclass
class PartitionIndex:
    watermarks: Watermarks
    pending: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add_pending(self, end_ms: int, key: str) -> None:
        self.pending[end_ms].add(key)

    def closable(self) -> list[int]:
        """Day ends the low watermark has passed, oldest first."""
        low = self.watermarks.low_ms
        if low is None:
            return []
        return sorted(e for e in self.pending if e <= low)


@dataclass
class StatsMemory:
    origins: int
    partitions: dict[int, PartitionIndex] = field(default_factory=dict)
    groups: dict[str, GroupMonth] = field(default_factory=dict)
    # "kind|id" → row keys, for GET /v1/entities without scanning the table
    entities: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def note_entity(self, key: str, row: EntityRow) -> None:
        self.entities[f"{row.entity.kind}|{row.entity.id}"].add(key)

    def is_indexed(self, q: int) -> bool:
        return q in self.partitions

    def index(self, q: int, rows: Iterable[tuple[str, EntityRow]],
              min_visits: Mapping[str, int]) -> list[EntityRow]:
        """Rebuild partition ``q`` from its rows; return them (for re-emitting cards)."""
        idx = PartitionIndex(Watermarks.empty(self.origins))
        mine = [(k, r) for k, r in rows if r.partition == q]
        for key, row in mine:
            self.note_entity(key, row)
            for p in row.pending:
                idx.add_pending(p.end_ms, key)
        for gk in [g for g in self.groups if g in {group_month_key(r) for _, r in mine}]:
            del self.groups[gk]
        self.groups.update(pool((r for _, r in mine), min_visits))
        self.partitions[q] = idx
        return [r for _, r in mine]

    def forget(self, q: int) -> None:
        self.partitions.pop(q, None)
