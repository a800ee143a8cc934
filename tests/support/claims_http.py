"""Helpers for the claims integration tests: workers with extra settings, HTTP, topics."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from service.settings import Settings
from support import cluster
from support.cluster import WorkerProcess, read_topic


def start_worker(settings: Settings, data_dir: Path, extra_env: dict[str, str],
                 timeout_s: float = 60.0) -> WorkerProcess:
    """A worker process whose environment also carries ``extra_env`` (FUND_SENTINEL_*)."""
    original = cluster.env_for

    def env_for(*args: Any) -> dict[str, str]:
        return {**original(*args), **extra_env}

    cluster.env_for = env_for  # type: ignore[assignment]
    try:
        return WorkerProcess(settings, data_dir).start(timeout_s)
    finally:
        cluster.env_for = original  # type: ignore[assignment]


def http(method: str, url: str, body: bytes | dict | None = None,
         headers: dict[str, str] | None = None, timeout_s: float = 10.0) -> tuple[int, Any]:
    """(status, decoded JSON body) of one request; error statuses are returned, not raised."""
    data = orjson.dumps(body) if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return status, raw.decode(errors="replace")


def base(worker: WorkerProcess) -> str:
    return f"http://127.0.0.1:{worker.web_port}"


def wait_until(cond: Callable[[], Any], timeout_s: float, what: str,
               every_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            got = cond()
        except OSError:  # web server not answering yet
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)


def check(worker: WorkerProcess, event: dict, timeout_s: float = 30.0) -> tuple[int, Any]:
    """POST /v1/check, retrying while the worker answers 503 (rebalance in progress)."""
    def attempt() -> tuple[int, Any] | None:
        got = http("POST", base(worker) + "/v1/check", event,
                   {"Content-Type": "application/json"})
        return None if got[0] == 503 else got

    return wait_until(attempt, timeout_s, "a /v1/check answer other than 503")


def publish(settings: Settings, events: list[dict], topic: str | None = None) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for e in events:
        producer.send(topic or settings.topics.settlements,
                      key=e["settlement_id"].encode(), value=orjson.dumps(e))
    producer.flush(timeout=20)
    producer.close(timeout=10)


def publish_raw(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    producer.send(topic, key=key, value=value, partition=0)
    producer.flush(timeout=20)
    producer.close(timeout=10)


def decisions_for(settings: Settings, ids: set[str], timeout_s: float = 60.0
                  ) -> dict[str, dict]:
    """The last decision of each settlement id in ``ids`` (waits until all are there)."""
    values = read_topic(settings, settings.topics.decisions,
                        lambda vs: ids <= {v["settlement_id"] for v in vs}, timeout_s)
    got = {v["settlement_id"]: v for v in values if v["settlement_id"] in ids}
    assert set(got) == ids, f"missing decisions: {sorted(ids - set(got))}"
    return got


def metric(worker: WorkerProcess, line_prefix: str) -> float | None:
    """The value of the first /metrics sample line starting with ``line_prefix``."""
    req = urllib.request.urlopen(base(worker) + "/metrics", timeout=10)
    for line in req.read().decode().splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return None
