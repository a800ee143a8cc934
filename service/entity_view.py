"""``GET /v1/entities/{kind}/{id}``: an entity's monthly metrics beside its peers, and cards."""

from __future__ import annotations

from typing import Any, Mapping

from detectors.day_close import group_month_key
from detectors.entity_row import EntityRow
from detectors.peer_stats import GroupMonth, peer_view


def _ratio(x: Any, scale: float = 1.0, digits: int = 4) -> float | None:
    return None if x is None else round(float(x) / scale, digits)


def row_summary(row: EntityRow, groups: Mapping[str, GroupMonth], min_peers: int
                ) -> dict[str, Any]:
    """One entity-month as a supervisor reads it (closed days; pending days counted)."""
    group = groups.get(group_month_key(row))
    view = peer_view(group, row.closed, min_peers) if group else None
    return {
        "month": row.month, "visit_kind": row.visit_kind, "peer_group": row.group_key,
        "visits": row.closed.visits,
        "total_amount": round(row.closed.total_fen / 100, 2),
        "fund_amount": round(row.closed.fund_fen / 100, 2),
        "cost_per_visit": _ratio(row.closed.cost_per_visit_fen, 100, 2),
        "drug_ratio": _ratio(row.closed.drug_ratio),
        "peer": None if view is None else {
            "cost_per_visit": _ratio(view.cost_per_visit_fen, 100, 2),
            "drug_ratio": _ratio(view.drug_ratio),
            "peer_entities": view.peer_entities,
        },
        "pending_days": [p.day for p in row.pending],
        "pending_visits": sum(p.sums.visits for p in row.pending),
        "cards": {rule: state.to_dict() for rule, state in row.cards},
        "sample_settlement_ids": list(row.closed.sample_ids),
    }


def entity_summary(rows: list[EntityRow], groups: Mapping[str, GroupMonth], min_peers: int,
                   institution: str | None = None) -> list[dict[str, Any]]:
    picked = [r for r in rows if institution is None or r.entity.institution_id == institution]
    picked.sort(key=lambda r: (r.entity.institution_id, r.month, r.visit_kind))
    out = []
    for r in picked:
        item = row_summary(r, groups, min_peers)
        item["entity"] = r.entity.to_dict()
        out.append(item)
    return out
