"""Hypothesis oracles and invariants of the peer-comparison core (SPEC §4–§6).

- the incremental group aggregate and peer view equal a brute-force recomputation from
  the raw visits (exact integers), whatever the order of updates;
- final EntityMonth / GroupMonth rows do not depend on update order;
- ``from_dict(to_dict(x)) == x`` through real JSON for EntityMonth, GroupMonth, CardState;
- inputs are never mutated; a restart from serialised state gives the same cards.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.cards import CardState, Evidence, LevelState, card_step
from detectors.entities import EntityRef
from detectors.months import months_back
from detectors.peer_stats import EntityMonth, GroupMonth, group_apply, peer_view

RULES = ("peer.cost_per_visit", "peer.drug_ratio")


@dataclass(frozen=True)
class Params:
    """Structural stand-in for detectors.ruleset.PeerParams (small volumes for speed)."""

    threshold: float = 1.20
    consecutive_months: int = 3
    hysteresis: float = 0.05
    min_peers: int = 2
    sample_settlements: int = 3
    min_visits: dict = field(default_factory=lambda: {"hospital": 2})
    keys: dict = field(default_factory=dict)
    enabled_rules: frozenset = frozenset(RULES)


@dataclass(frozen=True)
class Up:
    settlement_id: str
    total_fen: int
    drug_fen: int
    fund_fen: int
    entity: EntityRef
    month: str = "2025-11"
    settled_at: str = "2025-11-18T10:02:11+08:00"
    settled_at_ms: int = 0


def ref(i: int) -> EntityRef:
    return EntityRef("hospital", f"H{i}", f"H{i}", "610302")


amount = st.one_of(st.integers(0, 2_000_000), st.integers(0, 10**13))


@st.composite
def visit(draw, entity: int) -> tuple[int, int, int]:
    total = draw(amount)
    drug = draw(st.integers(0, total))
    return entity, total, drug


@st.composite
def shuffled_visits(draw):
    """Raw visits of 1–6 entities, in an arbitrary interleaving."""
    n = draw(st.integers(1, 6))
    visits = []
    for e in range(n):
        visits += draw(st.lists(visit(e), min_size=0, max_size=6))
    order = draw(st.permutations(visits))
    return n, [Up(f"S{k:03d}", t, d, t // 2, ref(e)) for k, (e, t, d) in enumerate(order)]


def brute(rows: dict[int, list[Up]], min_visits: int, exclude: int | None = None):
    """(entities, visits, Σtotal, Σdrug, Σtotal²) over qualifying members except ``exclude``."""
    acc = [0, 0, 0, 0, 0]
    for e, ups in rows.items():
        if e == exclude or len(ups) < max(min_visits, 1):
            continue
        acc[0] += 1
        acc[1] += len(ups)
        acc[2] += sum(u.total_fen for u in ups)
        acc[3] += sum(u.drug_fen for u in ups)
        acc[4] += sum(u.total_fen ** 2 for u in ups)
    return tuple(acc)


def run(updates, min_visits):
    rows: dict[int, EntityMonth] = {}
    group = None
    for u in updates:
        e = int(u.entity.id[1:])
        before = rows.get(e)
        after = (before or EntityMonth()).add(u, 3)
        group = group_apply(group, before, after, min_visits)
        rows[e] = after
    return rows, group


@settings(max_examples=200, deadline=None)
@given(shuffled_visits(), st.integers(0, 4), st.integers(1, 4))
def test_incremental_peer_view_equals_brute_force(data, min_visits, min_peers):
    _, updates = data
    rows: dict[int, EntityMonth] = {}
    raw: dict[int, list[Up]] = {}
    group = None
    for u in updates:
        e = int(u.entity.id[1:])
        before = rows.get(e)
        after = (before or EntityMonth()).add(u, 3)
        group = group_apply(group, before, after, min_visits)
        rows[e] = after
        raw.setdefault(e, []).append(u)
        g = brute(raw, min_visits)
        assert (group.entities, group.visits, group.total_fen, group.drug_fen,
                group.sum_sq_total_fen2) == g
        view = peer_view(group, after, min_peers)
        others = brute(raw, min_visits, exclude=e)
        if others[0] < min_peers:
            assert view is None
            continue
        assert (view.peer_entities, view.visits, view.total_fen, view.drug_fen,
                view.sum_sq_total_fen2) == others
        expect_cost = Fraction(others[2], others[1]) if others[1] else None
        expect_drug = Fraction(others[3], others[2]) if others[2] else None
        assert view.cost_per_visit_fen == expect_cost
        assert view.drug_ratio == expect_drug


@settings(max_examples=150, deadline=None)
@given(shuffled_visits(), st.randoms(use_true_random=False), st.integers(0, 4))
def test_final_rows_do_not_depend_on_update_order(data, rnd, min_visits):
    _, updates = data
    other = list(updates)
    rnd.shuffle(other)
    rows_a, group_a = run(updates, min_visits)
    rows_b, group_b = run(other, min_visits)
    assert rows_a == rows_b
    assert group_a == group_b


def _json(d):
    return json.loads(json.dumps(d, allow_nan=False))


@settings(max_examples=150, deadline=None)
@given(shuffled_visits(), st.integers(0, 4))
def test_rows_round_trip_through_json(data, min_visits):
    _, updates = data
    rows, group = run(updates, min_visits)
    for row in rows.values():
        assert EntityMonth.from_dict(_json(row.to_dict())) == row
    if group is not None:
        assert GroupMonth.from_dict(_json(group.to_dict())) == group


finite = st.floats(0, 1e9, allow_nan=False)
evidence = st.builds(
    Evidence, st.text(max_size=30), st.integers(0, 2**53), finite, finite, finite,
    st.integers(0, 10**6), st.integers(0, 1000), st.integers(0, 36),
    st.one_of(st.none(), st.floats(0, 1)), st.lists(st.text(max_size=64), max_size=5).map(tuple))
level = st.one_of(
    st.just(LevelState()),
    st.builds(LevelState, st.just("firing"), evidence),
    st.builds(LevelState, st.just("resolved"), evidence, st.text(max_size=30),
              st.sampled_from(["hysteresis", "superseded"])))


@given(st.builds(CardState, level, level, st.booleans()))
def test_card_state_round_trips_through_json(state):
    assert CardState.from_dict(_json(state.to_dict())) == state


# ---- whole-pipeline determinism --------------------------------------------------------------

MONTHS = ("2025-09", "2025-10", "2025-11")


def pipeline(updates, params, restart_every: int | None = None):
    """Entity rows → group → peer view → both cards, like the Faust agent (one group).

    With ``restart_every``, every table is serialised to JSON and read back that often,
    as a worker restarted from its changelog would.
    """
    rows, groups, cards = {}, {}, {}
    out = []
    for k, u in enumerate(updates):
        key = (u.entity.key, u.month)
        before = rows.get(key)
        after = (before or EntityMonth()).add(u, params.sample_settlements)
        group = group_apply(groups.get(u.month), before, after, params.min_visits["hospital"])
        rows[key], groups[u.month] = after, group
        view = peer_view(group, after, params.min_peers)
        for rule in RULES:
            prev = months_back(u.month, params.consecutive_months - 1)
            held = tuple(cards[(key[0], rule, m)].held if (key[0], rule, m) in cards else False
                         for m in prev)
            snapshot = copy.deepcopy((after.to_dict(), group.to_dict()))
            state, changes = card_step(params, cards.get((key[0], rule, u.month)), rule, after,
                                       view, held, u)
            assert snapshot == (after.to_dict(), group.to_dict())  # inputs not mutated
            cards[(key[0], rule, u.month)] = state
            out += [(u.settlement_id, key, c) for c in changes]
        if restart_every and k % restart_every == 0:
            rows = {kk: EntityMonth.from_dict(_json(v.to_dict())) for kk, v in rows.items()}
            groups = {kk: GroupMonth.from_dict(_json(v.to_dict())) for kk, v in groups.items()}
            cards = {kk: CardState.from_dict(_json(v.to_dict())) for kk, v in cards.items()}
    return out


@st.composite
def month_stream(draw):
    """Visits of 3–5 hospitals over three months, one of them often expensive."""
    n = draw(st.integers(3, 5))
    ups = []
    for m, month in enumerate(MONTHS):
        for k in range(draw(st.integers(0, 25))):
            e = draw(st.integers(0, n - 1))
            base = draw(st.integers(8_000, 12_000))
            total = base * 2 if e == 0 and draw(st.booleans()) else base
            drug = draw(st.integers(0, total))
            ups.append(Up(f"S{m}-{k:03d}", total, drug, 0, ref(e), month=month))
    return ups


@settings(max_examples=100, deadline=None)
@given(month_stream(), st.integers(1, 7))
def test_same_input_same_cards_across_restarts(updates, every):
    params = Params()
    plain = pipeline(updates, params)
    assert pipeline(updates, params) == plain
    assert pipeline(updates, params, restart_every=every) == plain
    for status in ("firing", "resolved"):  # each card level fires / resolves at most once
        keyed = [(c.rule, c.level, key) for _, key, c in plain if c.status == status]
        assert len(keyed) == len(set(keyed))
    red_fired = set()
    for _, key, c in plain:  # red inhibits yellow: no yellow fires after red in that card
        if c.status == "firing":
            assert c.evidence.ratio > 1.2
            if c.level == "red":
                red_fired.add((c.rule, key))
            else:
                assert (c.rule, key) not in red_fired
