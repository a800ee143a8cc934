"""HTTP endpoints on the worker (SPEC §10). Handlers stay thin: read, call, answer."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from detectors.entity_row import EntityRow

from .entity_view import entity_summary
from .runtime import Runtime

log = logging.getLogger(__name__)
ENTITY_KINDS = ("hospital", "department", "doctor", "pharmacy")
CONSOLE_HTML = Path(__file__).parent / "static" / "console.html"
MAX_ALERTS = 1000
ENTITY_ALERTS = 200


def local_entity_rows(app: faust.App, rt: Runtime, kind: str, entity_id: str) -> list[EntityRow]:
    """Rows of this entity in the stats partitions this worker actively owns."""
    mem, rows = rt.stats_memory, rt.stats_rows
    if mem is None or rows is None:
        return []
    out = []
    for key in sorted(mem.entities.get(f"{kind}|{entity_id}", ())):
        raw = rows.get(key)
        if raw is not None and mem.is_indexed(int(raw["q"])):
            out.append(EntityRow.from_dict(raw))
    return out


def peer_urls(app: faust.App) -> list[str]:
    """Other workers' base URLs, from the assignor's table metadata."""
    me = str(app.conf.canonical_url).rstrip("/")
    urls = {str(u).rstrip("/") for u in app.router.tables_metadata()}
    return sorted(u for u in urls if u != me)


def register(app: faust.App, rt: Runtime) -> None:
    @app.page("/healthz")
    class Healthz(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Readyz(View):
        async def get(self, request: Request) -> Response:
            checks = dict(rt.ready)
            checks["tables_recovered"] = bool(
                app.tables.recovery.completed.is_set() and not app.in_recovery)
            checks["not_rebalancing"] = not app.rebalancing
            ready = all(checks.values())
            body = {"ready": ready, "checks": checks, "rules_version": rt.rules_version}
            return self.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(rt.metrics.registry),
                              content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/console")
    class Console(View):
        async def get(self, request: Request) -> Response:
            return self.html(CONSOLE_HTML.read_text("utf-8"))

    @app.page("/v1/alerts")
    class Alerts(View):
        async def get(self, request: Request) -> Response:
            q = request.query
            try:
                limit = min(int(q.get("limit", "100")), MAX_ALERTS)
            except ValueError:
                return self.json({"error": "limit: must be an integer"}, status=400)
            if rt.alert_buffer is None:
                return self.json({"alerts": [], "count": 0})
            found = rt.alert_buffer.query(
                level=q.get("level"), rule=q.get("rule"), region=q.get("region"),
                entity_kind=q.get("entity_kind"), entity_id=q.get("entity_id"),
                since=q.get("since"), limit=max(limit, 0))
            return self.json({"alerts": found, "count": len(found)})

    async def entity_months(kind: str, entity_id: str, institution: str | None
                            ) -> list[dict[str, Any]]:
        rows = local_entity_rows(app, rt, kind, entity_id)
        return entity_summary(rows, rt.stats_memory.groups if rt.stats_memory else {},
                              rt.ruleset.peer.min_peers, institution)

    @app.page("/internal/entities/{kind}/{entity_id}")
    class LocalEntity(View):
        async def get(self, request: Request, kind: str, entity_id: str) -> Response:
            months = await entity_months(kind, entity_id, request.query.get("institution"))
            return self.json({"months": months})

    @app.page("/v1/entities/{kind}/{entity_id}")
    class Entity(View):
        async def get(self, request: Request, kind: str, entity_id: str) -> Response:
            if kind not in ENTITY_KINDS:
                return self.json({"error": f"kind: must be one of {', '.join(ENTITY_KINDS)}"},
                                 status=400)
            institution = request.query.get("institution")
            months = await entity_months(kind, entity_id, institution)
            remote = await asyncio.gather(*(
                _fetch_json(f"{u}/internal/entities/{kind}/{entity_id}", institution)
                for u in peer_urls(app)))
            for part in remote:
                months.extend(part.get("months", []))
            months.sort(key=lambda m: (m["entity"]["institution_id"], m["month"],
                                       m["visit_kind"]))
            alerts = (rt.alert_buffer.query(entity_kind=kind, entity_id=entity_id,
                                            limit=MAX_ALERTS) if rt.alert_buffer else [])
            if institution:
                alerts = [a for a in alerts if a["entity"].get("institution_id") == institution]
            # Newest event first, in an order that does not depend on how this worker's
            # alert follower interleaved the topic's partitions (every worker answers alike).
            alerts = sorted(alerts, reverse=True, key=lambda a: (
                str(a.get("event_time", "")), str(a.get("alert_id")), str(a.get("status"))))
            alerts = alerts[:ENTITY_ALERTS]
            if not months and not alerts:
                return self.json({"error": f"no {kind} {entity_id!r} seen"}, status=404)
            return self.json({"kind": kind, "id": entity_id, "months": months,
                              "alerts": alerts})


async def _fetch_json(url: str, institution: str | None) -> dict[str, Any]:
    params = {"institution": institution} if institution else None
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(url, params=params) as resp:
                return await resp.json() if resp.status == 200 else {}
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        log.warning("entity lookup on %s failed: %s", url.split("/internal")[0], exc)
        return {"partial": True}
