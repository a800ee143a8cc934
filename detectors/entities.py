"""Entities a settlement touches and the peer group each falls into (SPEC §4, §11).

One settlement updates, per entity it touches, that entity's month row:

- a non-pharmacy institution (``hospital`` or ``primary``): the ``hospital`` entity, its
  ``department`` (institution id + department id, SPEC §11) and its ``doctor``;
- a pharmacy: only the ``pharmacy`` entity, with visit kind ``"pharmacy"``.

Doctors are counted per institution (a doctor practising at two sites, 多点执业, is two
entities), because the peer group (institution kind and level) belongs to the site; a
doctor's specialty is the specialty of the department of the visit. Patients are handled
by the claim rules, not here.

The peer-group key always starts with the entity kind and the visit kind, so outpatient
and inpatient are never pooled (SPEC §4) whatever ``params.keys`` lists; the other fields
follow in the configured order. Keys are ``|``-joined with ``\\`` escaping, so ids that
contain ``|`` cannot collide.

Pure: no I/O, no clock. ``params`` is any object with a ``keys`` mapping
(entity kind → tuple of field names), e.g. ``detectors.ruleset.PeerParams``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from detectors.domain import Settlement
from detectors.months import month_of

ENTITY_KINDS = ("hospital", "department", "doctor", "pharmacy")
KEY_FIELDS = ("region", "visit_kind", "institution_kind", "level", "ownership", "specialty")


class KeyParams(Protocol):
    keys: Mapping[str, tuple[str, ...]]


def join_fields(*fields: str) -> str:
    """``|``-join ``fields`` unambiguously (``\\`` → ``\\\\``, ``|`` → ``\\|``)."""
    return "|".join(f.replace("\\", "\\\\").replace("|", "\\|") for f in fields)


@dataclass(frozen=True, slots=True)
class EntityRef:
    """Who an alert is about (SPEC §6 ``entity``).

    ``id`` is the entity's own id (for a department the department id, for a doctor the
    医保医师 code); ``institution_id`` the institution it belongs to (itself for hospitals
    and pharmacies).
    """

    kind: str
    id: str
    institution_id: str
    region: str

    @property
    def key(self) -> str:
        """Storage key, unique across institutions: ``"department|H0007|SURG1"``."""
        if self.kind in ("department", "doctor"):
            return join_fields(self.kind, self.institution_id, self.id)
        return join_fields(self.kind, self.id)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "institution_id": self.institution_id,
                "region": self.region}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EntityRef:
        return cls(kind=d["kind"], id=d["id"], institution_id=d["institution_id"],
                   region=d["region"])


@dataclass(frozen=True, slots=True)
class PeerGroupKey:
    """Entity kind, visit kind and the configured ``(field, value)`` pairs of a group."""

    kind: str
    visit_kind: str
    fields: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        """``"doctor|outpatient|region=610302|institution_kind=hospital|level=2|…"``."""
        return join_fields(self.kind, self.visit_kind, *(f"{k}={v}" for k, v in self.fields))


@dataclass(frozen=True, slots=True)
class EntityUpdate:
    """One settlement's contribution to one entity's month row (money in fen)."""

    entity: EntityRef
    group: PeerGroupKey
    visit_kind: str
    month: str
    settlement_id: str
    settled_at: str
    settled_at_ms: int
    total_fen: int
    drug_fen: int
    fund_fen: int

    @property
    def group_month_key(self) -> str:
        """Table key of the group's month aggregate: ``group|YYYY-MM``."""
        return join_fields(self.group.key, self.month)

    @property
    def entity_month_key(self) -> str:
        """Table key of the entity's month row: ``group|entity|YYYY-MM``.

        The group is part of the key, so an entity seen in two groups (a doctor working
        in two specialties) keeps two independent rows in the group's partition.
        """
        return join_fields(self.group.key, self.entity.key, self.month)


def _field_value(field: str, s: Settlement, kind: str, visit_kind: str) -> str:
    if field == "region":
        return s.region
    if field == "visit_kind":
        return visit_kind
    if field == "institution_kind":
        return s.institution.kind
    if field == "level":
        return str(s.institution.level)
    if field == "ownership":
        return s.institution.ownership
    if field == "specialty":
        # Only departments and doctors have one; a hospital spans many.
        if kind in ("department", "doctor") and s.department is not None:
            return s.department.specialty
        return ""
    raise ValueError(f"unknown peer key field {field!r} (allowed: {', '.join(KEY_FIELDS)})")


def peer_group(s: Settlement, kind: str, visit_kind: str, params: KeyParams) -> PeerGroupKey:
    """The peer group of entity ``kind`` for settlement ``s``, from ``params.keys[kind]``."""
    fields = tuple(
        (f, _field_value(f, s, kind, visit_kind)) for f in params.keys[kind] if f != "visit_kind"
    )
    return PeerGroupKey(kind=kind, visit_kind=visit_kind, fields=fields)


def touched_entities(s: Settlement) -> tuple[tuple[EntityRef, str], ...]:
    """``(entity, visit kind)`` for every entity ``s`` updates, hospital first."""
    inst = s.institution
    if inst.kind == "pharmacy":
        return ((EntityRef("pharmacy", inst.id, inst.id, s.region), "pharmacy"),)
    vk = s.visit.kind
    out = [(EntityRef("hospital", inst.id, inst.id, s.region), vk)]
    if s.department is not None:
        out.append((EntityRef("department", s.department.id, inst.id, s.region), vk))
    if s.doctor_id is not None:
        out.append((EntityRef("doctor", s.doctor_id, inst.id, s.region), vk))
    return tuple(out)


def entity_updates(s: Settlement, params: KeyParams, tz: str) -> tuple[EntityUpdate, ...]:
    """Every entity-month update one validated settlement produces.

    Args:
        s: the settlement (amounts already in fen).
        params: anything with ``keys`` (entity kind → peer-key field names).
        tz: the region's time zone for month bucketing.

    Returns:
        One :class:`EntityUpdate` per touched entity (1 for a pharmacy sale, up to 3
        otherwise), in a fixed order.
    """
    month = month_of(s.settled_at_ms, tz)
    settled_at = s.settled_at.isoformat()
    drug_fen = s.drug_fen
    return tuple(
        EntityUpdate(
            entity=ref, group=peer_group(s, ref.kind, vk, params), visit_kind=vk, month=month,
            settlement_id=s.settlement_id, settled_at=settled_at,
            settled_at_ms=s.settled_at_ms, total_fen=s.total_fen, drug_fen=drug_fen,
            fund_fen=s.fund_fen,
        )
        for ref, vk in touched_entities(s)
    )
