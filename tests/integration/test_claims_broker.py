"""Interception on a real worker and the embedded broker (SPEC §7, §8, §9).

Handcrafted settlements → decisions with the expected hits (trace code reused across two
patients, codes spread over several partitions) and claim alerts valid against the schema;
``POST /v1/check`` changes nothing; ``PUT /v1/rules`` changes a threshold and the version
and the decisions follow, without a restart; an invalid rule set is refused; a restarted
worker comes back with the published rule set and its claim state.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from factories import DAY_MS, T0_MS, drug, exam, make_event, service
from jsonschema import Draft202012Validator
from support.claims_http import (
    base,
    check,
    decisions_for,
    http,
    metric,
    publish,
    publish_raw,
    start_worker,
    wait_until,
)
from support.cluster import create_all_topics, read_topic, unique_settings

from service.claim_log import claims_from_records, record_partition
from service.claims_state import TRACE_TABLE, partition_for
from service.rules_io import DEFAULT_RULES_PATH

pytestmark = pytest.mark.broker

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/toml"}
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
N = 4


def schema(name: str) -> Draft202012Validator:
    doc = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(doc, format_checker=Draft202012Validator.FORMAT_CHECKER)


def codes(prefix: str, partitions: list[int]) -> list[str]:
    """One code per wanted partition."""
    found: dict[int, str] = {}
    i = 0
    while not set(partitions) <= set(found):
        found.setdefault(partition_for(f"{prefix}{i:06d}", N), f"{prefix}{i:06d}")
        i += 1
    return [found[q] for q in partitions]


def sale(sid: str, patient: str, trace: list[str], at: int = T0_MS) -> dict:
    return make_event(kind="pharmacy", settlement_id=sid, patient_id=patient, at=at,
                      items=[drug(quantity=len(trace), trace_codes=trace)])


def rules(version: str, outpatient_days: int) -> bytes:
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    return (text.replace('version = "1"', f'version = "{version}"')
            .replace("outpatient_days = 7", f"outpatient_days = {outpatient_days}").encode())


def hits(decision: dict) -> list[tuple[str, str]]:
    return [(h["rule"], h["action"]) for h in decision["hits"]]


def test_decisions_check_and_hot_reload(embedded_broker, tmp_path):
    settings = unique_settings(embedded_broker.url, partitions=N)
    create_all_topics(settings)
    env = {"FUND_SENTINEL_API_TOKEN": TOKEN, "FUND_SENTINEL_PRUNE_INTERVAL_S": "2"}
    worker = start_worker(settings, tmp_path / "w1", env)
    try:
        _scenario(settings, worker, tmp_path, env)
    except BaseException:
        print(worker.log_tail(120))
        raise
    finally:
        worker.stop()


def _records(settings, topic: str) -> tuple[dict[str, dict], list[tuple[int, str]]]:
    """The changelog's final records (key → value) and its tombstones (partition, key)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=3000)
    records: dict[str, dict] = {}
    tombstones = []
    try:
        for m in consumer:
            key = orjson.loads(m.key)
            if m.value is None:
                tombstones.append((m.partition, key))
                records.pop(key, None)
            else:
                records[key] = orjson.loads(m.value)
        return records, tombstones
    finally:
        consumer.close()


def _scenario(settings, worker, tmp_path, env):
    url = base(worker)
    t = codes("83912005", [0, 1, 2, 3])
    first = [
        sale("A", "p-a", t[:3]),                                        # three partitions
        make_event(settlement_id="D", patient_id="p-d", gender="F",     # male-only exam
                   items=[service(), exam("250601001")]),
        make_event(settlement_id="E", patient_id="p-e",                 # 10 days > 7
                   items=[service(), drug(days_supply=10)]),
        make_event(settlement_id="V1", patient_id="p-c", items=[service(), exam()]),
    ]
    publish(settings, first)
    got = decisions_for(settings, {"A", "D", "E", "V1"})
    second = [
        sale("B", "p-b", [t[3], t[1]], at=T0_MS + DAY_MS),              # reuses A's code
        make_event(settlement_id="V2", patient_id="p-c", at=T0_MS + 3_600_000,
                   items=[exam()]),                                     # same exam, same day
    ]
    publish(settings, second)
    got.update(decisions_for(settings, {"B", "V2"}))
    decision = schema("decision")
    for d in got.values():
        assert not list(decision.iter_errors(d)) and d["rules_version"] == "1"
    assert {k: hits(d) for k, d in got.items()} == {
        "A": [], "V1": [],
        "D": [("claim.gender_restricted", "block")],
        "E": [("claim.over_quantity", "warn")],
        "B": [("claim.trace_code_reuse", "block")],
        "V2": [("claim.duplicate_item", "warn")],
    }
    assert got["B"]["hits"][0]["items"] == [t[1]] and got["B"]["hits"][0]["related"] == ["A"]
    assert [got[k]["decision"] for k in "ABDE"] == ["pass", "block", "block", "warn"]

    alerts = read_topic(settings, settings.topics.alerts, lambda vs: len(vs) >= 4, 30)
    alert = schema("alert")
    assert sorted((a["rule"], a["level"], a["entity"]["id"]) for a in alerts) == [
        ("claim.duplicate_item", "yellow", "p-c"), ("claim.gender_restricted", "red", "p-d"),
        ("claim.over_quantity", "yellow", "p-e"), ("claim.trace_code_reuse", "red", "p-b")]
    for a in alerts:
        assert not list(alert.iter_errors(a)) and a["rules_version"] == "1"
        assert a["period"] == ("2025-11-19" if a["entity"]["id"] == "p-b" else "2025-11-18")

    # ---- POST /v1/check: same answer twice, no trace left -------------------------------
    x = sale("X", "p-x", ["CHECK-ONLY-1"])
    y = sale("Y", "p-y", ["CHECK-ONLY-1"], at=T0_MS + DAY_MS)
    assert check(worker, x) == check(worker, x) == (200, {
        "settlement_id": "X", "decision": "pass", "rules_version": "1", "hits": []})
    assert check(worker, y)[1]["decision"] == "pass"            # X was only checked
    status, reuse = check(worker, sale("Z", "p-z", [t[0]]))
    assert status == 200 and hits(reuse) == [("claim.trace_code_reuse", "block")]
    assert check(worker, sale("B", "p-b", [t[3], t[1]], at=T0_MS + DAY_MS))[1] == got["B"]
    dup = make_event(settlement_id="V3", patient_id="p-c", at=T0_MS + 7_200_000,
                     items=[exam()])
    assert hits(check(worker, dup)[1]) == [("claim.duplicate_item", "warn")]
    bad = dict(make_event(settlement_id="BAD"), total_amount=-1)
    status, body = http("POST", url + "/v1/check", bad)
    assert status == 400 and body["reason"] == "schema"
    assert any(e.startswith("total_amount") for e in body["errors"])
    assert http("POST", url + "/v1/check", b"{nope")[1]["reason"] == "not_json"
    assert http("POST", url + "/v1/check", b" " * 1_100_000)[0] == 413

    # ---- rule set: refused without token or when invalid; published when valid --------
    assert http("GET", url + "/v1/rules")[1]["version"] == "1"
    assert http("PUT", url + "/v1/rules", rules("2", 12),
                {"Content-Type": "application/toml"})[0] == 401
    status, body = http("PUT", url + "/v1/rules", rules("2", -3), AUTH)
    assert status == 400 and any("outpatient_days" in e for e in body["errors"])
    status, body = http("PUT", url + "/v1/rules", rules("2", 12), AUTH)
    assert (status, body["version"]) == (202, "2")
    wait_until(lambda: http("GET", url + "/v1/rules")[1]["version"] == "2", 15,
               "the worker to switch to version 2")
    assert metric(worker, 'fund_sentinel_rules_version_info{version="2"}') == 1.0
    publish(settings, [
        make_event(settlement_id="E2", patient_id="p-e2", items=[drug(days_supply=10)]),
        make_event(settlement_id="E3", patient_id="p-e3", items=[drug(days_supply=14)]),
    ])
    after = decisions_for(settings, {"E2", "E3"})
    assert (after["E2"]["decision"], after["E2"]["rules_version"]) == ("pass", "2")
    assert hits(after["E3"]) == [("claim.over_quantity", "warn")]
    assert after["E3"]["rules_version"] == "2"

    # an invalid document written straight to the topic is refused; version 2 stays
    publish_raw(settings, settings.topics.rules, b"active", b"version = 3\n[bogus]\n")
    wait_until(lambda: metric(worker, 'fund_sentinel_rules_reloads_total{outcome="rejected"}'),
               15, "the invalid document to be refused")
    assert http("GET", url + "/v1/rules")[1]["version"] == "2"
    assert "bogus" in worker.log_tail(200)

    # none of the checked settlements reached the decisions topic
    decided = read_topic(settings, settings.topics.decisions, lambda vs: False, 3)
    assert {"X", "Y", "Z", "V3"}.isdisjoint(d["settlement_id"] for d in decided)
    assert len([d for d in decided if d["settlement_id"] == "B"]) == 1

    # ---- restart: the published rule set and the claim state come back ------------------
    worker.stop()
    worker2 = start_worker(settings, tmp_path / "w2", env)
    try:
        wait_until(lambda: http("GET", base(worker2) + "/v1/rules")[1]["version"] == "2", 60,
                   "the restarted worker to read version 2 from the rules topic")
        status, reuse = check(worker2, sale("Z", "p-z", [t[0]]))
        assert hits(reuse) == [("claim.trace_code_reuse", "block")]
        assert hits(check(worker2, dup)[1]) == [("claim.duplicate_item", "warn")]

        # ---- retention: codes older than 400 days (event time) are deleted ---------------
        late = T0_MS + 402 * DAY_MS
        publish(settings, [sale("FUT", "p-fut", codes("FUT", [0, 1, 2, 3]), at=late)])
        decisions_for(settings, {"FUT"})
        wait_until(lambda: metric(worker2, 'fund_sentinel_state_pruned_total{table="trace_codes"}')
                   == 4.0, 20, "the four old trace codes to be pruned")
        status, fresh = check(worker2, sale("Z2", "p-z", [t[0]], at=late))
        assert (status, fresh["decision"]) == (200, "pass")
        # claims live in batch records in their code's partition; once none of a record's
        # claims is live, the record gets a tombstone in its partition (recovery)
        records, tombstones = _records(settings, f"{settings.app_id}-{TRACE_TABLE}-changelog")
        assert all(q == record_partition(key) for q, key in tombstones) and tombstones
        assert not set(t) & set(claims_from_records(records))
        assert all(partition_for(c, N) == record_partition(key)
                   for key, value in records.items() for c in value)
    except BaseException:
        print(worker2.log_tail(120))
        raise
    finally:
        worker2.stop()
