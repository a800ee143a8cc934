"""The measured runs: one worker (throughput, latency, /v1/check, memory, state), the
baseline agent, and two workers. Each run has its own app id and topics on one broker."""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from service.broker import EmbeddedBroker
from service.settings import Settings
from support.cluster import WorkerProcess

from common import (
    ROOT,
    cpu_s,
    fresh_settings,
    latency_summary_ms,
    proc_memory_mb,
    rate_per_s,
    wait_until,
)
from kafka_io import DecisionCollector, GroupLag, app_census, paced, prefill
from procs import Profiler, check_load, run_baseline, start_workers

CRASH = re.compile(r"Agent\*: ([\w.\[\]]+)\]: Crashed reason=(\w+)")


@dataclass(frozen=True)
class Options:
    n: int
    latency_s: float
    check_n: int
    concurrency: int
    profile: bool
    work_dir: Path
    timeout_s: float  # for all N decisions
    drain_s: float  # after the last decision, for every stage to catch up
    latency_fraction: float = 0.5  # of the sustained rate, for the latency phase
    latency_rate: float | None = None  # fixed rate instead of the fraction


def _merge_ends(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    return {p: max(a.get(p, 0), b.get(p, 0)) for p in set(a) | set(b)}


def decisions(collector: DecisionCollector, total: int, timeout_s: float,
              workers: list[WorkerProcess]) -> dict[str, tuple[int, float]]:
    if not collector.wait_for(total, timeout_s):
        tails = "\n---\n".join(w.log_tail(40) for w in workers)
        raise RuntimeError(f"only {collector.done()} of {total} settlements decided in "
                           f"{timeout_s:.0f}s; worker log:\n{tails}")
    return collector.snapshot()[0]


def throughput(collector: DecisionCollector, lag: GroupLag, total: int,
               ends: dict[int, int], opt: Options, workers: list[WorkerProcess]) -> dict:
    """Rate from the first to the last first-decision (decision record timestamps), and
    until the group has committed every input of every stage (the pipeline drained)."""
    first = decisions(collector, total, opt.timeout_s, workers)
    _, dlq, records = collector.snapshot()
    stamps = sorted(ts / 1000 for ts, _ in first.values())
    last_lag: dict[str, int] = {}

    def drained() -> float | bool:
        last_lag.update(lag.lag(ends))
        return sum(last_lag.values()) == 0 and time.time()

    drained_at = wait_until(drained, opt.drain_s, every_s=0.25)
    decided = rate_per_s(len(stamps), stamps[0], stamps[-1])
    drain = rate_per_s(total, stamps[0], drained_at) if drained_at else None
    out = {"settlements": total, "decided": len(first), "dlq": dlq,
           "decision_records": records, "decisions_span_s": round(stamps[-1] - stamps[0], 2),
           "decided_per_s": decided,
           "drained_span_s": round(drained_at - stamps[0], 2) if drained_at else None,
           "drained_per_s": drain,
           "sustained_per_s": min(r for r in (decided, drain) if r) if decided else None}
    if lag.short_ends:
        out["end_offset_short_by"] = dict(lag.short_ends)
    if not drained_at:
        out["not_drained_lag"] = {k.removeprefix(lag.settings.app_id + "-"): v
                                  for k, v in last_lag.items() if v}
    return out


def one_worker(broker: EmbeddedBroker, lines: dict[str, list[bytes]], opt: Options) -> dict:
    """Prefill → start → throughput; then latency at 50 %, /v1/check, memory, state."""
    s = fresh_settings(broker.url, "w1")
    pre = prefill(s, lines["prefill"])
    collector = DecisionCollector(s)
    collector.start()
    lag = GroupLag(s)
    started = time.time()
    [worker] = start_workers(s, opt.work_dir / "pipeline", 1)
    broker_pid = broker.process.pid if broker.process else -1
    cpu0 = (cpu_s(worker.proc.pid), cpu_s(broker_pid))
    out: dict = {"app_id": s.app_id, "prefill": {k: v for k, v in pre.items() if k != "ends"}}
    try:
        profiler = None
        if opt.profile:
            profiler = Profiler(worker.proc.pid, ROOT / "bench" / "out",
                                max(10, min(60, int(opt.n / 100))))
        out["throughput"] = throughput(collector, lag, opt.n, pre["ends"], opt, [worker])
        cpu1 = (cpu_s(worker.proc.pid), cpu_s(broker_pid))
        out["throughput"]["cpu_ms_per_settlement"] = {
            name: round(1000 * (b - a) / opt.n, 2) if a is not None and b is not None else None
            for name, a, b in zip(("worker", "broker"), cpu0, cpu1)}
        first, _, _ = collector.snapshot()
        out["throughput"]["start_to_first_decision_s"] = round(
            min(ts for ts, _ in first.values()) / 1000 - started, 2)
        out["memory_after_prefill"] = proc_memory_mb(worker.proc.pid)
        if profiler is not None:
            out["profile"] = profiler.finish()
        out["latency"] = latency(s, collector, lines["latency"], pre["ends"],
                                 out["throughput"]["sustained_per_s"], opt, worker,
                                 broker_pid)
        out["check"] = check_load(worker, lines["check"], opt.concurrency)
        out["memory"] = {"worker": proc_memory_mb(worker.proc.pid),
                         "broker": proc_memory_mb(broker.process.pid) if broker.process
                         else None}
    finally:
        worker.stop()
        collector.stop()
        lag.close()
    out["worker_errors"] = crashes([worker])
    census = app_census(s)
    out["state"] = state_figures(census, opt.n + out["latency"]["sent"])
    out["settings"] = s
    return out


def latency(s: Settings, collector: DecisionCollector, lines: list[bytes],
            ends: dict[int, int], max_rate: float | None, opt: Options,
            worker: WorkerProcess, broker_pid: int) -> dict:
    """Send at ~50 % of the sustained rate; settlement sent → decision received. Also the
    CPU each process spends per settlement at that steady rate."""
    rate = opt.latency_rate or opt.latency_fraction * (max_rate or 10.0)
    count = min(len(lines), max(20, round(rate * opt.latency_s)))
    before = {"worker": cpu_s(worker.proc.pid), "broker": cpu_s(broker_pid)}
    sent, _ = paced(s, lines[:count], rate)
    first = decisions(collector, opt.n + count, opt.timeout_s, [worker])
    after = {"worker": cpu_s(worker.proc.pid), "broker": cpu_s(broker_pid)}
    last_sent = max(sent.values())
    last_decided = max(first[sid][1] for sid in sent if sid in first)
    received = [first[sid][1] - t for sid, t in sent.items() if sid in first]
    produced = [first[sid][0] / 1000 - t for sid, t in sent.items() if sid in first]
    cpu_ms = {k: round(1000 * (after[k] - v) / count, 2) if v is not None and after[k]
              is not None else None for k, v in before.items()}
    return {"rate_per_s": round(rate, 1), "sent": count,
            "sending_s": round(last_sent - min(sent.values()), 2),
            "last_decision_after_last_send_s": round(last_decided - last_sent, 2),
            "end_to_end": latency_summary_ms(received),
            "to_decision_produced": latency_summary_ms(produced),
            "cpu_ms_per_settlement": cpu_ms}


def state_figures(census: dict, processed: int) -> dict:
    tables = census["tables"]
    internal = census["topics"]
    per = lambda n: round(n / processed, 2) if processed else None  # noqa: E731
    return {
        "tables": tables,
        "internal_topics": internal,
        "end_offset_short_by": census.get("end_offset_short_by", {}),
        "per_settlement": {
            "changelog_writes": per(sum(t["records_written"] for t in tables.values())),
            "internal_messages": per(sum(t["records"] for t in internal.values())),
            "internal_ticks": per(sum(t["by_kind"].get("t", 0) for t in internal.values())),
            "live_state_bytes": per(sum(t["live_bytes"] for t in tables.values())),
        },
    }


def crashes(workers: list[WorkerProcess]) -> dict[str, int]:
    """Agent crashes in the workers' logs, by agent and exception type."""
    found: Counter[str] = Counter()
    for w in workers:
        if w.log_path is not None and w.log_path.exists():
            for agent, reason in CRASH.findall(w.log_path.read_text(errors="replace")):
                found[f"{agent.replace('[.]', '.')}: {reason}"] += 1
    return dict(found)


def baseline(broker: EmbeddedBroker, settings: Settings, expect: int, opt: Options) -> dict:
    """The trivial agent over the one-worker run's settlements topic, first ``expect``."""
    state = run_baseline(settings, settings.topics.settlements, expect,
                         opt.work_dir / "baseline", opt.timeout_s)
    return {"settlements": expect,
            "per_s": rate_per_s(expect, state["first_s"], state["done_s"]),
            "span_s": round(state["done_s"] - state["first_s"], 2)}


def two_workers(broker: EmbeddedBroker, lines: list[bytes], opt: Options) -> dict:
    """The same prefill through two workers of one group, launched together."""
    s = fresh_settings(broker.url, "w2")
    pre = prefill(s, lines)
    collector = DecisionCollector(s)
    collector.start()
    lag = GroupLag(s)
    workers = start_workers(s, opt.work_dir / "scale", 2)
    try:
        out = throughput(collector, lag, len(lines), pre["ends"], opt, workers)
        out["memory"] = [proc_memory_mb(w.proc.pid) for w in workers]
    finally:
        for w in workers:
            w.stop()
        collector.stop()
        lag.close()
    out["assignments"] = [_assignments(w) for w in workers]
    out["worker_errors"] = crashes(workers)
    return out


def _assignments(worker: WorkerProcess) -> int | None:
    """How many partition assignments a worker's log shows (1 = no rebalance)."""
    if worker.log_path is None or not worker.log_path.exists():
        return None
    return worker.log_path.read_text(errors="replace").count(
        "Setting newly assigned partitions") or None
