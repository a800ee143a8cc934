"""Population of the synthetic feed: regions, institutions, departments, doctors, patients.

Everything is drawn from one ``numpy.random.Generator``; the same seed and scale give the
same population. Patients live in numpy arrays per region (``PatientPool``) so that the
large scale stays compact; ids are a bijective 32-bit mix of a global index, so they are
unique without a lookup table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .catalogue import CHRONIC_PATIENT_DX


@dataclass(frozen=True, slots=True)
class RegionProfile:
    code: str
    l3: int
    l2: int
    l1: int
    primary1: int
    primary0: int
    pharmacies: int


@dataclass(frozen=True, slots=True)
class Scale:
    name: str
    regions: tuple[RegionProfile, ...]
    rate: float  # multiplies every visit rate of the templates below
    cases: int  # labelled hit cases per claim rule
    layout: str = "regions"  # the anomaly plan: ``plan`` (3+ regions) or ``plan_tiny``
    templates: tuple[tuple[str, str], ...] = ()  # department template overrides
    travel: tuple[RegionProfile, ...] = ()  # regions seen only in claim cases (no background)


_R = RegionProfile
SCALES: dict[str, Scale] = {
    "small": Scale("small", (_R("610302", 1, 6, 3, 2, 1, 7), _R("610303", 1, 5, 2, 2, 1, 7),
                             _R("610304", 0, 2, 5, 2, 1, 6)), 0.9, 6),
    "medium": Scale("medium", (_R("610302", 2, 12, 6, 5, 3, 16), _R("610303", 2, 8, 5, 4, 3, 14),
                               _R("610304", 1, 5, 9, 4, 3, 12)), 4.5, 12),
    "large": Scale("large", (_R("610302", 4, 20, 10, 8, 5, 28), _R("610303", 3, 14, 9, 8, 5, 24),
                             _R("610304", 2, 9, 14, 8, 5, 20), _R("610305", 2, 10, 10, 6, 4, 18),
                             _R("610323", 1, 6, 9, 6, 4, 14), _R("610324", 1, 6, 8, 6, 4, 14)),
                    16.0, 24),
    # ~3k settlements for 3 months: one region whose only peer groups of four or more are
    # the level-2 internal doctors, the level-1 clinics (one internal department of two
    # doctors each: level-0 prices are too coarse for quiet peer means) and the pharmacies
    # (plan_tiny); a neighbour region holds one pharmacy, seen in cross-region claim cases
    "tiny": Scale("tiny", (_R("610302", 0, 3, 1, 4, 0, 5),), 1.3, 3, "tiny",
                  (("L2", "L2t"), ("L1", "L1t"), ("P1", "P0")), (_R("610303", 0, 0, 0, 0, 0, 1),)),
}

# Department templates: (specialty, id, doctors, outpatient visits/doctor/month, stays/month).
_DEPTS: dict[str, tuple[tuple[str, str, int, float, float], ...]] = {
    "L3": (("internal", "INT1", 5, 32, 30), ("surgery", "SURG1", 3, 26, 20),
           ("pediatrics", "PED1", 2, 28, 8), ("obstetrics", "OBS1", 2, 20, 10),
           ("tcm", "TCM1", 1, 20, 3), ("rehab", "REH1", 1, 13, 4), ("icu", "ICU1", 2, 0, 4),
           ("other", "OTH1", 1, 16, 3)),
    "L2": (("internal", "INT1", 5, 25, 14), ("surgery", "SURG1", 3, 20, 10),
           ("pediatrics", "PED1", 2, 22, 4), ("obstetrics", "OBS1", 1, 15, 5),
           ("tcm", "TCM1", 1, 15, 1), ("rehab", "REH1", 1, 10, 2), ("other", "OTH1", 1, 12, 1)),
    "L1": (("internal", "INT1", 3, 22, 5), ("surgery", "SURG1", 2, 18, 3),
           ("pediatrics", "PED1", 1, 20, 1), ("tcm", "TCM1", 1, 14, 0)),
    "P1": (("internal", "GEN1", 2, 25, 2), ("tcm", "TCM1", 1, 18, 0)),
    "P0": (("internal", "GEN1", 2, 22, 0),),
    # tiny: four internal doctors (a peer group of twelve over three hospitals); the other
    # departments have one doctor each, so their groups stay under four members
    "L2t": (("internal", "INT1", 4, 18, 3), ("surgery", "SURG1", 1, 14, 2),
            ("pediatrics", "PED1", 1, 10, 0.5), ("obstetrics", "OBS1", 1, 8, 1)),
    "L1t": (("internal", "INT1", 2, 12, 2),),
}
PHARMACY_SALES_PER_MONTH = 40.0


@dataclass(frozen=True, slots=True)
class Doctor:
    id: str
    institution_id: str
    department_id: str
    specialty: str
    rate: float  # outpatient visits per month
    cost_mult: float  # persistent personal style, close to 1


@dataclass(frozen=True, slots=True)
class Dept:
    id: str
    specialty: str
    institution_id: str
    doctors: tuple[Doctor, ...]
    stays_per_month: float


@dataclass(frozen=True, slots=True)
class Inst:
    id: str
    region: str
    kind: str
    level: int
    ownership: str
    cost_mult: float
    depts: tuple[Dept, ...] = ()
    sales_per_month: float = 0.0

    def as_json(self) -> dict:
        return {"id": self.id, "kind": self.kind, "level": self.level,
                "ownership": self.ownership}


@dataclass
class PatientPool:
    """Background patients of one region (arrays indexed by local index)."""

    region: str
    base: int  # global index of local index 0
    gender: np.ndarray  # 0 = M, 1 = F
    age: np.ndarray
    chronic: np.ndarray  # index into CHRONIC_PATIENT_DX or -1
    free_from: np.ndarray  # first day index the patient may settle again
    admit_from: np.ndarray  # first day index the patient may be admitted again
    pools: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Population:
    regions: tuple[str, ...]
    institutions: list[Inst]
    patients: dict[str, PatientPool]
    next_patient: int  # next free global patient index (anomaly patients come from here)
    travel: list[Inst] = field(default_factory=list)  # institutions without background

    def by_region(self, region: str, kind: str, level: int | None = None) -> list[Inst]:
        return [i for i in (self.institutions + self.travel if self.travel else self.institutions)
                if i.region == region and i.kind == kind and (level is None or i.level == level)]


def patient_id(index: int) -> str:
    """A pseudonymous id, unique per global index (bijective mix on 32 bits)."""
    x = (index * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    return f"p-{x:08x}"


def _institution(rng: np.random.Generator, ids: dict[str, int], region: str, kind: str,
                 level: int, template: str, rate: float) -> Inst:
    prefix = {"hospital": "H", "primary": "C", "pharmacy": "P"}[kind]
    ids[prefix] += 1
    inst_id = f"{prefix}{ids[prefix]:04d}"
    private_p = {"hospital": 0.2 if level < 3 else 0.0, "primary": 0.1, "pharmacy": 0.8}[kind]
    ownership = "private" if rng.random() < private_p else "public"
    mult = float(np.exp(rng.normal(0.0, 0.02)))
    if kind == "pharmacy":
        return Inst(inst_id, region, kind, level, ownership, mult,
                    sales_per_month=PHARMACY_SALES_PER_MONTH * rate)
    depts = []
    for specialty, dept_id, n_doctors, visits, stays in _DEPTS[template]:
        doctors = []
        for _ in range(n_doctors):
            ids["D"] += 1
            doctors.append(Doctor(f"D{ids['D']:05d}", inst_id, dept_id, specialty,
                                  visits * rate * float(rng.uniform(0.85, 1.15)),
                                  float(np.exp(rng.normal(0.0, 0.02)))))
        depts.append(Dept(dept_id, specialty, inst_id, tuple(doctors), stays * rate))
    return Inst(inst_id, region, kind, level, ownership, mult, tuple(depts))


def _patients(rng: np.random.Generator, region: str, base: int, n: int) -> PatientPool:
    band = rng.choice(4, size=n, p=[0.16, 0.34, 0.30, 0.20])
    lo, hi = np.array([0, 15, 45, 65]), np.array([15, 45, 65, 95])
    age = lo[band] + (rng.random(n) * (hi - lo)[band]).astype(np.int64)
    gender = (rng.random(n) < 0.5).astype(np.int8)
    p_chronic = np.clip(0.2 + 0.006 * (age - 40), 0.0, 0.6) * (age >= 40)
    weights = np.array([w for _, w in CHRONIC_PATIENT_DX], dtype=float)
    which = rng.choice(len(weights), size=n, p=weights / weights.sum())
    chronic = np.where(rng.random(n) < p_chronic, which, -1).astype(np.int8)
    idx = np.arange(n)
    adult = idx[age >= 15]
    pools = {
        "child": idx[age < 15],
        "fertile_f": idx[(gender == 1) & (age >= 20) & (age <= 45)],
        "adult": np.concatenate([adult, idx[age >= 60]]),  # the elderly visit twice as often
        "all": np.concatenate([idx, idx[age >= 60]]),
    }
    never = np.full(n, -1_000_000, dtype=np.int32)  # free since forever (warm-up included)
    return PatientPool(region, base, gender, age.astype(np.int16), chronic, never,
                       never.copy(), pools)


def build(rng: np.random.Generator, scale: Scale) -> Population:
    """Draw the institutions and patients of every region of ``scale``."""
    ids = {"H": 0, "C": 0, "P": 0, "D": 0}
    insts: list[Inst] = []
    patients: dict[str, PatientPool] = {}
    base = 0
    tpl = dict(scale.templates)
    for prof in scale.regions:
        region_insts = [_institution(rng, ids, prof.code, k, lv, tpl.get(t, t), scale.rate)
                        for k, lv, t in _layout(prof)]
        insts.extend(region_insts)
        monthly = sum(d.rate for i in region_insts for dp in i.depts for d in dp.doctors)
        monthly += sum(i.sales_per_month + sum(dp.stays_per_month for dp in i.depts)
                       for i in region_insts)
        n = max(2000, int(monthly * 3.5))
        patients[prof.code] = _patients(rng, prof.code, base, n)
        base += n
    travel = [_institution(rng, ids, prof.code, k, lv, tpl.get(t, t), scale.rate)
              for prof in scale.travel for k, lv, t in _layout(prof)]
    return Population(tuple(p.code for p in scale.regions), insts, patients, base, travel)


def _layout(prof: RegionProfile) -> list[tuple[str, int, str]]:
    return ([("hospital", 3, "L3")] * prof.l3 + [("hospital", 2, "L2")] * prof.l2
            + [("hospital", 1, "L1")] * prof.l1 + [("primary", 1, "P1")] * prof.primary1
            + [("primary", 0, "P0")] * prof.primary0 + [("pharmacy", 0, "")] * prof.pharmacies)
