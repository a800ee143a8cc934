"""ClaimLog: code → claim as seen by the claims stage, persisted as one record per
partition per flush; a log rebuilt from those records sees the same claims."""

from __future__ import annotations

import orjson

from service.batching import envelopes, items_of
from service.claim_log import ClaimLog, claims_from_records, record_partition


def owner(code: str) -> int:
    return int(code[-1]) % 4


def claim(sid: str, at_ms: int) -> dict:
    return {"id": sid, "at_ms": at_ms}


def test_one_record_per_partition_per_flush_and_a_rebuilt_log_sees_the_same_claims():
    table: dict = {}
    log = ClaimLog(table, owner)
    codes = [f"c{i}" for i in range(10)]  # partitions 0..3
    for code in codes:
        log[code] = claim("s1", 1000)
    assert table == {}, "nothing persisted before the flush"
    assert log.flush() == 4
    assert sorted(record_partition(k) for k in table) == [0, 1, 2, 3]
    assert claims_from_records(table) == {c: claim("s1", 1000) for c in codes}

    again = ClaimLog(dict(table), owner)
    assert {c: again.get(c) for c in codes} == {c: claim("s1", 1000) for c in codes}
    assert again.get("c99") is None


def test_a_reclaimed_code_resolves_to_the_later_claim_in_any_record_order():
    table: dict = {}
    log = ClaimLog(table, owner)
    log["c1"], log["c5"] = claim("old", 1000), claim("old", 1000)
    log.flush()
    log["c1"] = claim("new", 9000)  # claim expired and taken again
    log.flush()
    reversed_table = dict(reversed(list(table.items())))
    for source in (table, reversed_table):
        rebuilt = ClaimLog(dict(source), owner)
        assert rebuilt["c1"] == claim("new", 9000) and rebuilt["c5"] == claim("old", 1000)


def test_a_record_is_tombstoned_once_none_of_its_claims_is_live():
    table: dict = {}
    log = ClaimLog(table, owner)
    log["c1"], log["c5"] = claim("s", 1000), claim("s", 1000)  # both partition 1
    log.flush()
    (record,) = table
    del log["c1"]
    assert record in table, "c5 still lives in it"
    del log["c5"]
    assert table == {} and len(log) == 0


def test_records_of_a_crashed_writer_are_never_overwritten():
    table: dict = {}
    first = ClaimLog(table, owner)
    first["c1"] = claim("s", 1000)
    first.flush()
    second = ClaimLog(table, owner)  # restarted worker: new nonce, same sequence numbers
    second["c5"] = claim("t", 2000)
    second.flush()
    assert len(table) == 2
    assert claims_from_records(table) == {"c1": claim("s", 1000), "c5": claim("t", 2000)}


def test_a_forgotten_partition_is_rebuilt_from_its_records():
    table: dict = {}
    log = ClaimLog(table, owner)
    log["c2"] = claim("s", 1000)
    log.flush()
    log.forget(2)
    assert "c2" not in log.index
    assert log["c2"] == claim("s", 1000)


def test_envelopes_keep_order_and_split_below_the_size_limit():
    items = [orjson.dumps({"i": i, "pad": "x" * 50}) for i in range(100)]
    chunks = list(envelopes(items, max_bytes=1000))
    assert len(chunks) > 1 and all(len(c) <= 1000 for c in chunks)
    assert [d["i"] for c in chunks for d in items_of(c)] == list(range(100))
    assert items_of(b'{"k": "t"}') == [{"k": "t"}]
