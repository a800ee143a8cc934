"""Kill-and-restart runs of real workers on the embedded broker (SPEC §9 crash safety).

Used by ``tests/e2e/test_crash_recovery.py`` (small, always) and ``bench/crash_run.py``
(large). One *run* = fresh topics and consumer group, N workers, the feed replayed in a
background thread, an optional kill schedule (SIGKILL at progress points, then restart or
not), and a wait until the outputs settle. What a run returns:

- every record on ``decisions``, ``settlements-dlq`` and ``alerts`` (copies included);
- the final value per key of the tables' changelog topics (last record wins, ``None`` =
  deleted), read from the beginning with kafka-python;
- what the kill schedule did, and where the worker logs are.

``check`` then says, field by field, how a crashed run differs from a clean one.

The parts: :mod:`support.crash_feed` (the feed and its replay), :mod:`support.crash_watch`
(reading outputs and changelogs), :mod:`support.crash_run` (one run with its kill
schedule), :mod:`support.crash_compare` (the verdict). This module gathers their public
names.
"""

from support.crash_compare import alert_families, check, replay_claims, summary
from support.crash_feed import Feed, build_feed
from support.crash_run import KillPlan, RunResult, run

__all__ = ["Feed", "KillPlan", "RunResult", "alert_families", "build_feed", "check",
           "replay_claims", "run", "summary"]
