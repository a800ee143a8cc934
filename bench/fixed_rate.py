"""Latency and CPU per settlement at fixed input rates, one worker on an embedded broker.

    .venv/bin/python bench/fixed_rate.py [--rates 100,300,500] [--seconds 15]

Per rate: a fresh worker on fresh topics (after a 200-settlement warm-up), settlements
produced at the rate for the given time, then settlement sent → decision read
p50/p95/p99, and the CPU the worker and the broker spent per settlement. Prints a
Markdown table and writes ``bench/fixed_rate.json``. Shows what ``bench/run.py``'s
"half load" hides: the CPU per settlement depends on the rate (fixed polling and
per-batch costs), so latency is a function of the rate, not of a fraction of the
pre-filled maximum.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT)]

from common import (cpu_s, fresh_settings, latency_summary_ms, machine_facts,  # noqa: E402
                    settlements)
from kafka_io import DecisionCollector, paced, prefill  # noqa: E402
from phases import decisions  # noqa: E402
from procs import start_workers  # noqa: E402

from service.broker import EmbeddedBroker, start_embedded  # noqa: E402

WARM_UP = 200


def one_rate(broker: EmbeddedBroker, rate: float, seconds: float, work: Path) -> dict:
    lines = settlements(WARM_UP + int(rate * seconds), seed=11)
    s = fresh_settings(broker.url, f"rate{int(rate)}")
    prefill(s, lines[:WARM_UP])
    collector = DecisionCollector(s)
    collector.start()
    [worker] = start_workers(s, work / f"rate{int(rate)}", 1)
    try:
        decisions(collector, WARM_UP, 120, [worker])
        time.sleep(2)
        pids = (worker.proc.pid, broker.process.pid if broker.process else -1)
        before = [cpu_s(p) for p in pids]
        sent, _ = paced(s, lines[WARM_UP:], rate)
        first = decisions(collector, WARM_UP + len(sent), 60, [worker])
        after = [cpu_s(p) for p in pids]
        received = [first[sid][1] - t for sid, t in sent.items() if sid in first]
        cpu = {name: round(1000 * (b - a) / len(sent), 2) if a is not None and b is not None
               else None for name, a, b in zip(("worker", "broker"), before, after)}
        return {"rate_per_s": rate, "sent": len(sent), "decided": len(received),
                "end_to_end": latency_summary_ms(received), "cpu_ms_per_settlement": cpu}
    finally:
        worker.stop()
        collector.stop()


def markdown(results: dict) -> str:
    rows = ["| rate/s | sent | p50 / p95 / p99 ms | CPU ms per settlement, worker / broker |",
            "|---|---|---|---|"]
    for r in results["rates"]:
        e, c = r["end_to_end"], r["cpu_ms_per_settlement"]
        rows.append(f"| {r['rate_per_s']:g} | {r['sent']} | {e['p50_ms']} / {e['p95_ms']} / "
                    f"{e['p99_ms']} | {c['worker']} / {c['broker']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rates", default="100,300,500")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "fixed_rate.json")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fs-rate-"))
    broker = start_embedded(log_file=work / "tansu.log")
    try:
        rates = [one_rate(broker, float(r), args.seconds, work) for r in args.rates.split(",")]
    finally:
        broker.stop()
    results = {"date": time.strftime("%Y-%m-%d"), "machine": machine_facts(),
               "seconds_per_rate": args.seconds, "rates": rates}
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(markdown(results))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
