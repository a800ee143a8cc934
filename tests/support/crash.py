"""Kill-and-restart runs of real workers on the embedded broker (SPEC §9 crash safety).

Used by ``tests/e2e/test_crash_recovery.py`` (small, always) and ``bench/crash_run.py``
(large). One *run* = fresh topics and consumer group, N workers, the feed replayed in a
background thread, an optional kill schedule (SIGKILL at progress points, then restart or
not), and a wait until the outputs settle. What a run returns:

- every record on ``decisions``, ``settlements-dlq`` and ``alerts`` (copies included);
- the final value per key of the tables' changelog topics (last record wins, ``None`` =
  deleted), read from the beginning with kafka-python;
- what the kill schedule did, and where the worker logs are.

:func:`compare` then says, field by field, how a crashed run differs from a clean one.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from service.claim_log import claims_from_records
from service.feed import key_of
from service.settings import Settings
from support.cluster import WorkerProcess, create_all_topics, unique_settings
from support.reliability import expected_fates

# The tables whose changelogs are compared between runs (name without app id / suffix).
TABLES = ("entity-months-v1", "fund-months-v1", "patient-history-v1", "trace-code-batches-v1",
          "settlement-ids-v1")
PARTITIONS = 4
# Messages/s into ``settlements`` after the first FEED_HEAD, and never more than
# FEED_AHEAD messages beyond what is accounted for: a restart takes ~10-15 s and the
# restarted worker catches up on its backlog in a burst, so a feed that ran on while it
# was down would be accounted for before the next kill lands.
FEED_RATE = 50.0
FEED_HEAD = 20
FEED_AHEAD = 200
KAFKA_TIMEOUTS = dict(session_timeout_ms=6000, heartbeat_interval_ms=2000)


# ---- the feed ------------------------------------------------------------------------------


@dataclass
class Feed:
    """A JSONL file to replay and what a correct pipeline must make of it."""

    path: Path
    lines: list[bytes]
    valid_ids: set[str]            # settlement ids that must get a decision
    dlq_reasons: Counter           # reason -> count that must reach the DLQ
    settlements: list[Any]         # parsed valid settlements, input order (for references)
    valid_lines: list[bytes]       # their messages (sent again by the duplicate probe)

    @property
    def total(self) -> int:
        return len(self.lines)


def _bad_lines(lines: list[bytes], rng: random.Random, n: int) -> list[tuple[int, bytes]]:
    """``n`` defective messages to splice in (position, text): broken JSON, schema errors
    and exact copies of an earlier settlement (same id → ``duplicate``)."""
    out = []
    for i in range(n):
        pos = rng.randrange(1, len(lines))
        kind = i % 3
        if kind == 0:
            text = b'{"settlement_id": "broken-%d", ' % i
        elif kind == 1:
            doc = orjson.loads(lines[pos])
            doc["settlement_id"] = f"schema-bad-{i}"
            doc.pop("patient")
            text = orjson.dumps(doc)
        else:
            text = lines[rng.randrange(max(0, pos - 50), pos)]
        out.append((pos, text))
    return out


CI_SIZE = 0  # ``build_feed(n=CI_SIZE)``: the small fixed feed below


def build_feed(out: Path, n: int = CI_SIZE, seed: int = 4, bad: int = 12) -> Feed:
    """Synthetic settlements (``service.synth``, small scale, seed 4) in time order, plus
    ``bad`` defective messages spliced in (broken JSON, schema errors, duplicate ids).

    - ``n=CI_SIZE``: region 610303 over 3 months, only the patients with
      ``crc32(patient id) % 4 == 1``: ~1,970 settlements that still hold whole patient
      histories (claim pairs), ~6 peer cards, ~4 fund alerts (two months close), ~6
      patient-rule hits plus trace-code reuse. One pooling region keeps peer groups whole.
    - ``n`` ≤ 8,000: region 610303, its first ``n`` settlements (6,000 reach the third
      month: ~38 peer cards, ~5 fund alerts).
    - larger: every region, enough months, the first ``n``.
    """
    from service.synth import generate

    out.mkdir(parents=True, exist_ok=True)
    if n <= 8000:
        generate(out, months=3, seed=seed, scale="small")
        tag = b'"region":"610303"'
        lines = [x for x in (out / "settlements.jsonl").read_bytes().splitlines() if tag in x]
        if n == CI_SIZE:
            lines = [x for x in lines
                     if zlib.crc32(orjson.loads(x)["patient"]["id"].encode()) % 4 == 1]
        else:
            lines = lines[:n]
    else:
        generate(out, months=max(3, min(12, 1 + n // 7000)), seed=seed,
                 scale="small" if n < 60_000 else "medium")
        lines = (out / "settlements.jsonl").read_bytes().splitlines()[:n]
    rng = random.Random(seed)
    for pos, text in sorted(_bad_lines(lines, rng, bad), reverse=True):
        lines.insert(pos, text)
    path = out / "feed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    valid_ids: set[str] = set()
    reasons: Counter = Counter()
    settlements, valid_lines = [], []
    for line, fate in zip(lines, expected_fates(lines)):
        if isinstance(fate, str):
            reasons[fate] += 1
        else:
            valid_ids.add(fate.settlement_id)
            settlements.append(fate)
            valid_lines.append(line)
    return Feed(path, lines, valid_ids, reasons, settlements, valid_lines)


def replay_in_order(lines: list[bytes], settings: Settings, rate: float | None = None,
                    accounted: Callable[[], int] | None = None) -> None:
    """Produce the feed like ``service.feed.replay`` (same key, same default partitioner
    for keyed messages), except that a message without a key (broken JSON) goes to a
    partition chosen from its bytes instead of a random one, and one request is in flight
    at a time: every run then puts every message at the same partition and offset, so
    state that records input offsets (``applied``, the id table) compares exactly.
    ``rate`` (messages/s) paces it: the batched pipeline drains a 2k feed in ~2 s, too
    fast for a kill to land before everything is accounted for; ``accounted`` (messages
    accounted for so far) holds it at most FEED_AHEAD ahead. Two calls in sequence keep
    the order (each flushes before returning)."""
    from aiokafka.partitioner import murmur2
    from kafka import KafkaProducer

    prod = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5, acks=1,
                         retries=5, max_in_flight_requests_per_connection=1,
                         client_id="crash-test-replay")
    try:
        started = time.monotonic()
        for i, line in enumerate(lines):
            key = key_of(line)
            partition = (murmur2(key or line) & 0x7FFFFFFF) % PARTITIONS
            prod.send(settings.topics.settlements, key=key, value=line, partition=partition)
            if rate and i % 50 == 49:
                time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
            if accounted is not None and i % 50 == 49:
                while i + 1 - accounted() > FEED_AHEAD:
                    time.sleep(0.05)
                    started += 0.05  # the pace resumes where it stopped
        prod.flush()
    finally:
        prod.close()


# ---- watching the outputs ------------------------------------------------------------------


class OutputTail(threading.Thread):
    """Reads ``decisions``, the DLQ and ``alerts`` from the beginning, in the background."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="output-tail")
        self.settings = settings
        self.lock = threading.Lock()
        self.decisions: dict[str, list[dict]] = defaultdict(list)
        self.dlq: dict[tuple[int, int], dict] = {}  # by source (partition, offset)
        self.dlq_copies = 0
        self.alerts: list[dict] = []
        self.last_alert_s = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        from kafka import KafkaConsumer

        t = self.settings.topics
        consumer = KafkaConsumer(t.decisions, t.dlq, t.alerts,
                                 bootstrap_servers=self.settings.bootstrap_servers,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 group_id=None, **KAFKA_TIMEOUTS)
        try:
            while not self._halt.is_set():
                for tp, msgs in consumer.poll(timeout_ms=300).items():
                    values = [orjson.loads(m.value) for m in msgs]
                    with self.lock:
                        if tp.topic == t.decisions:
                            for v in values:
                                self.decisions[v["settlement_id"]].append(v)
                        elif tp.topic == t.dlq:
                            for v in values:
                                src = v["source"]
                                self.dlq[(src["partition"], src["offset"])] = v
                                self.dlq_copies += 1
                        else:
                            self.alerts.extend(values)
                            self.last_alert_s = time.monotonic()
        finally:
            consumer.close()

    def progress(self) -> int:
        """Input messages accounted for: distinct decided ids + distinct DLQ sources."""
        with self.lock:
            return len(self.decisions) + len(self.dlq)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def _read_all(settings: Settings, topics: list[str], on_batch: Any, timeout_s: float = 120.0,
              quiet_s: float = 5.0) -> None:
    """Read ``topics`` from the beginning to their end, calling ``on_batch(tp, msgs)``.

    The end is the high-water mark of fetch responses (right on Tansu, whose
    ListOffsets(latest) is not: BROKER.md gap 2); ``quiet_s`` without a record ends it too.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, **KAFKA_TIMEOUTS)
    tps = [TopicPartition(t, q) for t in topics
           for q in sorted(consumer.partitions_for_topic(t) or ())]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    deadline = time.monotonic() + timeout_s
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline and time.monotonic() - last_new < quiet_s:
            for tp, msgs in consumer.poll(timeout_ms=300).items():
                last_new = time.monotonic()
                on_batch(tp, msgs)
            ends = [consumer.highwater(tp) for tp in tps]
            if all(e is not None and consumer.position(tp) >= e for tp, e in zip(tps, ends)):
                return
    finally:
        consumer.close()


def read_changelogs(settings: Settings, tables: tuple[str, ...] = TABLES) -> dict[str, dict]:
    """Final value per key of each ``<app_id>-<table>-changelog``, read from the beginning
    (last record wins; a ``None`` value deletes the key)."""
    topics = {f"{settings.app_id}-{t}-changelog": t for t in tables}
    state: dict[str, dict] = {t: {} for t in tables}

    def apply(tp: Any, msgs: list) -> None:
        table = state[topics[tp.topic]]
        for m in msgs:
            key = orjson.loads(m.key)
            if m.value is None:
                table.pop(key, None)
            else:
                table[key] = orjson.loads(m.value)

    _read_all(settings, list(topics), apply)
    if "trace-code-batches-v1" in state:  # compare claims (code → claim), not batch records
        state["trace-code-batches-v1"] = claims_from_records(state["trace-code-batches-v1"])
    return state


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


# ---- comparing runs ------------------------------------------------------------------------


def decision_view(d: dict) -> tuple:
    """What must be identical between runs for one settlement: the decision, the rules
    version, and every hit (rule, action, message, items, related)."""
    return (d["decision"], d["rules_version"], json.dumps(d["hits"], sort_keys=True))


def alert_families(alerts: list[dict]) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for a in alerts:
        out[a["rule"].split(".", 1)[0]].add((a["alert_id"], a["status"]))
    return dict(out)


def diff_state(clean: dict[Any, Any], crashed: dict[Any, Any], limit: int = 3) -> list[str]:
    """Human-readable differences between two final changelog states."""
    problems = []
    missing = sorted(set(clean) - set(crashed), key=str)
    extra = sorted(set(crashed) - set(clean), key=str)
    if missing:
        problems.append(f"{len(missing)} keys missing, e.g. {missing[:limit]}")
    if extra:
        problems.append(f"{len(extra)} extra keys, e.g. {extra[:limit]}")
    differ = sorted((k for k in set(clean) & set(crashed) if clean[k] != crashed[k]), key=str)
    if differ:
        examples = [f"{k!r}:\n  clean   {clean[k]}\n  crashed {crashed[k]}"
                    for k in differ[:limit]]
        problems.append(f"{len(differ)} keys differ, e.g.\n" + "\n".join(examples))
    return problems


# ---- claims: the run's own arrival order, replayed in-process -------------------------------

# Claim rules whose hit depends on which of a patient's (or a code's) settlements arrived
# first: the hit goes to the later arrival (detectors.claims.patient_rules, .trace). After a
# failover the partitions of the dead worker wait ~10 s while the survivor runs ahead, so
# their settlements reach the patient/trace stages in another order than in a clean run,
# and e.g. the *other* settlement of a reused trace code gets the block. Legitimate; these
# decisions are checked against the run's own arrival order instead.
ORDER_RULES = frozenset({"claim.trace_code_reuse", "claim.duplicate_item",
                         "claim.split_admission", "claim.overlapping_stay",
                         "claim.impossible_travel", "claim.pharmacy_frequency"})


def read_partitions(settings: Settings, topics: list[str]) -> dict[str, dict[int, list[bytes]]]:
    """Every record value of ``topics``, per partition in offset order."""
    out: dict[str, dict[int, list[bytes]]] = {t: defaultdict(list) for t in topics}

    def keep(tp: Any, msgs: list) -> None:
        out[tp.topic][tp.partition].extend(m.value for m in msgs)

    _read_all(settings, topics, keep)
    return out


@dataclass
class ClaimsReplay:
    """What the claims stage must have produced, given the order its inputs arrived in."""

    decisions: dict[str, dict]
    alert_keys: set[tuple[str, str]]
    histories: dict[str, Any]
    traces: dict[str, Any]


class _Capture:
    def __init__(self) -> None:
        self.decisions: dict[str, dict] = {}
        self.alerts: set[tuple[str, str]] = set()
        self.hops: list[tuple[int, bytes]] = []

    async def trace(self, partition: int, key: bytes, value: bytes) -> None:
        self.hops.append((partition, value))

    async def decision(self, key: bytes, value: bytes) -> None:
        self.decisions.setdefault(key.decode(), orjson.loads(value))

    async def alert(self, key: bytes, value: bytes) -> None:
        a = orjson.loads(value)
        self.alerts.add((a["alert_id"], a["status"]))


def replay_claims(settings: Settings) -> ClaimsReplay:
    """Run the claims stage in-process (``ClaimsStage`` over dicts) on the arrival order the
    run's internal topics recorded, taking only the *order* from the run: every hop's
    content (patient hits, the claims seen at earlier hops) is recomputed here, so lost or
    doubly applied state in the run cannot hide. A redelivered copy finds its own entry and
    changes nothing, as the real stage must. Partitions are independent (a patient's
    history lives in one partition, a code's claim in one), so any schedule that keeps each
    partition's order and each settlement's hop order gives the same result."""
    import asyncio

    from prometheus_client import CollectorRegistry

    from service import metrics
    from service.batching import items_of
    from service.claims_stage import ClaimsStage
    from service.claims_state import PATIENT_TOPIC, TRACE_TOPIC
    from service.rules_io import DEFAULT_RULES_PATH, load_ruleset_file
    from service.runtime import Runtime

    by_patient = f"{settings.app_id}-{PATIENT_TOPIC}"
    by_trace = f"{settings.app_id}-{TRACE_TOPIC}"
    # Internal messages are batches (JSON arrays): replay their items one by one, in order.
    topics = {t: {q: [orjson.dumps(item) for v in values for item in items_of(v)]
                  for q, values in parts.items()}
              for t, parts in read_partitions(settings, [by_patient, by_trace]).items()}
    rt = Runtime(settings=settings, metrics=metrics.create(CollectorRegistry()),
                 ruleset=load_ruleset_file(settings.rules_file or DEFAULT_RULES_PATH))
    out = _Capture()
    histories: dict[str, Any] = {}
    traces: dict[str, Any] = {}
    stage = ClaimsStage(rt, histories, traces, out)

    def sid_of(value: bytes) -> str:
        return orjson.loads(orjson.loads(value)["raw"])["settlement_id"]

    async def go() -> None:
        # Patient hops: every partition in order; remember the first hop each settlement
        # would send on (content recomputed here).
        made: dict[tuple[str, int], bytes] = {}
        for q in sorted(topics[by_patient]):
            for value in topics[by_patient][q]:
                out.hops.clear()
                await stage.on_patient(value, q)
                for p, hop in out.hops:
                    made.setdefault((sid_of(hop), p), hop)
        # Trace hops: advance any partition whose next message's previous hop is done.
        queues = {q: list(v) for q, v in topics[by_trace].items()}
        heads = dict.fromkeys(queues, 0)
        while any(heads[q] < len(queues[q]) for q in queues):
            progressed = False
            for q in sorted(queues):
                while heads[q] < len(queues[q]):
                    sid = sid_of(queues[q][heads[q]])
                    hop = made.get((sid, q))
                    if hop is None:
                        break  # its previous hop (another partition) is not replayed yet
                    out.hops.clear()
                    await stage.on_trace(hop, q)
                    for p, nxt in out.hops:
                        made.setdefault((sid, p), nxt)
                    heads[q] += 1
                    progressed = True
            if not progressed:
                stuck = {q: sid_of(queues[q][heads[q]]) for q in queues
                         if heads[q] < len(queues[q])}
                raise AssertionError(f"trace hops with no earlier hop in the run: {stuck}")

    asyncio.run(go())
    return ClaimsReplay(out.decisions, out.alerts, orjson.loads(orjson.dumps(histories)),
                        orjson.loads(orjson.dumps(traces)))


# ---- the verdict ---------------------------------------------------------------------------


def _order_free(d: dict) -> str:
    return json.dumps([h for h in d["hits"] if h["rule"] not in ORDER_RULES], sort_keys=True)


def check(feed: Feed, clean: RunResult, run: RunResult, replay: ClaimsReplay,
          label: str) -> list[str]:
    """Every way ``run`` (killed) differs from ``clean`` where it must not; [] = none.

    - inputs: every valid settlement has a decision, every defective one a DLQ record
      with the right reason, no input in both, nothing else;
    - decisions: every copy equals the claims stage replayed on the run's own arrival order
      (``replay_claims``); hits of order-free rules equal the clean run's;
    - alerts: peer and fund (alert_id, status) sets equal the clean run's; claim alerts
      equal the replay's;
    - state: final changelog values equal the clean run's for the entity-month,
      scope-month and settlement-id tables; patient histories and trace claims have the
      clean run's keys and the replay's values (their stored hits and first claimants
      follow arrival order). No field is excluded: no table stores a wall-clock stamp;
    - logs: no worker read offsets with a hole (``offsets jumped``: state can match by
      luck while a message went undelivered).
    """
    problems: list[str] = [f"[{label}] table recovery cut short: {p}" for p in run.recovery]
    for worker in run.workers:
        log_text = worker.log_path.read_text(errors="replace") if worker.log_path else ""
        jumps = [line for line in log_text.splitlines() if "offsets jumped" in line]
        if jumps:
            problems.append(f"[{label}] {worker.log_path}: reads jumped: {jumps[:3]}")
    if run.probe and (run.probe["duplicates"] != run.probe["sent"]
                      or run.probe["decided_again"] or run.probe["other_dlq"]):
        problems.append(f"[{label}] every valid settlement sent again must be rejected as a "
                        f"duplicate: {run.probe}")

    def fail(what: str, items: list) -> None:
        if items:
            problems.append(f"[{label}] {what}: {len(items)}, e.g. {items[:3]}")

    decided = set(run.decisions)
    fail("valid settlements without a decision", sorted(feed.valid_ids - decided))
    fail("decisions for unknown ids", sorted(decided - feed.valid_ids))
    reasons = Counter(v["reason"] for v in run.dlq.values())
    if reasons != feed.dlq_reasons:
        problems.append(f"[{label}] DLQ reasons {dict(reasons)} != {dict(feed.dlq_reasons)}")
    if {k: v["reason"] for k, v in run.dlq.items()} != {
            k: v["reason"] for k, v in clean.dlq.items()}:
        problems.append(f"[{label}] DLQ records (source, reason) differ from the clean run")
    if len(decided) + len(run.dlq) != feed.total:
        problems.append(f"[{label}] {len(decided)} decided + {len(run.dlq)} in the DLQ "
                        f"!= {feed.total} inputs")

    fail("decision copies that differ from the arrival-order replay", sorted(
        (sid, decision_view(d)[0]) for sid, ds in run.decisions.items() for d in ds
        if sid in replay.decisions and decision_view(d) != decision_view(replay.decisions[sid])))
    fail("decided in the run but not in the replay", sorted(decided - set(replay.decisions)))
    fail("order-free hits that differ from the clean run", sorted(
        sid for sid, ds in run.decisions.items()
        if sid in clean.decisions and _order_free(ds[0]) != _order_free(clean.decisions[sid][0])))

    got, want = alert_families(run.alerts), alert_families(clean.alerts)
    for family in ("peer", "fund"):
        g, w = got.get(family, set()), want.get(family, set())
        fail(f"{family} alerts missing (alert_id, status)", sorted(w - g))
        fail(f"{family} alerts extra (alert_id, status)", sorted(g - w))
    g = got.get("claim", set())
    fail("claim alerts missing vs replay", sorted(replay.alert_keys - g))
    fail("claim alerts extra vs replay", sorted(g - replay.alert_keys))

    for table in ("entity-months-v1", "fund-months-v1", "settlement-ids-v1"):
        for p in diff_state(clean.state[table], run.state[table]):
            problems.append(f"[{label}] {table}: {p}")
    for table, expected in (("patient-history-v1", replay.histories),
                            ("trace-code-batches-v1", replay.traces)):
        if set(run.state[table]) != set(clean.state[table]):
            problems.append(f"[{label}] {table}: keys differ from the clean run")
        for p in diff_state(expected, run.state[table]):
            problems.append(f"[{label}] {table} vs replay: {p}")
    return problems


def summary(feed: Feed, clean: RunResult, run: RunResult) -> dict[str, Any]:
    """Numbers for the log: copies re-sent, decisions that followed another arrival order."""
    order_diff = sum(1 for sid, ds in run.decisions.items() if sid in clean.decisions
                     and decision_view(ds[0]) != decision_view(clean.decisions[sid][0]))
    return {"inputs": feed.total, "seconds": round(run.seconds, 1),
            "timings": {k: round(v, 1) for k, v in run.timings.items()},
            "kills": [{k: v for k, v in kill.items() if k != "ends"} for kill in run.kills],
            "recovery_checked": sum(1 for kill in run.kills if "ends" in kill),
            "probe": run.probe,
            "decision_copies": sum(len(v) for v in run.decisions.values()),
            "alert_copies": len(run.alerts), "dlq_copies": run.dlq_copies,
            "decisions_in_another_arrival_order": order_diff}
