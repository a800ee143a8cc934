"""The Faust application: configuration for the embedded broker or a real Kafka cluster.

Embedded (Tansu) settings, from BROKER.md:
- short session timeout / heartbeat so group joins take ~3 s instead of ~30 s;
- ``producer_linger=0``; and table recovery reads end offsets from a fetch's high-water
  mark (``service.tansu_compat``), because Tansu's ListOffsets(latest) is short by the last
  multi-record batch and Faust trusts it to know where recovery ends (gap 2);
- a 50 ms fetch.max.wait for the worker consumer (Tansu waits the full wait every time);
- at-least-once only (no idempotent producer on Tansu, gap 3): state is idempotent instead.

In every mode, ``service.faust_fixes`` patches a faust-streaming race at the end of
recovery that dropped buffered messages (and set offsets back) while the fetcher ran.
"""

from __future__ import annotations

from typing import Any

import faust

from . import faust_fixes, tansu_compat
from .settings import Settings, faust_broker_url


def faust_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = dict(
        broker=faust_broker_url(settings.broker),
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1 if settings.embedded else 3,
        processing_guarantee=settings.processing_guarantee,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        canonical_url=settings.canonical_url,
        web_in_thread=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # Batched agents hold a batch until it is done: the stream queue must not hold
        # another ~2k events on top (memory followed the backlog: test_backpressure.py).
        stream_buffer_maxsize=128,
        logging_config=None,
    )
    if settings.embedded:
        config.update(
            broker_session_timeout=6.0,
            broker_heartbeat_interval=2.0,
            producer_linger=0.0,
            processing_guarantee="at_least_once",
        )
    return config


def create_app(settings: Settings) -> faust.App:
    faust_fixes.apply()
    if settings.embedded:
        tansu_compat.shorten_fetch_wait(EMBEDDED_FETCH_MAX_WAIT_MS)
        tansu_compat.fetch_based_highwaters()
        tansu_compat.never_skip_gaps()
    return faust.App(settings.app_id, **faust_config(settings))


EMBEDDED_FETCH_MAX_WAIT_MS = 50



def json_table(app: faust.App, name: str, partitions: int) -> faust.Table:
    """A table with JSON keys and values, so keys read back from the changelog as ``str``
    (with the app's raw serializer they would come back as bytes and miss lookups)."""
    schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
    return app.Table(name, partitions=partitions, schema=schema)
