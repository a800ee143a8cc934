"""Where /v1/check reads claim state: the active-partition set behind StateLookup.owner."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.types import TP

from service.web_claims import StateLookup, Unavailable


class _Assignor:
    def __init__(self, actives: set[TP]) -> None:
        self.actives, self.calls = actives, 0

    def assigned_actives(self) -> set[TP]:
        self.calls += 1
        return set(self.actives)


def _lookup(actives: set[TP]) -> tuple[StateLookup, SimpleNamespace]:
    app = SimpleNamespace(rebalancing=False, consumer_generation_id=3,
                          assignor=_Assignor(actives),
                          tables=SimpleNamespace(recovery=SimpleNamespace(in_recovery=False)))
    rt = SimpleNamespace(settings=SimpleNamespace(partitions=4))
    return StateLookup(app, rt, stage=None), app  # type: ignore[arg-type]


def _table(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, changelog_topic=SimpleNamespace(
        get_topic_name=lambda: f"{name}-changelog"))


def test_local_partitions_are_built_once_per_generation():
    lookup, app = _lookup({TP("histories-changelog", 1)})
    histories = _table("histories")

    assert [lookup.owner(histories, 1) for _ in range(9)] == [None] * 9
    assert app.assignor.calls == 1

    app.consumer_generation_id = 4  # a rebalance moved partition 1 elsewhere
    app.assignor.actives = {TP("histories-changelog", 2)}
    app.router = SimpleNamespace(table_metadata=lambda name: {
        "http://other:6066/": {"histories-changelog": [1]}})
    assert lookup.owner(histories, 1) == "http://other:6066/"
    assert lookup.owner(histories, 2) is None
    assert app.assignor.calls == 2


def test_no_answer_while_partitions_move():
    lookup, app = _lookup({TP("histories-changelog", 1)})
    app.rebalancing = True
    with pytest.raises(Unavailable):
        lookup.owner(_table("histories"), 1)
