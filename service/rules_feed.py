"""Rule-set switching at run time (SPEC §8): every worker follows the ``rules`` topic.

Each worker runs its own consumer of the ``rules`` topic (one partition, key ``"active"``)
with no consumer group, from the earliest offset: at start it replays what was published,
so a restarted worker ends on the latest rule set; afterwards it applies a new document
within about a second. A valid document replaces the rule set whole
(:meth:`Runtime.set_ruleset`; agents read ``rt.ruleset`` per message, so the next message
uses it); an invalid one is refused with its error list in the log and
``fund_sentinel_rules_reloads_total{outcome="rejected"}``, and the old one stays.

``PUT /v1/rules`` validates with :func:`load_document` before publishing, so only documents
written to the topic by other means can be refused here.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from pathlib import Path, PurePath

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from detectors.ruleset import RuleSet, RuleSetError

from .rules_io import DATA_DIR, load_ruleset_text
from .runtime import Runtime
from .settings import Settings

log = logging.getLogger(__name__)
RULES_KEY = b"active"
RETRY_S = 5.0


def base_dir(settings: Settings) -> Path:
    """Where a run-time document's ``catalogue = "…"`` is read from: beside the start file."""
    return settings.rules_file.parent if settings.rules_file else DATA_DIR


def load_document(text: str, settings: Settings) -> RuleSet:
    """Validate a run-time rule-set document (catalogue names stay inside :func:`base_dir`).

    Raises:
        RuleSetError: with every problem found.
    """
    try:
        ref = tomllib.loads(text).get("catalogue")
    except tomllib.TOMLDecodeError:
        ref = None  # load_ruleset_text reports the syntax error
    if isinstance(ref, str) and (PurePath(ref).is_absolute() or ".." in PurePath(ref).parts):
        raise RuleSetError([f"catalogue: {ref!r} must be a file name relative to the rule set"])
    return load_ruleset_text(text, base_dir=base_dir(settings))


def apply_document(rt: Runtime, value: bytes | None, where: str) -> RuleSet | None:
    """Switch ``rt`` to the document in ``value`` if valid; returns the new rule set or None."""
    if value is None:  # a tombstone: nothing to switch to
        return None
    try:
        ruleset = load_document(value.decode("utf-8"), rt.settings)
    except (RuleSetError, UnicodeDecodeError) as exc:
        errors = exc.errors if isinstance(exc, RuleSetError) else ["$: not UTF-8 text"]
        rt.metrics.rules_reloads.labels(outcome="rejected").inc()
        log.error("rule set at %s refused, version %s stays active: %s", where,
                  rt.rules_version, "; ".join(errors))
        return None
    previous = rt.rules_version
    rt.set_ruleset(ruleset)
    rt.metrics.rules_reloads.labels(outcome="applied").inc()
    log.info("rule set version %s active (was %s), from %s", ruleset.version, previous, where)
    return ruleset


async def follow(rt: Runtime, topic: faust.TopicT) -> None:
    """Apply every document of the rules topic, from the first, until cancelled."""
    name = topic.get_topic_name()
    tp = TopicPartition(name, 0)
    position: int | None = None
    while True:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=rt.settings.bootstrap_servers, group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            client_id=f"{rt.settings.app_id}-rules-follower")
        try:
            await topic.maybe_declare()
            await consumer.start()
            consumer.assign([tp])
            if position is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for msg in batch.get(tp, ()):
                    apply_document(rt, msg.value, f"{name}[0]@{msg.offset}")
                    position = msg.offset + 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep following through broker hiccups
            log.warning("rules follower: %s (%s); retrying in %.0f s", type(exc).__name__,
                        exc, RETRY_S)
        finally:
            await consumer.stop()
        await asyncio.sleep(RETRY_S)


def register(app: faust.App, rt: Runtime) -> faust.TopicT:
    """The rules topic (for ``PUT /v1/rules``) and, if enabled, this worker's follower."""
    topic = app.topic(rt.settings.topics.rules, partitions=1, compacting=True)

    if rt.settings.follow_rules:
        @app.task
        async def follow_rules() -> None:
            await follow(rt, topic)

    return topic
