"""Prometheus metrics bundle (STYLE): built from an injected registry; labels from fixed sets."""

from __future__ import annotations

from dataclasses import dataclass

from detectors.ruleset import CLAIM_RULES, FUND_RULES, PEER_RULES
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OUTCOMES = ("decided", "dlq", "redelivered")
DLQ_REASONS = ("not_json", "schema", "amounts", "duplicate")
DECISIONS = ("pass", "warn", "block")
ALERT_RULES = PEER_RULES + tuple(CLAIM_RULES) + tuple(FUND_RULES)
RELOAD_OUTCOMES = ("applied", "rejected")
RULE_ERROR_RULES = tuple(CLAIM_RULES) + ("other",)
PRUNED_TABLES = ("patient_history", "trace_codes")


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    events_in: Counter
    events_out: Counter
    dlq: Counter
    decisions: Counter
    processing_seconds: Histogram
    rules_version: Gauge
    alerts: Counter
    late_events: Counter
    tracked_entities: Gauge
    table_keys: Gauge
    decision_latency_seconds: Histogram
    check_seconds: Histogram
    rules_reloads: Counter
    rule_errors: Counter
    state_pruned: Counter


def create(registry: CollectorRegistry) -> Metrics:
    m = Metrics(
        registry=registry,
        events_in=Counter("fund_sentinel_events_in_total", "Settlement messages read",
                          registry=registry),
        events_out=Counter("fund_sentinel_events_out_total",
                           "Settlement messages finished, by outcome", ["outcome"],
                           registry=registry),
        dlq=Counter("fund_sentinel_dlq_total", "Messages sent to the DLQ, by reason", ["reason"],
                    registry=registry),
        decisions=Counter("fund_sentinel_decisions_total", "Decisions emitted", ["decision"],
                          registry=registry),
        processing_seconds=Histogram(
            "fund_sentinel_processing_seconds", "Time to process one settlement message",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry),
        rules_version=Gauge("fund_sentinel_rules_version_info", "Rule-set version in use",
                            ["version"], registry=registry),
        table_keys=Gauge("fund_sentinel_table_keys",
                         "Keys held in each state table on this worker (active and standby)",
                         ["table"], registry=registry),
        tracked_entities=Gauge("fund_sentinel_tracked_entities",
                               "Entities with monthly statistics on this worker, by kind",
                               ["kind"], registry=registry),
        late_events=Counter("fund_sentinel_late_events_total",
                            "Settlements counted after their month closed (fund monitors)",
                            registry=registry),
        alerts=Counter("fund_sentinel_alerts_total", "Alerts emitted, by rule and level",
                       ["rule", "level"], registry=registry),
        decision_latency_seconds=Histogram(
            "fund_sentinel_decision_latency_seconds",
            "Wall time from the settlement message timestamp to its decision being sent",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry),
        check_seconds=Histogram(
            "fund_sentinel_check_seconds", "Time to answer one POST /v1/check",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry),
        rules_reloads=Counter("fund_sentinel_rules_reloads_total",
                              "Rule-set documents received at run time, by outcome", ["outcome"],
                              registry=registry),
        rule_errors=Counter("fund_sentinel_rule_errors_total",
                            "Claim rules that raised on a settlement (decided on the others)",
                            ["rule"], registry=registry),
        state_pruned=Counter("fund_sentinel_state_pruned_total",
                             "Expired claim-state keys deleted, by table", ["table"],
                             registry=registry),
    )
    for o in OUTCOMES:
        m.events_out.labels(outcome=o)
    for r in DLQ_REASONS:
        m.dlq.labels(reason=r)
    for d in DECISIONS:
        m.decisions.labels(decision=d)
    for rule in ALERT_RULES:
        for level in ("yellow", "red"):
            m.alerts.labels(rule=rule, level=level)
    for o in RELOAD_OUTCOMES:
        m.rules_reloads.labels(outcome=o)
    for rule in RULE_ERROR_RULES:
        m.rule_errors.labels(rule=rule)
    for table in PRUNED_TABLES:
        m.state_pruned.labels(table=table)
    return m
