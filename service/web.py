"""HTTP endpoints on the worker (SPEC §10). Handlers stay thin: read, call, answer."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .runtime import Runtime


def register(app: faust.App, rt: Runtime) -> None:
    @app.page("/healthz")
    class Healthz(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Readyz(View):
        async def get(self, request: Request) -> Response:
            ready = all(rt.ready.values()) and bool(rt.ready)
            body = {"ready": ready, "checks": dict(rt.ready), "rules_version": rt.rules_version}
            return self.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(rt.metrics.registry),
                              content_type=CONTENT_TYPE_LATEST.split(";")[0])
