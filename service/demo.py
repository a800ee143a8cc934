"""``fund-sentinel demo``: embedded broker + worker + synthetic feed + console, one command.

The worker runs as a child process (its own event loop and signal handling); on Ctrl-C,
SIGTERM or ``--duration`` the feed stops, then the worker, then the broker: no orphans.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .broker import create_topics, free_port, start_embedded, wait_for_port
from .feed import follow_topics, replay
from .render import alert_line
from .settings import Settings

BAD_LINES = (b'{"settlement_id": "broken-', b"not json at all",
             b'{"settlement_id": "bad-amounts", "items": []}')


def prepare_feed(args: argparse.Namespace) -> Path:
    """Generate the data set once, then mix a few bad lines in so the DLQ has something."""
    from .synth import generate

    data = args.data_dir / f"seed{args.seed}-m{args.months}"
    if not (data / "settlements.jsonl").exists():
        print(f"generating {args.months} months of settlements into {data} ...", flush=True)
        generate(data, months=args.months, seed=args.seed, scale="small")
    feed = data / "feed.jsonl"
    if not feed.exists():
        with open(data / "settlements.jsonl", "rb") as src, open(feed, "wb") as out:
            for i, line in enumerate(src):
                out.write(line)
                if i % 997 == 500:
                    out.write(BAD_LINES[i % len(BAD_LINES)] + b"\n")
    return feed


def console(settings: Settings, stop: threading.Event, counts: collections.Counter) -> None:
    """Print every alert and DLQ record as it arrives; count decisions by outcome."""
    topics = settings.topics

    def show(topic: str, value: dict) -> None:
        if topic == topics.alerts:
            counts[f"alerts {value.get('status')}"] += 1
            print("ALERT  " + alert_line(value, mask_patients=True), flush=True)
        elif topic == topics.dlq:
            counts[f"dlq {value.get('reason')}"] += 1
            print(f"DLQ    {value.get('reason')}: {'; '.join(value.get('errors', [])[:2])}",
                  flush=True)
        else:
            counts[f"decisions {value.get('decision')}"] += 1

    def loop() -> None:
        try:
            follow_topics(settings, [topics.alerts, topics.dlq, topics.decisions],
                          stop.is_set, show)
        except Exception as exc:  # the console must never take the demo down
            print(f"console stopped: {exc}", file=sys.stderr)

    threading.Thread(target=loop, daemon=True).start()


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    feed = prepare_feed(args)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    broker = start_embedded(log_file=args.data_dir / "broker.log")
    worker: subprocess.Popen[bytes] | None = None
    try:
        settings = dataclasses.replace(settings, broker=broker.url, web_port=args.web_port)
        create_topics(broker.bootstrap, {t: 1 if t == settings.topics.rules else settings.partitions
                                         for t in settings.topics.public()})
        log_path = args.data_dir / "worker.log"
        print(f"broker {broker.url}; worker log {log_path}; console http://127.0.0.1:{args.web_port}/console",
              flush=True)
        env = dict(os.environ, FUND_SENTINEL_DATA_DIR=str(args.data_dir / "worker"))
        worker = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--broker", broker.url,
             "--web-port", str(args.web_port)],
            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, env=env)
        if not wait_for_port(args.web_port, 60):
            print("worker did not start; see " + str(log_path), file=sys.stderr)
            return 1
        counts: collections.Counter = collections.Counter()
        feeder = threading.Thread(
            target=lambda: counts.update(sent=replay(feed, settings, rate=args.rate,
                                                     stop=stop.is_set)), daemon=True)
        feeder.start()
        started = time.monotonic()
        console_started = False
        while not stop.is_set():
            if args.duration and time.monotonic() - started > args.duration:
                break
            if worker.poll() is not None:
                print(f"worker exited with {worker.returncode}; see {log_path}", file=sys.stderr)
                return 1
            if not console_started and time.monotonic() - started > 2:
                console(settings, stop, counts)
                console_started = True
            stop.wait(5.0)
            print("status: " + ", ".join(f"{k}={v:,}" for k, v in sorted(counts.items())),
                  flush=True)
        return 0
    finally:
        stop.set()
        if worker and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        broker.stop()
        print("demo stopped: broker and worker are down.", flush=True)
