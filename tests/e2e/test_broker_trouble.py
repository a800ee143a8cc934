"""Broker trouble (reliability issue, item 4): a worker started before its broker, or losing
it for a while, says so clearly, retries, and continues without losing data.

(a) The worker is pointed at a free port with nothing listening. Faust alone exits at once
    (``KafkaConnectionError: Unable to bootstrap``, exit code 1); ``service.worker`` waits
    for the broker instead, logging ``broker not reachable at HOST:PORT (...); retrying in
    Ns`` with back-off. A broker is then started on that port, and everything replayed is
    decided.
(b) Mid-replay the broker is frozen with SIGSTOP for 10 s, then resumed with SIGCONT (the
    embedded broker keeps its data in memory, so a restart would lose it: freezing is how
    "losing it for a while" is simulated; to the clients it is the same — connections
    stall, requests and heartbeats time out). Every settlement is still decided, and the
    worker is still running.

Each test runs its own broker (never the shared one: it is frozen or started late).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import orjson
import pytest

from service.broker import BrokerError, EmbeddedBroker, free_port, wait_for_port
from service.feed import replay
from support.cluster import WorkerProcess, create_all_topics, read_outputs, unique_settings
from support.reliability import metric, spawn_worker, wait_ready

pytestmark = pytest.mark.broker

PAUSE_S = float(__import__("os").environ.get("XPAUSE", "10"))


@pytest.fixture(scope="module")
def feed(tmp_path_factory) -> tuple[Path, set[str]]:
    from service.synth import generate

    out = tmp_path_factory.mktemp("trouble-data")
    generate(out, months=1, seed=23, scale="small")
    lines = (out / "settlements.jsonl").read_bytes().splitlines()[:1200]
    path = out / "feed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, {orjson.loads(x)["settlement_id"] for x in lines}


def start_broker(port: int, log: Path) -> EmbeddedBroker:
    try:
        return EmbeddedBroker(port).start(log_file=log)
    except BrokerError as exc:
        pytest.fail(f"embedded broker could not start: {exc}")


def wait_for_log(worker: WorkerProcess, text: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.log_path.exists() and text in worker.log_path.read_text(errors="replace"):
            return True
        if worker.proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def test_worker_started_before_the_broker_waits_and_then_processes(tmp_path, feed):
    path, ids = feed
    port = free_port()
    settings = unique_settings(f"kafka://127.0.0.1:{port}")
    worker = WorkerProcess(settings, tmp_path / "worker")
    broker = None
    spawn_worker(worker)
    try:
        assert wait_for_log(worker, f"broker not reachable at 127.0.0.1:{port}", 20), \
            worker.log_tail()
        time.sleep(3)
        assert worker.proc.poll() is None, f"worker exited without a broker:\n{worker.log_tail()}"
        broker = start_broker(port, tmp_path / "tansu.log")
        create_all_topics(settings)
        assert wait_for_port(worker.web_port, 60), worker.log_tail()
        assert replay(path, settings) == len(ids)
        decisions, dlq = read_outputs(settings, len(ids), timeout_s=90)
        alive = worker.proc.poll() is None
    finally:
        worker.stop()
        if broker:
            broker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "retrying in" in log and "broker reachable at" in log
    assert alive, worker.log_tail()
    assert {d["settlement_id"] for d in decisions} == ids, worker.log_tail()
    assert dlq == []


def test_broker_frozen_mid_replay_loses_nothing(tmp_path, feed):
    path, ids = feed
    broker = start_broker(free_port(), tmp_path / "tansu.log")
    settings = unique_settings(broker.url)
    worker = None
    try:
        create_all_topics(settings)
        worker = WorkerProcess(settings, tmp_path / "worker").start()
        wait_ready(worker.web_port)
        sent: list[int] = []
        replayer = threading.Thread(target=lambda: sent.append(replay(path, settings, rate=100)))
        replayer.start()
        time.sleep(4)
        read_before = metric(worker.web_port, "fund_sentinel_events_in_total")
        assert read_before > 0, "the worker was not processing yet"
        os.kill(broker.process.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            time.sleep(PAUSE_S)
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        replayer.join(timeout=120)
        assert sent == [len(ids)], "the replay did not finish"
        decisions, dlq = read_outputs(settings, len(ids), timeout_s=120)
        recovered_s = time.monotonic() - frozen_at - PAUSE_S
        alive = worker.proc.poll() is None
    finally:
        if worker:
            worker.stop()
        broker.stop()
    print(f"broker frozen {PAUSE_S:.0f}s mid-replay (after {read_before:.0f} of {len(ids)} were "
          f"read); all outputs {recovered_s:.0f}s after resume")
    assert alive, worker.log_tail()
    log = worker.log_path.read_text(errors="replace")
    assert "broker not answering at" in log and "broker answering again at" in log, \
        worker.log_tail()
    decided = {d["settlement_id"] for d in decisions}
    assert decided == ids, f"{len(ids - decided)} not decided\n{worker.log_tail()}"
    # a produce retried across the freeze may write a settlement twice: that copy is a
    # duplicate (DLQ), never a second decision or a lost one
    assert all(d["reason"] == "duplicate" and d["settlement_id"] in ids for d in dlq), dlq[:3]


def test_waiting_for_the_broker_backs_off_and_says_why(caplog):
    """``wait_for_broker`` without a broker: one warning per failed attempt, with back-off,
    then one line when it answers (no sleeping, no network)."""
    from service.settings import Settings
    from service.broker_watch import BROKER_RETRY_S, wait_for_broker

    answers = iter(["connection refused"] * 7 + [None])
    slept: list[float] = []
    settings = Settings(broker="kafka://10.0.0.1:9092;10.0.0.2:9093")
    with caplog.at_level("INFO", logger="service.broker_watch"):
        wait_for_broker(settings, probe=lambda servers: next(answers), sleep=slept.append)
    assert slept == list(BROKER_RETRY_S) + [BROKER_RETRY_S[-1]] * 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 7
    assert warnings[0] == ("broker not reachable at 10.0.0.1:9092, 10.0.0.2:9093 "
                           "(connection refused); retrying in 1s")
    assert "broker reachable at 10.0.0.1:9092, 10.0.0.2:9093 after 7 failed attempt(s)" in \
        caplog.records[-1].getMessage()
