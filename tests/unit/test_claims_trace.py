"""detectors.claims.trace: claim.trace_code_reuse (SPEC §7)."""

import dataclasses

import pytest

from detectors.claims import TraceCodeState, evaluate_trace, trace_codes, trace_step
from detectors.ruleset_sections import TraceCodeReuseParams
from factories import DAY_MS, T0_MS, drug, make_settlement, service

P = TraceCodeReuseParams()


def sale(sid, codes, at=T0_MS, **kw):
    return make_settlement(kind="pharmacy", settlement_id=sid, at=at,
                           items=[drug(quantity=len(codes), trace_codes=codes, **kw)])


def apply(table, s, params=P):
    """Apply one settlement to a dict table of trace-code states, like the shell would."""
    states = {c: table.get(c) for c in trace_codes(s)}
    new, hit = trace_step(params, states, s)
    assert evaluate_trace(params, states, s) == hit
    return {**table, **new}, hit


def state(sid, at=T0_MS):
    return TraceCodeState(sid, at)


@pytest.mark.parametrize(
    "known, codes, items, related",
    [
        ({}, ["T1", "T2"], None, None),                                # fresh codes
        ({"T1": state("A")}, ["T1", "T2"], ("T1",), ("A",)),           # resold box
        ({"T1": state("A"), "T2": state("B")}, ["T2", "T1"], ("T2", "T1"), ("B", "A")),
        ({"T1": state("X")}, ["T1"], None, None),                      # its own claim
        ({}, ["T1", "T1"], ("T1",), ()),                               # twice in one sale
        ({"T1": state("A")}, ["T1", "T1"], ("T1",), ("A",)),
        ({"T1": state("A", T0_MS - 400 * DAY_MS)}, ["T1"], ("T1",), ("A",)),  # at retention
        ({"T1": state("A", T0_MS - 400 * DAY_MS - 1)}, ["T1"], None, None),   # expired
        ({"T1": state("A", T0_MS + DAY_MS)}, ["T1"], ("T1",), ("A",)),  # claimed later in time
    ],
)
def test_trace_code_reuse(known, codes, items, related):
    s = sale("X", codes)
    table, hit = apply(dict(known), s)
    assert (hit.items if hit else None) == items
    assert (hit.related if hit else None) == related
    if hit:
        assert hit.rule == "claim.trace_code_reuse" and hit.action == "block"
    for code in codes:   # a live earlier claim is kept; otherwise this settlement owns the code
        k = known.get(code)
        live = k is not None and k.settled_at_ms >= T0_MS - P.retention_ms
        assert table[code] == (k if live else state("X"))


def test_redelivery_gives_the_same_states_and_hit():
    table, _ = apply({}, sale("A", ["T1", "T2"]))
    s = sale("B", ["T2", "T3"])
    table1, hit1 = apply(table, s)
    table2, hit2 = apply(table1, s)
    assert table2 == table1 and hit2 == hit1
    assert hit1.items == ("T2",) and hit1.related == ("A",)
    assert table1["T3"] == state("B") and table1["T2"] == state("A")
    again, none = apply(table1, sale("A", ["T1", "T2"]))   # the first sale redelivered
    assert none is None and again == table1


def test_disabled_rule_records_states_without_hits():
    off = dataclasses.replace(P, enabled=False)
    table, hit = apply({}, sale("A", ["T1"]), off)
    table, hit = apply(table, sale("B", ["T1"]), off)
    assert hit is None and table["T1"] == state("A")
    _, hit = apply(table, sale("C", ["T1"]))
    assert hit.related == ("A",)


def test_settlement_without_trace_codes():
    s = make_settlement(items=[service()])
    assert trace_step(P, {}, s) == ({}, None)


def test_state_round_trip():
    st = state("A", 123)
    assert TraceCodeState.from_dict(st.to_dict()) == st
