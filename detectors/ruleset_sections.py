"""Sections of the rule set (SPEC §4–5, §7, §7b, §8): frozen parameter dataclasses.

Every field has the SPEC default, so ``SplitAdmissionParams()`` is the shipped behaviour.
The TOML key of a field is its name unless ``metadata["key"]`` says otherwise; the loader
(:mod:`detectors.ruleset_parse`) validates each value against ``metadata["check"]``. Mappings
are :class:`FrozenMap` so every section, and the whole ``RuleSet``, is immutable and
hashable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Callable, TypeVar

from detectors.domain import ITEM_CATEGORIES

K = TypeVar("K")
V = TypeVar("V")

ACTIONS = ("warn", "block")
ENTITY_KINDS = ("hospital", "department", "doctor", "pharmacy")
PEER_KEY_FIELDS = ("region", "visit_kind", "institution_kind", "level", "ownership", "specialty")
PEER_RULES = ("peer.cost_per_visit", "peer.drug_ratio")
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class FrozenMap(Mapping[K, V]):
    """An immutable, hashable mapping (a dict nobody can change after construction)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[K, V] | None = None) -> None:
        self._data: dict[K, V] = dict(data or {})
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def get(self, key: K, default: V | None = None) -> V | None:  # type: ignore[override]
        return self._data.get(key, default)  # Mapping.get: a KeyError per miss (hot path)

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


# ---- value checks: each returns an error message, or None when the value is fine ----------

Check = Callable[[Any], "str | None"]


def positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def share(v: Any) -> str | None:
    return None if 0 < v <= 1 else "must be > 0 and <= 1"


def action(v: Any) -> str | None:
    return None if v in ACTIONS else f"must be one of {' | '.join(ACTIONS)}, got {v!r}"


def checked(default: Any, check: Check | None = None, key: str | None = None, **meta: Any) -> Any:
    """A dataclass field with a default, a value check and an optional TOML key."""
    return field(default=default, metadata={"check": check, "key": key, **meta})


# ---- peer comparison (SPEC §4–5) -------------------------------------------------------------

DEFAULT_MIN_VISITS: FrozenMap[str, int] = FrozenMap(
    {"hospital": 30, "department": 20, "doctor": 10, "pharmacy": 30}
)
DEFAULT_PEER_KEYS: FrozenMap[str, tuple[str, ...]] = FrozenMap(
    {
        "hospital": ("region", "visit_kind", "institution_kind", "level"),
        "department": ("region", "visit_kind", "institution_kind", "level", "specialty"),
        "doctor": ("region", "visit_kind", "institution_kind", "level", "specialty"),
        "pharmacy": ("region", "visit_kind", "institution_kind", "level"),
    }
)


@dataclass(frozen=True, slots=True)
class PeerParams:
    """Peer-comparison cards: yellow above ``peer_mean × threshold``, red after N months."""

    threshold: float = checked(1.20, lambda v: None if v > 1 else "must be > 1")
    consecutive_months: int = checked(3, positive)
    hysteresis: float = checked(0.05, non_negative)
    min_peers: int = checked(3, positive)
    sample_settlements: int = checked(5, non_negative)
    # Read by the loader from [peer.min_visits], [peer.keys] and rules."peer.*".enabled.
    min_visits: Mapping[str, int] = checked(DEFAULT_MIN_VISITS, special=True)
    keys: Mapping[str, tuple[str, ...]] = checked(DEFAULT_PEER_KEYS, special=True)
    enabled_rules: frozenset[str] = checked(frozenset(PEER_RULES), special=True)

    @property
    def resolve_below(self) -> float:
        """Ratio under which a firing card resolves (``threshold − hysteresis``)."""
        return self.threshold - self.hysteresis


# ---- claim rules (SPEC §7, §11) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimRuleParams:
    """Switch and action shared by every claim rule."""

    enabled: bool = checked(True)
    action: str = checked("warn", action)


@dataclass(frozen=True, slots=True)
class TraceCodeReuseParams(ClaimRuleParams):
    action: str = checked("block", action)
    retention_days: int = checked(400, positive)

    @property
    def retention_ms(self) -> int:
        return self.retention_days * DAY_MS


@dataclass(frozen=True, slots=True)
class GenderRestrictedParams(ClaimRuleParams):
    action: str = checked("block", action)


@dataclass(frozen=True, slots=True)
class AgeRestrictedParams(ClaimRuleParams):
    action: str = checked("block", action)


@dataclass(frozen=True, slots=True)
class DuplicateItemParams(ClaimRuleParams):
    categories: tuple[str, ...] = checked(("exam", "treatment", "service"),
                                          choices=ITEM_CATEGORIES)


@dataclass(frozen=True, slots=True)
class OverQuantityParams(ClaimRuleParams):
    outpatient_days: int = checked(7, positive)
    chronic_days: int = checked(30, positive)


@dataclass(frozen=True, slots=True)
class SplitAdmissionParams(ClaimRuleParams):
    window_hours: int = checked(360, positive)

    @property
    def window_ms(self) -> int:
        return self.window_hours * HOUR_MS


@dataclass(frozen=True, slots=True)
class OverlappingStayParams(ClaimRuleParams):
    pass


@dataclass(frozen=True, slots=True)
class ImpossibleTravelParams(ClaimRuleParams):
    window_minutes: int = checked(120, positive)

    @property
    def window_ms(self) -> int:
        return self.window_minutes * 60_000


@dataclass(frozen=True, slots=True)
class PharmacyFrequencyParams(ClaimRuleParams):
    count: int = checked(4, lambda v: None if v >= 2 else "must be >= 2")
    window_hours: int = checked(24, positive)

    @property
    def window_ms(self) -> int:
        return self.window_hours * HOUR_MS


@dataclass(frozen=True, slots=True)
class ExcessiveExamsParams(ClaimRuleParams):
    max_quantity: int = checked(3, positive)


@dataclass(frozen=True, slots=True)
class GhostBedParams(ClaimRuleParams):
    min_stay_hours: int = checked(72, positive)
    max_bed_service_share: float = checked(0.80, share)


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """The eleven claim rules of SPEC §7, one params object each."""

    trace_code_reuse: TraceCodeReuseParams = TraceCodeReuseParams()
    gender_restricted: GenderRestrictedParams = GenderRestrictedParams()
    age_restricted: AgeRestrictedParams = AgeRestrictedParams()
    duplicate_item: DuplicateItemParams = DuplicateItemParams()
    over_quantity: OverQuantityParams = OverQuantityParams()
    split_admission: SplitAdmissionParams = SplitAdmissionParams()
    overlapping_stay: OverlappingStayParams = OverlappingStayParams()
    impossible_travel: ImpossibleTravelParams = ImpossibleTravelParams()
    pharmacy_frequency: PharmacyFrequencyParams = PharmacyFrequencyParams()
    excessive_exams: ExcessiveExamsParams = ExcessiveExamsParams()
    ghost_bed: GhostBedParams = GhostBedParams()


@dataclass(frozen=True, slots=True)
class PatientHistoryParams:
    """Bounds of the per-patient history kept for the stateful claim rules."""

    retention_days: int = checked(60, positive)
    max_entries: int = checked(256, lambda v: None if v >= 8 else "must be >= 8")

    @property
    def retention_ms(self) -> int:
        return self.retention_days * DAY_MS


# ---- fund monitors (SPEC §7b) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FundRuleParams:
    """Switch, yellow/red growth levels and month-closing lateness shared by fund monitors."""

    enabled: bool = checked(True)
    yellow: float = checked(0.15, positive)
    red: float = checked(0.30, positive)
    lateness_hours: int = checked(24, non_negative)

    @property
    def lateness_ms(self) -> int:
        return self.lateness_hours * HOUR_MS


@dataclass(frozen=True, slots=True)
class ExpenditureGrowthParams(FundRuleParams):
    # TOML carries yuan (``min_institution_base = 50000.0``); kept as exact fen.
    min_institution_base_fen: int = checked(5_000_000, non_negative, key="min_institution_base",
                                            yuan=True)

    @property
    def min_institution_base_yuan(self) -> float:
        return self.min_institution_base_fen / 100


@dataclass(frozen=True, slots=True)
class DiseaseCostSwingParams(FundRuleParams):
    yellow: float = checked(0.30, positive)
    red: float = checked(0.60, positive)
    min_cases: int = checked(20, positive)
    baseline_months: int = checked(3, positive)


@dataclass(frozen=True, slots=True)
class InpatientGrowthParams(FundRuleParams):
    yellow: float = checked(0.20, positive)
    red: float = checked(0.40, positive)


@dataclass(frozen=True, slots=True)
class FundRules:
    expenditure_growth: ExpenditureGrowthParams = ExpenditureGrowthParams()
    disease_cost_swing: DiseaseCostSwingParams = DiseaseCostSwingParams()
    inpatient_growth: InpatientGrowthParams = InpatientGrowthParams()


# ---- rule ids -> (section attribute, params class) -----------------------------------------------

# SPEC §7 / §7b table order (the field order of ClaimRules / FundRules).
CLAIM_RULES: Mapping[str, tuple[str, type]] = FrozenMap(
    {f"claim.{f.name}": (f.name, type(f.default)) for f in fields(ClaimRules)})
FUND_RULES: Mapping[str, tuple[str, type]] = FrozenMap(
    {f"fund.{f.name}": (f.name, type(f.default)) for f in fields(FundRules)})
ALL_RULES: tuple[str, ...] = PEER_RULES + tuple(CLAIM_RULES) + tuple(FUND_RULES)

