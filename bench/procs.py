"""Processes and HTTP load of the benchmark: workers, the baseline app, py-spy, /v1/check."""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

from service.broker import free_port, wait_for_port
from service.settings import Settings
from support.cluster import WorkerProcess

from common import ROOT, latency_summary_ms

BENCH = Path(__file__).resolve().parent


def start_workers(settings: Settings, data_dir: Path, count: int) -> list[WorkerProcess]:
    """``count`` workers launched at the same moment (so they join the group's first
    generation together instead of rebalancing one after the other)."""
    workers = [WorkerProcess(settings, data_dir / f"w{i}") for i in range(count)]
    errors: list[BaseException] = []

    def start(w: WorkerProcess) -> None:
        try:
            w.start()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for w in workers:
            w.stop()
        raise errors[0]
    return workers


def ready(worker: WorkerProcess) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/readyz",
                                    timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def run_baseline(settings: Settings, topic: str, expect: int, data_dir: Path,
                 timeout_s: float) -> dict:
    """Run bench/baseline_app.py in its own group over ``topic`` until it counted ``expect``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    out = data_dir / "baseline.json"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUND_SENTINEL_")}
    env.update(BENCH_BROKER=settings.broker, BENCH_APP_ID=f"{settings.app_id}-baseline",
               BENCH_TOPIC=topic, BENCH_EXPECT=str(expect), BENCH_OUT=str(out),
               BENCH_WEB_PORT=str(port), BENCH_DATA_DIR=str(data_dir),
               BENCH_PARTITIONS=str(settings.partitions), PYTHONUNBUFFERED="1")
    log_path = data_dir / "baseline.log"
    proc = subprocess.Popen([sys.executable, str(BENCH / "baseline_app.py"), "worker",
                             "-l", "warn", "--web-port", str(port)], cwd=ROOT, env=env,
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        state: dict = {}
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists():
                state = orjson.loads(out.read_bytes())
                if state.get("done_s"):
                    break
            time.sleep(0.2)
        if not state.get("done_s"):
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"baseline counted {state.get('count')} of {expect} "
                               f"(exit {proc.poll()}):\n{tail}")
        return state
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Profiler:
    """py-spy on a worker: raw collapsed stacks (top frames computed from them)."""

    def __init__(self, pid: int, out_dir: Path, duration_s: int) -> None:
        self.raw = out_dir / "profile.txt"
        self.proc: subprocess.Popen | None = None
        self.error: str | None = None
        out_dir.mkdir(parents=True, exist_ok=True)
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or \
            shutil.which("py-spy")
        if exe is None:
            self.error = "py-spy not installed (pip install py-spy)"
            return
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--duration", str(duration_s), "--rate", "200",
             "--nonblocking", "--format", "raw", "--output", str(self.raw)],
            stdout=subprocess.DEVNULL, stderr=open(out_dir / "py-spy.log", "wb"))

    def finish(self, top: int = 20) -> dict:
        if self.proc is None:
            return {"error": self.error}
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if not self.raw.exists():
            return {"error": "py-spy wrote no profile (ptrace not permitted?)"}
        return summarize(self.raw.read_text(errors="replace"), top)


def summarize(raw: str, top: int) -> dict:
    """Top frames by self samples and by inclusive samples from py-spy's raw format."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [f.split(" (")[0] + " " + _where(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count

    def pct(c: collections.Counter[str]) -> list[list]:
        return [[f, round(100 * n / total, 1)] for f, n in c.most_common(top)]

    return {"samples": total, "self_pct": pct(own), "inclusive_pct": pct(incl)}


def _where(frame: str) -> str:
    """``fn (path/to/module.py:12)`` → ``module.py``."""
    inside = frame.partition(" (")[2].rstrip(")")
    return "(" + inside.rsplit("/", 1)[-1].split(":")[0] + ")" if inside else ""


async def _check_load(url: str, bodies: list[bytes], concurrency: int, warmup: int) -> dict:
    import aiohttp

    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for i, body in enumerate(bodies):
        queue.put_nowait((i, body))
    headers = {"Content-Type": "application/json"}

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i, body = queue.get_nowait()
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                status = resp.status
            if i >= warmup:
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for i in range(min(warmup, len(bodies))):  # warm-up, sequential
            await queue.get()
            async with session.post(url, data=bodies[i], headers=headers) as resp:
                await resp.read()
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    summary = latency_summary_ms(latencies)
    summary.pop("p95_ms", None)
    return {**summary, "concurrency": concurrency,
            "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed else None,
            "statuses": {str(k): v for k, v in sorted(statuses.items())}}


def check_load(worker: WorkerProcess, bodies: list[bytes], concurrency: int) -> dict:
    """``POST /v1/check`` with each body, ``concurrency`` requests in flight; p50/p99 ms."""
    if not wait_for_port(worker.web_port, 5):
        return {"error": "worker web port closed"}
    url = f"http://127.0.0.1:{worker.web_port}/v1/check"
    try:
        with urllib.request.urlopen(urllib.request.Request(
                url, data=bodies[0], headers={"Content-Type": "application/json"}),
                timeout=10) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 405):
            return {"error": f"/v1/check answered {exc.code}: endpoint missing"}
    return asyncio.run(_check_load(url, bodies, concurrency, warmup=min(20, len(bodies) // 10)))
