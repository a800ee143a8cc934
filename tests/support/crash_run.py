"""One crash run: fresh topics and group, N workers, the feed, the kill schedule, the wait
until the outputs settle, then the duplicate probe and the check of table recovery."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.settings import Settings
from support.cluster import WorkerProcess, create_all_topics, unique_settings
from support.crash_feed import (
    FEED_HEAD,
    FEED_RATE,
    KAFKA_TIMEOUTS,
    PARTITIONS,
    TABLES,
    Feed,
    replay_in_order,
)
from support.crash_watch import OutputTail, read_changelogs

# ---- one run ------------------------------------------------------------------------------


@dataclass
class KillPlan:
    """SIGKILL worker ``victim`` when ``at`` fractions of the input are accounted for (plus
    a random pause up to 0.25 s, so the moment falls anywhere in the processing cycle), then restart it
    with the same settings and data dir (``restart``), or leave it dead."""

    at: tuple[float, ...]
    victim: int = 0
    restart: bool = True
    seed: int = 0
    # Seconds after a restart at which to kill again while it is still recovering/joining
    # (None: no kill during recovery).
    during_recovery_s: float | None = None


@dataclass
class RunResult:
    settings: Settings
    decisions: dict[str, list[dict]]
    dlq: dict[tuple[int, int], dict]
    dlq_copies: int
    alerts: list[dict]
    state: dict[str, dict[Any, Any]]
    kills: list[dict] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    # Shortfalls of table recovery after a kill (see recovery_shortfalls).
    recovery: list[str] = field(default_factory=list)
    # The duplicate probe after the run (see probe_duplicates).
    probe: dict[str, int] = field(default_factory=dict)

    def logs(self, n: int = 40) -> str:
        return "\n".join(f"--- {w.log_path}\n{w.log_tail(n)}" for w in self.workers)


def run(broker_url: str, feed: Feed, tmp: Path, workers: int = 1, kills: KillPlan | None = None,
        settle_timeout_s: float = 300.0, quiet_s: float = 6.0, probe: bool = True
        ) -> RunResult:
    """Replay ``feed`` into fresh topics with ``workers`` workers and the kill plan; once
    settled, read the outputs and tables, then (``probe``) send every valid settlement
    again: each must now be rejected as a duplicate, which needs every id the workers
    ever accepted to be in their (recovered) in-memory id table."""
    started = time.monotonic()
    settings = unique_settings(broker_url, partitions=PARTITIONS)
    create_all_topics(settings)
    procs = [WorkerProcess(settings, tmp / f"w{i}") for i in range(workers)]
    for p in procs:
        p.start()
    tail = OutputTail(settings)
    tail.start()
    # The first messages at once, the rest paced from the first output on: the worker
    # takes seconds to join, and a paced feed produced meanwhile would be a backlog again.
    replay_in_order(feed.lines[:FEED_HEAD], settings)
    _wait_progress(tail, 1, procs, settle_timeout_s)
    feeder = threading.Thread(
        target=replay_in_order, daemon=True,
        args=(feed.lines[FEED_HEAD:], settings, FEED_RATE,
              lambda: tail.progress() - FEED_HEAD))
    feeder.start()
    kill_log: list[dict] = []
    try:
        if kills is not None:
            kill_log = _execute(kills, procs, tail, feed.total, settle_timeout_s)
        feeder.join(timeout=max(120.0, 2 * len(feed.lines) / FEED_RATE))
        try:
            drained = _settle(tail, feed.total, procs, settle_timeout_s, quiet_s)
        except AssertionError as exc:  # name what is missing, for the post-mortem
            with tail.lock:
                missing = sorted(feed.valid_ids - set(tail.decisions))[:20]
                dlq = len(tail.dlq)
            raise AssertionError(f"undecided valid ids {missing}; {dlq} DLQ sources of "
                                 f"{sum(feed.dlq_reasons.values())} expected\n{exc}") from None
        timings = {"drained_s": drained - started}
        timings["settled_s"] = time.monotonic() - started
        state = read_changelogs(settings)
        with tail.lock:
            result = RunResult(settings, {k: list(v) for k, v in tail.decisions.items()},
                               dict(tail.dlq), tail.dlq_copies, list(tail.alerts), state,
                               kill_log, procs)
        if kills is not None and kills.restart and workers == 1:
            result.recovery = recovery_shortfalls(procs[0], kill_log)
        if probe:
            result.probe = probe_duplicates(feed, settings, tail, settle_timeout_s)
    finally:
        for p in procs:  # everything is read: no need for a graceful (slower) stop
            p.stop(signal.SIGKILL, timeout_s=10)
        tail.stop()
    result.seconds = time.monotonic() - started
    result.timings = timings
    return result


def probe_duplicates(feed: Feed, settings: Settings, tail: OutputTail, timeout_s: float
                     ) -> dict[str, int]:
    """Send every valid settlement again; count what became of the copies."""
    with tail.lock:
        dlq_before, decisions_before = set(tail.dlq), sum(map(len, tail.decisions.values()))
    replay_in_order(feed.valid_lines, settings)
    deadline = time.monotonic() + timeout_s
    want = len(dlq_before) + len(feed.valid_lines)
    while time.monotonic() < deadline and tail.progress() - len(tail.decisions) < want:
        time.sleep(0.1)
    time.sleep(2.0)  # anything wrongly decided would come now
    with tail.lock:
        new = [v for k, v in tail.dlq.items() if k not in dlq_before]
        decided = sum(map(len, tail.decisions.values())) - decisions_before
    return {"sent": len(feed.valid_lines),
            "duplicates": sum(1 for v in new if v["reason"] == "duplicate"),
            "other_dlq": sum(1 for v in new if v["reason"] != "duplicate"),
            "decided_again": decided}


def changelog_ends(settings: Settings) -> dict[str, int]:
    """True end offset of every changelog partition ("topic/partition" → offset): the
    high-water mark of a fetch from just before ListOffsets' answer (BROKER.md gap 2)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                             enable_auto_commit=False, **KAFKA_TIMEOUTS)
    try:
        tps = [TopicPartition(f"{settings.app_id}-{t}-changelog", q)
               for t in TABLES for q in range(PARTITIONS)]
        reported = consumer.end_offsets(tps)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(0, reported[tp] - 1))
        ends: dict[str, int] = {}
        deadline = time.monotonic() + 30
        while len(ends) < len(tps) and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
            for tp in tps:
                hw = consumer.highwater(tp)
                if hw is not None:
                    ends[f"{tp.topic}/{tp.partition}"] = max(hw, reported[tp])
        return ends
    finally:
        consumer.close()


def logged_recoveries(log_text: str) -> list[dict[str, int] | None]:
    """Per life of a worker (split at Faust's "[^Worker]: Starting..."), where its first
    table recovery said the active changelogs end ("topic/partition" → end offset, from
    Faust's "Highwater for active changelog partitions" table, which logs end − 1), or
    None if that life never got to recover."""
    lives: list[dict[str, int] | None] = []
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        if "[^Worker]: Starting..." in line:
            lives.append(None)
        elif ("Highwater for active changelog partitions" in line and lives
              and lives[-1] is None):
            table: dict[str, int] = {}
            topic = ""
            for row in lines[i + 4:]:
                if not row.startswith("|"):
                    break
                cells = [c.strip() for c in row.strip("|").split("|")]
                topic = topic if cells[0] == "\u3003" else cells[0]  # 〃 = same topic
                table[f"{topic}/{cells[1]}"] = int(cells[2]) + 1
            lives[-1] = table
    return lives


def recovery_shortfalls(worker: WorkerProcess, kills: list[dict]) -> list[str]:
    """Changelog partitions whose recovery after a kill stopped before their end.

    Between a kill and the restart of a single worker nothing writes its changelogs, so
    the restarted worker must recover each partition up to the end measured right after
    the kill. Records missed there vanish from the worker's memory but stay in the
    changelog, so comparing changelogs alone would not see it.
    """
    assert worker.log_path is not None
    lives = logged_recoveries(worker.log_path.read_text(errors="replace"))
    out = []
    for k, kill in enumerate(kills):
        recovered = lives[k + 1] if k + 1 < len(lives) else None
        if recovered is None or "ends" not in kill:
            continue  # killed again before it recovered: the next life must catch up
        for tp, end in sorted(kill["ends"].items()):
            if tp in recovered and recovered[tp] < end:
                out.append(f"after kill {k + 1}: {tp} recovered up to {recovered[tp]}, "
                           f"changelog ends at {end}")
    return out


def _wait_progress(tail: OutputTail, target: int, procs: list[WorkerProcess],
                   timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = tail.progress()
        if done >= target:
            return done
        for p in procs:
            if p.proc is not None and p.proc.poll() not in (None, -signal.SIGKILL):
                raise AssertionError(f"worker exited by itself ({p.proc.returncode}):\n"
                                     f"{p.log_tail()}")
        time.sleep(0.05)
    raise AssertionError(f"no progress to {target} in {timeout_s}s (at {tail.progress()})\n"
                         + "\n".join(stacks(p) for p in procs))


def stacks(p: WorkerProcess) -> str:
    """Where a live worker is stuck: py-spy's dump of its threads (if py-spy is
    installed), then its log's tail. (Not mode's SIGUSR1 task dump: it crashes the worker
    on aiokafka's FetchResult repr.)"""
    if p.proc is None or p.proc.poll() is not None:
        return f"--- worker {p.web_port}: not running"
    spy = Path(sys.executable).with_name("py-spy")
    out = ""
    if spy.exists():
        done = subprocess.run([str(spy), "dump", "--pid", str(p.proc.pid)],
                              capture_output=True, text=True, timeout=60)
        out = done.stdout + done.stderr
    return f"--- worker {p.web_port} (pid {p.proc.pid}) py-spy:\n{out}\n{p.log_tail(150)}"


def _sigkill(p: WorkerProcess) -> None:
    assert p.proc is not None and p.proc.poll() is None, "victim is not running"
    p.proc.send_signal(signal.SIGKILL)
    p.proc.wait(timeout=10)


def _execute(plan: KillPlan, procs: list[WorkerProcess], tail: OutputTail, total: int,
             timeout_s: float) -> list[dict]:
    rng = random.Random(plan.seed)
    victim = procs[plan.victim]
    log = []
    for fraction in sorted(plan.at):
        _wait_progress(tail, int(fraction * total), procs, timeout_s)
        pause = rng.uniform(0.0, 0.25)  # the pipeline drains ~2k settlements in ~3 s
        time.sleep(pause)
        at = tail.progress()
        _sigkill(victim)
        log.append({"fraction": fraction, "pause_s": round(pause, 2), "progress": at,
                    "t": round(time.monotonic(), 1)})
        if not plan.restart:
            continue
        if len(procs) == 1:
            log[-1]["ends"] = changelog_ends(victim.settings)
        victim.start()
        if plan.during_recovery_s is not None and len(log) == 1:
            # Once: kill again while it is joining the group / recovering its tables.
            time.sleep(plan.during_recovery_s)
            log.append({"fraction": None, "during_recovery_s": plan.during_recovery_s,
                        "progress": tail.progress(), "t": round(time.monotonic(), 1)})
            _sigkill(victim)
            if len(procs) == 1:
                log[-1]["ends"] = changelog_ends(victim.settings)
            victim.start()
    return log


def _settle(tail: OutputTail, total: int, procs: list[WorkerProcess], timeout_s: float,
            quiet_s: float) -> float:
    """Every input accounted for, then no new alert for ``quiet_s`` (the last days and
    months close on idle ticks ~3 s after the input drains). Returns when it drained."""
    _wait_progress(tail, total, procs, timeout_s)
    drained = time.monotonic()
    deadline = drained + timeout_s
    while time.monotonic() < deadline:
        if time.monotonic() - max(drained, tail.last_alert_s) >= quiet_s:
            break
        time.sleep(0.2)
    return drained
