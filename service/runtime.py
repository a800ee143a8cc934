"""What the agents and web views share in one worker: settings, metrics, the active rule set."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .metrics import Metrics
from .settings import Settings

DEFAULT_RULES = Path(__file__).parent / "data" / "rules.toml"


@dataclass
class Runtime:
    settings: Settings
    metrics: Metrics
    rules_version: str = "0"
    ruleset: Any = None
    ready: dict[str, bool] = field(default_factory=dict)


def rules_version_of(path: Path) -> str:
    """The ``version`` of a rule-set file (placeholder until the rule-set loader lands)."""
    if not path.exists():
        return "0"
    return str(tomllib.loads(path.read_text("utf-8")).get("version", "0"))
