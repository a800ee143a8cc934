"""The rule set (SPEC §8): one versioned TOML document, validated on load, frozen.

``load_ruleset(text)`` parses the layout of ``service/data/RULESET_FORMAT.md`` and either
returns a :class:`RuleSet` or raises :class:`RuleSetError` listing *every* problem as
``"<path>: <message>"`` (``rules.claim.split_admission.window_hours: must be > 0``), so a
rejected ``PUT /v1/rules`` tells the supervisor everything to fix at once. Rule tables
that are absent take the SPEC defaults of :mod:`detectors.ruleset_sections`; unknown keys
and unknown rule ids are errors (a typo must never silently disable a check).

The item catalogue is a separate document (``catalogue = "catalogue.toml"``) or an inline
``[catalogue]`` table; pass its text as ``catalogue_text``. Reading it from ``base_dir`` is
the one file access of the pure core, kept for convenience; the service passes the text.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from detectors.ruleset_parse import (
    Catalogue,
    CatalogueItem,
    Reader,
    read_catalogue,
    read_params,
    read_peer,
)
from detectors.ruleset_sections import (
    ALL_RULES,
    CLAIM_RULES,
    FUND_RULES,
    PEER_RULES,
    ClaimRules,
    FrozenMap,
    FundRules,
    PatientHistoryParams,
    PeerParams,
)

DEFAULT_TIMEZONE = "Asia/Shanghai"
__all__ = [
    "ALL_RULES", "CLAIM_RULES", "FUND_RULES", "PEER_RULES", "Catalogue", "CatalogueItem",
    "FrozenMap", "PeerParams", "RuleSet", "RuleSetError", "default_ruleset", "load_ruleset",
]
_TOP_KEYS = ("version", "timezone", "timezones", "catalogue", "peer", "patient_history", "rules")


class RuleSetError(ValueError):
    """An invalid rule-set document; ``errors`` lists every problem as ``path: message``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("invalid rule set: " + "; ".join(self.errors))


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Every threshold, switch, action and catalogue of the service; replaced whole."""

    version: str
    timezone: str = DEFAULT_TIMEZONE
    timezones: Mapping[str, str] = FrozenMap()
    peer: PeerParams = PeerParams()
    claims: ClaimRules = ClaimRules()
    fund: FundRules = FundRules()
    patient_history: PatientHistoryParams = PatientHistoryParams()
    catalogue: Catalogue = Catalogue()

    def tz_for(self, region: str) -> str:
        """IANA time zone of a pooling region (per-region override, else the default)."""
        return self.timezones.get(region, self.timezone)

    def zone_for(self, region: str) -> ZoneInfo:
        return ZoneInfo(self.tz_for(region))

    def params(self, rule_id: str) -> Any:
        """Params object of a ``claim.*`` or ``fund.*`` rule (``PeerParams`` for ``peer.*``)."""
        if rule_id in CLAIM_RULES:
            return getattr(self.claims, CLAIM_RULES[rule_id][0])
        if rule_id in FUND_RULES:
            return getattr(self.fund, FUND_RULES[rule_id][0])
        if rule_id in PEER_RULES:
            return self.peer
        raise KeyError(rule_id)

    def is_enabled(self, rule_id: str) -> bool:
        if rule_id in PEER_RULES:
            return rule_id in self.peer.enabled_rules
        return bool(self.params(rule_id).enabled)

    @property
    def enabled_rules(self) -> tuple[str, ...]:
        return tuple(r for r in ALL_RULES if self.is_enabled(r))

    def to_summary(self) -> dict[str, Any]:
        """Small JSON-ready description for ``GET /v1/rules``."""
        rules: dict[str, Any] = {}
        for rule_id in PEER_RULES:
            rules[rule_id] = {"enabled": self.is_enabled(rule_id)}
        for rule_id in (*CLAIM_RULES, *FUND_RULES):
            rules[rule_id] = _plain(self.params(rule_id))
        peer = _plain(self.peer)
        peer.pop("enabled_rules")
        return {
            "version": self.version,
            "timezone": self.timezone,
            "timezones": dict(self.timezones),
            "enabled_rules": list(self.enabled_rules),
            "peer": peer,
            "patient_history": _plain(self.patient_history),
            "rules": rules,
            "catalogue": {
                "version": self.catalogue.version,
                "items": len(self.catalogue.items),
                "restricted_items": sum(1 for i in self.catalogue.items.values() if i.restricted),
                "chronic_prefixes": list(self.catalogue.chronic_prefixes),
            },
        }


def default_ruleset(version: str = "default", catalogue: Catalogue | None = None) -> RuleSet:
    """The SPEC defaults, for tests and as a fallback before any rule set is loaded."""
    return RuleSet(version=version, catalogue=catalogue or Catalogue())


def load_ruleset(
    text: str, base_dir: Path | None = None, catalogue_text: str | None = None
) -> RuleSet:
    """Parse and validate a rule-set TOML document (SPEC §8).

    Args:
        text: the rule-set document.
        base_dir: directory a ``catalogue = "file"`` reference is relative to; read only when
            ``catalogue_text`` is not given.
        catalogue_text: the text of the referenced catalogue document.

    Returns:
        The frozen, hashable :class:`RuleSet`.

    Raises:
        RuleSetError: with every problem found, each as ``"path: message"``.
    """
    r = Reader()
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleSetError([f"document: not valid TOML ({exc})"]) from None
    r.unknown(doc, _TOP_KEYS, "")
    version = doc.get("version")
    if version is None:
        r.error("version", "required (a string naming this rule set)")
    elif not isinstance(version, str) or not version.strip():
        r.error("version", f"must be a non-empty string, got {version!r}")
    timezone = _zone(r, "timezone", doc.get("timezone", DEFAULT_TIMEZONE))
    zones = {}
    for region, zone in r.table(doc, "timezones", "timezones").items():
        zones[region] = _zone(r, f"timezones.{region}", zone)
    rules = r.table(doc, "rules", "rules")
    for rule_id in rules:
        if rule_id not in CLAIM_RULES and rule_id not in FUND_RULES and rule_id not in PEER_RULES:
            known = ", ".join((*PEER_RULES, *CLAIM_RULES, *FUND_RULES))
            r.error(f"rules.{rule_id}", f"unknown rule id (known: {known})")
    peer = read_peer(r, r.table(doc, "peer", "peer"), rules)
    claims = ClaimRules(**{
        attr: read_params(r, cls, r.table(rules, rule_id, f"rules.{rule_id}"), f"rules.{rule_id}")
        for rule_id, (attr, cls) in CLAIM_RULES.items()
    })
    fund = FundRules(**{
        attr: read_params(r, cls, r.table(rules, rule_id, f"rules.{rule_id}"), f"rules.{rule_id}")
        for rule_id, (attr, cls) in FUND_RULES.items()
    })
    history = read_params(
        r, PatientHistoryParams, r.table(doc, "patient_history", "patient_history"),
        "patient_history",
    )
    _cross_checks(r, claims, fund, history)
    catalogue = _catalogue(r, doc.get("catalogue"), base_dir, catalogue_text)
    if r.errors:
        raise RuleSetError(r.errors)
    return RuleSet(
        version=str(version), timezone=timezone, timezones=FrozenMap(zones), peer=peer,
        claims=claims, fund=fund, patient_history=history, catalogue=catalogue,
    )


def _zone(r: Reader, path: str, name: Any) -> str:
    if not isinstance(name, str):
        r.error(path, f"must be an IANA time zone name, got {name!r}")
        return DEFAULT_TIMEZONE
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        r.error(path, f"unknown time zone {name!r}")
    return name


def _cross_checks(r: Reader, claims: ClaimRules, fund: FundRules, h: PatientHistoryParams) -> None:
    if claims.over_quantity.chronic_days < claims.over_quantity.outpatient_days:
        r.error("rules.claim.over_quantity.chronic_days", "must be >= outpatient_days")
    for rule_id, (attr, _) in FUND_RULES.items():
        p = getattr(fund, attr)
        if p.red <= p.yellow:
            r.error(f"rules.{rule_id}.red", f"must be > yellow ({p.yellow})")
    needed_ms = max(
        claims.split_admission.window_ms,
        claims.pharmacy_frequency.window_ms,
        claims.impossible_travel.window_ms,
    )
    if h.retention_ms < needed_ms:
        r.error(
            "patient_history.retention_days",
            f"must cover the longest patient window ({needed_ms / 86_400_000:g} days)",
        )


def _catalogue(
    r: Reader, ref: Any, base_dir: Path | None, catalogue_text: str | None
) -> Catalogue:
    if ref is None:
        r.error("catalogue", "required: a catalogue file name or an inline [catalogue] table")
        return Catalogue()
    if isinstance(ref, dict):
        return read_catalogue(r, ref, "catalogue")
    if not isinstance(ref, str):
        r.error("catalogue", f"must be a file name or a table, got {ref!r}")
        return Catalogue()
    if catalogue_text is None:
        if base_dir is None:
            r.error("catalogue", f"names file {ref!r} but neither its text nor base_dir was given")
            return Catalogue()
        try:
            catalogue_text = (Path(base_dir) / ref).read_text(encoding="utf-8")
        except OSError as exc:
            r.error("catalogue", f"cannot read {ref!r}: {exc.strerror or exc}")
            return Catalogue()
    try:
        cat_doc = tomllib.loads(catalogue_text)
    except tomllib.TOMLDecodeError as exc:
        r.error(f"catalogue ({ref})", f"not valid TOML ({exc})")
        return Catalogue()
    return read_catalogue(r, cat_doc, f"catalogue ({ref})")


def _plain(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in obj.__dataclass_fields__:
        v = getattr(obj, name)
        if isinstance(v, Mapping):
            v = {k: list(x) if isinstance(x, tuple) else x for k, x in v.items()}
        elif isinstance(v, (tuple, frozenset)):
            v = sorted(v) if isinstance(v, frozenset) else list(v)
        out[name] = v
    return out
