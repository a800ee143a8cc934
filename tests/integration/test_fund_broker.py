"""Fund monitors on the real embedded broker give the same (alert_id, status) set as the
in-process reference runner on the same time-ordered input (SPEC §7b)."""

from __future__ import annotations

import pytest

from detectors.fund.offline import run_fund_monitors
from service.feed import replay
from service.rules_io import load_ruleset_file
from service.validation import parse_settlement
from support.cluster import (WorkerProcess, alert_keys, create_all_topics,
                             read_alerts_until_quiet, unique_settings)

pytestmark = pytest.mark.broker


def test_fund_alerts_match_the_reference(embedded_broker, tmp_path):
    from service.synth import generate

    generate(tmp_path / "data", months=3, seed=3, scale="tiny")
    path = tmp_path / "data" / "settlements.jsonl"
    lines = path.read_bytes().splitlines()
    reference = run_fund_monitors([parse_settlement(x)[0] for x in lines], load_ruleset_file())
    expected = alert_keys(reference)
    assert expected, "the generated data must trip at least one fund monitor"

    settings = unique_settings(embedded_broker.url, partitions=4)
    create_all_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "w").start()
    try:
        replay(path, settings)
        alerts = read_alerts_until_quiet(settings, expected, timeout_s=240)
    finally:
        worker.stop()
    got = {k for k in alert_keys(alerts)
           if any(a["alert_id"] == k[0] and a["rule"].startswith("fund.") for a in alerts)}
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5],
                             worker.log_tail(30))
