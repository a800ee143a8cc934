"""Validation never raises on input (SPEC §9): arbitrary bytes, arbitrary JSON-ish values,
and valid settlements with one part replaced by anything.

``parse_settlement`` / ``settlement_from_dict`` always return a settlement or a
``Rejection`` with a known reason and 1–20 string errors that never echo the patient id;
the DLQ record of a rejection is JSON; and everything validation accepts can be processed
by the stages behind it (entity updates, fund updates, claim rules) without raising — an
accepted settlement the intake cannot process would crash the worker's agent.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.claims import PatientHistory, evaluate_patient, evaluate_trace
from detectors.domain import Settlement
from detectors.entities import entity_updates
from detectors.fund.scopes import fund_updates
from factories import make_event
from service.rules_io import default_ruleset_from_data
from service.validation import (
    REASONS,
    Rejection,
    parse_settlement,
    settlement_from_dict,
)

RS = default_ruleset_from_data()
PATIENT_ID = "p-5ec2e7a1"
EVENTS = [make_event(kind=k, patient_id=PATIENT_ID, settlement_id=f"S-{k}")
          for k in ("outpatient", "inpatient", "pharmacy")]
FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats()
                | st.text(max_size=30) | st.sampled_from(["", PATIENT_ID, "2025-11-18T10:00:00Z",
                                                          "outpatient", "drug", "hospital"]))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=20)


def assert_outcome(result: Any, patient_id_elsewhere: bool = False) -> None:
    """``patient_id_elsewhere``: the test put the patient id's text into a field outside
    ``patient``, whose values may be echoed."""
    if isinstance(result, Rejection):
        assert result.reason in REASONS and result.reason != "duplicate"
        assert 1 <= len(result.errors) <= 20
        assert all(isinstance(e, str) and e for e in result.errors)
        if not patient_id_elsewhere:
            assert not any(PATIENT_ID in e for e in result.errors), result.errors
        orjson.dumps(result.to_dlq(b"\xff raw", {"topic": "t", "partition": 0, "offset": 1}))
        return
    settlement = result[0] if isinstance(result, tuple) else result
    assert isinstance(settlement, Settlement)
    processable(settlement)


def processable(s: Settlement) -> None:
    """What the intake and the claims stage do with an accepted settlement."""
    tz = RS.tz_for(s.region)
    list(entity_updates(s, RS.peer, tz))
    fund_updates(s, tz)
    evaluate_patient(RS, PatientHistory(), s)
    evaluate_trace(RS.claims.trace_code_reuse, {}, s)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, prefix + (i,))
    return out


def replace(doc: Any, path: tuple, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return doc


def delete(doc: Any, path: tuple) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for p in path[:-1]:
        target = target[p]
    del target[path[-1]]
    return doc


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(raw: bytes) -> None:
    assert_outcome(parse_settlement(raw))


@FUZZ
@given(st.text(max_size=500))
def test_arbitrary_text(raw: str) -> None:
    assert_outcome(parse_settlement(raw))  # the claims stage parses str


@FUZZ
@given(json_values)
def test_arbitrary_json_values(value: Any) -> None:
    assert_outcome(settlement_from_dict(value))  # /v1/check path, NaN and big ints included
    try:
        text = orjson.dumps(value)
    except orjson.JSONEncodeError:  # integers over 64 bits
        return
    assert_outcome(parse_settlement(text))


@FUZZ
@given(st.sampled_from(EVENTS), st.data())
def test_one_part_of_a_valid_settlement_replaced(event: dict, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(paths(event)))
    value = data.draw(json_values)
    elsewhere = path[0] != "patient" and PATIENT_ID in repr(value)
    assert_outcome(settlement_from_dict(replace(event, path, value)), elsewhere)
    try:
        assert_outcome(parse_settlement(orjson.dumps(replace(event, path, value))), elsewhere)
    except orjson.JSONEncodeError:
        pass


@FUZZ
@given(st.sampled_from(EVENTS), st.data())
def test_one_part_of_a_valid_settlement_deleted(event: dict, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(paths(event)))
    assert_outcome(parse_settlement(orjson.dumps(delete(event, path))))


@FUZZ
@given(st.sampled_from(EVENTS), st.data())
def test_valid_text_cut_or_corrupted(event: dict, data: st.DataObject) -> None:
    text = orjson.dumps(event)
    at = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.binary(max_size=8))
    assert_outcome(parse_settlement(text[:at] + junk + text[at + data.draw(st.integers(0, 3)):]))
    assert_outcome(parse_settlement(text[:at]))


offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timedelta(minutes=m))
instants = (
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                 timezones=offsets.map(timezone))
    # where local dates leave years 1-9999 once moved to a region's zone
    | st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 2, 23),
                   timezones=offsets.map(timezone))
    | st.datetimes(min_value=datetime(9999, 12, 30, 1), max_value=datetime(9999, 12, 31, 23),
                   timezones=offsets.map(timezone))
    # the edges of the accepted range
    | st.datetimes(min_value=datetime(1969, 12, 30), max_value=datetime(1970, 1, 2),
                   timezones=offsets.map(timezone))
    | st.datetimes(min_value=datetime(2099, 12, 30), max_value=datetime(2100, 1, 2),
                   timezones=offsets.map(timezone)))


def rfc3339(at: datetime, style: int) -> str:
    text = at.isoformat(timespec=("seconds", "milliseconds", "microseconds")[style % 3])
    return text.replace("+00:00", "Z") if style >= 3 else text


@FUZZ
@given(st.sampled_from(EVENTS), instants, st.integers(0, 5),
       st.sampled_from(["settled_at", "admitted_at", "discharged_at"]))
def test_any_instant_with_any_offset(event: dict, at: datetime, style: int, field: str) -> None:
    """Every instant of years 1–9999 with any offset: refused, or accepted and processable
    (the intake crashed on accepted instants whose local date left years 1–9999)."""
    doc = copy.deepcopy(event)
    (doc if field == "settled_at" else doc["visit"])[field] = rfc3339(at, style)
    assert_outcome(parse_settlement(orjson.dumps(doc)))


@FUZZ
@given(st.sampled_from(EVENTS), st.sampled_from(["total_amount", "fund_amount"]),
       st.floats(allow_nan=False) | st.integers(-(2**63), 2**63 - 1))
def test_any_money_value(event: dict, field: str, value: float | int) -> None:
    assert_outcome(parse_settlement(orjson.dumps({**event, field: value})))
