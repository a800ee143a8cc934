"""One-sided p-values that an entity's metric exceeds its peers' (SPEC §6 ``p_value``).

Both tests treat each visit (settlement) as one observation and the peer group as one
pooled sample, and read everything from the exact integer power sums of
:mod:`detectors.peer_stats` (Chan, Golub & LeVeque 1983: the variance follows from
``n``, Σx, Σx²; in integers ``n·Σx² − (Σx)²`` is exact, so no Welford update is needed).

- ``cost_per_visit``: Welch's unequal-variance t-test on the per-visit totals, with
  Welch–Satterthwaite degrees of freedom; p = P(T > t) from :data:`scipy.stats.t`.
- ``drug_ratio``: a one-sided z-test on the two pooled ratio estimators r = Σd / Σt. Each
  estimator's variance comes from the delta method (linearisation of a ratio estimator,
  Cochran, *Sampling Techniques*, 3rd ed., §6.3):
  ``Var(r) ≈ Σ(dᵢ − r·tᵢ)² / (n (n−1) t̄²)``, and ``Σ(dᵢ − r·tᵢ)²`` expands to
  ``(T²·Σd² − 2·D·T·Σdt + D²·Σt²) / T²`` — an exact integer numerator. p = P(Z > z).

Both ignore clustering of visits within peer entities (the peer sample is pooled, as the
peer mean is), so p is evidence for a supervisor, not a decision rule: cards fire on the
SPEC's ratio threshold alone.

Every function returns ``None`` when the test is not computable: fewer than 2 visits on
either side, a zero total for a ratio, or a zero standard error.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Protocol

from scipy import stats


class Moments(Protocol):
    """Anything with the pooled sums of :class:`detectors.peer_stats.EntityMonth`."""

    visits: int
    total_fen: int
    drug_fen: int
    sum_sq_total_fen2: int
    sum_sq_drug_fen2: int
    sum_drug_total_fen2: int


def _clamp(p: float) -> float:
    return min(1.0, max(0.0, float(p)))


def welch_one_sided_p(
    n1: int, sum1: int, sum_sq1: int, n2: int, sum2: int, sum_sq2: int
) -> float | None:
    """P-value of H₁: mean₁ > mean₂ (Welch's t-test) from counts, sums and Σx².

    Returns ``None`` if either sample has fewer than 2 observations or both variances are 0.
    """
    if n1 < 2 or n2 < 2:
        return None
    var1 = Fraction(n1 * sum_sq1 - sum1 * sum1, n1 * (n1 - 1))
    var2 = Fraction(n2 * sum_sq2 - sum2 * sum2, n2 * (n2 - 1))
    a, b = var1 / n1, var2 / n2
    se2 = a + b
    if se2 <= 0:
        return None
    t_stat = float(Fraction(sum1, n1) - Fraction(sum2, n2)) / math.sqrt(float(se2))
    df = float(se2 * se2 / (a * a / (n1 - 1) + b * b / (n2 - 1)))
    return _clamp(stats.t.sf(t_stat, df))


def ratio_variance(
    n: int, d: int, t: int, sum_dd: int, sum_dt: int, sum_tt: int
) -> Fraction | None:
    """Delta-method variance of the ratio estimator ``d / t`` over ``n`` visits.

    ``N·n / ((n−1)·T⁴)`` with ``N = T²Σd² − 2DTΣdt + D²Σt²`` (exact); ``None`` when
    ``n < 2`` or ``t == 0``.
    """
    if n < 2 or t <= 0:
        return None
    numerator = t * t * sum_dd - 2 * d * t * sum_dt + d * d * sum_tt
    return Fraction(numerator * n, (n - 1) * t**4)


def ratio_one_sided_p(entity: Moments, peers: Moments) -> float | None:
    """P-value of H₁: entity's Σdrug/Σtotal > peers' (delta-method z-test)."""
    v1 = ratio_variance(entity.visits, entity.drug_fen, entity.total_fen,
                        entity.sum_sq_drug_fen2, entity.sum_drug_total_fen2,
                        entity.sum_sq_total_fen2)
    v2 = ratio_variance(peers.visits, peers.drug_fen, peers.total_fen,
                        peers.sum_sq_drug_fen2, peers.sum_drug_total_fen2,
                        peers.sum_sq_total_fen2)
    if v1 is None or v2 is None or v1 + v2 <= 0:
        return None
    diff = Fraction(entity.drug_fen, entity.total_fen) - Fraction(peers.drug_fen, peers.total_fen)
    z = float(diff) / math.sqrt(float(v1 + v2))
    return _clamp(stats.norm.sf(z))


def cost_per_visit_p(entity: Moments, peers: Moments) -> float | None:
    """P-value that the entity's cost per visit exceeds the pooled peers' (Welch)."""
    return welch_one_sided_p(entity.visits, entity.total_fen, entity.sum_sq_total_fen2,
                             peers.visits, peers.total_fen, peers.sum_sq_total_fen2)


def drug_ratio_p(entity: Moments, peers: Moments) -> float | None:
    """P-value that the entity's drug ratio exceeds the pooled peers' (delta-method z)."""
    return ratio_one_sided_p(entity, peers)


P_VALUE = {"peer.cost_per_visit": cost_per_visit_p, "peer.drug_ratio": drug_ratio_p}
