"""Is the broker answering? Checked before the worker starts (wait with back-off instead of
dying in Faust's bootstrap) and every few seconds while it runs (clear log lines and the
``/readyz`` check ``broker``; Faust and aiokafka retry silently)."""

from __future__ import annotations

import logging
import time

import faust

from .runtime import Runtime
from .settings import Settings

log = logging.getLogger(__name__)

BROKER_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # waits between attempts; the last repeats
BROKER_WATCH_INTERVAL_S = 5.0
BROKER_WATCH_TIMEOUT_S = 3.0
BROKER_WATCH_REPEAT_S = 30.0  # while the broker stays away, say so again this often


async def broker_error(bootstrap_servers: list[str], timeout_s: float) -> str | None:
    """Ask each bootstrap broker for cluster metadata, as the Kafka clients do; None as soon
    as one answers, else a short reason. Opens and closes its own connections."""
    import asyncio

    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    reason = "no broker configured"
    for server in bootstrap_servers:
        host, _, port = server.rpartition(":")
        conn = None
        try:
            conn = await asyncio.wait_for(create_conn(
                host, int(port), client_id="fund-sentinel-probe",
                request_timeout_ms=int(timeout_s * 1000)), timeout_s)
            await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
            return None
        except (asyncio.TimeoutError, TimeoutError):
            reason = f"no answer within {timeout_s:.0f}s"
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
            reason = type(exc).__name__
        finally:
            if conn is not None:
                conn.close()
    return reason


def probe_broker(bootstrap_servers: list[str], timeout_s: float = 10.0) -> str | None:
    """``broker_error`` before the worker starts, on a private event loop (never made
    current, so Faust's own loop is unaffected)."""
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(broker_error(bootstrap_servers, timeout_s))
    finally:
        loop.close()


def watch_broker(app: faust.App, rt: Runtime) -> None:
    """Log clearly when the broker stops answering and when it is back, and mark the worker
    not ready (``/readyz`` check ``broker``) meanwhile.

    Faust and aiokafka keep retrying on their own and log nothing while requests simply
    wait (a frozen broker only shows later as "Timer commit is overlapping").
    """
    where = ", ".join(rt.settings.bootstrap_servers)
    rt.ready["broker"] = True
    state: dict[str, float | None] = {"down_since": None, "said_at": None}

    @app.timer(interval=BROKER_WATCH_INTERVAL_S, name="fund-sentinel.broker-watch")
    async def broker_watch() -> None:
        error = await broker_error(rt.settings.bootstrap_servers, BROKER_WATCH_TIMEOUT_S)
        now = time.monotonic()
        down_since, said_at = state["down_since"], state["said_at"]
        if error is None:
            if down_since is not None:
                log.warning("broker answering again at %s (silent for %.0fs or more); "
                            "processing resumes",
                            where, now - down_since)
            state.update(down_since=None, said_at=None)
            rt.ready["broker"] = True
            return
        rt.ready["broker"] = False
        if down_since is None:
            state.update(down_since=now, said_at=now)
            log.warning("broker not answering at %s (%s); retrying - nothing is lost, "
                        "processing waits for it", where, error)
        elif said_at is not None and now - said_at >= BROKER_WATCH_REPEAT_S:
            state["said_at"] = now
            log.warning("broker still not answering at %s after %.0fs (%s); retrying",
                        where, now - down_since, error)


def wait_for_broker(settings: Settings, probe=probe_broker, sleep=time.sleep) -> None:
    """Block until the broker answers, logging a clear line per failed attempt.

    Faust exits at start when it cannot bootstrap (``KafkaConnectionError`` and a
    traceback), so a worker started before its broker would die; it waits here instead,
    retrying with back-off (``BROKER_RETRY_S``) until the broker answers or the process is
    stopped. No HTTP endpoint is up while waiting.
    """
    where = ", ".join(settings.bootstrap_servers)
    attempt = 0
    while (error := probe(settings.bootstrap_servers)) is not None:
        delay = BROKER_RETRY_S[min(attempt, len(BROKER_RETRY_S) - 1)]
        log.warning("broker not reachable at %s (%s); retrying in %.0fs", where, error, delay)
        attempt += 1
        sleep(delay)
    if attempt:
        log.info("broker reachable at %s after %d failed attempt(s); starting the worker",
                 where, attempt)
