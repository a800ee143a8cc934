"""Field checks of a settlement event (SPEC §3, §11): the building blocks of validation.

Each ``*_field(errors, ...)`` checks one decoded JSON value and returns the checked (domain)
value, or ``None`` after appending human-actionable ``"path: message"`` strings such as
``"items[3].amount: must be >= 0"`` to ``errors``. Everything here is a ``schema`` error;
``service.validation`` assembles the settlement and applies the cross-field money rules.
``schemas/settlement.schema.json`` states the same rules declaratively and
``tests/unit/test_schemas.py`` keeps the two in step. Hand-written (no jsonschema at run
time) because it runs on every event; the happy path builds no message strings.

Values under ``patient`` are never echoed in messages (patient ids are sensitive).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.domain import (
    GENDERS,
    INSTITUTION_KINDS,
    ITEM_CATEGORIES,
    OWNERSHIPS,
    SPECIALTIES,
    VISIT_KINDS,
    Department,
    Institution,
    Patient,
    Visit,
)

MAX_ERRORS = 20
MAX_SETTLEMENT_ID_LEN = 64
MAX_ID_LEN = 256  # region, institution/department/doctor/patient ids, item/diagnosis/DRG codes
MAX_NAME_LEN = 1024
MAX_YUAN = 1_000_000_000  # any money field; keeps integer fen far inside float precision
MAX_QUANTITY = 1_000_000
MAX_DAYS_SUPPLY = 3650
MAX_DRG_WEIGHT = 1000
MAX_AGE = 130
MAX_LEVEL = 3

MISSING: Any = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Instants outside [1970, 2100) UTC are refused: at the edges of year 1..9999 the local
# date of a region overflows ``datetime`` (the worker's intake crashed on them), and no
# settlement is that old or that far ahead.
MIN_INSTANT = _EPOCH
MAX_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
_MS = timedelta(milliseconds=1)
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})\Z"
)
_KINDS = frozenset(INSTITUTION_KINDS)
_OWNERSHIPS = frozenset(OWNERSHIPS)
_SPECIALTIES = frozenset(SPECIALTIES)
_VISIT_KINDS = frozenset(VISIT_KINDS)
CATEGORY_SET = frozenset(ITEM_CATEGORIES)
_GENDERS = frozenset(GENDERS)


class TooManyErrors(Exception):
    """Raised internally once ``MAX_ERRORS`` + 1 errors are collected: stop walking."""


class Errors(list[str]):
    def add(self, path: str, message: str) -> None:
        self.append(f"{path}: {message}")
        if len(self) > MAX_ERRORS:
            raise TooManyErrors


def kind_of(value: Any) -> str:
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def show(value: Any) -> str:
    """A short, safe rendering of an offending value (never used for patient fields)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, bool) or value is None:
        return kind_of(value)
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 24 else text[:21] + "..."
    return kind_of(value)


def type_error(errors: Errors, path: str, value: Any, expected: str) -> None:
    if value is MISSING:
        errors.add(path, "required")
    else:
        errors.add(path, f"must be {expected}, got {kind_of(value)}")


def string_field(errors: Errors, path: str, value: Any, max_len: int = MAX_ID_LEN) -> str | None:
    if type(value) is str and 0 < len(value) <= max_len:
        return value
    if not isinstance(value, str):
        type_error(errors, path, value, "a string")
    elif not value:
        errors.add(path, "must not be empty")
    else:
        errors.add(path, f"must be at most {max_len} characters, got {len(value)}")
    return None


def enum_field(
    errors: Errors,
    path: str,
    value: Any,
    allowed: frozenset[str],
    order: tuple[str, ...],
    echo: bool = True,
) -> str | None:
    if type(value) is str and value in allowed:
        return value
    if value is MISSING:
        errors.add(path, "required")
    else:
        got = f", got {show(value)}" if echo else ""
        errors.add(path, f"must be one of {', '.join(order)}{got}")
    return None


def integer_field(
    errors: Errors, path: str, value: Any, low: int, high: int, echo: bool = True
) -> int | None:
    t = type(value)
    if t is float and value.is_integer():  # JSON Schema: 61.0 is an integer
        value, t = int(value), int
    if t is int:
        if low <= value <= high:
            return value
        got = f", got {show(value)}" if echo else ""
        errors.add(path, f"must be between {low} and {high}{got}")
    else:
        type_error(errors, path, value, "an integer")
    return None


def money_field(errors: Errors, path: str, value: Any) -> int | None:
    """Yuan with at most 2 decimals, 0..MAX_YUAN, as integer fen (see ``to_fen``)."""
    fen = to_fen(value)
    if fen is not None:
        return fen
    if not (type(value) is int or type(value) is float):
        type_error(errors, path, value, "a number")
    elif math.isnan(value):  # from a non-orjson decoder (settlement_from_dict)
        errors.add(path, "must be a finite number")
    elif value < 0:
        errors.add(path, "must be >= 0")
    elif value > MAX_YUAN:
        errors.add(path, f"must be <= {MAX_YUAN}, got {show(value)}")
    else:
        errors.add(path, f"must have at most 2 decimals, got {show(value)}")
    return None


def to_fen(value: Any) -> int | None:
    """Integer fen of a valid money value, else None.

    Floats are judged in fen: a value within ``1e-6 + 1e-14 * fen`` of a whole fen has at
    most 2 decimals (104.4 * 100 == 10440.000000000002 and binary noise such as
    0.30000000000000004 pass; 1.005 and 0.001 fail). The tolerance is absolute, not
    relative, so a third decimal is caught at every magnitude up to MAX_YUAN.
    """
    t = type(value)
    if t is float:
        if 0.0 <= value <= MAX_YUAN:
            fen = value * 100.0
            whole = round(fen)
            if abs(fen - whole) <= 1e-6 + fen * 1e-14:
                return whole
    elif t is int and 0 <= value <= MAX_YUAN:
        return value * 100
    return None


def timestamp_field(errors: Errors, path: str, value: Any) -> tuple[datetime, int] | None:
    """RFC 3339 date-time with a UTC offset (``Z`` or ``±hh:mm``) -> (aware datetime, epoch ms)."""
    if type(value) is str and _RFC3339.match(value):
        try:
            at = datetime.fromisoformat(value.upper())
        except ValueError:
            errors.add(path, f"not a valid date-time, got {show(value)}")
            return None
        if not MIN_INSTANT <= at < MAX_INSTANT:
            errors.add(path, "must be from 1970-01-01T00:00:00Z to before "
                             f"2100-01-01T00:00:00Z, got {show(value)}")
            return None
        return at, (at - _EPOCH) // _MS
    if isinstance(value, str):
        errors.add(
            path,
            "must be an RFC 3339 date-time with offset, e.g. 2025-11-18T10:02:11+08:00, "
            f"got {show(value)}",
        )
    else:
        type_error(errors, path, value, "an RFC 3339 date-time string")
    return None


def strings_field(errors: Errors, path: str, value: Any, min_items: int) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        type_error(errors, path, value, "an array of strings")
        return None
    if len(value) < min_items:
        errors.add(path, f"must have at least {min_items} entry")
        return None
    ok = True
    for i, v in enumerate(value):
        if not (type(v) is str and 0 < len(v) <= MAX_ID_LEN):
            string_field(errors, f"{path}[{i}]", v)
            ok = False
    return tuple(value) if ok else None


def object_field(errors: Errors, path: str, value: Any) -> dict | None:
    if isinstance(value, dict):
        return value
    type_error(errors, path, value, "an object")
    return None


def institution_field(errors: Errors, value: Any) -> Institution | None:
    obj = object_field(errors, "institution", value)
    if obj is None:
        return None
    get = obj.get
    n = len(errors)
    iid = string_field(errors, "institution.id", get("id", MISSING))
    kind = enum_field(errors, "institution.kind", get("kind", MISSING), _KINDS, INSTITUTION_KINDS)
    level = integer_field(errors, "institution.level", get("level", MISSING), 0, MAX_LEVEL)
    ownership = enum_field(
        errors, "institution.ownership", get("ownership", MISSING), _OWNERSHIPS, OWNERSHIPS
    )
    if len(errors) != n:
        return None
    return Institution(iid, kind, level, ownership)


def department_field(errors: Errors, value: Any, pharmacy: bool) -> Department | None:
    if value is None or value is MISSING:
        if not pharmacy:
            what = "required" if value is MISSING else "must be an object"
            errors.add("department", f"{what} (null only for pharmacies)")
        return None
    obj = object_field(errors, "department", value)
    if obj is None:
        return None
    did = string_field(errors, "department.id", obj.get("id", MISSING))
    specialty = enum_field(
        errors, "department.specialty", obj.get("specialty", MISSING), _SPECIALTIES, SPECIALTIES
    )
    if did is None or specialty is None:
        return None
    return Department(did, specialty)


def doctor_field(errors: Errors, value: Any, pharmacy: bool) -> str | None:
    if value is None or value is MISSING:
        if not pharmacy:
            what = "required" if value is MISSING else "must be a string"
            errors.add("doctor_id", f"{what} (null only for pharmacies)")
        return None
    return string_field(errors, "doctor_id", value)


def patient_field(errors: Errors, value: Any) -> Patient | None:
    """Never echoes a value: patient fields are personal data."""
    obj = object_field(errors, "patient", value)
    if obj is None:
        return None
    n = len(errors)
    pid = string_field(errors, "patient.id", obj.get("id", MISSING))
    gender = enum_field(
        errors, "patient.gender", obj.get("gender", MISSING), _GENDERS, GENDERS, echo=False
    )
    age = integer_field(errors, "patient.age", obj.get("age", MISSING), 0, MAX_AGE, echo=False)
    if len(errors) != n:
        return None
    return Patient(pid, gender, age)


def visit_field(errors: Errors, value: Any) -> Visit | None:
    obj = object_field(errors, "visit", value)
    if obj is None:
        return None
    get = obj.get
    n = len(errors)
    raw_kind = get("kind", MISSING)
    kind = enum_field(errors, "visit.kind", raw_kind, _VISIT_KINDS, VISIT_KINDS)
    diagnoses_v = get("diagnoses", MISSING)
    if raw_kind == "pharmacy" and diagnoses_v is MISSING:
        diagnoses: tuple[str, ...] | None = ()
    else:
        diagnoses = strings_field(
            errors, "visit.diagnoses", diagnoses_v, 0 if raw_kind == "pharmacy" else 1
        )
    stay_ms = []
    for key in ("admitted_at", "discharged_at"):
        v = get(key)
        if v is None:
            if raw_kind == "inpatient":
                errors.add(f"visit.{key}", "required for inpatient visits")
            stay_ms.append(None)
        else:
            at = timestamp_field(errors, f"visit.{key}", v)
            stay_ms.append(None if at is None else at[1])
    admitted_ms, discharged_ms = stay_ms
    if admitted_ms is not None and discharged_ms is not None and discharged_ms < admitted_ms:
        errors.add("visit.discharged_at", "must not be before visit.admitted_at")
    drg_code = drg_weight = None
    drg_v = get("drg")
    if drg_v is not None:
        drg = object_field(errors, "visit.drg", drg_v)
        if drg is not None:
            drg_code = string_field(errors, "visit.drg.code", drg.get("code", MISSING))
            w = drg.get("weight", MISSING)
            if (type(w) is int or type(w) is float) and 0 < w <= MAX_DRG_WEIGHT:
                drg_weight = float(w)
            elif type(w) is int or type(w) is float:
                errors.add("visit.drg.weight", f"must be > 0 and <= {MAX_DRG_WEIGHT}")
            else:
                type_error(errors, "visit.drg.weight", w, "a number")
    if len(errors) != n:
        return None
    return Visit(kind, diagnoses, admitted_ms, discharged_ms, drg_code, drg_weight)
