"""Every worker follows the ``alerts`` topic into a bounded, deduplicated in-memory view,
so ``GET /v1/alerts`` answers the same whichever worker receives the request."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class AlertBuffer:
    """Latest alert per (alert_id, status), newest last; at most ``capacity`` entries."""

    capacity: int = 20_000
    items: "OrderedDict[tuple[str, str], dict[str, Any]]" = field(default_factory=OrderedDict)

    def add(self, alert: dict[str, Any]) -> None:
        key = (str(alert.get("alert_id")), str(alert.get("status")))
        if key in self.items:
            return  # consumers keep the first copy (SPEC §6)
        self.items[key] = alert
        while len(self.items) > self.capacity:
            self.items.popitem(last=False)

    def query(self, *, level: str | None = None, rule: str | None = None,
              region: str | None = None, entity_kind: str | None = None,
              entity_id: str | None = None, since: str | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, filtered; ``since`` compares ISO event times as text."""
        out: list[dict[str, Any]] = []
        for alert in reversed(self.items.values()):
            ent = alert.get("entity") or {}
            if ((level and alert.get("level") != level) or (rule and alert.get("rule") != rule)
                    or (region and ent.get("region") != region)
                    or (entity_kind and ent.get("kind") != entity_kind)
                    or (entity_id and ent.get("id") != entity_id)
                    or (since and str(alert.get("event_time", "")) < since)):
                continue
            out.append(alert)
            if len(out) >= limit:
                break
        return out


async def follow_alerts(settings: Settings, buffer: AlertBuffer,
                        stop: asyncio.Event | None = None) -> None:
    """Read the alerts topic from the beginning into ``buffer``; retry if the broker is away."""
    from aiokafka import AIOKafkaConsumer

    while stop is None or not stop.is_set():
        consumer = AIOKafkaConsumer(settings.topics.alerts,
                                    bootstrap_servers=settings.bootstrap_servers,
                                    group_id=None, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        try:
            await consumer.start()
            async for msg in consumer:
                try:
                    buffer.add(orjson.loads(msg.value))
                except orjson.JSONDecodeError:
                    continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep serving; the broker may come back
            log.warning("alerts follower: %s; retrying in 2 s", exc)
            await asyncio.sleep(2.0)
        finally:
            await consumer.stop()

