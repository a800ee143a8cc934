"""Build and run one Faust worker: app, agents, web views, readiness hooks."""

from __future__ import annotations

import logging

import faust
from prometheus_client import CollectorRegistry

from . import (
    claims_agents,
    fund_stage,
    intake,
    lag,
    logging_setup,
    metrics,
    rules_feed,
    stats,
    web,
    web_claims,
)
from .alert_feed import AlertBuffer, follow_alerts
from .app import create_app
from .broker_watch import wait_for_broker, watch_broker
from .rules_io import DEFAULT_RULES_PATH, load_ruleset_file
from .runtime import Runtime
from .settings import Settings

log = logging.getLogger(__name__)


def build(settings: Settings, registry: CollectorRegistry | None = None
          ) -> tuple[faust.App, Runtime]:
    ruleset = load_ruleset_file(settings.rules_file or DEFAULT_RULES_PATH)
    rt = Runtime(settings=settings, metrics=metrics.create(registry or CollectorRegistry()),
                 ruleset=ruleset)
    rt.metrics.rules_version.labels(version=rt.rules_version).set(1)
    rt.ready.update({"rules_loaded": True, "partitions_assigned": False})
    app = create_app(settings)
    updates = stats.register(app, rt)
    claims = claims_agents.register(app, rt)
    fund = fund_stage.register(app, rt)
    intake.register(app, rt, updates, claims.patient_topic, fund)
    web.register(app, rt)
    rules_topic = rules_feed.register(app, rt)
    web_claims.register(app, rt, claims, rules_topic)
    rt.alert_buffer = AlertBuffer()
    lag.register_lag_gauge(app, rt.metrics.registry, topics=[settings.topics.settlements])

    @app.task
    async def alerts_follower() -> None:
        await follow_alerts(settings, rt.alert_buffer)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: object, assigned: set, **kwargs: object) -> None:
        rt.ready["partitions_assigned"] = True

    watch_broker(app, rt)

    @app.timer(interval=15.0)
    async def state_sizes() -> None:
        for table in app.tables.values():
            rt.metrics.table_keys.labels(table=table.name).set(len(table))

    return app, rt


def run(settings: Settings) -> None:
    app, _rt = build(settings)
    try:
        wait_for_broker(settings)
    except KeyboardInterrupt:
        return
    # Faust resets logging when it starts: hand it our config (JSON lines on request).
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True,
                          logging_config=logging_setup.dict_config(settings.log_level,
                                                                   settings.log_format))
    worker.execute_from_commandline()
