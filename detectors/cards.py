"""Peer-comparison cards: the state machine of one (entity, rule, visit kind, month) (SPEC §5).

Evaluated at every update of the entity (SPEC §11), with the entity's month row and its
:class:`~detectors.peer_stats.PeerView` as they stand after that update:

- the month **holds** when the entity has ≥ ``min_visits[kind]`` visits, a peer mean
  exists (``min_peers`` met, SPEC §4) and ``metric > peer_mean × threshold``. Metric and
  peer mean are exact fractions of integer fen, so "exactly at the threshold" never fires;
  the threshold and hysteresis are read as decimals (``Fraction(str(x))``). A peer mean of 0
  gives no ratio and so no card. :attr:`CardState.held` keeps the flag of the *last* update
  of the month, which is what red looks back on;
- **yellow** fires when the month holds;
- **red** fires when the month holds and ``held_previous`` (the previous
  ``consecutive_months − 1`` months, most recent first, a missing month = False) are all
  held. Red inhibits yellow for the same entity/rule/month: a firing yellow is resolved
  (``superseded``) when red fires, and yellow never fires in a month whose red has fired;
- a firing card **resolves** (``hysteresis``) when the month-to-date ratio falls below
  ``threshold − hysteresis``; without a ratio (no peer mean) it stays as it is.

Each level fires at most once per (rule, entity, visit kind, month): once resolved it
stays resolved for the month even if the ratio climbs again — re-firing would give
consumers a second ``firing`` for the same ``alert_id``, which SPEC §6 dedup would drop
anyway. A new month starts a new card (new ``alert_id``).

Pure: time comes from the event (its ``settled_at`` string and ms). Disabled rules produce
nothing and leave the state unchanged. State size: two levels × (status + evidence with
≤ ``sample_settlements`` ids) + one flag; as JSON ≈ 65 bytes when nothing fired, ≈ 420
with one level fired, ≈ 850 with red fired over a superseded yellow (k = 5 ids).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Mapping, Protocol

from detectors.peer_stats import EntityMonth, PeerView
from detectors.significance import P_VALUE

RULES = ("peer.cost_per_visit", "peer.drug_ratio")
LEVELS = ("yellow", "red")
NOT_FIRED, FIRING, RESOLVED = "none", "firing", "resolved"


class CardParams(Protocol):
    threshold: float
    consecutive_months: int
    hysteresis: float
    min_visits: Mapping[str, int]
    enabled_rules: frozenset[str]


class _Kind(Protocol):
    kind: str


class CardEvent(Protocol):
    """The update being evaluated, e.g. a :class:`detectors.entities.EntityUpdate`."""

    entity: _Kind
    settled_at: str
    settled_at_ms: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """The card's numbers at one moment (observed in yuan for cost, a fraction for drugs)."""

    event_time: str
    event_time_ms: int
    observed: float
    peer_mean: float
    ratio: float
    n: int
    peer_entities: int
    consecutive_months: int
    p_value: float | None
    settlement_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_time": self.event_time, "event_time_ms": self.event_time_ms,
            "observed": self.observed, "peer_mean": self.peer_mean, "ratio": self.ratio,
            "n": self.n, "peer_entities": self.peer_entities,
            "consecutive_months": self.consecutive_months, "p_value": self.p_value,
            "settlement_ids": list(self.settlement_ids),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evidence:
        return cls(**{**d, "settlement_ids": tuple(d["settlement_ids"])})


@dataclass(frozen=True, slots=True)
class LevelState:
    """One level of a card: ``none`` → ``firing`` → ``resolved``, never back."""

    status: str = NOT_FIRED
    fired: Evidence | None = None
    resolved_at: str | None = None
    resolved_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Compact: fields that are still ``None`` are left out."""
        d: dict[str, Any] = {"status": self.status}
        if self.fired is not None:
            d["fired"] = self.fired.to_dict()
        if self.resolved_at is not None:
            d["resolved_at"] = self.resolved_at
        if self.resolved_reason is not None:
            d["resolved_reason"] = self.resolved_reason
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LevelState:
        fired = d.get("fired")
        return cls(status=d["status"], fired=None if fired is None else Evidence.from_dict(fired),
                   resolved_at=d.get("resolved_at"), resolved_reason=d.get("resolved_reason"))


_EMPTY = LevelState()


@dataclass(frozen=True, slots=True)
class CardState:
    """Both levels of one card plus whether the month held at its last update."""

    yellow: LevelState = _EMPTY
    red: LevelState = _EMPTY
    held: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"yellow": self.yellow.to_dict(), "red": self.red.to_dict(), "held": self.held}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CardState:
        return cls(yellow=LevelState.from_dict(d["yellow"]), red=LevelState.from_dict(d["red"]),
                   held=bool(d["held"]))


@dataclass(frozen=True, slots=True)
class CardChange:
    """A card that fired or resolved at this update; ``reason`` is ``threshold``,
    ``consecutive`` (red), ``hysteresis`` or ``superseded``."""

    rule: str
    level: str
    status: str
    reason: str
    threshold: float
    evidence: Evidence


def _decimal(x: float) -> Fraction:
    return Fraction(str(x))


def _metric(rule: str, sums: EntityMonth | PeerView) -> Fraction | None:
    if rule == "peer.cost_per_visit":
        return sums.cost_per_visit_fen
    return sums.drug_ratio


def _to_unit(rule: str, value: Fraction) -> float:
    """Fen per visit → yuan per visit; ratios stay fractions."""
    return float(value / 100) if rule == "peer.cost_per_visit" else float(value)


def _leading_true(flags: tuple[bool, ...]) -> int:
    n = 0
    for f in flags:
        if not f:
            break
        n += 1
    return n


def card_step(
    params: CardParams,
    state: CardState | None,
    rule: str,
    entity_month: EntityMonth,
    peer_view: PeerView | None,
    held_previous: tuple[bool, ...],
    event: CardEvent,
) -> tuple[CardState, tuple[CardChange, ...]]:
    """Evaluate one card after one update of its entity (SPEC §5, §11).

    Args:
        params: threshold, consecutive_months, hysteresis, min_visits, enabled_rules.
        state: the card's state for this month, ``None`` before its first evaluation.
        rule: ``"peer.cost_per_visit"`` or ``"peer.drug_ratio"``.
        entity_month: the entity's month row after the update.
        peer_view: its peers after the update; ``None`` when ``min_peers`` is not met.
        held_previous: :attr:`CardState.held` of the previous months, most recent first
            (at least ``consecutive_months − 1`` of them; a missing month is ``False``).
        event: the update (entity kind, ``settled_at`` and ``settled_at_ms``).

    Returns:
        The new state and the changes, in emission order (red firing before the yellow it
        supersedes). Empty for a disabled rule.
    """
    if rule not in RULES:
        raise ValueError(f"not a peer rule: {rule!r}")
    state = state if state is not None else CardState()
    if rule not in params.enabled_rules:
        return state, ()
    observed = _metric(rule, entity_month)
    peer = None if peer_view is None else _metric(rule, peer_view)
    ratio = None
    if observed is not None and peer is not None and peer > 0:
        ratio = observed / peer
    threshold = _decimal(params.threshold)
    held = (ratio is not None and ratio > threshold
            and entity_month.visits >= params.min_visits[event.entity.kind])
    need = params.consecutive_months - 1
    streak = 1 + _leading_true(held_previous) if held else 0
    red_due = held and streak > need

    def evidence(consecutive: int) -> Evidence:
        assert observed is not None and peer is not None and ratio is not None
        assert peer_view is not None
        return Evidence(
            event_time=event.settled_at, event_time_ms=event.settled_at_ms,
            observed=_to_unit(rule, observed), peer_mean=_to_unit(rule, peer),
            ratio=float(ratio), n=entity_month.visits, peer_entities=peer_view.peer_entities,
            consecutive_months=consecutive, p_value=P_VALUE[rule](entity_month, peer_view),
            settlement_ids=entity_month.sample_ids,
        )

    def change(level: str, status: str, reason: str, ev: Evidence) -> CardChange:
        return CardChange(rule=rule, level=level, status=status, reason=reason,
                          threshold=params.threshold, evidence=ev)

    def resolve(lv: LevelState, reason: str) -> tuple[LevelState, Evidence]:
        assert lv.fired is not None
        ev = evidence(lv.fired.consecutive_months)
        return replace(lv, status=RESOLVED, resolved_at=event.settled_at,
                       resolved_reason=reason), ev

    yellow, red = state.yellow, state.red
    changes: list[CardChange] = []
    if red.status == NOT_FIRED and red_due:
        ev = evidence(streak)
        red = LevelState(status=FIRING, fired=ev)
        changes.append(change("red", FIRING, "consecutive", ev))
        if yellow.status == FIRING:
            yellow, ev = resolve(yellow, "superseded")
            changes.append(change("yellow", RESOLVED, "superseded", ev))
    elif held and yellow.status == NOT_FIRED and red.status == NOT_FIRED:
        ev = evidence(streak)
        yellow = LevelState(status=FIRING, fired=ev)
        changes.append(change("yellow", FIRING, "threshold", ev))
    if ratio is not None and ratio < threshold - _decimal(params.hysteresis):
        if yellow.status == FIRING:
            yellow, ev = resolve(yellow, "hysteresis")
            changes.append(change("yellow", RESOLVED, "hysteresis", ev))
        if red.status == FIRING:
            red, ev = resolve(red, "hysteresis")
            changes.append(change("red", RESOLVED, "hysteresis", ev))
    return CardState(yellow=yellow, red=red, held=held), tuple(changes)
