"""Alert outcomes of the fund monitors and their SPEC §6 envelope.

One :class:`MonitorState` per (rule, scope, month) — :class:`MonitorKey` — remembers which
level is firing and which levels have fired. :func:`outcome_step` turns the level of a
(re-)evaluation into alert transitions, emitting only changes:

- nothing fires, nothing crosses, or the same level crosses again → nothing;
- nothing firing → a level crosses: ``firing`` that level;
- yellow firing → red crosses: ``firing`` red, then ``resolved`` yellow (superseded; the
  level is part of ``alert_id``, so red is a new alert);
- red firing → only yellow crosses (a late event pulled growth back): ``firing`` yellow,
  then ``resolved`` red;
- firing → nothing crosses (or the month can no longer be measured): ``resolved``.

Each (level, status) is emitted at most once per key: consumers deduplicate on
(``alert_id``, ``status``), so a level that fired and was resolved is not fired again in
the same month (as for peer cards, SPEC §5: a card fires once per month and level).
Re-evaluating with unchanged inputs therefore emits nothing.

:func:`fund_alert` builds the alert without ``emitted_at`` (the shell stamps it). Entities
(SPEC §11): region → ``{"kind": "region", "id": region}``; institution →
``{"kind": "institution", "id": id, "institution_id": id}``; diagnosis →
``{"kind": "diagnosis", "id": category}``; all with ``region``. ``visit_kind`` is ``null``
for ``fund.expenditure_growth`` (it does not split by visit kind; the schema's enum has no
"all", and identity hashes ``"all"``), ``"inpatient"`` for ``fund.inpatient_growth`` and
the scope's visit kind for disease swings. The hashed entity id of institutions and
diagnoses is region-qualified (``610302|K40``) so two regions never share an ``alert_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from detectors.alert_identity import alert_id
from detectors.entities import join_fields
from detectors.fund.monitors import (
    EXPENDITURE_GROWTH,
    INPATIENT_GROWTH,
    LEVELS,
    Finding,
    Measure,
    threshold_ratio,
)
from detectors.fund.scopes import Scope, scope_from_list
from detectors.months import months_back

ALL_VISIT_KINDS = "all"  # hashed into alert_id when the rule does not split by visit kind
Transition = tuple[str, str]  # (status, level)
_DIGITS = {"fund_amount": 2, "cost_per_case": 2, "inpatient_total_cost": 2,
           "inpatient_visits": 0, "cmi": 4}


@dataclass(frozen=True, slots=True)
class MonitorKey:
    """What one alert state belongs to: rule, scope and month."""

    rule: str
    scope: Scope
    month: str

    @property
    def key(self) -> str:
        return join_fields(self.rule, *self.scope, self.month)


@dataclass(frozen=True, slots=True)
class MonitorState:
    """The level firing now (``None``: none) and every level that has fired (LEVELS order)."""

    firing: str | None = None
    fired: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"firing": self.firing, "fired": list(self.fired)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonitorState:
        return cls(d.get("firing"), tuple(d.get("fired", ())))


def outcome_step(state: MonitorState, level: str | None
                 ) -> tuple[MonitorState, tuple[Transition, ...]]:
    """Transitions from the level of the latest evaluation (``None``: nothing crosses)."""
    if level == state.firing:
        return state, ()
    out: list[Transition] = []
    fired, firing = state.fired, None
    if level is not None and level not in fired:
        out.append(("firing", level))
        fired = tuple(lv for lv in LEVELS if lv in fired or lv == level)
        firing = level
    if state.firing is not None:
        out.append(("resolved", state.firing))
    return MonitorState(firing, fired), tuple(out)


def visit_kind_of(rule: str, scope: Scope) -> str | None:
    if rule == EXPENDITURE_GROWTH:
        return None
    if rule == INPATIENT_GROWTH:
        return "inpatient"
    return scope[3]


def entity_of(scope: Scope) -> tuple[dict[str, Any], str]:
    """The alert's ``entity`` and the entity id hashed into ``alert_id``."""
    family, region = scope[0], scope[1]
    if family == "region":
        return {"kind": "region", "id": region, "institution_id": None, "region": region}, region
    if family == "institution":
        return ({"kind": "institution", "id": scope[2], "institution_id": scope[2],
                 "region": region}, join_fields(region, scope[2]))
    return ({"kind": "diagnosis", "id": scope[2], "institution_id": None, "region": region},
            join_fields(region, scope[2]))


def _num(x: Fraction, name: str) -> float | int:
    digits = _DIGITS.get(name, 4)
    return int(x) if digits == 0 and x.denominator == 1 else round(float(x), digits)


def _measure_dict(m: Measure, month: str) -> dict[str, Any]:
    return {"measure": m.name, "current": _num(m.current, m.name),
            "previous": [_num(p, m.name) for p in m.previous],
            "previous_months": list(months_back(month, len(m.previous))),
            "baseline": _num(m.baseline, m.name), "growth": round(float(m.growth), 4),
            "level": m.level}


def _reason(finding: Finding | None, level: str, status: str) -> str | None:
    if status == "firing":
        return None
    if finding is None:
        return "insufficient_data"
    if finding.level is None:
        return "below_threshold"
    return "superseded" if LEVELS.index(finding.level) > LEVELS.index(level) else "downgraded"


def fund_alert(params: Any, key: MonitorKey, level: str, status: str, finding: Finding | None,
               rules_version: str, event_time: str) -> dict[str, Any]:
    """The SPEC §6 alert of one transition, without ``emitted_at``.

    Args:
        params: the rule's parameters (for the level's threshold).
        key: rule, scope and month.
        level, status: from :func:`outcome_step`.
        finding: the evaluation that caused it; ``None`` when the month can no longer be
            measured (only a resolution; the numbers are then ``null``).
        rules_version: version of the rule set used.
        event_time: RFC 3339 close time of the month (:func:`detectors.fund.close.iso_local`
            of ``close_ms``), the same in live runs and replays.

    Returns:
        Plain JSON types: ``observed`` = this month's value, ``peer_mean`` = the baseline,
        ``ratio`` = observed / baseline, ``threshold`` = the level's ratio (1.15),
        ``n`` = cases, ``peer_entities`` = baseline months; ``evidence`` has ``measure``,
        ``current``, ``previous`` (most recent first), ``previous_months``, ``baseline``,
        ``growth``, ``n`` (and ``measures`` for inpatient growth, ``reason`` if resolved).
    """
    entity, hashed_id = entity_of(key.scope)
    visit_kind = visit_kind_of(key.rule, key.scope)
    evidence: dict[str, Any]
    if finding is None:
        observed = baseline = ratio = n = months = None
        evidence = {"measure": None, "current": None, "previous": [], "growth": None, "n": None}
    else:
        m = finding.measure
        evidence = {**_measure_dict(m, key.month), "n": finding.n}
        observed, baseline, n = evidence["current"], evidence["baseline"], finding.n
        ratio, months = round(float(m.ratio), 4), len(m.previous)
        if finding.measures:
            evidence["measures"] = [_measure_dict(x, key.month) for x in finding.measures]
    reason = _reason(finding, level, status)
    if reason is not None:
        evidence["reason"] = reason
    return {
        "alert_id": alert_id(key.rule, entity["kind"], hashed_id,
                             visit_kind or ALL_VISIT_KINDS, key.month, level),
        "status": status,
        "level": level,
        "rule": key.rule,
        "rules_version": str(rules_version),
        "entity": entity,
        "visit_kind": visit_kind,
        "period": key.month,
        "observed": observed,
        "peer_mean": baseline,
        "ratio": ratio,
        "threshold": threshold_ratio(params, level),
        "n": n,
        "peer_entities": months,
        "consecutive_months": 1,
        "evidence": evidence,
        "event_time": event_time,
    }


def key_to_dict(key: MonitorKey) -> dict[str, Any]:
    return {"rule": key.rule, "scope": list(key.scope), "month": key.month}


def key_from_dict(d: dict[str, Any]) -> MonitorKey:
    return MonitorKey(str(d["rule"]), scope_from_list(d["scope"]), str(d["month"]))
