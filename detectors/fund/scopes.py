"""Which fund-monitor scopes a settlement updates (SPEC §7b, §11).

Three scope families, each a plain tuple whose first field names the family:

- ``("region", region)`` — ``fund.expenditure_growth`` of the pooling region;
- ``("institution", region, institution_id)`` — ``fund.expenditure_growth`` and
  ``fund.inpatient_growth`` of one institution (pharmacies included: they spend the fund
  too; with no inpatient visits they never measure inpatient growth);
- ``("diagnosis", region, category, visit_kind)`` — ``fund.disease_cost_swing``, where the
  category is the first 3 characters of the primary (first) diagnosis, trimmed and
  upper-cased (``"k40.9"`` and ``"K40.9"`` are one category). A settlement without a
  diagnosis (pharmacy sales usually) has no diagnosis scope.

Every scope of a settlement receives the same contribution, :meth:`MonthTotals.of`; each
monitor reads only the fields it needs. Months are calendar months of ``settled_at`` in the
region's time zone. :func:`scope_key` gives the table key ``family|…|YYYY-MM``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors.domain import Settlement
from detectors.entities import join_fields
from detectors.fund.totals import MonthTotals
from detectors.months import month_of

Scope = tuple[str, ...]
FAMILIES = ("region", "institution", "diagnosis")
CATEGORY_CHARS = 3


def region_scope(region: str) -> Scope:
    return ("region", region)


def institution_scope(region: str, institution_id: str) -> Scope:
    return ("institution", region, institution_id)


def diagnosis_scope(region: str, category: str, visit_kind: str) -> Scope:
    return ("diagnosis", region, category, visit_kind)


def diagnosis_category(diagnoses: tuple[str, ...]) -> str | None:
    """First 3 characters of the primary diagnosis (``"K40.9"`` → ``"K40"``); ``None`` if none."""
    if not diagnoses:
        return None
    category = diagnoses[0].strip().upper()[:CATEGORY_CHARS]
    return category or None


def region_of(scope: Scope) -> str:
    """Every scope family carries its region second."""
    return scope[1]


@dataclass(frozen=True, slots=True)
class FundUpdate:
    """One settlement's contribution to one scope-month."""

    scope: Scope
    month: str
    totals: MonthTotals

    @property
    def key(self) -> str:
        return scope_key(self.scope, self.month)


def scope_key(scope: Scope, month: str) -> str:
    """Table key of a scope-month, ``|``-joined with escaping.

    ``scope_key(("institution", "610302", "H1"), "2025-11") == "institution|610302|H1|2025-11"``.
    """
    return join_fields(*scope, month)


def fund_updates(s: Settlement, tz: str) -> tuple[FundUpdate, ...]:
    """The scope-month updates of one settlement, in family order.

    Args:
        s: a validated settlement.
        tz: the IANA time zone of ``s.region`` (``RuleSet.tz_for``).

    Returns:
        Two updates (region, institution), three when the settlement has a diagnosis.
    """
    month = month_of(s.settled_at_ms, tz)
    contribution = MonthTotals.of(s)
    scopes = [region_scope(s.region), institution_scope(s.region, s.institution.id)]
    category = diagnosis_category(s.visit.diagnoses)
    if category is not None:
        scopes.append(diagnosis_scope(s.region, category, s.visit.kind))
    return tuple(FundUpdate(scope, month, contribution) for scope in scopes)


def scope_from_list(items: list[Any]) -> Scope:
    scope = tuple(str(x) for x in items)
    if not scope or scope[0] not in FAMILIES:
        raise ValueError(f"not a fund scope: {items!r}")
    return scope
