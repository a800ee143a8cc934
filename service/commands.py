"""Implementations of the CLI subcommands (argument parsing lives in ``cli``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

import orjson

from .settings import Settings


def broker(args: argparse.Namespace, settings: Settings) -> int:
    from .broker import BrokerError, create_topics, start_embedded

    try:
        b = start_embedded(args.port)
    except BrokerError as exc:
        print(f"fund-sentinel broker: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        plan = {t: (1 if t == settings.topics.rules else args.partitions)
                for t in settings.topics.public()}
        create_topics(b.bootstrap, plan)
        print(b.url, flush=True)
        print(f"topics: {', '.join(plan)} ({args.partitions} partitions; rules: 1). "
              "Ctrl-C to stop.", file=sys.stderr, flush=True)
        while not stop.is_set() and b.process and b.process.poll() is None:
            stop.wait(0.5)
        if b.process and b.process.poll() is not None:
            print(f"fund-sentinel broker: Tansu exited with {b.process.returncode}",
                  file=sys.stderr)
            return 1
    finally:
        b.stop()
    return 0


def worker(args: argparse.Namespace, settings: Settings) -> int:
    from .worker import run

    run(settings)
    return 0


def generate(args: argparse.Namespace, settings: Settings) -> int:
    from .synth import generate as gen

    started = time.monotonic()
    summary = gen(args.out, months=args.months, seed=args.seed, scale=args.scale,
                  start=args.start)
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    print(f"wrote {args.out} in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


def replay(args: argparse.Namespace, settings: Settings) -> int:
    from .feed import lines, print_progress, replay as send

    if not args.file.exists():
        print(f"fund-sentinel replay: no such file: {args.file}", file=sys.stderr)
        return 2
    sent = send(args.file, settings, rate=args.rate, topic=args.topic, progress=print_progress)
    print(f"\nreplayed {sent:,} messages into {args.topic or settings.topics.settlements}",
          file=sys.stderr)
    total = sum(1 for _ in lines(args.file))
    if sent < total:
        print(f"fund-sentinel replay: {total - sent:,} of {total:,} messages were not "
              "delivered (see the error above)", file=sys.stderr)
        return 1
    return 0


def alerts(args: argparse.Namespace, settings: Settings) -> int:
    from .feed import consume
    from .render import alert_line

    n = 0
    try:
        for alert in consume(settings, args.topic or settings.topics.alerts, args.follow):
            n += 1
            print(orjson.dumps(alert).decode() if args.json else alert_line(alert), flush=True)
    except KeyboardInterrupt:
        pass
    print(f"{n} alerts", file=sys.stderr)
    return 0


def check(args: argparse.Namespace, settings: Settings) -> int:
    import urllib.error
    import urllib.request

    body = args.file.read_bytes()
    req = urllib.request.Request(args.url.rstrip("/") + "/v1/check", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            print(resp.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(), file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"fund-sentinel check: cannot reach {args.url}: {exc.reason}", file=sys.stderr)
        return 1


def demo(args: argparse.Namespace, settings: Settings) -> int:
    from .demo import run_demo

    return run_demo(args, settings)
