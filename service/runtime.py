"""What the agents and web views share in one worker: settings, metrics, the active rule set."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from detectors.cards import CardChange
from detectors.day_close import standing_changes
from detectors.entity_row import EntityRow
from detectors.ruleset import RuleSet

from .metrics import Metrics
from .settings import Settings


@dataclass
class Runtime:
    settings: Settings
    metrics: Metrics
    ruleset: RuleSet
    ready: dict[str, bool] = field(default_factory=dict)
    stats_rows: Any = None
    stats_memory: Any = None
    alert_buffer: Any = None

    @property
    def rules_version(self) -> str:
        return self.ruleset.version

    def set_ruleset(self, ruleset: RuleSet) -> None:
        """Switch to a new rule set (replaced whole) and point the version gauge at it."""
        self.ruleset = ruleset
        self.metrics.rules_version.clear()
        self.metrics.rules_version.labels(version=ruleset.version).set(1)

    def now_iso(self) -> str:
        """Wall-clock stamp for ``emitted_at`` (the only place the shell reads the clock)."""
        return datetime.now(ZoneInfo(self.ruleset.timezone)).isoformat(timespec="milliseconds")

    def card_replays(self, row: EntityRow) -> list[CardChange]:
        return standing_changes(row, self.ruleset.peer.threshold)
