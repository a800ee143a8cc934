"""One-command benchmark of the whole pipeline on one machine (``make bench``).

    .venv/bin/python bench/run.py [--n N] [--smoke] [--out bench/results.json] [--profile]

In one run, on one embedded broker started here: generate settlements
(``service.synth.generate``); pre-fill ``settlements`` with N of them and start one worker
(validation, claim rules, entity-month statistics and peer cards, fund monitors): the
throughput from the first to the last decision and until every stage has drained; then
the end-to-end latency at ~50 % of that rate; ``POST /v1/check`` under concurrent
requests; worker RSS; state bytes per key from the table changelogs. Then the baseline (a
trivial Faust agent counting the same topic) and the same N through two workers. Writes
``results.json`` and ``results.md`` (the Markdown table) next to each other.

Every measured run has its own app id (consumer group) and topics. Benchmarks are not
tests: CI only runs ``--smoke`` (tests/e2e/test_bench_smoke.py) to prove this still works.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402

from common import (  # noqa: E402
    PARTITIONS,
    ROOT,
    data_facts,
    load_average,
    machine_facts,
    settlements,
)
from phases import Options, baseline, one_worker, two_workers  # noqa: E402
from report import headline, markdown  # noqa: E402

from service.broker import start_embedded  # noqa: E402

CAVEATS = [
    "One machine: the broker, the worker(s), the producer and the readers share its cores.",
    "Embedded broker (Tansu, memory storage) with the service's embedded profile "
    "(producer_linger=0, fetch.max.wait 50 ms, at-least-once). Real Kafka would change "
    "the absolute figures.",
    "2 workers vs 1: on a 2-core machine with the broker on the same cores no speed-up is "
    "expected; the figure shows the cost of the split, not scaling.",
    "Drained throughput waits for the group's committed offsets (committed every second), "
    "so it is low by up to ~1 s over the run.",
]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=None,
                   help="settlements pre-filled (default 5000; 300 with --smoke)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes (N=300, short phases): proves it works, measures nothing")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json",
                   help="results JSON; the Markdown table is written next to it (.md)")
    p.add_argument("--latency-s", type=float, default=20.0,
                   help="duration of the latency phase at ~50%% of the sustained rate")
    p.add_argument("--latency-fraction", type=float, default=0.5,
                   help="latency phase rate as a fraction of the sustained rate (0.5)")
    p.add_argument("--latency-rate", type=float, default=None,
                   help="fixed latency phase rate (settlements/s), to compare runs")
    p.add_argument("--check-n", type=int, default=2000, help="POST /v1/check requests")
    p.add_argument("--concurrency", type=int, default=8, help="/v1/check requests in flight")
    p.add_argument("--no-scale", action="store_true", help="skip the 2-worker run")
    p.add_argument("--profile", action="store_true",
                   help="py-spy the worker during the throughput phase (needs `pip install "
                   "py-spy`; writes bench/out/profile.txt; slows the run a little)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep the work dir (worker logs)")
    p.add_argument("--render", action="store_true",
                   help="only rewrite the Markdown table from an existing --out file")
    args = p.parse_args(argv)
    args.n = args.n or (300 if args.smoke else 5000)
    if args.smoke:
        args.latency_s, args.check_n = min(args.latency_s, 4.0), min(args.check_n, 100)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.render:
        table = markdown(orjson.loads(args.out.read_bytes()))
        args.out.with_suffix(".md").write_text(table, encoding="utf-8")
        print(table)
        return 0
    started = time.monotonic()
    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="fs-bench-"))
    opt = Options(n=args.n, latency_s=args.latency_s, check_n=args.check_n,
                  concurrency=args.concurrency, profile=args.profile, work_dir=work,
                  timeout_s=60.0 if args.smoke else max(180.0, args.n / 20),
                  drain_s=15.0 if args.smoke else 45.0, latency_fraction=args.latency_fraction,
                  latency_rate=args.latency_rate)
    latency_cap = int(min(5000, max(100, args.latency_s * 250)))
    say(f"generating {args.n + latency_cap + args.check_n} settlements")
    lines = settlements(args.n + latency_cap + args.check_n, args.seed)
    parts = {"prefill": lines[:args.n], "latency": lines[args.n:args.n + latency_cap],
             "check": lines[args.n + latency_cap:]}
    broker = start_embedded(log_file=work / "tansu.log")
    try:
        say(f"one worker: {args.n} pre-filled, then latency and /v1/check")
        phase_s = {}
        t0 = time.monotonic()
        pipe = one_worker(broker, parts, opt)
        settings = pipe.pop("settings")
        phase_s["one_worker"], t0 = round(time.monotonic() - t0, 1), time.monotonic()
        say(f"  {pipe['throughput']['sustained_per_s']}/s; baseline agent")
        base = baseline(broker, settings, args.n, opt)
        phase_s["baseline"], t0 = round(time.monotonic() - t0, 1), time.monotonic()
        two = None
        if not args.no_scale:
            say(f"  baseline {base['per_s']}/s; two workers")
            two = two_workers(broker, parts["prefill"], opt)
            phase_s["two_workers"] = round(time.monotonic() - t0, 1)
    finally:
        broker.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {
        "schema": 1, "date": time.strftime("%Y-%m-%d"), "smoke": args.smoke,
        "command": command.strip(), "partitions": PARTITIONS,
        "machine": {**machine_facts(), "load_average_at_start": load_before},
        "data": data_facts(parts["prefill"]), "headline": headline(pipe, base, two),
        "pipeline": pipe, "baseline": base, "two_workers": two, "caveats": CAVEATS,
        "elapsed_s": round(time.monotonic() - started, 1), "phase_s": phase_s,
    }
    if args.keep:
        results["work_dir"] = str(work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    table = markdown(results)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    say(f"wrote {args.out} and {args.out.with_suffix('.md')} in {results['elapsed_s']}s")
    return 0


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
