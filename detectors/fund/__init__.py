"""Fund monitors (SPEC §7b): closed-month growth and cost-swing checks by event time.

:mod:`~detectors.fund.scopes` maps a settlement to scope-month contributions
(:mod:`~detectors.fund.totals`); :mod:`~detectors.fund.close` closes months per region by
event time; :mod:`~detectors.fund.monitors` evaluates ``fund.expenditure_growth``,
``fund.disease_cost_swing`` and ``fund.inpatient_growth``; :mod:`~detectors.fund.outcomes`
turns evaluations into alert transitions and SPEC §6 alerts; :mod:`~detectors.fund.offline`
runs them all in-process (the reference for the streaming shell).
"""

from detectors.fund.close import (
    Closing,
    RegionClock,
    affected_months,
    close_ms,
    is_closed,
    iso_local,
    observe,
)
from detectors.fund.monitors import (
    RULE_FAMILIES,
    RULES,
    Finding,
    Measure,
    baseline_months,
    disease_cost_swing,
    evaluate,
    expenditure_growth,
    inpatient_growth,
)
from detectors.fund.outcomes import (
    MonitorKey,
    MonitorState,
    fund_alert,
    outcome_step,
)
from detectors.fund.scopes import FundUpdate, Scope, diagnosis_category, fund_updates, scope_key
from detectors.fund.totals import MonthTotals

__all__ = [
    "Closing", "Finding", "FundUpdate", "Measure", "MonitorKey", "MonitorState", "MonthTotals",
    "RULES", "RULE_FAMILIES", "RegionClock", "Scope", "affected_months", "baseline_months",
    "close_ms", "diagnosis_category", "disease_cost_swing", "evaluate", "expenditure_growth",
    "fund_alert", "fund_updates", "inpatient_growth", "is_closed", "iso_local", "observe",
    "outcome_step", "scope_key",
]
