"""detectors.entities, detectors.peer_stats and detectors.significance (SPEC §4, §11)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from detectors.domain import Department, Institution, Item, Patient, Settlement, Visit
from detectors.entities import EntityRef, entity_updates, join_fields
from detectors.peer_stats import EntityMonth, GroupMonth, group_apply, peer_view
from detectors.significance import cost_per_visit_p, drug_ratio_p, welch_one_sided_p

KEYS = {
    "hospital": ("region", "visit_kind", "institution_kind", "level"),
    "department": ("region", "visit_kind", "institution_kind", "level", "specialty"),
    "doctor": ("region", "visit_kind", "institution_kind", "level", "specialty"),
    "pharmacy": ("region", "visit_kind", "institution_kind", "level"),
}


@dataclass(frozen=True)
class Keys:
    keys: dict = field(default_factory=lambda: KEYS)


def settlement(sid="S1", *, at="2025-11-18T10:02:11+08:00", inst="H0007", inst_kind="hospital",
               level=2, dept=("SURG1", "surgery"), doctor="D1042", visit_kind="outpatient",
               total_fen=17400, drug_fen=5900, fund_fen=10440) -> Settlement:
    when = datetime.fromisoformat(at)
    items = [Item("220201001", "exam", 1, total_fen - drug_fen, total_fen - drug_fen)]
    if drug_fen:
        items.append(Item("XJ01", "drug", 1, drug_fen, drug_fen))
    return Settlement(
        settlement_id=sid, settled_at=when, settled_at_ms=int(when.timestamp() * 1000),
        region="610302", institution=Institution(inst, inst_kind, level, "private"),
        department=None if dept is None else Department(*dept), doctor_id=doctor,
        patient=Patient("p-1", "F", 61), visit=Visit(visit_kind, ("K40.9",)),
        items=tuple(items), total_fen=total_fen, fund_fen=fund_fen)


# ---- entities --------------------------------------------------------------------------------

def test_hospital_settlement_updates_hospital_department_doctor():
    ups = entity_updates(settlement(), Keys(), "Asia/Shanghai")
    assert [u.entity for u in ups] == [
        EntityRef("hospital", "H0007", "H0007", "610302"),
        EntityRef("department", "SURG1", "H0007", "610302"),
        EntityRef("doctor", "D1042", "H0007", "610302"),
    ]
    assert {(u.visit_kind, u.month, u.total_fen, u.drug_fen, u.fund_fen) for u in ups} == {
        ("outpatient", "2025-11", 17400, 5900, 10440)}
    assert ups[0].settled_at == "2025-11-18T10:02:11+08:00"
    assert ups[1].entity.key == "department|H0007|SURG1"
    # doctors take their department's specialty; hospitals have none
    assert ups[2].group.key == ("doctor|outpatient|region=610302|institution_kind=hospital|"
                                "level=2|specialty=surgery")
    assert ups[0].group.key == "hospital|outpatient|region=610302|institution_kind=hospital|level=2"


def test_pharmacy_sale_belongs_to_the_pharmacy_only():
    s = settlement(inst="P01", inst_kind="pharmacy", dept=None, doctor=None, visit_kind="pharmacy")
    (u,) = entity_updates(s, Keys(), "Asia/Shanghai")
    assert u.entity == EntityRef("pharmacy", "P01", "P01", "610302")
    assert u.visit_kind == "pharmacy"
    assert u.group.key.startswith("pharmacy|pharmacy|")


def test_same_department_id_at_two_hospitals_is_two_entities():
    a = entity_updates(settlement(inst="H0007"), Keys(), "UTC")[1]
    b = entity_updates(settlement(inst="H0012"), Keys(), "UTC")[1]
    assert a.entity.id == b.entity.id == "SURG1"
    assert a.entity.key != b.entity.key
    assert a.entity_month_key != b.entity_month_key
    assert a.group_month_key == b.group_month_key  # same peer group


def test_outpatient_and_inpatient_never_share_a_group_even_without_visit_kind_key():
    keys = Keys(keys={**KEYS, "hospital": ("region",)})
    out = entity_updates(settlement(visit_kind="outpatient"), keys, "UTC")[0]
    inp = entity_updates(settlement(visit_kind="inpatient"), keys, "UTC")[0]
    assert out.group.key != inp.group.key


def test_month_bucket_follows_region_time_zone():
    s = settlement(at="2025-02-01T00:30:00+08:00")
    assert entity_updates(s, Keys(), "Asia/Shanghai")[0].month == "2025-02"
    assert entity_updates(s, Keys(), "UTC")[0].month == "2025-01"


def test_ids_containing_the_separator_do_not_collide():
    assert join_fields("a|b", "c") != join_fields("a", "b|c")
    a, b = EntityRef("department", "b", "a|", "r"), EntityRef("department", "|b", "a", "r")
    assert a.key != b.key


def test_unknown_peer_key_field_is_refused():
    with pytest.raises(ValueError, match="unknown peer key field"):
        entity_updates(settlement(), Keys(keys={**KEYS, "hospital": ("colour",)}), "UTC")


# ---- entity months ---------------------------------------------------------------------------

def test_entity_month_adds_exact_sums_and_keeps_smallest_sample_ids():
    m = EntityMonth()
    for sid, total, drug in [("S3", 100, 40), ("S1", 300, 0), ("S2", 200, 200)]:
        m = m.add(settlement(sid, total_fen=total, drug_fen=drug, fund_fen=total // 2),
                  sample_settlements=2)
    assert (m.visits, m.total_fen, m.drug_fen, m.fund_fen) == (3, 600, 240, 300)
    assert m.sum_sq_total_fen2 == 100**2 + 300**2 + 200**2
    assert m.sum_sq_drug_fen2 == 40**2 + 200**2
    assert m.sum_drug_total_fen2 == 40 * 100 + 200 * 200
    assert m.sample_ids == ("S1", "S2")
    assert m.cost_per_visit_fen == 200 and m.drug_ratio == Fraction(2, 5)


def test_zero_total_month_has_no_drug_ratio():
    """SPEC case: zero-total months give a None drug ratio, not a crash."""
    m = EntityMonth().add(settlement(total_fen=0, drug_fen=0, fund_fen=0))
    assert m.drug_ratio is None
    assert m.cost_per_visit_fen == 0
    assert EntityMonth().cost_per_visit_fen is None


def test_huge_sums_round_trip_as_plain_json():
    m = EntityMonth(visits=1, total_fen=10**12, sum_sq_total_fen2=10**24, sample_ids=("x",))
    d = m.to_dict()
    assert d["sum_sq_total_fen2"] == str(10**24) and d["sum_sq_drug_fen2"] == 0
    assert EntityMonth.from_dict(d) == m


# ---- group aggregate and peer view -----------------------------------------------------------

def month(visits: int, cost_fen: int, drug_fen: int = 0) -> EntityMonth:
    m = EntityMonth()
    for i in range(visits):
        m = m.add(settlement(f"S{i}", total_fen=cost_fen, drug_fen=drug_fen, fund_fen=0))
    return m


def group_of(*members: EntityMonth, min_visits: int = 30) -> GroupMonth:
    g = None
    for m in members:
        g = group_apply(g, None, m, min_visits)
    return g


@pytest.mark.parametrize(
    ("case", "others", "me", "expected_peers", "expected_mean_fen"),
    [
        # SPEC §4: the peer mean excludes the entity itself
        ("exclusion of self", [month(30, 100), month(30, 100), month(30, 100)], month(30, 1000),
         3, 100),
        # SPEC §11: an entity below its own minimum volume is not in the pool
        ("small peer not pooled", [month(30, 100), month(30, 100), month(30, 100), month(29, 9999)],
         month(30, 1000), 3, 100),
        # a small entity itself is not in the pool, so nothing is subtracted
        ("small self", [month(30, 100), month(30, 200), month(40, 100)], month(5, 1000),
         3, Fraction(30 * 100 + 30 * 200 + 40 * 100, 100)),
        # pooled, not a mean of means: Σtotal / Σvisits
        ("pooled ratio", [month(30, 100), month(90, 200), month(30, 100)], month(30, 100),
         3, Fraction(30 * 100 + 90 * 200 + 30 * 100, 150)),
    ],
)
def test_peer_view(case, others, me, expected_peers, expected_mean_fen):
    view = peer_view(group_of(*others, me), me, min_peers=3)
    assert view is not None, case
    assert view.peer_entities == expected_peers
    assert view.cost_per_visit_fen == expected_mean_fen


def test_min_peers_not_met_gives_no_peer_view():
    """SPEC case: fewer than min_peers qualifying others → None (no card)."""
    me = month(30, 1000)
    g = group_of(month(30, 100), month(30, 100), month(29, 100), me)
    assert peer_view(g, me, min_peers=3) is None
    assert peer_view(g, me, min_peers=2).peer_entities == 2


def test_group_apply_replaces_the_old_contribution():
    before, after = month(30, 100), month(31, 100)
    g = group_apply(group_of(month(30, 500), before), before, after, 30)
    assert g == group_of(month(30, 500), after)


def test_group_keeps_its_own_min_visits():
    g = group_of(month(30, 100))
    g2 = group_apply(g, month(30, 100), month(31, 100), min_visits=50)
    assert g2.min_visits == 30 and g2.entities == 1


def test_zero_total_peers_give_none_drug_ratio():
    me = month(30, 100, 50)
    view = peer_view(group_of(month(30, 0), month(30, 0), month(30, 0), me), me, 3)
    assert view.drug_ratio is None and view.cost_per_visit_fen == 0


def test_group_round_trip():
    g = group_of(month(30, 100, 10), month(31, 7, 3))
    assert GroupMonth.from_dict(g.to_dict()) == g


# ---- significance ----------------------------------------------------------------------------

def sums(xs):
    xs = [int(x) for x in xs]
    return len(xs), sum(xs), sum(x * x for x in xs)


def test_welch_matches_scipy_on_raw_data():
    rng = np.random.default_rng(7)
    a = rng.integers(10_000, 40_000, 60)
    b = rng.integers(8_000, 30_000, 400)
    expected = stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue
    assert welch_one_sided_p(*sums(a), *sums(b)) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("a", "b"),
    [([100], [1, 2, 3]), ([1, 2], [5]), ([7, 7, 7], [5, 5, 5])],  # too few / zero variance
)
def test_welch_not_computable_is_none(a, b):
    assert welch_one_sided_p(*sums(a), *sums(b)) is None


def test_drug_ratio_p_small_when_clearly_higher_and_half_when_equal():
    high, same = month(40, 1000, 600), month(40, 1000, 300)
    peers_rows = [EntityMonth().add(settlement(f"P{i}", total_fen=1000,
                                               drug_fen=250 + 100 * (i % 2)))
                  for i in range(100)]  # pooled ratio exactly 0.3, with per-visit spread
    g = None
    for r in peers_rows:
        g = group_apply(g, None, r, 1)
    view = peer_view(g, EntityMonth(), 3)
    # the high entity has zero within-entity variance but the peers have some
    assert drug_ratio_p(high, view) < 1e-6
    assert drug_ratio_p(same, view) == pytest.approx(0.5)
    assert drug_ratio_p(month(1, 1000, 600), view) is None  # n < 2
    assert drug_ratio_p(month(30, 0, 0), view) is None      # zero total
    # peers' and entity's costs are all constant: no variance, no t-test
    assert cost_per_visit_p(month(40, 2000), view) is None
    spread = month(20, 2000).add(settlement("X", total_fen=2100, drug_fen=0, fund_fen=0))
    assert cost_per_visit_p(spread, view) < 1e-12
