"""Helpers of the reliability tests: a worker's resident memory sampled in the background
(Linux ``/proc/PID/status``), its readiness and its metrics over HTTP."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

from detectors.domain import Settlement
from service.validation import MAX_MESSAGE_BYTES, Rejection, oversized, parse_settlement
from support.cluster import REPO, WorkerProcess, env_for


def rss_mb(pid: int) -> float | None:
    """VmRSS of ``pid`` in MiB, or None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


class RssSampler:
    """Samples a process's RSS every ``interval_s`` seconds until stopped.

    ``samples`` holds ``(monotonic time, MiB)``; ``peak`` is their maximum.
    """

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid, self.interval_s = pid, interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"rss-{pid}")

    def _run(self) -> None:
        while not self._stop.is_set():
            mb = rss_mb(self.pid)
            if mb is not None:
                self.samples.append((time.monotonic(), mb))
            self._stop.wait(self.interval_s)

    def start(self) -> "RssSampler":
        self._thread.start()
        return self

    def stop(self) -> "RssSampler":
        self._stop.set()
        self._thread.join(timeout=5)
        return self

    @property
    def peak(self) -> float:
        return max((mb for _, mb in self.samples), default=0.0)

    def summary(self) -> str:
        if not self.samples:
            return "no RSS samples"
        first, last = self.samples[0][1], self.samples[-1][1]
        return (f"RSS first {first:.0f} MiB, peak {self.peak:.0f} MiB, last {last:.0f} MiB "
                f"over {len(self.samples)} samples")


def wait_ready(port: int, timeout_s: float = 60.0) -> None:
    """Until the worker's ``/readyz`` answers 200 (rules loaded, partitions assigned)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"worker on port {port} not ready within {timeout_s}s")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def metric(port: int, name: str) -> float:
    """The value of an unlabelled sample ``name`` on the worker's ``/metrics`` (0 if absent)."""
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", scrape(port), re.M)
    return float(match.group(1)) if match else 0.0


def spawn_worker(worker: WorkerProcess, extra_env: dict[str, str] | None = None
                 ) -> WorkerProcess:
    """Start ``worker``'s process with extra environment variables, without waiting for its
    web port (``WorkerProcess.start`` waits, and takes no extra environment)."""
    worker.data_dir.mkdir(parents=True, exist_ok=True)
    worker.log_path = worker.data_dir / f"worker-{worker.web_port}.log"
    env = env_for(worker.settings, worker.data_dir, worker.web_port)
    env.update(extra_env or {})
    worker.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], cwd=REPO,
                                   env=env, stdout=open(worker.log_path, "ab"),
                                   stderr=subprocess.STDOUT)
    return worker


def expected_fates(raws: Iterable[bytes]) -> Iterator[str | Settlement]:
    """What the intake must make of each message, in order (SPEC §9): its DLQ reason
    (``duplicate`` for an id seen earlier in the feed), or the valid settlement. Messages
    over ``MAX_MESSAGE_BYTES`` are refused before decoding."""
    seen: set[str] = set()
    for raw in raws:
        parsed = oversized(len(raw)) if len(raw) > MAX_MESSAGE_BYTES else parse_settlement(raw)
        if isinstance(parsed, Rejection):
            yield parsed.reason
        elif parsed[0].settlement_id in seen:
            yield "duplicate"
        else:
            seen.add(parsed[0].settlement_id)
            yield parsed[0]
