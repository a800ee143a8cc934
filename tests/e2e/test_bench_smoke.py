"""The pipeline benchmark still runs (bench/run.py --smoke): not a timed test.

It starts its own embedded broker and workers, like the broker tests. Only that it
finishes, writes the results with every headline figure, and that the figures are
positive is checked; their values at this size mean nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HEADLINE = (
    "throughput_per_s", "decided_per_s", "latency_rate_per_s", "latency_p50_ms",
    "latency_p95_ms", "latency_p99_ms", "check_p50_ms", "check_p99_ms", "worker_rss_mb",
    "worker_peak_rss_mb", "bytes_per_entity_month", "bytes_per_patient", "baseline_per_s",
    "ratio_to_baseline", "two_workers_per_s", "two_vs_one",
)


def test_bench_smoke_writes_results(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--n", "300",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(out.read_text())
    head = results["headline"]
    missing = [k for k in HEADLINE if k not in head]
    assert not missing, f"headline lacks {missing}"
    not_positive = {k: head[k] for k in HEADLINE
                    if not (isinstance(head[k], (int, float)) and head[k] > 0)}
    assert not not_positive, f"not positive numbers: {not_positive}"
    assert results["smoke"] is True
    assert results["pipeline"]["throughput"]["decided"] + \
        results["pipeline"]["throughput"]["dlq"] == 300
    for key in ("nproc", "cpu", "python", "packages", "date"):
        assert results["machine"][key], key
    table = out.with_suffix(".md").read_text()
    assert "| measure | value | notes |" in table


def test_fixed_rate_bench_smoke(tmp_path):
    out = tmp_path / "fixed_rate.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fixed_rate.py"), "--rates", "40",
         "--seconds", "2", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    [rate] = json.loads(out.read_text())["rates"]
    assert rate["sent"] == 80 and rate["decided"] == 80
    assert rate["end_to_end"]["p99_ms"] > 0
    assert all(v is not None and v > 0 for v in rate["cpu_ms_per_settlement"].values())
    assert "| rate/s |" in proc.stdout
