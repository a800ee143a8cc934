"""The stats agent run by Faust's test_context (no broker): updates become rows, a day
closes once every origin partition has passed it, and cards come out as SPEC §6 alerts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from detectors.entities import entity_updates
from detectors.watermarks import IDLE
from service.rules_io import load_ruleset_file
from service.settings import Settings
from service.stats import update_to_wire
from service.worker import build
from factories import drug, make_settlement, service

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "alert.schema.json")
                    .read_text(encoding="utf-8"))
DAY_MS = 86_400_000
T0 = 1_754_010_000_000  # 2025-08-01 09:00 +08:00


def settlements(doctor: str, cost: float, n: int, institution: str) -> list:
    fen = int(cost * 100)
    return [make_settlement(settlement_id=f"{doctor}-{i}", at=T0 + i * 3_600_000,
                            doctor_id=doctor, institution_id=institution,
                            items=[service(unit_price_fen=fen // 2),
                                   drug(quantity=1, unit_price_fen=fen - fen // 2)])
            for i in range(n)]


@pytest.fixture()
def app_and_runtime(tmp_path):
    settings = Settings(broker="kafka://127.0.0.1:1", partitions=1, data_dir=tmp_path,
                        app_id="fs-agent-test")
    return build(settings)


def test_cards_fire_only_when_the_day_closes(app_and_runtime, monkeypatch):
    app, rt = app_and_runtime
    sent: list[dict] = []

    async def capture(self, *args, key=None, value=None, **kwargs):  # noqa: ANN001
        if self.get_topic_name() == rt.settings.topics.alerts:
            sent.append(orjson.loads(value))

    monkeypatch.setattr(type(app.topic("x")), "send", capture)
    agent = app.agents["entity-stats"]
    # Five doctors of one peer group; D5 costs twice as much.
    batch = []
    for d in range(1, 6):
        batch += settlements(f"D{d}", 400.0 if d == 5 else 200.0, 12, f"H{d}")
    ruleset = load_ruleset_file()

    async def run() -> None:
        async with agent.test_context() as ctx:
            for offset, s in enumerate(batch):
                for u in entity_updates(s, ruleset.peer, ruleset.tz_for(s.region)):
                    if u.entity.kind != "doctor":
                        continue
                    await ctx.put(orjson.dumps({"k": "u", "p": 0, "o": offset,
                                                "w": s.settled_at_ms, "u": update_to_wire(u)}),
                                  key=u.group.key.encode(), partition=0)
            assert sent == [], "no card before the day has closed"
            await ctx.put(orjson.dumps({"k": "t", "p": 0, "w": IDLE}), partition=0)

    asyncio.run(run())
    fired = [a for a in sent if a["status"] == "firing"]
    assert {(a["rule"], a["entity"]["id"], a["level"]) for a in fired} == {
        ("peer.cost_per_visit", "D5", "yellow")}
    alert = fired[0]
    Draft202012Validator(SCHEMA).validate({**alert})
    assert alert["peer_mean"] == 200.0 and alert["observed"] == 400.0 and alert["n"] == 12
