"""The item catalogue and the rule-set loader's typed reads (``path: message`` errors).

Types follow each dataclass field's default (bool, int, float, str, tuple of str); a bool
is never accepted as a number and a float never as an integer. Values with errors fall
back to the default so that every problem in the document is reported in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from detectors.ruleset_sections import (
    DEFAULT_MIN_VISITS,
    DEFAULT_PEER_KEYS,
    ENTITY_KINDS,
    PEER_KEY_FIELDS,
    PEER_RULES,
    FrozenMap,
    PeerParams,
)

_BAD = object()


# ---- item catalogue (SPEC §7: restrictions, chronic diagnosis list) ------------------------------


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    """One catalogue entry; ``None`` means "no restriction" for gender and each age bound."""

    code: str
    name: str | None = None
    gender: str | None = None
    min_age: int | None = None
    max_age: int | None = None

    @property
    def restricted(self) -> bool:
        return self.gender is not None or self.min_age is not None or self.max_age is not None

    def allows_age(self, age: int) -> bool:
        return (self.min_age is None or age >= self.min_age) and (
            self.max_age is None or age <= self.max_age
        )


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Item restrictions by code and the chronic-diagnosis prefixes (upper-case)."""

    items: Mapping[str, CatalogueItem] = FrozenMap()
    chronic_prefixes: tuple[str, ...] = ()
    version: str | None = None

    def item(self, code: str) -> CatalogueItem | None:
        return self.items.get(code)

    def is_chronic(self, diagnosis: str) -> bool:
        """Whether an (ICD-10) diagnosis code starts with a chronic-list prefix."""
        code = diagnosis.strip().upper()
        return any(code.startswith(p) for p in self.chronic_prefixes)


class Reader:
    """Collects errors while walking the document."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def table(self, doc: dict, key: str, path: str) -> dict:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            self.error(path, f"must be a table, got {_kind(value)}")
            return {}
        return value

    def unknown(self, table: dict, known: tuple[str, ...] | set[str], path: str) -> None:
        for key in table:
            if key not in known:
                where = f"{path}.{key}" if path else key
                self.error(where, f"unknown key (expected one of: {', '.join(sorted(known))})")


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def read_value(r: Reader, path: str, value: Any, default: Any, meta: Any) -> Any:
    """Type-check ``value`` like ``default`` and apply ``meta["check"]``; ``_BAD`` on error."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            r.error(path, f"must be true or false, got {_kind(value)}")
            return _BAD
    elif meta.get("yuan"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            r.error(path, f"must be an amount in yuan, got {_kind(value)}")
            return _BAD
        value = int(round(value * 100))
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            r.error(path, f"must be an integer, got {_kind(value)} {value!r}")
            return _BAD
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            r.error(path, f"must be a number, got {_kind(value)}")
            return _BAD
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            r.error(path, f"must be a string, got {_kind(value)}")
            return _BAD
    elif isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            r.error(path, "must be an array of strings")
            return _BAD
        choices = meta.get("choices")
        wrong = [v for v in value if choices and v not in choices]
        if wrong:
            r.error(path, f"unknown values {wrong} (allowed: {', '.join(choices)})")
            return _BAD
        value = tuple(value)
    check = meta.get("check")
    message = check(value) if check else None
    if message:
        r.error(path, message)
        return _BAD
    return value


def read_params(r: Reader, cls: type, table: dict, path: str) -> Any:
    """Build a params dataclass from a TOML table; absent keys keep the SPEC default."""
    values: dict[str, Any] = {}
    known: set[str] = set()
    for f in fields(cls):
        if f.metadata.get("special"):
            continue
        key = f.metadata.get("key") or f.name
        known.add(key)
        if key in table and f.default is not MISSING:
            value = read_value(r, f"{path}.{key}", table[key], f.default, f.metadata)
            if value is not _BAD:
                values[f.name] = value
    r.unknown(table, known, path)
    return cls(**values)


def read_peer(r: Reader, table: dict, rules: dict) -> PeerParams:
    """``[peer]`` with ``[peer.min_visits]``, ``[peer.keys]`` and ``rules."peer.*"``."""
    scalars = {k: v for k, v in table.items() if k not in ("min_visits", "keys")}
    base = read_params(r, PeerParams, scalars, "peer")
    if not base.hysteresis < base.threshold - 1:
        r.error("peer.hysteresis", f"must be < threshold - 1 ({base.threshold - 1:g})")
    min_visits = dict(DEFAULT_MIN_VISITS)
    for kind, value in r.table(table, "min_visits", "peer.min_visits").items():
        path = f"peer.min_visits.{kind}"
        if kind not in ENTITY_KINDS:
            r.error(path, f"unknown entity kind (expected one of: {', '.join(ENTITY_KINDS)})")
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            r.error(path, f"must be an integer >= 1, got {value!r}")
            continue
        min_visits[kind] = value
    keys = dict(DEFAULT_PEER_KEYS)
    for kind, value in r.table(table, "keys", "peer.keys").items():
        path = f"peer.keys.{kind}"
        if kind not in ENTITY_KINDS:
            r.error(path, f"unknown entity kind (expected one of: {', '.join(ENTITY_KINDS)})")
            continue
        allowed = PEER_KEY_FIELDS if kind in ("department", "doctor") else PEER_KEY_FIELDS[:-1]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            r.error(path, "must be an array of field names")
        elif [v for v in value if v not in allowed]:
            wrong = [v for v in value if v not in allowed]
            r.error(path, f"unknown fields {wrong} (allowed: {', '.join(allowed)})")
        elif "visit_kind" not in value:
            r.error(path, "must include 'visit_kind' (SPEC §4: outpatient and inpatient "
                          "are never pooled)")
        elif len(set(value)) != len(value):
            r.error(path, "lists a field twice")
        else:
            keys[kind] = tuple(value)
    enabled = set(PEER_RULES)
    for rule_id in PEER_RULES:
        rule = r.table(rules, rule_id, f"rules.{rule_id}")
        r.unknown(rule, ("enabled",), f"rules.{rule_id}")
        if "enabled" in rule:
            on = read_value(r, f"rules.{rule_id}.enabled", rule["enabled"], True, {})
            if on is False:
                enabled.discard(rule_id)
    return PeerParams(
        threshold=base.threshold, consecutive_months=base.consecutive_months,
        hysteresis=base.hysteresis, min_peers=base.min_peers,
        sample_settlements=base.sample_settlements, min_visits=FrozenMap(min_visits),
        keys=FrozenMap(keys), enabled_rules=frozenset(enabled),
    )


def read_catalogue(r: Reader, doc: dict, path: str) -> Catalogue:
    """The item catalogue: ``version``, ``[chronic] prefixes``, ``[items."<code>"]``."""
    r.unknown(doc, ("version", "chronic", "items"), path)
    version = doc.get("version")
    if version is not None and not isinstance(version, str):
        r.error(f"{path}.version", f"must be a string, got {_kind(version)}")
        version = None
    chronic = r.table(doc, "chronic", f"{path}.chronic")
    r.unknown(chronic, ("prefixes",), f"{path}.chronic")
    prefixes = chronic.get("prefixes", [])
    if not isinstance(prefixes, list) or not all(
        isinstance(p, str) and p.strip() for p in prefixes
    ):
        r.error(f"{path}.chronic.prefixes", "must be an array of non-empty diagnosis prefixes")
        prefixes = []
    items: dict[str, CatalogueItem] = {}
    for code, entry in r.table(doc, "items", f"{path}.items").items():
        item = _catalogue_item(r, code, entry, f"{path}.items.{code}")
        if item is not None:
            items[code] = item
    return Catalogue(
        items=FrozenMap(items),
        chronic_prefixes=tuple(dict.fromkeys(p.strip().upper() for p in prefixes)),
        version=version,
    )


def _catalogue_item(r: Reader, code: str, entry: Any, path: str) -> CatalogueItem | None:
    if not isinstance(entry, dict):
        r.error(path, f"must be a table, got {_kind(entry)}")
        return None
    n_errors = len(r.errors)
    r.unknown(entry, ("name", "gender", "min_age", "max_age", "note"), path)
    for key in ("name", "note"):
        if key in entry and not isinstance(entry[key], str):
            r.error(f"{path}.{key}", f"must be a string, got {_kind(entry[key])}")
    gender = entry.get("gender")
    if gender is not None and gender not in ("M", "F"):
        r.error(f"{path}.gender", f"must be \"M\" or \"F\", got {gender!r}")
    ages = {}
    for key in ("min_age", "max_age"):
        value = entry.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= 130):
            r.error(f"{path}.{key}", f"must be an integer age 0-130, got {value!r}")
        ages[key] = value
    lo, hi = ages["min_age"], ages["max_age"]
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        r.error(f"{path}.max_age", f"must be >= min_age ({lo})")
    if len(r.errors) > n_errors:
        return None
    return CatalogueItem(code=code, name=entry.get("name"), gender=gender, min_age=lo, max_age=hi)
