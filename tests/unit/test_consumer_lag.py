"""service.lag.topic_lags with a stand-in consumer (the real one: tests/integration/test_lag.py)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import NamedTuple

import pytest

from service.lag import partition_lag, topic_lags


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, highwater: dict, committed: dict, earliest: dict | None = None,
                 revoked: set | None = None) -> None:
        self._highwater = highwater
        self._committed_offset = defaultdict(lambda: None, committed)
        self._earliest = earliest or {}
        self._revoked = revoked or set()
        self.earliest_calls: list[tuple] = []

    def assignment(self) -> set:
        return set(self._highwater) | self._revoked

    def highwater(self, tp: TP) -> int | None:
        if tp in self._revoked:
            raise AssertionError("partition not assigned")
        return self._highwater[tp]

    async def earliest_offsets(self, *tps: TP) -> dict:
        self.earliest_calls.append(tps)
        return {tp: self._earliest[tp] for tp in tps if tp in self._earliest}


def lags(consumer: FakeConsumer, counted=lambda topic: True) -> dict[str, int]:
    return asyncio.run(topic_lags(consumer, counted))


@pytest.mark.parametrize("highwater,committed,expected", [
    (100, 60, 40), (100, 100, 0), (100, 120, 0), (None, 5, None), (10, None, None),
])
def test_partition_lag(highwater, committed, expected):
    assert partition_lag(highwater, committed) == expected


def test_sums_partitions_per_topic():
    a0, a1, b0 = TP("a", 0), TP("a", 1), TP("b", 0)
    c = FakeConsumer({a0: 100, a1: 50, b0: 7}, {a0: 90, a1: 50, b0: 2})
    assert lags(c) == {"a": 10, "b": 5}
    assert c.earliest_calls == []


def test_without_a_commit_the_log_start_stands_in():
    a0, a1 = TP("a", 0), TP("a", 1)
    c = FakeConsumer({a0: 100, a1: 30}, {a0: 90}, earliest={a1: 10})
    assert lags(c) == {"a": 10 + 20}
    assert c.earliest_calls == [(a1,)]


def test_unknown_highwater_and_revoked_partitions_add_nothing_but_keep_the_topic():
    a0, a1, b0 = TP("a", 0), TP("a", 1), TP("b", 0)
    c = FakeConsumer({a0: None, a1: 5}, {a1: 5}, revoked={b0})
    assert lags(c) == {"a": 0, "b": 0}


def test_only_counted_topics():
    a0, ch0 = TP("a", 0), TP("app-table-changelog", 0)
    c = FakeConsumer({a0: 10, ch0: 1000}, {a0: 4})
    assert lags(c, counted=lambda t: not t.endswith("-changelog")) == {"a": 6}
