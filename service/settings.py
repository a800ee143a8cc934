"""Infrastructure settings (STYLE: never mixed with the rule set).

Parsed by the pure :func:`from_env` from one environment prefix, ``FUND_SENTINEL_``; the CLI
overlays its flags with :func:`dataclasses.replace`. Nothing reads the environment at import.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

PREFIX = "FUND_SENTINEL_"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class SettingsError(ValueError):
    """A setting has a value the service cannot run with."""


@dataclass(frozen=True, slots=True)
class Topics:
    settlements: str = "settlements"
    dlq: str = "settlements-dlq"
    decisions: str = "decisions"
    alerts: str = "alerts"
    rules: str = "rules"

    def public(self) -> tuple[str, ...]:
        return (self.settlements, self.dlq, self.decisions, self.alerts, self.rules)


@dataclass(frozen=True, slots=True)
class Settings:
    broker: str = "kafka://127.0.0.1:9092"
    # "embedded" applies the Tansu workarounds of BROKER.md; "kafka" is a real cluster.
    broker_profile: str = "auto"
    app_id: str = "fund-sentinel"
    partitions: int = 8
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    data_dir: Path = Path("data")
    store: str = "memory://"
    processing_guarantee: str = "at_least_once"
    rules_file: Path | None = None
    api_token: str | None = None
    allow_unauthenticated_writes: bool = False
    advertised_url: str | None = None
    log_level: str = "info"
    log_format: str = "text"
    dedup_window_days: int = 7
    max_body_bytes: int = 1_048_576
    # Event-time progress ticks from each input partition to the stats stage, and how long
    # an input partition must be drained and quiet before it counts as idle (wall clock).
    tick_interval_s: int = 21_600
    idle_after_s: int = 3
    # Claim state (SPEC §7): how often expired patient histories and trace codes are
    # deleted (wall clock; expiry itself is event time), and whether this worker follows
    # the `rules` topic to switch rule sets at run time.
    prune_interval_s: int = 600
    follow_rules: bool = True
    topics: Topics = Topics()

    @property
    def embedded(self) -> bool:
        if self.broker_profile == "auto":
            return all(h in LOOPBACK_HOSTS for h in broker_hosts(self.broker))
        return self.broker_profile == "embedded"

    @property
    def canonical_url(self) -> str:
        """How other workers reach this one (routed /v1 requests)."""
        if self.advertised_url:
            return self.advertised_url
        host = self.web_host
        if host in ("0.0.0.0", "::"):
            import socket

            host = socket.gethostname()
        return f"http://{host}:{self.web_port}"

    @property
    def bootstrap_servers(self) -> list[str]:
        return [f"{h}:{p}" for h, p in broker_host_ports(self.broker)]


def broker_host_ports(url: str) -> list[tuple[str, int]]:
    """``kafka://h1:9092;h2:9092`` (Faust style) or ``h1:9092,h2:9092`` → [(host, port)]."""
    out = []
    for part in url.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        parsed = urlparse(part if "://" in part else f"kafka://{part}")
        if not parsed.hostname:
            raise SettingsError(f"broker: cannot read a host in {part!r}")
        out.append((parsed.hostname, parsed.port or 9092))
    if not out:
        raise SettingsError("broker: empty broker URL")
    return out


def broker_hosts(url: str) -> list[str]:
    return [h for h, _ in broker_host_ports(url)]


def faust_broker_url(url: str) -> str:
    return ";".join(f"kafka://{h}:{p}" for h, p in broker_host_ports(url))


_CHOICES = {
    "broker_profile": ("auto", "embedded", "kafka"),
    "processing_guarantee": ("at_least_once", "exactly_once"),
    "log_format": ("text", "json"),
    "log_level": ("debug", "info", "warning", "error"),
}


def from_env(env: Mapping[str, str]) -> Settings:
    """Build settings from ``FUND_SENTINEL_*`` variables; unknown variables are ignored.

    ``FUND_SENTINEL_BROKER`` is the broker URL (SPEC §10); topic names come from
    ``FUND_SENTINEL_TOPIC_SETTLEMENTS`` etc.
    """
    values: dict[str, object] = {}
    for field in dataclasses.fields(Settings):
        if field.name == "topics":
            continue
        raw = env.get(PREFIX + field.name.upper())
        if raw is None or raw == "":
            continue
        values[field.name] = _convert(field.name, raw)
    topic_values = {
        f.name: env[PREFIX + "TOPIC_" + f.name.upper()]
        for f in dataclasses.fields(Topics)
        if env.get(PREFIX + "TOPIC_" + f.name.upper())
    }
    settings = Settings(**values, topics=Topics(**topic_values))  # type: ignore[arg-type]
    return validate(settings)


def _convert(name: str, raw: str) -> object:
    default = getattr(Settings(), name)
    if name in ("rules_file", "data_dir"):
        return Path(raw)
    if name in ("api_token", "advertised_url"):
        return raw
    if isinstance(default, bool):
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise SettingsError(f"{PREFIX}{name.upper()}: expected true/false, got {raw!r}")
        return raw.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name.upper()}: expected an integer, got {raw!r}")
    return raw


def validate(settings: Settings) -> Settings:
    """Refuse settings the service cannot run with, with a message naming the setting."""
    for name, choices in _CHOICES.items():
        if getattr(settings, name) not in choices:
            raise SettingsError(f"{name}: {getattr(settings, name)!r} is not one of {choices}")
    if settings.partitions < 1:
        raise SettingsError("partitions: must be >= 1")
    if settings.prune_interval_s < 1:
        raise SettingsError("prune_interval_s: must be >= 1")
    if not 0 < settings.web_port < 65536:
        raise SettingsError("web_port: must be a TCP port")
    if not (settings.store.startswith("memory://") or settings.store.startswith("rocksdb://")):
        raise SettingsError("store: must be memory:// or rocksdb://")
    broker_host_ports(settings.broker)
    return settings
