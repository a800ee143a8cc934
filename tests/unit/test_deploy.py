"""deploy/ and docker-compose.yml: valid against the Compose Specification schema, wired to
files that exist, and every metric a dashboard or alert rule reads is one the service defines.

The Compose Specification JSON schema (the one Docker Compose v2 validates with) comes from
the ``check-jsonschema`` package (test extra), which vendors it; no Docker engine is needed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from prometheus_client import CollectorRegistry

from service import lag, metrics
from service.settings import PREFIX, Settings, Topics, from_env

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
PROMETHEUS = REPO / "deploy/prometheus/prometheus.yml"
ALERTS = REPO / "deploy/prometheus/alerts.yml"
DASHBOARD = REPO / "deploy/grafana/dashboards/fund-sentinel.json"
DATASOURCES = REPO / "deploy/grafana/provisioning/datasources/prometheus.yml"
TOPICS_SCRIPT = REPO / "deploy/kafka/create-topics.sh"

# Metrics registered outside ``service.metrics.create`` (and outside ``service.lag``, which
# the test collects itself), by the module that adds them. A name here must also appear in
# that module's source (test_extra_metrics_are_defined): add the module when you add one.
EXTRA_METRICS: dict[str, str] = {}

# What the dashboard must show (the operations issue): metric families.
DASHBOARD_METRICS = (
    "fund_sentinel_events_in_total", "fund_sentinel_events_out_total",
    "fund_sentinel_processing_seconds_bucket", "fund_sentinel_decision_latency_seconds_bucket",
    "fund_sentinel_consumer_lag", "fund_sentinel_dlq_total", "fund_sentinel_alerts_total",
    "fund_sentinel_decisions_total", "fund_sentinel_rules_version_info",
    "fund_sentinel_tracked_entities", "fund_sentinel_late_events_total",
)
METRIC_NAME = re.compile(r"\bfund_sentinel_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"), "gauge": ("",), "info": ("_info",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


# ---------------------------------------------------------------------------- helpers

def compose_schema() -> dict[str, Any]:
    spec = importlib.util.find_spec("check_jsonschema")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("check-jsonschema is not installed; it ships the Compose Specification "
                    "schema: run `make setup` (pip install -e '.[test]')")
    path = Path(next(iter(spec.submodule_search_locations))) / \
        "builtin_schemas/vendor/compose-spec.json"
    if not path.exists():
        pytest.fail(f"check-jsonschema no longer vendors the compose schema at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))  # resolves anchors and << merges


_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` on every string."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if env.get(name):
            return env[name]
        if op.endswith("?"):
            raise KeyError(f"{name}: {arg}")
        return arg if op.endswith("-") else ""

    return _VAR.sub(sub, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate(load_yaml(COMPOSE), {"FUND_SENTINEL_API_TOKEN": "test-token"})


def workers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items()
            if s.get("command") and "worker" in s["command"]}


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def series_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry exposes, labelled children created or not."""
    names = set()
    for family in registry.collect():
        base = family.name
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(base + suffix if not base.endswith(suffix) else base)
        names.update(s.name for s in family.samples)
    return names


def service_metric_names() -> set[str]:
    registry = CollectorRegistry()
    metrics.create(registry)
    lag.create_gauge(registry)
    return series_names(registry) | set(EXTRA_METRICS)


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target.get("expr", "")
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        if var.get("type") == "query":
            yield f"variable {var['name']}", query or ""


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in load_yaml(ALERTS)["groups"] for r in g["rules"]]


# ---------------------------------------------------------------------------- compose

def test_compose_file_is_valid_compose_spec(compose):
    schema = compose_schema()
    errors = sorted(Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("break_it", [
    lambda c: c["services"]["kafka"].update(restartt="always"),
    lambda c: c["services"]["prometheus"].update(ports=9090),
    lambda c: c.update(servicez={}),
    lambda c: c["services"]["grafana"].update(depends_on={"prometheus": {"condition": "up"}}),
])
def test_the_schema_catches_mistakes(compose, break_it):
    broken = json.loads(json.dumps(compose))
    break_it(broken)
    assert list(Draft7Validator(compose_schema()).iter_errors(broken))


def test_required_api_token_is_enforced():
    with pytest.raises(KeyError, match="FUND_SENTINEL_API_TOKEN"):
        interpolate(load_yaml(COMPOSE), {})


def test_services_and_their_wiring(compose):
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    kenv = env_of(services["kafka"])
    assert "controller" in kenv["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert kenv["KAFKA_LOG_DIRS"] in {v.split(":")[1] for v in services["kafka"]["volumes"]}
    assert services["kafka-topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert {"prometheus", "grafana"} <= services.keys()
    for name, service in services.items():
        for dep in service.get("depends_on") or []:
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_two_or_more_workers_in_one_consumer_group(compose):
    ws = workers(compose)
    assert len(ws) >= 2
    envs = [env_of(w) for w in ws.values()]
    assert len({e.get(PREFIX + "APP_ID", Settings().app_id) for e in envs}) == 1
    for w in ws.values():
        env = env_of(w)
        assert env[PREFIX + "STORE"] == "rocksdb://"
        assert w["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"
    # RocksDB locks its directory: every worker needs its own data volume.
    data_dirs = [next(v.split(":")[0] for v in w["volumes"]
                      if v.split(":")[1] == env_of(w)[PREFIX + "DATA_DIR"]) for w in ws.values()]
    assert len(set(data_dirs)) == len(data_dirs)
    host_ports = [p.split(":")[0] for w in ws.values() for p in w.get("ports", [])]
    assert len(set(host_ports)) == len(host_ports)


def test_worker_environment_is_settings_the_service_accepts(compose):
    known = {PREFIX + f.upper() for f in Settings.__dataclass_fields__ if f != "topics"}
    known |= {PREFIX + "TOPIC_" + f.upper() for f in Topics.__dataclass_fields__}
    for name, w in workers(compose).items():
        env = env_of(w)
        unknown = sorted(k for k in env if k.startswith(PREFIX) and k not in known)
        assert not unknown, f"{name}: not settings of service/settings.py: {unknown}"
        settings = from_env(env)  # raises SettingsError on a bad value
        assert not settings.embedded


def test_topic_plan_and_workers_agree(compose):
    topics_env = env_of(compose["services"]["kafka-topics"])
    for name, w in workers(compose).items():
        env = env_of(w)
        for key in (PREFIX + "APP_ID", PREFIX + "PARTITIONS"):
            assert env.get(key) == topics_env.get(key), f"{name}: {key} differs from kafka-topics"


def test_every_mounted_file_exists_and_named_volumes_are_declared(compose):
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
        entry = service.get("entrypoint") or []
        for arg in entry:
            if arg.startswith("/deploy/"):
                assert (REPO / arg.lstrip("/")).exists(), f"{name} runs missing {arg}"
    for build in (s.get("build") for s in compose["services"].values()):
        if build:
            context = build if isinstance(build, str) else build.get("context", ".")
            assert (REPO / context / "Dockerfile").exists()


def test_image_installs_the_rocksdb_extra():
    """Store rocksdb:// needs rocksdict: faust-streaming's extra is named ``rocksdict``."""
    extras = importlib.metadata.metadata("faust-streaming").get_all("Provides-Extra")
    assert "rocksdict" in extras
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r'"faust-streaming\[rocksdict\][^"]*"', dockerfile)


# ---------------------------------------------------------------------------- prometheus

def test_prometheus_config_scrapes_every_worker(compose):
    config = load_yaml(PROMETHEUS)
    mounted = {v.split(":")[1] for v in compose["services"]["prometheus"]["volumes"]}
    assert set(config["rule_files"]) <= mounted
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["fund-sentinel"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    expected = {f"{w.get('hostname', name)}:{env_of(w)[PREFIX + 'WEB_PORT']}"
                for name, w in workers(compose).items()}
    assert targets == expected


def test_alert_rules_have_the_expected_shape():
    rules = alert_rules()
    assert rules
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


# ---------------------------------------------------------------------------- metrics

def test_alerts_and_dashboard_read_only_metrics_the_service_defines():
    defined = service_metric_names()
    used = [(f"alert {r['alert']}", n) for r in alert_rules()
            for n in METRIC_NAME.findall(r["expr"])]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used += [(f"panel {title}", n) for title, expr in dashboard_exprs(dashboard)
             for n in METRIC_NAME.findall(expr)]
    unknown = sorted({f"{where}: {name}" for where, name in used if name not in defined})
    assert not unknown, ("metrics no module defines (add to service/metrics.py, or to "
                         "EXTRA_METRICS with the module that adds them):\n" + "\n".join(unknown))


def test_extra_metrics_are_defined():
    """EXTRA_METRICS may only name metrics some module under service/ really registers."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "service").rglob("*.py"))
    missing = []
    for name in EXTRA_METRICS:
        family = re.sub(r"_(total|bucket|sum|count|created)$", "", name)
        if f'"{family}' not in sources:
            missing.append(name)
    assert not missing, f"EXTRA_METRICS names no module under service/ defines: {missing}"


def test_series_names_cover_every_metric_type():
    names = service_metric_names()
    assert {"fund_sentinel_events_in_total", "fund_sentinel_processing_seconds_bucket",
            "fund_sentinel_rules_version_info", "fund_sentinel_consumer_lag"} <= names


# ---------------------------------------------------------------------------- grafana

def test_dashboard_parses_and_every_panel_has_a_query():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    panels = [p for p in all_panels(dashboard) if p["type"] != "row"]
    assert panels
    ids = [p["id"] for p in all_panels(dashboard)]
    assert len(set(ids)) == len(ids)
    for panel in panels:
        exprs = [t.get("expr", "").strip() for t in panel.get("targets", [])]
        assert exprs and all(exprs), f"panel {panel['title']!r} has no query"
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()


def test_dashboard_uses_the_provisioned_prometheus_datasource():
    sources = load_yaml(DATASOURCES)["datasources"]
    prom = next(s for s in sources if s["type"] == "prometheus")
    assert prom["name"] == "Prometheus"
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in all_panels(dashboard):
        for ds in [panel.get("datasource")] + [t.get("datasource") for t in
                                               panel.get("targets", [])]:
            if ds:
                assert ds == {"type": "prometheus", "uid": prom["uid"]}, panel["title"]


def test_dashboard_shows_every_required_metric():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    text = " ".join(expr for _, expr in dashboard_exprs(dashboard))
    missing = [m for m in DASHBOARD_METRICS if m not in text]
    assert not missing
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}," in text


# ---------------------------------------------------------------------------- topic plan

@pytest.fixture()
def fake_kafka_bin(tmp_path: Path) -> Path:
    """kafka-topics.sh / kafka-configs.sh stand-ins that log their arguments, one call per
    line, and answer ``--describe`` with $DESCRIBE."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("kafka-topics.sh", "kafka-configs.sh"):
        script = bin_dir / tool
        script.write_text(
            "#!/usr/bin/env bash\n"
            f'echo "{tool} $*" >> "$CALLS"\n'
            'if [[ " $* " == *" --describe "* ]]; then printf "%b" "${DESCRIBE:-}"; fi\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def run_plan(bin_dir: Path, describe: str = "", **env: str) -> tuple[int, list[str], str]:
    calls = bin_dir / "calls.log"
    calls.write_text("")
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith(PREFIX)},
                "KAFKA_BIN": str(bin_dir), "CALLS": str(calls), "DESCRIBE": describe,
                "BOOTSTRAP": "kafka:9092", **env}
    proc = subprocess.run(["bash", str(TOPICS_SCRIPT)], env=full_env, capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, calls.read_text().splitlines(), proc.stderr


def created(calls: list[str]) -> dict[str, tuple[int, dict[str, str]]]:
    out = {}
    for line in calls:
        if " --create " not in line:
            continue
        words = line.split()
        configs = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--config")
        out[words[words.index("--topic") + 1]] = (int(words[words.index("--partitions") + 1]),
                                                   configs)
    return out


def topics_the_app_needs(settings: Settings) -> dict[str, int]:
    """Every topic a worker reads, writes or creates, with its partition count."""
    from service.worker import build

    app, _rt = build(settings)
    need = {t: settings.partitions for t in settings.topics.public()}
    need[settings.topics.rules] = 1
    for agent in app.agents.values():
        need[agent.channel.get_topic_name()] = settings.partitions
    for table in app.tables.values():
        need[table.changelog_topic.get_topic_name()] = table.changelog_topic.partitions
    need[f"{settings.app_id}-__assignor-__leader"] = 1
    return need


def test_topic_plan_creates_every_topic_the_app_uses(fake_kafka_bin):
    code, calls, err = run_plan(fake_kafka_bin, FUND_SENTINEL_APP_ID="fs-x",
                                FUND_SENTINEL_PARTITIONS="12")
    assert code == 0, err
    plan = created(calls)
    need = topics_the_app_needs(Settings(app_id="fs-x", partitions=12))
    missing = {t: n for t, n in need.items() if t not in plan}
    assert not missing, f"create-topics.sh does not create {missing}"
    wrong = {t: (plan[t][0], n) for t, n in need.items() if plan[t][0] != n}
    assert not wrong, f"partition counts (plan, app): {wrong}"
    for topic, (_, configs) in plan.items():
        if topic.endswith("-changelog") or topic == "rules":
            assert "compact" in configs["cleanup.policy"], topic
        assert configs["min.insync.replicas"] == "1"


def test_topic_plan_follows_renamed_topics(fake_kafka_bin):
    code, calls, err = run_plan(fake_kafka_bin, FUND_SENTINEL_TOPIC_SETTLEMENTS="in-x",
                                REPLICATION_FACTOR="3")
    assert code == 0, err
    plan = created(calls)
    assert "in-x" in plan and "settlements" not in plan
    assert {c["min.insync.replicas"] for _, c in plan.values()} == {"2"}
    assert all("--replication-factor 3" in line for line in calls if "--create" in line)


def test_topic_plan_reapplies_configs_and_refuses_a_partition_mismatch(fake_kafka_bin):
    describe = ("Topic: settlements\\tTopicId: x\\tPartitionCount: 12\\tReplicationFactor: 1\\n"
                "\\tTopic: settlements\\tPartition: 0\\tLeader: 1\\n"
                "Topic: fund-sentinel-settlement-ids-v1-changelog\\tPartitionCount: 12\\n"
                "Topic: decisions\\tTopicId: y\\tPartitionCount: 8\\tReplicationFactor: 1\\n")
    code, calls, err = run_plan(fake_kafka_bin, describe=describe,
                                FUND_SENTINEL_PARTITIONS="12")
    assert code == 1 and "decisions has 8 partitions" in err
    assert "settlements" not in created(calls)
    alters = [line for line in calls if "--alter" in line]
    changelog = next(a for a in alters if "settlement-ids-v1-changelog" in a)
    assert "cleanup.policy=[compact,delete]" in changelog
