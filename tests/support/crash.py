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

from support.crash_compare import (
    ClaimsReplay,
    alert_families,
    check,
    decision_view,
    diff_state,
    replay_claims,
    summary,
)
from support.crash_feed import (
    CI_SIZE,
    FEED_AHEAD,
    FEED_HEAD,
    FEED_RATE,
    PARTITIONS,
    TABLES,
    Feed,
    build_feed,
    replay_in_order,
)
from support.crash_run import KillPlan, RunResult, changelog_ends, probe_duplicates, run
from support.crash_watch import OutputTail, read_changelogs, read_partitions

__all__ = [
    "CI_SIZE", "FEED_AHEAD", "FEED_HEAD", "FEED_RATE", "PARTITIONS", "TABLES", "ClaimsReplay",
    "Feed", "KillPlan", "OutputTail", "RunResult", "alert_families", "build_feed",
    "changelog_ends", "check", "decision_view", "diff_state", "probe_duplicates",
    "read_changelogs", "read_partitions", "replay_claims", "replay_in_order", "run", "summary",
]
