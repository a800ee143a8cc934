"""The three fund monitors of SPEC §7b as pure evaluations of closed months.

Each function takes the rule's parameters (:mod:`detectors.ruleset_sections`), the scope,
the month and the :class:`MonthTotals` of that month and of its baseline month(s), and
returns a :class:`Finding`, or ``None`` when there is not enough data to measure (no
current totals, a missing or zero baseline month, a base below the minimum). A Finding is
returned whether or not a threshold is crossed; ``Finding.level`` is ``"yellow"``,
``"red"`` or ``None`` (measured, within bounds), so a firing alert that stops crossing can
be resolved with the current evidence.

Growth is ``current / baseline − 1`` computed exactly on fractions of integer fen; it
crosses a level when strictly greater than the rule's ``yellow`` / ``red`` read as a
decimal (``Fraction(str(0.15))``), so exactly +15 % is no card.

- :func:`expenditure_growth`: ``fund_amount`` vs the previous month, region and
  institution scopes; an institution needs a previous month ≥ ``min_institution_base``
  (regions only need a previous month > 0).
- :func:`disease_cost_swing`: cost per case (Σ total / cases) vs the *arithmetic mean of
  the monthly cost per case* of the ``baseline_months`` (3) months before, each of which
  needs ≥ 1 case; the month itself needs ≥ ``min_cases`` (20).
- :func:`inpatient_growth`: inpatient visits, inpatient total cost and CMI (mean
  ``drg.weight`` of inpatient visits that carry one) vs the previous month. Alert identity
  has no "measure" field, so the three measures make **one combined** Finding: its level
  is the highest crossed, the shown measure is the one that sets it (largest growth among
  those at that level), and ``measures`` carries all that could be measured. A measure is
  measured when its previous value is > 0 (CMI: both months have weighted visits).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from detectors.fund.scopes import Scope
from detectors.fund.totals import MonthTotals

EXPENDITURE_GROWTH = "fund.expenditure_growth"
DISEASE_COST_SWING = "fund.disease_cost_swing"
INPATIENT_GROWTH = "fund.inpatient_growth"
RULES = (EXPENDITURE_GROWTH, DISEASE_COST_SWING, INPATIENT_GROWTH)
LEVELS = ("yellow", "red")
# Which scope families each rule watches.
RULE_FAMILIES: dict[str, tuple[str, ...]] = {
    EXPENDITURE_GROWTH: ("region", "institution"),
    DISEASE_COST_SWING: ("diagnosis",),
    INPATIENT_GROWTH: ("institution",),
}


@dataclass(frozen=True, slots=True)
class Measure:
    """One watched quantity: this month, the baseline months (most recent first), the level."""

    name: str
    current: Fraction
    previous: tuple[Fraction, ...]
    baseline: Fraction
    level: str | None

    @property
    def growth(self) -> Fraction:
        return self.current / self.baseline - 1

    @property
    def ratio(self) -> Fraction:
        return self.current / self.baseline


@dataclass(frozen=True, slots=True)
class Finding:
    """The evaluation of one rule for one scope and closed month (enough data to measure)."""

    rule: str
    scope: Scope
    month: str
    level: str | None
    measure: Measure
    n: int
    measures: tuple[Measure, ...] = ()


def decimal(x: float) -> Fraction:
    """A rule-set float read as the decimal it was written as (0.15 → 3/20)."""
    return Fraction(str(x))


def level_of(growth: Fraction, params: Any) -> str | None:
    if growth > decimal(params.red):
        return "red"
    if growth > decimal(params.yellow):
        return "yellow"
    return None


def threshold_ratio(params: Any, level: str) -> float:
    """The level's threshold as a ratio of the baseline (yellow 0.15 → 1.15)."""
    return float(1 + decimal(getattr(params, level)))


def baseline_months(rule: str, params: Any) -> int:
    """How many months before the evaluated one a rule compares against."""
    return int(params.baseline_months) if rule == DISEASE_COST_SWING else 1


def _yuan(fen: int) -> Fraction:
    return Fraction(fen, 100)


def _measure(name: str, current: Fraction, previous: tuple[Fraction, ...],
             params: Any) -> Measure:
    baseline = sum(previous, Fraction(0)) / len(previous)
    return Measure(name, current, previous, baseline, level_of(current / baseline - 1, params))


def _check_family(rule: str, scope: Scope) -> None:
    if scope[0] not in RULE_FAMILIES[rule]:
        raise ValueError(f"{rule} does not watch {scope[0]} scopes")


def expenditure_growth(params: Any, scope: Scope, month: str, current: MonthTotals | None,
                       previous: MonthTotals | None) -> Finding | None:
    """``fund.expenditure_growth``: fund amount of ``month`` vs the month before.

    Returns ``None`` without current totals, without a previous month with fund > 0, or for
    an institution whose previous month is below ``params.min_institution_base_fen``.
    Shown measure ``fund_amount`` in yuan; ``n`` = settlements this month.
    """
    _check_family(EXPENDITURE_GROWTH, scope)
    if current is None or previous is None or previous.fund_fen <= 0:
        return None
    if scope[0] == "institution" and previous.fund_fen < params.min_institution_base_fen:
        return None
    m = _measure("fund_amount", _yuan(current.fund_fen), (_yuan(previous.fund_fen),), params)
    return Finding(EXPENDITURE_GROWTH, scope, month, m.level, m, current.visits)


def disease_cost_swing(params: Any, scope: Scope, month: str, current: MonthTotals | None,
                       previous_three: tuple[MonthTotals | None, ...]) -> Finding | None:
    """``fund.disease_cost_swing``: cost per case of ``month`` vs the mean of the months before.

    Args:
        previous_three: totals of the ``params.baseline_months`` months before ``month``,
            most recent first (``None`` for a month without data).

    Returns ``None`` with fewer than ``params.min_cases`` cases this month, or when any
    baseline month is missing or has no case, or when the baseline mean is 0. Shown measure
    ``cost_per_case`` in yuan; ``n`` = cases this month.
    """
    _check_family(DISEASE_COST_SWING, scope)
    if len(previous_three) != params.baseline_months:
        raise ValueError(f"need {params.baseline_months} baseline months, "
                         f"got {len(previous_three)}")
    if current is None or current.visits < params.min_cases:
        return None
    if any(p is None or p.visits == 0 for p in previous_three):
        return None
    previous = tuple(Fraction(p.total_fen, 100 * p.visits)
                     for p in previous_three if p is not None)
    if sum(previous) == 0:
        return None
    m = _measure("cost_per_case", Fraction(current.total_fen, 100 * current.visits), previous,
                 params)
    return Finding(DISEASE_COST_SWING, scope, month, m.level, m, current.visits)


def _inpatient_measures(params: Any, cur: MonthTotals, prev: MonthTotals
                        ) -> tuple[Measure, ...]:
    out = []
    if prev.inpatient_visits > 0:
        out.append(_measure("inpatient_visits", Fraction(cur.inpatient_visits),
                            (Fraction(prev.inpatient_visits),), params))
    if prev.inpatient_total_fen > 0:
        out.append(_measure("inpatient_total_cost", _yuan(cur.inpatient_total_fen),
                            (_yuan(prev.inpatient_total_fen),), params))
    cur_cmi, prev_cmi = cur.cmi, prev.cmi
    if cur_cmi is not None and prev_cmi is not None and prev_cmi > 0:
        out.append(_measure("cmi", cur_cmi, (prev_cmi,), params))
    return tuple(out)


def _rank(m: Measure) -> tuple[int, Fraction]:
    return (0 if m.level is None else 1 + LEVELS.index(m.level), m.growth)


def inpatient_growth(params: Any, scope: Scope, month: str, current: MonthTotals | None,
                     previous: MonthTotals | None) -> Finding | None:
    """``fund.inpatient_growth``: inpatient visits, inpatient cost and CMI, month over month.

    Returns one combined Finding (see the module docstring), or ``None`` when no measure can
    be measured. ``n`` = inpatient visits this month.
    """
    _check_family(INPATIENT_GROWTH, scope)
    if current is None or previous is None:
        return None
    measures = _inpatient_measures(params, current, previous)
    if not measures:
        return None
    shown = measures[0]
    for m in measures[1:]:
        if _rank(m) > _rank(shown):
            shown = m
    return Finding(INPATIENT_GROWTH, scope, month, shown.level, shown,
                   current.inpatient_visits, measures)


def evaluate(rule: str, params: Any, scope: Scope, month: str, current: MonthTotals | None,
             previous: tuple[MonthTotals | None, ...]) -> Finding | None:
    """Dispatch by rule id; ``previous`` has :func:`baseline_months` entries, most recent first."""
    if rule == DISEASE_COST_SWING:
        return disease_cost_swing(params, scope, month, current, previous)
    if rule == EXPENDITURE_GROWTH:
        return expenditure_growth(params, scope, month, current, previous[0])
    if rule == INPATIENT_GROWTH:
        return inpatient_growth(params, scope, month, current, previous[0])
    raise KeyError(rule)
