"""Crash safety on the real embedded broker (SPEC §9; README "Crash safety").

A feed (synthetic settlements plus broken JSON, schema errors and duplicate ids) is
replayed in the background while a worker is SIGKILLed at seeded-random moments of the
processing and restarted with the same settings and data dir; and, separately, while one
of two workers is SIGKILLed and the other takes over its partitions (it is not restarted:
the survivor alone finishes the run). Against a clean run of the same feed on fresh topics:

- decisions: every valid settlement has one (deduplicated by settlement_id), none is
  missing, every re-sent copy is identical; each equals the claims stage replayed
  in-process on the arrival order the run recorded (claim rules that compare a
  patient's or a code's settlements give the hit to the later *arrival*, and a failover
  changes arrival order legitimately), and the hits of order-free rules equal the clean
  run's;
- DLQ: the same (source partition, offset) → reason records;
- alerts: the set of (alert_id, status) equals the clean run's, per rule family (claim
  alerts: equal to the replay's);
- state: the final value per key of the changelogs of ``entity-months-v1``,
  ``fund-months-v1`` and ``settlement-ids-v1`` equals the clean run's exactly (no field
  excluded: none holds a wall-clock stamp); ``patient-history-v1`` and ``trace-code-batches-v1`` (its claims, code by code)
  have the clean run's keys and the replay's values.

The clean run itself is checked against the in-process reference runners
(``detectors.offline.run_cards``, ``detectors.fund.offline.run_fund_monitors``).

Sizes: the two small runs always run (~2k settlements; ~2.5 min together on a 2-core
machine). ``FUND_SENTINEL_CRASH_N=30000`` (or ``--run-slow`` where conftest defines it)
also runs the large version, with an extra kill while the restarted worker is still
joining the group / recovering its tables; ``bench/crash_run.py`` runs it standalone.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import crash

from detectors.fund.offline import run_fund_monitors
from detectors.offline import run_cards
from service.rules_io import load_ruleset_file

pytestmark = pytest.mark.broker

LARGE_N = int(os.environ.get("FUND_SENTINEL_CRASH_N", "0") or 0)
KILL_SEED = int(os.environ.get("FUND_SENTINEL_CRASH_SEED", "20251123"))


def clean_run(broker_url: str, feed: crash.Feed, tmp) -> crash.RunResult:
    """A run without kills, checked against the in-process reference runners."""
    clean = crash.run(broker_url, feed, tmp)
    rs = load_ruleset_file()
    cards, _rows = run_cards(feed.settlements, rs)
    fund = run_fund_monitors(feed.settlements, rs)
    got = crash.alert_families(clean.alerts)
    want = {"peer": {(a["alert_id"], a["status"]) for a in cards},
            "fund": {(a["alert_id"], a["status"]) for a in fund}}
    assert want["peer"] and want["fund"], "the feed must produce peer cards and fund alerts"
    for family in ("peer", "fund"):
        assert got.get(family, set()) == want[family], (
            f"clean run {family} alerts differ from the in-process reference: missing "
            f"{sorted(want[family] - got.get(family, set()))[:3]}, extra "
            f"{sorted(got.get(family, set()) - want[family])[:3]}\n{clean.logs()}")
    replay = crash.replay_claims(clean.settings)
    problems = crash.check(feed, clean, clean, replay, "clean")
    assert not problems, "\n".join(problems) + "\n" + clean.logs()
    assert got.get("claim"), "the feed must produce claim alerts"
    return clean


def assert_same_outcome(feed: crash.Feed, clean: crash.RunResult, run: crash.RunResult,
                        label: str) -> dict:
    replay = crash.replay_claims(run.settings)
    problems = crash.check(feed, clean, run, replay, label)
    info = crash.summary(feed, clean, run)
    print(f"{label}: {json.dumps(info)}")
    assert not problems, ("\n".join(problems) + f"\n{json.dumps(info)}\n" + run.logs())
    return info


ONE_WORKER = crash.KillPlan(at=(0.2, 0.5, 0.8), seed=KILL_SEED)
FAILOVER = crash.KillPlan(at=(0.4,), victim=1, restart=False, seed=KILL_SEED + 1)


@pytest.fixture(scope="module")
def small(embedded_broker, tmp_path_factory) -> dict:
    """The clean run and both crash runs, side by side on one broker: the crash runs spend
    most of their time waiting for group joins after a kill, when the CPU is free (and
    each run has its own topics and consumer group, so they do not interact)."""
    tmp = tmp_path_factory.mktemp("crash-small")
    feed = crash.build_feed(tmp / "feed")
    url = embedded_broker.url
    with ThreadPoolExecutor(3) as pool:
        clean = pool.submit(clean_run, url, feed, tmp / "clean")
        killed = pool.submit(crash.run, url, feed, tmp / "killed", kills=ONE_WORKER)
        failover = pool.submit(crash.run, url, feed, tmp / "failover", workers=2,
                               kills=FAILOVER)
        return {"feed": feed, "clean": clean.result(), "killed": killed.result(),
                "failover": failover.result()}


def test_worker_killed_three_times_recovers_exactly(small):
    feed, run = small["feed"], small["killed"]
    assert len(run.kills) >= 3 and all(k["progress"] < feed.total for k in run.kills), run.kills
    assert_same_outcome(feed, small["clean"], run, "one worker, 3 kills")


def test_failover_to_the_other_worker(small):
    feed, run = small["feed"], small["failover"]
    assert len(run.kills) == 1 and run.kills[0]["progress"] < feed.total, run.kills
    assert_same_outcome(feed, small["clean"], run, "two workers, one killed")


def _run_slow(request) -> bool:
    return bool(LARGE_N) or bool(request.config.getoption("--run-slow", default=False))


@pytest.mark.slow
def test_large_crash_runs(embedded_broker, tmp_path, request):
    if not _run_slow(request):
        pytest.skip("large crash run: set FUND_SENTINEL_CRASH_N (e.g. 30000) to run it")
    started = time.monotonic()
    feed = crash.build_feed(tmp_path / "feed", n=LARGE_N or 30_000)
    clean = clean_run(embedded_broker.url, feed, tmp_path / "clean")
    kills = crash.KillPlan(at=(0.1, 0.3, 0.55, 0.8), seed=KILL_SEED, during_recovery_s=4.0)
    run = crash.run(embedded_broker.url, feed, tmp_path / "kills", kills=kills,
                    settle_timeout_s=3600)
    assert_same_outcome(feed, clean, run, f"large ({feed.total}), one worker, 5 kills")
    failover = crash.KillPlan(at=(0.5,), victim=1, restart=False, seed=KILL_SEED + 1)
    run2 = crash.run(embedded_broker.url, feed, tmp_path / "two", workers=2, kills=failover,
                     settle_timeout_s=3600)
    assert_same_outcome(feed, clean, run2, f"large ({feed.total}), two workers, one killed")
    print(f"large crash runs: {time.monotonic() - started:.0f}s")
