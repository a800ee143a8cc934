"""Throughput of service.validation.parse_settlement (bytes -> Settlement) on one core.

A typical settlement has 10 item lines (drugs with trace codes, exams, services, ...).
Prints events/s and writes bench/out/validation.json with the machine facts.

    .venv/bin/python bench/bench_validation.py [--n N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from service.validation import Rejection, parse_settlement

ROOT = Path(__file__).resolve().parents[1]

CATEGORIES = ("drug", "drug", "drug", "drug", "exam", "exam", "service", "treatment",
              "consumable", "bed")  # fmt: skip


def typical_settlement(rng: random.Random, seq: int, n_items: int = 10) -> dict:
    """One outpatient settlement with ``n_items`` lines, amounts consistent to the fen."""
    items = []
    for k in range(n_items):
        category = CATEGORIES[k % len(CATEGORIES)]
        quantity = rng.randint(1, 3)
        unit_fen = rng.randint(50, 30_000)
        item = {
            "code": f"XJ{rng.randint(10**9, 10**10 - 1)}",
            "name": "头孢克洛缓释片" if category == "drug" else "B超常规检查",
            "category": category,
            "quantity": quantity,
            "unit_price": unit_fen / 100,
            "amount": unit_fen * quantity / 100,
        }
        if category == "drug":
            item["days_supply"] = rng.randint(1, 7)
            item["trace_codes"] = [str(rng.randint(10**19, 10**20 - 1)) for _ in range(quantity)]
        items.append(item)
    total_fen = sum(round(i["amount"] * 100) for i in items)
    return {
        "settlement_id": f"610302-20251118-{seq:06d}",
        "settled_at": f"2025-11-18T{8 + seq % 10:02d}:{seq % 60:02d}:11+08:00",
        "region": "610302",
        "institution": {"id": "H0007", "kind": "hospital", "level": 2, "ownership": "private"},
        "department": {"id": "SURG1", "specialty": "surgery"},
        "doctor_id": f"D{1000 + seq % 50}",
        "patient": {"id": f"p-{rng.getrandbits(32):08x}", "gender": "F", "age": rng.randint(0, 99)},
        "visit": {"kind": "outpatient", "diagnoses": ["K40.9", "I10"]},
        "items": items,
        "total_amount": total_fen / 100,
        "fund_amount": (total_fen * 6 // 10) / 100,
    }


def rate(fn: Callable[[bytes], object], messages: list[bytes], n: int, repeat: int) -> dict:
    """Best and median events/s over ``repeat`` runs of ``n`` calls each."""
    for raw in messages[:1000]:  # warm-up
        fn(raw)
    rates = []
    count = len(messages)
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(n):
            fn(messages[i % count])
        rates.append(n / (time.perf_counter() - start))
    return {
        "best_events_per_s": round(max(rates)),
        "median_events_per_s": round(statistics.median(rates)),
    }


def machine() -> dict:
    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "orjson": orjson.__version__,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="events per run (default 50000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs; best and median reported")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "validation.json")
    args = parser.parse_args(argv)

    rng = random.Random(7)
    events = [typical_settlement(rng, seq) for seq in range(1000)]
    valid = [orjson.dumps(e) for e in events]
    for raw in valid:
        assert not isinstance(parse_settlement(raw), Rejection), parse_settlement(raw)
    invalid = []
    for e in events:
        e = {**e, "patient": {**e["patient"], "age": 200}, "items": [dict(i) for i in e["items"]]}
        e["items"][3]["amount"] = -1
        invalid.append(orjson.dumps(e))

    results = {
        "benchmark": "service.validation.parse_settlement",
        "items_per_event": 10,
        "mean_event_bytes": round(statistics.mean(len(r) for r in valid)),
        "n": args.n,
        "repeat": args.repeat,
        "machine": machine(),
        "valid_parse_settlement": rate(parse_settlement, valid, args.n, args.repeat),
        "invalid_schema_rejection": rate(parse_settlement, invalid, args.n, args.repeat),
        "orjson_loads_only": rate(orjson.loads, valid, args.n, args.repeat),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))

    m = results["machine"]
    print(f"machine: nproc={m['nproc']} cpu={m['cpu']!r} python={m['python']} orjson={m['orjson']}")
    print(f"event: 10 items, ~{results['mean_event_bytes']} bytes; n={args.n} x {args.repeat} runs")
    for key in ("valid_parse_settlement", "invalid_schema_rejection", "orjson_loads_only"):
        r = results[key]
        print(f"{key:26s} {r['best_events_per_s']:>9,} events/s best, "
              f"{r['median_events_per_s']:>9,} median, one core")  # fmt: skip
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
