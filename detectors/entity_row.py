"""One entity-month row of the stats stage: closed totals, pending days, cards, applied offsets.

Updates land in a *pending* day bucket; a day is folded into the closed month totals only
when the event-time low watermark has passed its end (``detectors.watermarks``), and cards
are evaluated on closed totals. So the cards depend on which events belong to which day,
never on the order in which different origins' events arrived.

Idempotence under at-least-once delivery: the row remembers, per origin partition of the
``settlements`` topic, the highest offset it has applied. Updates from one origin reach a
row in origin order, so a redelivered update (offset ≤ remembered) is recognised and
skipped; the remembered offsets are written in the same changelog record as the totals.
State is O(1): one EntityMonth, a few pending days (bounded by lateness), one offset per
origin partition, two cards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from detectors.cards import CardState
from detectors.entities import EntityRef, EntityUpdate
from detectors.peer_stats import EntityMonth

_SUMS = ("visits", "total_fen", "drug_fen", "fund_fen", "sum_sq_total_fen2",
         "sum_sq_drug_fen2", "sum_drug_total_fen2")


@lru_cache(maxsize=4096)
def _day_bounds(day: str, tz: str) -> int:
    start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(tz))
    return int((start + timedelta(days=1)).timestamp() * 1000)


def day_of(settled_at_ms: int, tz: str) -> str:
    """Calendar day ``YYYY-MM-DD`` of an event in the region's time zone."""
    return datetime.fromtimestamp(settled_at_ms / 1000, ZoneInfo(tz)).date().isoformat()


def day_end_ms(day: str, tz: str) -> int:
    """First instant (epoch ms) after ``day`` in ``tz``: the day closes when the watermark passes it."""
    return _day_bounds(day, tz)


def merge_months(a: EntityMonth, b: EntityMonth, sample_settlements: int) -> EntityMonth:
    """Pooled sums of two disjoint sets of visits (exact integer addition)."""
    sums = {f: getattr(a, f) + getattr(b, f) for f in _SUMS}
    ids = tuple(sorted(set(a.sample_ids) | set(b.sample_ids))[:sample_settlements])
    return EntityMonth(**sums, sample_ids=ids)


@dataclass(frozen=True, slots=True)
class PendingDay:
    day: str
    end_ms: int
    sums: EntityMonth
    last_at: str
    last_at_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "end": self.end_ms, "sums": self.sums.to_dict(),
                "at": self.last_at, "at_ms": self.last_at_ms}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PendingDay":
        return cls(d["day"], int(d["end"]), EntityMonth.from_dict(d["sums"]), d["at"],
                   int(d["at_ms"]))


# Most rows' cards never fired: stored as {} (~120 bytes less per entity-month row).
_NO_CARD = CardState()


@dataclass(frozen=True, slots=True)
class EntityRow:
    entity: EntityRef
    group_key: str
    visit_kind: str
    month: str
    partition: int
    closed: EntityMonth = EntityMonth()
    pending: tuple[PendingDay, ...] = ()
    applied: tuple[tuple[int, int], ...] = ()
    cards: tuple[tuple[str, CardState], ...] = ()
    last_at: str | None = None
    last_at_ms: int | None = None

    def card(self, rule: str) -> CardState | None:
        return dict(self.cards).get(rule)

    def with_card(self, rule: str, state: CardState) -> "EntityRow":
        cards = dict(self.cards)
        cards[rule] = state
        return replace(self, cards=tuple(sorted(cards.items())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity.to_dict(), "group": self.group_key, "vk": self.visit_kind,
            "month": self.month, "q": self.partition, "closed": self.closed.to_dict(),
            "pending": [p.to_dict() for p in self.pending],
            "applied": [list(a) for a in self.applied],
            "cards": {r: {} if c == _NO_CARD else c.to_dict() for r, c in self.cards},
            "at": self.last_at, "at_ms": self.last_at_ms,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EntityRow":
        return cls(
            entity=EntityRef.from_dict(d["entity"]), group_key=d["group"], visit_kind=d["vk"],
            month=d["month"], partition=int(d["q"]), closed=EntityMonth.from_dict(d["closed"]),
            pending=tuple(PendingDay.from_dict(p) for p in d["pending"]),
            applied=tuple((int(a[0]), int(a[1])) for a in d["applied"]),
            cards=tuple(sorted((r, CardState.from_dict(c) if c else _NO_CARD)
                               for r, c in d["cards"].items())),
            last_at=d.get("at"), last_at_ms=d.get("at_ms"),
        )


def new_row(update: EntityUpdate, partition: int) -> EntityRow:
    return EntityRow(entity=update.entity, group_key=update.group.key,
                     visit_kind=update.visit_kind, month=update.month, partition=partition)


def apply_update(row: EntityRow, update: EntityUpdate, origin: int, offset: int, tz: str,
                 sample_settlements: int) -> tuple[EntityRow, PendingDay | None]:
    """Add one update to its pending day; ``(row, None)`` when it was already applied."""
    applied = dict(row.applied)
    if applied.get(origin, -1) >= offset:
        return row, None
    applied[origin] = offset
    day = day_of(update.settled_at_ms, tz)
    pending = {p.day: p for p in row.pending}
    old = pending.get(day)
    sums = (old.sums if old else EntityMonth()).add(update, sample_settlements)
    latest = old is None or update.settled_at_ms >= old.last_at_ms
    bucket = PendingDay(
        day, day_end_ms(day, tz), sums,
        update.settled_at if latest else old.last_at,  # type: ignore[union-attr]
        update.settled_at_ms if latest else old.last_at_ms)  # type: ignore[union-attr]
    pending[day] = bucket
    return replace(row, pending=tuple(pending[d] for d in sorted(pending)),
                   applied=tuple(sorted(applied.items()))), bucket


def fold_through(row: EntityRow, end_ms: int, sample_settlements: int) -> EntityRow:
    """Fold every pending day that ends at or before ``end_ms`` into the closed totals."""
    closed, keep = row.closed, []
    last_at, last_at_ms = row.last_at, row.last_at_ms
    for p in row.pending:
        if p.end_ms <= end_ms:
            closed = merge_months(closed, p.sums, sample_settlements)
            if last_at_ms is None or p.last_at_ms >= last_at_ms:
                last_at, last_at_ms = p.last_at, p.last_at_ms
        else:
            keep.append(p)
    if len(keep) == len(row.pending):
        return row
    return replace(row, closed=closed, pending=tuple(keep), last_at=last_at,
                   last_at_ms=last_at_ms)
