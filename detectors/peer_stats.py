"""Pooled month totals per entity and per peer group, and the peer view (SPEC §4).

State is exact integer sums in fen, updated in O(1) per settlement:

- :class:`EntityMonth`: one entity × visit kind × month. ``visits``, Σtotal, Σdrug, Σfund,
  the per-visit second moments Σtotal², Σdrug², Σdrug·total (fen², Python ints, exact)
  used by :mod:`detectors.significance`, and up to ``sample_settlements`` evidence ids —
  the lexicographically smallest seen, so the sample does not depend on arrival order.
- :class:`GroupMonth`: the same sums over the group's members that meet their own minimum
  volume (``visits >= min_visits``), plus their count. :func:`group_apply` removes an
  entity's previous contribution and adds its new one; with integers removal is exact, so
  the aggregate always equals a recomputation from the members, whatever the order.
- :func:`peer_view`: the group minus the entity itself (SPEC §4: the peer mean excludes
  the entity), or ``None`` while fewer than ``min_peers`` others qualify.

Variance: these are the raw power sums of Chan, Golub & LeVeque (1983), "Algorithms for
computing the sample variance"; in exact integer arithmetic the combination and removal
of partial sums is exact, and ``n·Σx² − (Σx)²`` has none of the cancellation that makes
Welford's update preferable in floating point. Floats appear only in derived metrics.

The qualification threshold is frozen into each :class:`GroupMonth` when it is created:
a rule-set change of ``min_visits`` applies to the pool from the next month, which keeps
removals exact (an entity is removed under the same rule it was added with).

Sizes: an EntityMonth is 7 ints + ≤ k ids (≈ 350 bytes as JSON with k = 5); a
GroupMonth 8 ints (≈ 200 bytes). Squared sums above 2⁶³ serialise as decimal strings
so any JSON encoder (orjson included) accepts them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Mapping, Protocol

_INT64 = 2**63


class AmountUpdate(Protocol):
    settlement_id: str
    total_fen: int
    drug_fen: int
    fund_fen: int


def _dump_int(v: int) -> int | str:
    return v if -_INT64 < v < _INT64 else str(v)


def _load_int(v: int | str) -> int:
    return int(v)


def cost_per_visit_fen(visits: int, total_fen: int) -> Fraction | None:
    """Σtotal / visits in fen, exact; ``None`` without visits."""
    return Fraction(total_fen, visits) if visits > 0 else None


def drug_ratio(drug_fen: int, total_fen: int) -> Fraction | None:
    """Σdrug / Σtotal, exact; ``None`` when Σtotal is 0 (no cost, no ratio)."""
    return Fraction(drug_fen, total_fen) if total_fen > 0 else None


@dataclass(frozen=True, slots=True)
class EntityMonth:
    """Month-to-date totals of one entity for one visit kind (SPEC §4)."""

    visits: int = 0
    total_fen: int = 0
    drug_fen: int = 0
    fund_fen: int = 0
    sum_sq_total_fen2: int = 0
    sum_sq_drug_fen2: int = 0
    sum_drug_total_fen2: int = 0
    sample_ids: tuple[str, ...] = ()

    def add(self, update: AmountUpdate, sample_settlements: int = 5) -> EntityMonth:
        """This month with one more visit (settlement) added; ``self`` is unchanged."""
        t, d = update.total_fen, update.drug_fen
        samples = self.sample_ids
        if sample_settlements > 0 and update.settlement_id not in samples:
            samples = tuple(sorted((*samples, update.settlement_id))[:sample_settlements])
        return EntityMonth(
            visits=self.visits + 1,
            total_fen=self.total_fen + t,
            drug_fen=self.drug_fen + d,
            fund_fen=self.fund_fen + update.fund_fen,
            sum_sq_total_fen2=self.sum_sq_total_fen2 + t * t,
            sum_sq_drug_fen2=self.sum_sq_drug_fen2 + d * d,
            sum_drug_total_fen2=self.sum_drug_total_fen2 + d * t,
            sample_ids=samples,
        )

    @property
    def cost_per_visit_fen(self) -> Fraction | None:
        return cost_per_visit_fen(self.visits, self.total_fen)

    @property
    def drug_ratio(self) -> Fraction | None:
        return drug_ratio(self.drug_fen, self.total_fen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "visits": self.visits, "total_fen": self.total_fen, "drug_fen": self.drug_fen,
            "fund_fen": self.fund_fen,
            "sum_sq_total_fen2": _dump_int(self.sum_sq_total_fen2),
            "sum_sq_drug_fen2": _dump_int(self.sum_sq_drug_fen2),
            "sum_drug_total_fen2": _dump_int(self.sum_drug_total_fen2),
            "sample_ids": list(self.sample_ids),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EntityMonth:
        return cls(
            visits=d["visits"], total_fen=d["total_fen"], drug_fen=d["drug_fen"],
            fund_fen=d["fund_fen"],
            sum_sq_total_fen2=_load_int(d["sum_sq_total_fen2"]),
            sum_sq_drug_fen2=_load_int(d["sum_sq_drug_fen2"]),
            sum_drug_total_fen2=_load_int(d["sum_drug_total_fen2"]),
            sample_ids=tuple(d["sample_ids"]),
        )


_POOLED = ("visits", "total_fen", "drug_fen", "sum_sq_total_fen2", "sum_sq_drug_fen2",
           "sum_drug_total_fen2")


@dataclass(frozen=True, slots=True)
class GroupMonth:
    """Σ over the group's qualifying members for one month; ``entities`` counts them."""

    min_visits: int
    entities: int = 0
    visits: int = 0
    total_fen: int = 0
    drug_fen: int = 0
    sum_sq_total_fen2: int = 0
    sum_sq_drug_fen2: int = 0
    sum_drug_total_fen2: int = 0

    def qualifies(self, entity: EntityMonth) -> bool:
        """Whether ``entity`` meets the pool's minimum volume (never with 0 visits)."""
        return entity.visits >= max(self.min_visits, 1)

    def _shift(self, entity: EntityMonth, sign: int) -> GroupMonth:
        changes = {f: getattr(self, f) + sign * getattr(entity, f) for f in _POOLED}
        return replace(self, entities=self.entities + sign, **changes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"min_visits": self.min_visits, "entities": self.entities}
        d.update({f: _dump_int(getattr(self, f)) for f in _POOLED})
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GroupMonth:
        return cls(min_visits=d["min_visits"], entities=d["entities"],
                   **{f: _load_int(d[f]) for f in _POOLED})


def group_apply(
    group: GroupMonth | None, before: EntityMonth | None, after: EntityMonth, min_visits: int
) -> GroupMonth:
    """The group aggregate after one member went from ``before`` to ``after``.

    Args:
        group: the current aggregate, or ``None`` for the first update of the month (a new
            group is created with ``min_visits``; an existing group keeps its own).
        before: the member's row before the update (``None`` if it is new this month).
        after: the member's row after the update.
        min_visits: the entity kind's minimum volume, used only for a new group.

    Returns:
        A new :class:`GroupMonth`; O(1), exact.
    """
    g = group if group is not None else GroupMonth(min_visits=min_visits)
    if before is not None and g.qualifies(before):
        g = g._shift(before, -1)
    if g.qualifies(after):
        g = g._shift(after, +1)
    return g


@dataclass(frozen=True, slots=True)
class PeerView:
    """Pooled totals of the *other* qualifying members of an entity's group."""

    peer_entities: int
    visits: int
    total_fen: int
    drug_fen: int
    sum_sq_total_fen2: int
    sum_sq_drug_fen2: int
    sum_drug_total_fen2: int

    @property
    def cost_per_visit_fen(self) -> Fraction | None:
        """Pooled peer mean cost per visit (Σtotal / Σvisits over the others)."""
        return cost_per_visit_fen(self.visits, self.total_fen)

    @property
    def drug_ratio(self) -> Fraction | None:
        """Pooled peer drug ratio (Σdrug / Σtotal over the others)."""
        return drug_ratio(self.drug_fen, self.total_fen)


def peer_view(group: GroupMonth, entity: EntityMonth, min_peers: int) -> PeerView | None:
    """The peers of ``entity``: ``group`` without the entity's own contribution.

    Args:
        group: the aggregate *including* ``entity``'s current row (as returned by
            :func:`group_apply` for that row).
        entity: the entity's current month row.
        min_peers: how many other qualifying entities a peer mean needs (SPEC §4: 3).

    Returns:
        The :class:`PeerView`, or ``None`` when fewer than ``min_peers`` others qualify.
    """
    others = group._shift(entity, -1) if group.qualifies(entity) else group
    if others.entities < min_peers:
        return None
    return PeerView(peer_entities=others.entities,
                    **{f: getattr(others, f) for f in _POOLED})
