"""Invariants of the claim-rule state (SPEC §7, §9): round trips, redelivery, bounded size."""

import dataclasses
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.claims import (
    PatientHistory,
    TraceCodeState,
    evaluate_patient,
    evaluate_trace,
    patient_step,
    trace_codes,
    trace_step,
)
from factories import HOUR_MS, T0_MS, bed, drug, exam, make_settlement, service, treatment
from service.rules_io import default_ruleset_from_data

RS = default_ruleset_from_data()
SMALL = dataclasses.replace(
    RS, patient_history=dataclasses.replace(RS.patient_history, retention_days=20, max_entries=8))

CODES = {"exam": ["220201001", "250101001", "250601001"], "service": ["110200003"],
         "treatment": ["120400001"], "bed": ["111000001"],
         "drug": ["XJ01MAL012A001", "XA10BAA002A001"]}
MAKERS = {"exam": exam, "service": service, "treatment": treatment, "bed": bed}


@st.composite
def items(draw):
    out = []
    for _ in range(draw(st.integers(1, 5))):
        cat = draw(st.sampled_from(sorted(CODES)))
        code = draw(st.sampled_from(CODES[cat]))
        qty = draw(st.integers(1, 5))
        if cat == "drug":
            codes = draw(st.lists(st.sampled_from([f"T{i}" for i in range(12)]), max_size=3))
            out.append(drug(code, quantity=qty, days_supply=draw(st.none() | st.integers(1, 40)),
                            trace_codes=codes))
        else:
            out.append(MAKERS[cat](code, quantity=qty,
                                   unit_price_fen=draw(st.integers(0, 20000))))
    return out


@st.composite
def settlements(draw, n_max=40):
    n = draw(st.integers(1, n_max))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(["outpatient", "inpatient", "pharmacy"]))
        inst = draw(st.sampled_from(["P0001", "P0002"] if kind == "pharmacy"
                                    else ["H0001", "H0002"]))
        out.append(make_settlement(
            kind=kind, settlement_id=f"S{i:03d}", institution_id=inst,
            at=T0_MS + draw(st.integers(-30 * 24, 30 * 24)) * HOUR_MS
            + draw(st.integers(0, 59)) * 60_000,
            region=draw(st.sampled_from(["610302", "610303"])),
            gender=draw(st.sampled_from("MF")), age=draw(st.integers(0, 90)),
            diagnoses=draw(st.lists(st.sampled_from(["I10", "J06.9", "E11.9"]),
                                    min_size=kind != "pharmacy", max_size=2)),
            stay_hours=draw(st.integers(1, 30 * 24)), items=draw(items())))
    return out


def fold(rs, seq):
    h, hits = PatientHistory(), []
    for s in seq:
        h, out = patient_step(rs, h, s)
        hits.append(out)
    return h, hits


@settings(max_examples=100, deadline=None)
@given(settlements())
def test_history_round_trips_through_json(seq):
    h, _ = fold(RS, seq)
    assert PatientHistory.from_dict(h.to_dict()) == h
    assert PatientHistory.from_dict(json.loads(json.dumps(h.to_dict()))) == h


@settings(max_examples=100, deadline=None)
@given(settlements(), st.data())
def test_redelivery_is_idempotent(seq, data):
    h, hits = fold(RS, seq)
    i = data.draw(st.integers(0, len(seq) - 1))
    again, again_hits = patient_step(RS, h, seq[i])
    if h.find(seq[i].settlement_id) is not None:    # still within retention
        assert again == h and again_hits == hits[i]
    last, last_hits = patient_step(RS, h, seq[-1])   # immediate redelivery of the last one
    if h.find(seq[-1].settlement_id) is not None:
        assert last == h and last_hits == hits[-1]


@settings(max_examples=100, deadline=None)
@given(settlements())
def test_evaluate_equals_step_and_leaves_state_alone(seq):
    h = PatientHistory()
    for s in seq:
        before = h.to_dict()
        checked = evaluate_patient(RS, h, s)
        assert h.to_dict() == before
        h, hits = patient_step(RS, h, s)
        assert checked == hits


@settings(max_examples=30, deadline=None)
@given(settlements(n_max=300))
def test_history_size_stays_bounded(seq):
    h = PatientHistory()
    keep = SMALL.patient_history
    for s in seq:
        h, _ = patient_step(SMALL, h, s)
        assert len(h.entries) <= keep.max_entries
        assert all(e.settled_at_ms >= h.newest_ms - keep.retention_ms for e in h.entries)
        keys = [(e.settled_at_ms, e.settlement_id) for e in h.entries]
        assert keys == sorted(keys)


@settings(max_examples=100, deadline=None)
@given(settlements(), st.data())
def test_trace_step_is_idempotent_and_round_trips(seq, data):
    params = RS.claims.trace_code_reuse
    table: dict[str, TraceCodeState] = {}
    results = []
    for s in seq:
        states = {c: table.get(c) for c in trace_codes(s)}
        new, hit = trace_step(params, states, s)
        assert evaluate_trace(params, states, s) == hit
        assert set(new) == set(trace_codes(s))
        table.update(new)
        results.append(hit)
    for code, state in table.items():
        assert TraceCodeState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    # Redeliver any one settlement: no claim expires within the generated 60 days, so the
    # first claimer of each code is fixed and the same hit comes back.
    i = data.draw(st.integers(0, len(seq) - 1))
    s = seq[i]
    states = {c: table.get(c) for c in trace_codes(s)}
    new, hit = trace_step(params, states, s)
    assert {**table, **new} == table
    assert hit == results[i]
