"""Large crash run, standalone: the check of tests/e2e/test_crash_recovery.py at any size.

    .venv/bin/python bench/crash_run.py --n 30000 [--kills 0.1,0.3,0.55,0.8] [--seed S]
                                        [--out bench/out/crash.json] [--keep DIR]

Starts its own embedded broker, then on fresh topics: a clean run, a run whose single
worker is SIGKILLed at the given fractions of progress (plus once while it is recovering)
and restarted each time, and a run of two workers of which one is SIGKILLed and not
restarted. Prints and writes what each crash run did (kills, copies, timings) and every
difference from the clean run; exits 1 if there is one. Not a benchmark: a soak test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from service.broker import start_embedded  # noqa: E402
from support import crash  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30_000, help="settlements (0 = the CI feed)")
    ap.add_argument("--kills", default="0.1,0.3,0.55,0.8", help="progress fractions")
    ap.add_argument("--seed", type=int, default=20251123, help="seed of the kill pauses")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "crash.json")
    ap.add_argument("--keep", type=Path, default=None, help="work dir to keep (logs)")
    args = ap.parse_args()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="crash-run-"))
    tmp.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    feed = crash.build_feed(tmp / "feed", n=args.n)
    print(f"feed: {feed.total} messages ({len(feed.valid_ids)} valid), work dir {tmp}",
          flush=True)
    broker = start_embedded(log_file=tmp / "tansu.log")
    report: dict = {"inputs": feed.total, "runs": {}}
    problems: list[str] = []
    try:
        clean = crash.run(broker.url, feed, tmp / "clean", settle_timeout_s=3600)
        report["runs"]["clean"] = crash.summary(feed, clean, clean)
        print(f"clean: {json.dumps(report['runs']['clean'])}", flush=True)
        problems += crash.check(feed, clean, clean, crash.replay_claims(clean.settings),
                                "clean")
        plans = {
            "one worker, killed and restarted": dict(kills=crash.KillPlan(
                at=tuple(float(x) for x in args.kills.split(",")), seed=args.seed,
                during_recovery_s=4.0)),
            "two workers, one killed": dict(workers=2, kills=crash.KillPlan(
                at=(0.5,), victim=1, restart=False, seed=args.seed + 1)),
        }
        for label, plan in plans.items():
            run = crash.run(broker.url, feed, tmp / label.replace(" ", "_").replace(",", ""),
                            settle_timeout_s=3600, **plan)
            report["runs"][label] = crash.summary(feed, clean, run)
            print(f"{label}: {json.dumps(report['runs'][label])}", flush=True)
            found = crash.check(feed, clean, run, crash.replay_claims(run.settings), label)
            if found:
                print(run.logs(), flush=True)
            problems += found
    finally:
        broker.stop()
    report["problems"] = problems
    report["seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print("\n".join(problems) if problems else "no differences from the clean run")
    print(f"{report['seconds']}s; written {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
