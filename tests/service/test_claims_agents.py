"""service.claims_stage / trace_stage / claims_state driven directly, no broker (SPEC §7, §9).

The stage's tables are plain dicts and its sends are captured; :func:`settle` plays the
role of Kafka: the patient hop runs in the patient's partition, each trace hop in the
partition it was sent to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from pathlib import Path

import orjson
import pytest
from factories import DAY_MS, T0_MS, drug, exam, make_settlement, service, to_event
from jsonschema import Draft202012Validator
from prometheus_client import CollectorRegistry

from detectors.alert_identity import alert_id
from detectors.claims import PatientHistory
from service import metrics
from service.claims_stage import ClaimsStage
from service.claim_log import record_partition
from service.claims_state import TRACE_TABLE, check_hits, distinct_codes, partition_for
from service.rules_feed import apply_document, load_document
from service.rules_io import DEFAULT_RULES_PATH, default_ruleset_from_data
from service.runtime import Runtime
from service.settings import Settings

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
N = 4


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


DECISION, ALERT = validator("decision"), validator("alert")


def sync(test):
    """Run an ``async def`` test on a fresh event loop (no pytest-asyncio here)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


class Captured:
    def __init__(self) -> None:
        self.hops: list[tuple[int, bytes]] = []
        self.decisions: list[dict] = []
        self.alerts: list[dict] = []

    async def trace(self, partition: int, key: bytes, value: bytes) -> None:
        self.hops.append((partition, value))

    async def decision(self, key: bytes, value: bytes) -> None:
        record = orjson.loads(value)
        assert key.decode() == record["settlement_id"]
        self.decisions.append(record)

    async def alert(self, key: bytes, value: bytes) -> None:
        record = orjson.loads(value)
        assert key.decode() == record["alert_id"]
        self.alerts.append(record)


class WriteLog(dict):
    """A dict table that records in which partition each key was written."""

    def __init__(self) -> None:
        super().__init__()
        self.partition: int | None = None
        self.writes: list[tuple[int | None, str]] = []

    def __setitem__(self, key, value) -> None:
        self.writes.append((self.partition, key))
        super().__setitem__(key, value)


@pytest.fixture
def stage() -> ClaimsStage:
    rt = Runtime(settings=Settings(partitions=N), metrics=metrics.create(CollectorRegistry()),
                 ruleset=default_ruleset_from_data())
    return ClaimsStage(rt, WriteLog(), WriteLog(), Captured())


def message(s, ts_ms: int | None = None) -> bytes:
    return orjson.dumps({"o": [0, 1], "ts": ts_ms, "raw": orjson.dumps(to_event(s)).decode()})


async def settle(stage: ClaimsStage, s) -> dict:
    """Run one settlement through the patient hop and every trace hop; return its decision."""
    out: Captured = stage.out  # type: ignore[assignment]
    before = len(out.decisions)
    q = partition_for(s.patient.id, N)
    stage.histories.partition = q
    await stage.on_patient(message(s), q)
    while out.hops:
        q, value = out.hops.pop(0)
        stage.traces.partition = q
        await stage.on_trace(value, q)
    assert len(out.decisions) == before + 1
    record = out.decisions[-1]
    assert not list(DECISION.iter_errors(record))
    return record


def codes_in_partitions(wanted: list[int], prefix: str = "8391200516373") -> list[str]:
    """One trace code per wanted partition (deterministic search)."""
    found: dict[int, str] = {}
    i = 0
    while not set(wanted) <= set(found):
        code = f"{prefix}{i:07d}"
        found.setdefault(partition_for(code, N), code)
        i += 1
    return [found[q] for q in wanted]


def sale(sid, patient, codes, at=T0_MS, **kw):
    return make_settlement(kind="pharmacy", settlement_id=sid, patient_id=patient, at=at,
                           items=[drug(quantity=len(codes), trace_codes=codes, **kw)])


def test_partition_for_is_the_kafka_default_partitioner():
    """What Faust's producer (aiokafka DefaultPartitioner) picks; the hash checked against
    kafka-python's independent murmur2 and the Java client's reference value."""
    from aiokafka.partitioner import DefaultPartitioner
    from kafka.partitioner.default import murmur2

    assert murmur2(b"21") & 0xFFFFFFFF == -973932308 & 0xFFFFFFFF  # Java Utils.murmur2
    for key in ("p-7f3a91c2", "83912005163732421977", "病人-1", "x" * 40):
        for n in (1, 4, 8, 12):
            ref = DefaultPartitioner()(key.encode(), list(range(n)), list(range(n)))
            assert partition_for(key, n) == ref == (murmur2(key.encode()) & 0x7FFFFFFF) % n


@sync
async def test_clean_settlement_passes_with_the_rules_version(stage):
    s = make_settlement(items=[service(), exam()])
    record = await settle(stage, s)
    assert record == {"settlement_id": s.settlement_id, "decision": "pass",
                      "rules_version": stage.rt.rules_version, "hits": []}
    assert stage.out.alerts == []
    assert PatientHistory.from_dict(stage.histories[s.patient.id]).find(s.settlement_id)


@sync
async def test_trace_code_reuse_across_patients_and_partitions(stage):
    t = codes_in_partitions([0, 1, 2, 3])
    a = sale("A", "p-one", t[:3])
    b = sale("B", "p-two", [t[3], t[1]], at=T0_MS + DAY_MS)
    assert (await settle(stage, a))["decision"] == "pass"
    stage.out.alerts.clear()
    record = await settle(stage, b)
    assert record["decision"] == "block"
    [hit] = record["hits"]
    assert hit["rule"] == "claim.trace_code_reuse" and hit["items"] == [t[1]]
    assert hit["related"] == ["A"]
    for q, code in stage.traces.writes:  # every claim written by its code's owner
        assert q == partition_for(code, N)
    [alert] = stage.out.alerts
    assert not list(ALERT.iter_errors(alert))
    assert alert["level"] == "red" and alert["rule"] == "claim.trace_code_reuse"
    assert alert["entity"] == {"kind": "patient", "id": "p-two", "institution_id": "P0001",
                               "region": "610302"}
    assert alert["period"] == "2025-11-19" and alert["evidence"]["settlement_ids"] == ["B", "A"]
    assert alert["alert_id"] == alert_id("claim.trace_code_reuse", "patient", "p-two|B",
                                         "pharmacy", "2025-11-19", "red")


@sync
async def test_hops_visit_the_owning_partitions_in_order(stage):
    t = codes_in_partitions([3, 1, 3, 2])
    s = sale("S", "p-one", t)
    await stage.on_patient(message(s), partition_for("p-one", N))
    visited = []
    while stage.out.hops:
        q, value = stage.out.hops.pop(0)
        visited.append(q)
        await stage.on_trace(value, q)
    assert visited == [1, 2, 3]
    assert len(stage.out.decisions) == 1


@sync
async def test_repeated_code_within_one_settlement_blocks(stage):
    t = codes_in_partitions([0, 2])
    record = await settle(stage, sale("S", "p-one", [t[0], t[1], t[0]]))
    assert record["decision"] == "block" and record["hits"][0]["items"] == [t[0]]


@sync
async def test_redelivery_re_emits_an_identical_decision_and_changes_nothing(stage):
    t = codes_in_partitions([1, 3])
    await settle(stage, sale("A", "p-one", [t[0]]))
    b = sale("B", "p-two", t, at=T0_MS + DAY_MS)
    first = await settle(stage, b)
    alerts = [dict(a, emitted_at=None) for a in stage.out.alerts]
    tables = (dict(stage.histories), dict(stage.traces))
    writes = (len(stage.histories.writes), len(stage.traces.writes))
    again = await settle(stage, b)
    assert again == first and first["decision"] == "block"
    assert [dict(a, emitted_at=None) for a in stage.out.alerts[len(alerts):]] == alerts[-1:]
    assert (dict(stage.histories), dict(stage.traces)) == tables
    assert (len(stage.histories.writes), len(stage.traces.writes)) == writes


@sync
async def test_patient_rules_and_hit_order(stage):
    first = make_settlement(settlement_id="V1", patient_id="p-one", items=[exam()])
    second = make_settlement(settlement_id="V2", patient_id="p-one", at=T0_MS + 3_600_000,
                             items=[exam(), drug(days_supply=10, trace_codes=["C1"])])
    await settle(stage, first)
    await settle(stage, sale("S0", "p-zero", ["C1"]))
    record = await settle(stage, second)
    assert [h["rule"] for h in record["hits"]] == [
        "claim.trace_code_reuse", "claim.duplicate_item", "claim.over_quantity"]
    assert record["decision"] == "block"
    assert {a["level"] for a in stage.out.alerts[-3:]} == {"red", "yellow"}


@sync
async def test_a_failing_rule_is_counted_and_the_others_still_decide(stage, monkeypatch, caplog):
    import detectors.claims.patient as patient_module

    def broken(*args, **kwargs):
        raise KeyError("p-secret")  # an exception text carrying a patient id

    monkeypatch.setattr(patient_module, "over_quantity", broken)
    await settle(stage, make_settlement(settlement_id="V1", patient_id="p-secret",
                                        items=[exam()]))
    with caplog.at_level(logging.INFO):
        record = await settle(stage, make_settlement(
            settlement_id="V2", patient_id="p-secret", items=[exam(), drug(days_supply=10)]))
    assert [h["rule"] for h in record["hits"]] == ["claim.duplicate_item"]
    errors = stage.rt.metrics.rule_errors
    assert errors.labels(rule="claim.over_quantity")._value.get() == 2
    assert errors.labels(rule="other")._value.get() == 0
    assert "claim.over_quantity" in caplog.text and "p-secret" not in caplog.text
    # the history still recorded the settlement, with the hits it got
    assert PatientHistory.from_dict(stage.histories["p-secret"]).find("V2").hits


@sync
async def test_check_hits_match_the_pipeline_and_change_nothing(stage):
    t = codes_in_partitions([0, 3])
    await settle(stage, make_settlement(settlement_id="V1", patient_id="p-one", items=[exam()]))
    await settle(stage, sale("A", "p-two", [t[0]]))
    probe = make_settlement(settlement_id="Q", patient_id="p-one",
                            items=[exam(), drug(trace_codes=t)])
    tables = (dict(stage.histories), dict(stage.traces))
    rs = stage.rt.ruleset

    def check() -> list[dict]:
        states = stage.states(distinct_codes(probe))
        hits = check_hits(rs, stage.history("p-one"), states, probe, lambda *_: None)
        return [h.to_dict() for h in hits]

    first = check()
    assert check() == first and (dict(stage.histories), dict(stage.traces)) == tables
    assert [h["rule"] for h in first] == ["claim.trace_code_reuse", "claim.duplicate_item"]
    assert first == (await settle(stage, probe))["hits"]
    assert check() == first  # a settled settlement checks as it was decided


@sync
async def test_prune_drops_expired_state_by_event_time(stage):
    old_codes = codes_in_partitions([0, 1], prefix="OLD")
    await settle(stage, sale("OLD", "p-old", old_codes))
    await settle(stage, make_settlement(settlement_id="V", patient_id="p-old"))
    later = T0_MS + 401 * DAY_MS
    new_codes = codes_in_partitions([0, 1], prefix="NEW")
    await settle(stage, sale("NEW", "p-new", new_codes, at=later))
    await settle(stage, make_settlement(settlement_id="V2", patient_id="p-new2", at=later))
    everything = set(range(N))
    counts = stage.prune(active=everything)
    assert set(stage.traces) == set(new_codes)
    assert "p-old" not in stage.histories and "p-new" in stage.histories
    assert counts[TRACE_TABLE] == 2
    assert stage.rt.metrics.state_pruned.labels(table="trace_codes")._value.get() == 2
    assert stage.prune(active=set()) == {"patient-history-v1": 0, TRACE_TABLE: 0}


@sync
async def test_decision_latency_is_observed(stage):
    import time

    s = make_settlement()
    await stage.on_patient(message(s, ts_ms=int(time.time() * 1000) - 50),
                           partition_for(s.patient.id, N))
    hist = stage.rt.metrics.decision_latency_seconds
    assert hist._sum.get() >= 0.05


def test_rule_documents_switch_or_are_refused(stage, caplog):
    rt = stage.rt
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    new = text.replace('version = "1"', 'version = "7"').replace(
        "outpatient_days = 7", "outpatient_days = 12")
    assert apply_document(rt, new.encode(), "rules[0]@0").version == "7"
    assert rt.rules_version == "7" and rt.ruleset.claims.over_quantity.outpatient_days == 12
    assert rt.metrics.rules_version.labels(version="7")._value.get() == 1
    assert "1" not in {s.labels["version"] for s in rt.metrics.rules_version.collect()[0].samples}
    with caplog.at_level(logging.ERROR):
        assert apply_document(rt, new.replace("= 12", "= -1").encode(), "rules[0]@1") is None
    assert rt.rules_version == "7" and "outpatient_days" in caplog.text
    assert rt.metrics.rules_reloads.labels(outcome="rejected")._value.get() == 1
    assert rt.metrics.rules_reloads.labels(outcome="applied")._value.get() == 1
    assert apply_document(rt, None, "tombstone") is None and rt.rules_version == "7"
    with pytest.raises(Exception, match="relative"):
        load_document(new.replace('"catalogue.toml"', '"../../etc/passwd"'), rt.settings)


def test_claim_alert_level_follows_the_action(stage):
    from detectors.claims import Hit
    from service.claim_alerts import claim_alert

    s = make_settlement(at="2025-11-18T23:30:00+00:00")  # 07:30 next day in Shanghai
    warn = claim_alert(Hit("claim.over_quantity", "warn", "m", ("X",)), s, "3", "Asia/Shanghai")
    block = claim_alert(dataclasses.replace(Hit("claim.over_quantity", "block", "m", ("X",))),
                        s, "3", "Asia/Shanghai")
    assert (warn["level"], block["level"]) == ("yellow", "red")
    assert warn["period"] == "2025-11-19" and warn["alert_id"] != block["alert_id"]
    for a in (warn, block):
        assert not list(ALERT.iter_errors(dict(a, emitted_at="2025-11-19T07:30:00.000+08:00")))


@sync
async def test_faust_agents_route_hops_and_write_changelogs_in_the_owning_partition():
    """The Faust wiring (service.worker.build) under ``agent.test_context()``, no broker:
    hops go to the owning partition, each table write goes to the event's partition."""
    from unittest.mock import patch

    from service.worker import build

    app, _rt = build(Settings(partitions=N))
    app.finalize()
    sends: list[tuple[str, int | None, bytes]] = []
    changelog: list[tuple[str, int | None, str, object]] = []

    async def send(self, *args, key=None, value=None, partition=None, **kwargs):
        sends.append((self.get_topic_name(), partition, value))

    def send_soon(self, *args, key=None, value=None, partition=None, **kwargs):
        changelog.append((self.get_topic_name(), partition, key, value))
        return type("Sent", (), {"message": type("M", (), {"partition": partition})()})()

    t = codes_in_partitions([2, 0])
    events = [sale("A", "p-one", [t[0]]), sale("B", "p-two", t, at=T0_MS + DAY_MS)]
    with patch("faust.topics.Topic.send", send), patch("faust.topics.Topic.send_soon",
                                                       send_soon):
        for s in events:
            q = partition_for(s.patient.id, N)
            async with app.agents["claims-by-patient"].test_context() as agent:
                await agent.put(message(s), key=s.patient.id.encode(), partition=q)
            while sends and sends[-1][0].endswith("claims-by-trace-v1"):
                _, hop, value = sends.pop()
                async with app.agents["claims-by-trace"].test_context() as agent:
                    await agent.put(value, key=s.settlement_id.encode(), partition=hop)
    decisions = [orjson.loads(v) for topic, _, v in sends if topic == "decisions"]
    assert [(d["settlement_id"], d["decision"]) for d in decisions] == [("A", "pass"),
                                                                        ("B", "block")]
    writes = {("history", key): q for topic, q, key, _ in changelog
              if "-patient-history-v1-changelog" in topic}
    for topic, q, key, value in changelog:  # trace claims: one record per partition
        if f"-{TRACE_TABLE}-changelog" in topic:
            assert record_partition(key) == q
            writes.update((("codes", code), q) for code in value)
    assert writes == {("history", "p-one"): partition_for("p-one", N),
                      ("history", "p-two"): partition_for("p-two", N),
                      ("codes", t[0]): 2, ("codes", t[1]): 0}
