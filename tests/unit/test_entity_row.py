"""Entity-month rows of the stats stage: pending days, folding, idempotent application."""

from __future__ import annotations

import pytest

from detectors.entities import EntityRef, EntityUpdate, PeerGroupKey
from detectors.entity_row import (EntityRow, apply_update, day_end_ms, day_of, fold_through,
                                  new_row)

TZ = "Asia/Shanghai"
DAY_MS = 86_400_000
T0 = 1_730_390_400_000  # 2024-11-01T00:00:00+08:00


def upd(sid: str, at_ms: int, total_fen: int = 10_000, drug_fen: int = 4_000) -> EntityUpdate:
    ent = EntityRef("doctor", "D1", "H1", "610302")
    return EntityUpdate(ent, PeerGroupKey("doctor", "outpatient", (("region", "610302"),)),
                        "outpatient", "2024-11", sid, "2024-11-01T10:00:00+08:00", at_ms,
                        total_fen, drug_fen, 6_000)


def test_day_boundaries_follow_the_region_time_zone():
    assert day_of(T0 - 1, TZ) == "2024-10-31"
    assert day_of(T0, TZ) == "2024-11-01"
    assert day_end_ms("2024-11-01", TZ) == T0 + DAY_MS
    assert day_of(T0, "UTC") == "2024-10-31"


@pytest.mark.parametrize("origin,offset,applied", [
    (0, 5, False),   # same origin, same offset: a redelivery
    (0, 4, False),   # an older offset of that origin: already applied
    (0, 6, True),    # the next message of that origin
    (1, 0, True),    # another origin has its own counter
])
def test_redelivered_updates_are_skipped(origin, offset, applied):
    row, _ = apply_update(new_row(upd("a", T0), 0), upd("a", T0), 0, 5, TZ, 5)
    after, bucket = apply_update(row, upd("b", T0 + 1), origin, offset, TZ, 5)
    assert (bucket is not None) is applied
    assert (after.pending[0].sums.visits == 2) is applied


def test_folding_moves_only_closed_days_and_keeps_sums_exact():
    row = new_row(upd("a", T0), 0)
    for i, at in enumerate([T0 + 1, T0 + 2, T0 + DAY_MS + 5]):
        row, _ = apply_update(row, upd(f"s{i}", at, total_fen=1000 * (i + 1)), 0, i, TZ, 5)
    assert [p.day for p in row.pending] == ["2024-11-01", "2024-11-02"]
    folded = fold_through(row, T0 + DAY_MS, 5)
    assert folded.closed.visits == 2 and folded.closed.total_fen == 3000
    assert [p.day for p in folded.pending] == ["2024-11-02"]
    assert fold_through(folded, T0 + DAY_MS, 5) is folded   # nothing more to fold
    assert EntityRow.from_dict(folded.to_dict()) == folded
    assert row.closed.visits == 0   # the input row was not mutated


def test_cards_that_never_fired_are_stored_compactly_and_read_back_equal():
    from detectors.cards import CardState, LevelState

    row = EntityRow(entity=EntityRef("doctor", "D1", "H1", "610302"), group_key="g",
                    visit_kind="outpatient", month="2025-11", partition=0,
                    cards=(("peer.cost_per_visit", CardState()),
                           ("peer.drug_ratio", CardState(yellow=LevelState("firing")))))
    stored = row.to_dict()
    assert stored["cards"]["peer.cost_per_visit"] == {}
    assert stored["cards"]["peer.drug_ratio"]["yellow"]["status"] == "firing"
    assert EntityRow.from_dict(stored) == row
