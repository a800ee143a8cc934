"""Test helpers to run real workers against the embedded broker, with bounded waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson

from service.broker import create_topics, free_port, wait_for_port
from service.settings import Settings, Topics

REPO = Path(__file__).resolve().parents[2]


def unique_settings(broker_url: str, partitions: int = 4) -> Settings:
    """Settings with topic names and consumer group unique to one test."""
    tag = uuid.uuid4().hex[:8]
    topics = Topics(settlements=f"settlements-{tag}", dlq=f"dlq-{tag}",
                    decisions=f"decisions-{tag}", alerts=f"alerts-{tag}", rules=f"rules-{tag}")
    return Settings(broker=broker_url, app_id=f"fs-test-{tag}", partitions=partitions,
                    topics=topics)


def env_for(settings: Settings, data_dir: Path, web_port: int) -> dict[str, str]:
    t = settings.topics
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUND_SENTINEL_")}
    env.update({
        "FUND_SENTINEL_BROKER": settings.broker, "FUND_SENTINEL_APP_ID": settings.app_id,
        "FUND_SENTINEL_PARTITIONS": str(settings.partitions),
        "FUND_SENTINEL_DATA_DIR": str(data_dir), "FUND_SENTINEL_WEB_PORT": str(web_port),
        "FUND_SENTINEL_TOPIC_SETTLEMENTS": t.settlements, "FUND_SENTINEL_TOPIC_DLQ": t.dlq,
        "FUND_SENTINEL_TOPIC_DECISIONS": t.decisions, "FUND_SENTINEL_TOPIC_ALERTS": t.alerts,
        "FUND_SENTINEL_TOPIC_RULES": t.rules, "PYTHONUNBUFFERED": "1",
    })
    return env


def create_all_topics(settings: Settings) -> None:
    t = settings.topics
    create_topics(settings.bootstrap_servers,
                  {name: (1 if name == t.rules else settings.partitions) for name in t.public()})


@dataclass
class WorkerProcess:
    settings: Settings
    data_dir: Path
    web_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self, timeout_s: float = 60.0) -> "WorkerProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"worker-{self.web_port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker"], cwd=REPO,
            env=env_for(self.settings, self.data_dir, self.web_port),
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        if not wait_for_port(self.web_port, timeout_s):
            raise AssertionError(f"worker web port not up in {timeout_s}s:\n{self.log_tail()}")
        return self

    def log_tail(self, n: int = 60) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout_s)


def read_topic(settings: Settings, topic: str, until: Callable[[list[dict]], bool],
               timeout_s: float) -> list[dict]:
    """Read ``topic`` from the start until ``until(values)`` holds or the time is up."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None)
    values: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=500).values():
                values.extend(orjson.loads(m.value) for m in msgs)
            if until(values):
                break
    finally:
        consumer.close()
    return values


def read_outputs(settings: Settings, expected_total: int, timeout_s: float
                 ) -> tuple[list[dict], list[dict]]:
    """Decisions and DLQ records, waiting until their distinct inputs reach ``expected_total``."""
    from kafka import KafkaConsumer

    t = settings.topics
    consumer = KafkaConsumer(t.decisions, t.dlq, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None)
    out: dict[str, list[dict]] = {t.decisions: [], t.dlq: []}
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                out[tp.topic].extend(orjson.loads(m.value) for m in msgs)
            distinct = len({d["settlement_id"] for d in out[t.decisions]})
            if distinct + len(out[t.dlq]) >= expected_total:
                break
    finally:
        consumer.close()
    return out[t.decisions], out[t.dlq]


def reasons(dlq: list[dict]) -> Counter:
    return Counter(d["reason"] for d in dlq)


def read_alerts_until_quiet(settings: Settings, expected: set[tuple[str, str]],
                            timeout_s: float, quiet_s: float = 8.0) -> list[dict]:
    """Alerts until every expected (alert_id, status) arrived and nothing new came for
    ``quiet_s`` seconds (so extra, unexpected alerts are seen too), or the time is up."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(settings.topics.alerts, bootstrap_servers=settings.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None)
    values: list[dict] = []
    deadline = time.monotonic() + timeout_s
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=500).values():
                values.extend(orjson.loads(m.value) for m in msgs)
                last_new = time.monotonic()
            got = {(a["alert_id"], a["status"]) for a in values}
            if expected <= got and time.monotonic() - last_new >= quiet_s:
                break
    finally:
        consumer.close()
    return values


def alert_keys(alerts: list[dict]) -> set[tuple[str, str]]:
    return {(a["alert_id"], a["status"]) for a in alerts}
