"""The stack's ceiling: a trivial Faust agent that reads the settlements topic and counts.

Same Faust configuration as the service (``service.app.faust_config``), same broker, same
topic; its own consumer group. Each message is decoded (``orjson.loads``, what any real
consumer does first) and counted. Progress goes to a JSON file, rewritten every second
and when the expected count is reached::

    {"count": n, "first_s": wall time of the first event, "last_s": of the latest,
     "done_s": wall time when count reached expected (or null)}

Run (environment ``BENCH_BROKER``, ``BENCH_APP_ID``, ``BENCH_TOPIC``, ``BENCH_EXPECT``,
``BENCH_OUT``, ``BENCH_WEB_PORT``, ``BENCH_DATA_DIR``, optional ``BENCH_PARTITIONS``)::

    python bench/baseline_app.py worker -l warn
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faust  # noqa: E402
import orjson  # noqa: E402

from service.app import faust_config  # noqa: E402
from service.settings import Settings  # noqa: E402


def settings_from_env(env: dict[str, str]) -> Settings:
    return Settings(broker=env["BENCH_BROKER"], app_id=env["BENCH_APP_ID"],
                    partitions=int(env.get("BENCH_PARTITIONS", "8")),
                    web_port=int(env["BENCH_WEB_PORT"]), data_dir=Path(env["BENCH_DATA_DIR"]))


def create(env: dict[str, str]) -> faust.App:
    settings = settings_from_env(env)
    app = faust.App(settings.app_id, **faust_config(settings))
    topic = app.topic(env["BENCH_TOPIC"], partitions=settings.partitions)
    expect = int(env["BENCH_EXPECT"])
    out = Path(env["BENCH_OUT"])
    state: dict[str, float | int | None] = {"count": 0, "first_s": None, "last_s": None,
                                            "done_s": None}

    def write() -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(state))
        tmp.replace(out)

    @app.agent(topic, name="count")
    async def count(stream: faust.StreamT) -> None:
        async for value in stream:
            orjson.loads(value)
            now = time.time()
            if state["first_s"] is None:
                state["first_s"] = now
            state["count"] = int(state["count"] or 0) + 1
            state["last_s"] = now
            if state["count"] == expect:
                state["done_s"] = now
                write()

    @app.timer(interval=1.0)
    async def progress() -> None:
        write()

    return app


if __name__ == "__main__":
    create(dict(os.environ)).main()
