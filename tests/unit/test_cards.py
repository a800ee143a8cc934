"""detectors.cards: the peer-comparison card state machine (SPEC §5, §11)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from detectors.cards import CardState, Evidence, LevelState, card_step
from detectors.entities import EntityRef
from detectors.peer_stats import EntityMonth, group_apply, peer_view

COST, DRUG = "peer.cost_per_visit", "peer.drug_ratio"


@dataclass(frozen=True)
class Params:
    """Structural stand-in for detectors.ruleset.PeerParams with the SPEC defaults."""

    threshold: float = 1.20
    consecutive_months: int = 3
    hysteresis: float = 0.05
    min_peers: int = 3
    sample_settlements: int = 5
    min_visits: dict = field(default_factory=lambda: {
        "hospital": 30, "department": 20, "doctor": 10, "pharmacy": 30})
    keys: dict = field(default_factory=dict)
    enabled_rules: frozenset = frozenset({COST, DRUG})


@dataclass(frozen=True)
class Up:
    settlement_id: str
    total_fen: int
    drug_fen: int
    fund_fen: int = 0


@dataclass(frozen=True)
class Event:
    entity: EntityRef
    settled_at: str = "2025-11-18T10:02:11+08:00"
    settled_at_ms: int = 1763431331000


HOSPITAL = Event(EntityRef("hospital", "H0007", "H0007", "610302"))


def entity(visits: int, cost_fen: int, drug_fen: int = 0) -> EntityMonth:
    m = EntityMonth()
    for i in range(visits):
        m = m.add(Up(f"S{i:03d}", cost_fen, drug_fen))
    return m


def peers(n: int = 3, cost_fen: int = 10_000, drug_fen: int = 3_000):
    """A peer view of ``n`` qualifying peers at 100 yuan per visit, drug ratio 0.3."""
    me = EntityMonth()
    g = group_apply(None, None, me, 30)
    for i in range(n):
        row = EntityMonth()
        for j in range(30):
            row = row.add(Up(f"P{i}-{j}", cost_fen + cost_fen // 100 * (j % 3 - 1), drug_fen))
        g = group_apply(g, None, row, 30)
    return peer_view(g, me, min_peers=3)


EV = Evidence("2025-11-02T09:00:00+08:00", 0, 130.0, 100.0, 1.3, 30, 3, 1, None, ("S000",))
FIRING = LevelState("firing", EV)
RESOLVED = LevelState("resolved", EV, "2025-11-03T09:00:00+08:00", "hysteresis")
Y_FIRING = CardState(yellow=FIRING, held=True)
Y_RESOLVED = CardState(yellow=RESOLVED)
R_FIRING = CardState(red=FIRING, held=True)
R_RESOLVED = CardState(red=RESOLVED)

# case, rule, state, entity month, peer view, held_previous, expected changes, final (y, r, held)
CASES = [
    ("below min visits: no card", COST, None, entity(29, 20_000), peers(), (),
     [], ("none", "none", False)),
    ("exactly at threshold: no card", COST, None, entity(30, 12_000), peers(), (),
     [], ("none", "none", False)),
    ("above threshold fires yellow", COST, None, entity(30, 12_001), peers(), (),
     [("yellow", "firing", "threshold")], ("firing", "none", True)),
    ("min_peers not met: no peer view, no card", COST, None, entity(30, 50_000), peers(2), (),
     [], ("none", "none", False)),
    ("red after 3 held months (red inhibits yellow)", COST, None, entity(30, 13_000), peers(),
     (True, True), [("red", "firing", "consecutive")], ("none", "firing", True)),
    ("2 held + this, gap last month: yellow only", COST, None, entity(30, 13_000), peers(),
     (False, True), [("yellow", "firing", "threshold")], ("firing", "none", True)),
    ("2 held + this, gap 2 months ago: yellow only", COST, None, entity(30, 13_000), peers(),
     (True, False), [("yellow", "firing", "threshold")], ("firing", "none", True)),
    ("missing previous months count as not held", COST, None, entity(30, 13_000), peers(),
     (True,), [("yellow", "firing", "threshold")], ("firing", "none", True)),
    ("red supersedes yellow: yellow resolved", COST, Y_FIRING, entity(30, 13_000), peers(),
     (True, True), [("red", "firing", "consecutive"), ("yellow", "resolved", "superseded")],
     ("resolved", "firing", True)),
    ("hysteresis: ratio 1.17 keeps firing", COST, Y_FIRING, entity(30, 11_700), peers(), (),
     [], ("firing", "none", False)),
    ("hysteresis: ratio exactly 1.15 keeps firing", COST, Y_FIRING, entity(30, 11_500), peers(),
     (), [], ("firing", "none", False)),
    ("hysteresis: ratio 1.14 resolves", COST, Y_FIRING, entity(30, 11_400), peers(), (),
     [("yellow", "resolved", "hysteresis")], ("resolved", "none", False)),
    ("hysteresis resolves red", COST, R_FIRING, entity(30, 11_400), peers(), (True, True),
     [("red", "resolved", "hysteresis")], ("none", "resolved", False)),
    ("firing yellow does not fire again", COST, Y_FIRING, entity(30, 13_000), peers(), (),
     [], ("firing", "none", True)),
    ("resolved yellow does not fire again this month", COST, Y_RESOLVED, entity(30, 13_000),
     peers(), (), [], ("resolved", "none", True)),
    ("resolved red does not fire again, and inhibits yellow", COST, R_RESOLVED,
     entity(30, 13_000), peers(), (True, True), [], ("none", "resolved", True)),
    ("no peer view keeps a firing card as it is", COST, Y_FIRING, entity(30, 11_000), None, (),
     [], ("firing", "none", False)),
    ("drug ratio above threshold fires yellow", DRUG, None, entity(30, 10_000, 3_700), peers(),
     (), [("yellow", "firing", "threshold")], ("firing", "none", True)),
    ("drug ratio exactly at threshold: no card", DRUG, None, entity(30, 10_000, 3_600), peers(),
     (), [], ("none", "none", False)),
    ("zero-total month: no drug ratio, no crash", DRUG, None, entity(30, 0, 0), peers(), (),
     [], ("none", "none", False)),
    ("peers with zero drug: no ratio, no card", DRUG, None, entity(30, 10_000, 5_000),
     peers(drug_fen=0), (), [], ("none", "none", False)),
    ("peer mean cost 0: no ratio, no card", COST, None, entity(30, 100),
     peers(cost_fen=0, drug_fen=0),
     (), [], ("none", "none", False)),
]


@pytest.mark.parametrize(
    ("case", "rule", "state", "month", "view", "held_previous", "expected", "final"),
    CASES, ids=[c[0] for c in CASES],
)
def test_card_step(case, rule, state, month, view, held_previous, expected, final):
    new, changes = card_step(Params(), state, rule, month, view, held_previous, HOSPITAL)
    assert [(c.level, c.status, c.reason) for c in changes] == expected
    assert (new.yellow.status, new.red.status, new.held) == final
    assert CardState.from_dict(new.to_dict()) == new


def test_disabled_rule_produces_nothing():
    params = Params(enabled_rules=frozenset({DRUG}))
    new, changes = card_step(params, Y_FIRING, COST, entity(30, 11_000), peers(), (), HOSPITAL)
    assert changes == () and new == Y_FIRING


def test_min_visits_depend_on_entity_kind():
    doctor = Event(EntityRef("doctor", "D1042", "H0007", "610302"))
    _, changes = card_step(Params(), None, COST, entity(10, 13_000), peers(), (), doctor)
    assert [c.level for c in changes] == ["yellow"]
    _, changes = card_step(Params(), None, COST, entity(10, 13_000), peers(), (), HOSPITAL)
    assert changes == ()


def test_fired_change_carries_the_evidence():
    month = entity(30, 13_000)
    _, (change,) = card_step(Params(), None, COST, month, peers(), (True,), HOSPITAL)
    ev = change.evidence
    assert (change.rule, change.level, change.threshold) == (COST, "yellow", 1.2)
    assert ev.observed == 130.0 and ev.peer_mean == 100.0 and ev.ratio == pytest.approx(1.3)
    assert (ev.n, ev.peer_entities, ev.consecutive_months) == (30, 3, 2)
    assert ev.settlement_ids == month.sample_ids == ("S000", "S001", "S002", "S003", "S004")
    assert ev.event_time == HOSPITAL.settled_at and ev.event_time_ms == HOSPITAL.settled_at_ms
    assert ev.p_value is not None and ev.p_value < 1e-6


def test_held_reflects_the_last_update_of_the_month():
    state, _ = card_step(Params(), None, COST, entity(30, 13_000), peers(), (), HOSPITAL)
    assert state.held is True
    state, changes = card_step(Params(), state, COST, entity(31, 11_800), peers(), (), HOSPITAL)
    assert state.held is False and changes == ()  # 1.18: not held, not resolved either


def test_three_month_story_yellow_yellow_red():
    """Month 1 and 2 fire yellow; month 3 fires red once min_visits is reached."""
    history: list[bool] = []
    seen = []
    for month_no in range(3):
        state = None
        for visits in (5, 29, 30, 31):
            state, changes = card_step(Params(), state, COST, entity(visits, 13_000), peers(),
                                       tuple(reversed(history)), HOSPITAL)
            seen += [(month_no, c.level, c.status, c.evidence.consecutive_months) for c in changes]
        history.append(state.held)
    assert seen == [(0, "yellow", "firing", 1), (1, "yellow", "firing", 2),
                    (2, "red", "firing", 3)]


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError):
        card_step(Params(), None, "peer.nope", entity(30, 1), peers(), (), HOSPITAL)
