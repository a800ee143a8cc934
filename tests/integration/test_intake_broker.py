"""generate → replay (bad lines mixed in) → real worker on the embedded broker → every input
is exactly one decision or one DLQ record, and the counts add up."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import orjson
import pytest

from service.feed import replay
from support.cluster import WorkerProcess, create_all_topics, read_outputs, reasons, unique_settings

pytestmark = pytest.mark.broker

BAD = [
    (b'{"settlement_id": "x-1", "region": ', "not_json"),
    (b"\xff\xfe not utf-8", "not_json"),
    (b"[1, 2, 3]", "schema"),
    (b'{"settlement_id": "x-2", "items": []}', "schema"),
]


def _amounts_broken(line: bytes) -> bytes:
    doc = orjson.loads(line)
    doc["settlement_id"] = doc["settlement_id"] + "-amt"
    doc["total_amount"] = round(doc["total_amount"] + 5.0, 2)
    return orjson.dumps(doc)


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_ready(port: int, timeout_s: float = 60) -> None:
    """/healthz answers at once; /readyz says 503 until partitions are assigned, tables
    recovered and the rule set loaded, then 200 with every check true."""
    assert get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"})
    deadline = time.monotonic() + timeout_s
    status, body = get(f"http://127.0.0.1:{port}/readyz")
    while status != 200 and time.monotonic() < deadline:
        assert status == 503 and body["ready"] is False, body
        time.sleep(0.5)
        status, body = get(f"http://127.0.0.1:{port}/readyz")
    assert status == 200 and body["ready"] is True and all(body["checks"].values()), body
    assert set(body["checks"]) >= {"rules_loaded", "partitions_assigned", "tables_recovered"}


def test_every_input_is_a_decision_or_a_dlq_record(embedded_broker, tmp_path):
    from service.synth import generate

    generate(tmp_path / "data", months=1, seed=11, scale="small")
    good = (tmp_path / "data" / "settlements.jsonl").read_bytes().splitlines()[:1500]
    feed: list[bytes] = []
    expected = {"not_json": 0, "schema": 0, "amounts": 0, "duplicate": 0}
    for i, line in enumerate(good):
        feed.append(line)
        if i % 100 == 7:
            bad, reason = BAD[(i // 100) % len(BAD)]
            feed.append(bad)
            expected[reason] += 1
        if i % 150 == 3:
            feed.append(_amounts_broken(line))
            expected["amounts"] += 1
        if i % 200 == 5:
            feed.append(line)  # the same settlement_id again: a duplicate
            expected["duplicate"] += 1
    path = tmp_path / "feed.jsonl"
    path.write_bytes(b"\n".join(feed) + b"\n")

    settings = unique_settings(embedded_broker.url)
    create_all_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "worker").start()
    try:
        assert_ready(worker.web_port)
        sent = replay(path, settings)
        assert sent == len(feed)
        decisions, dlq = read_outputs(settings, len(feed), timeout_s=120)
    finally:
        worker.stop()
    decided_ids = {d["settlement_id"] for d in decisions}
    assert len(decided_ids) == len(good), worker.log_tail()
    assert decided_ids == {orjson.loads(x)["settlement_id"] for x in good}
    assert dict(reasons(dlq)) == {k: v for k, v in expected.items() if v}
    assert len(decided_ids) + len(dlq) == len(feed)
    assert all(d["errors"] and d["reason"] for d in dlq)
    assert all(d["decision"] in ("pass", "warn", "block") and d["rules_version"]
               for d in decisions)
