"""Mutations of a settlement *document* for the hostile feed (wrong types, huge numbers,
bad timestamps, missing fields, broken sums, valid oddities): each edits a parsed
settlement in place and returns the outcome it is designed to produce."""

from __future__ import annotations

import itertools
import random
from typing import Any, Callable

import orjson

# --- paths into a settlement document -------------------------------------------------------

REQUIRED_TOP = ("settlement_id", "settled_at", "region", "institution", "patient", "visit",
                "items", "total_amount", "fund_amount")
STRING_PATHS = (("settlement_id",), ("region",), ("institution", "id"), ("patient", "id"),
                ("items", 0, "code"))
STRING_PATHS_CLINIC = (("department", "id"), ("doctor_id",))
ENUM_PATHS = (("institution", "kind"), ("institution", "ownership"), ("patient", "gender"),
              ("visit", "kind"), ("items", 0, "category"))
INT_PATHS = (("institution", "level"), ("patient", "age"))
MONEY_PATHS = (("total_amount",), ("fund_amount",), ("items", 0, "amount"),
               ("items", 0, "unit_price"))
NUMBER_PATHS = MONEY_PATHS + (("items", 0, "quantity"),)
OBJECT_PATHS = (("institution",), ("patient",), ("visit",))
NESTED_REQUIRED = (("institution", "id"), ("institution", "kind"), ("institution", "level"),
                   ("institution", "ownership"), ("patient", "id"), ("patient", "gender"),
                   ("patient", "age"), ("visit", "kind"), ("items", 0, "code"),
                   ("items", 0, "category"), ("items", 0, "quantity"),
                   ("items", 0, "unit_price"), ("items", 0, "amount"))
NOT_A_STRING = (123, 1.5, True, [], {}, None, ["a"])
NOT_A_NUMBER = ("12", True, False, [], {}, None, [1])
NOT_AN_OBJECT = ("x", 1, [], True, None)

BAD_TIMESTAMPS = (
    "2025-08-01T07:48:15",  # no offset
    "2025-08-01T07:48:15+0800",  # offset without colon
    "2025-08-01T07:48:15+08",  # truncated offset
    "2025-08-01T07:48:15+24:00",  # offset out of range
    "2025-08-01T07:48:15+99:99",
    "2025-08-01T07:48:15-25:30",
    "2025-08-01T07:48:15 +08:00",
    "2025-08-01 07:48:15+08:00",  # space for T
    "2025-08-01T07:48:15GMT+8",
    "2025-13-01T07:48:15+08:00",  # month 13
    "2025-02-30T07:48:15+08:00",  # no such day
    "2025-08-01T24:00:00+08:00",
    "2025-08-01T07:60:15+08:00",
    "2025-08-01",
    "1754005695",
    "",
    # instants that exist on paper but not in any calendar a region uses: the local date
    # falls outside years 1..9999 once moved to the region's time zone (Asia/Shanghai)
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T16:00:00Z",
)
INVALID_UTF8 = (b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xa0\xa1", b"\xed\xa0\x80",
                b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82", b"\xf4\x90\x80\x80")


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: tuple, value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _delete(doc: Any, path: tuple) -> None:
    del _get(doc, path[:-1])[path[-1]]


def is_pharmacy(doc: dict) -> bool:
    return doc["institution"]["kind"] == "pharmacy"


_RAW_IDS = itertools.count()


class Raw(str):
    """A placeholder for JSON text orjson cannot produce (integers over 64 bits, nesting
    deeper than its encoder allows): ``dumps`` splices the text in."""

    def __new__(cls, text: bytes) -> "Raw":
        self = super().__new__(cls, f"@@raw{next(_RAW_IDS)}@@")
        self.text = text  # type: ignore[attr-defined]
        return self


def _nested_text(depth: int) -> bytes:
    return b'{"a":[' * (depth // 2) + b"1" + b"]}" * (depth // 2)


def dumps(doc: Any) -> bytes:
    raws: list[Raw] = []

    def walk(v: Any) -> None:
        if isinstance(v, Raw):
            raws.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(doc)
    text = orjson.dumps(doc)
    for r in raws:
        text = text.replace(orjson.dumps(str(r)), r.text)  # type: ignore[attr-defined]
    return text


# --- the mutations ---------------------------------------------------------------------------
# Document mutations take (rng, doc) and mutate doc in place, returning the expected outcome.
# Text mutations take (rng, text) and return (bytes, expected outcome).

def m_wrong_type(rng: random.Random, doc: dict) -> str:
    paths = list(STRING_PATHS) + list(ENUM_PATHS) + list(NUMBER_PATHS) + list(INT_PATHS)
    if not is_pharmacy(doc):
        paths += STRING_PATHS_CLINIC
    path = rng.choice(paths + list(OBJECT_PATHS) + [("items",), ("settled_at",)])
    if path in OBJECT_PATHS:
        value = rng.choice(NOT_AN_OBJECT)
    elif path == ("items",):
        value = rng.choice(("x", 1, {}, True, None))
    elif path in NUMBER_PATHS or path in INT_PATHS:
        value = rng.choice(NOT_A_NUMBER)
    else:
        value = rng.choice(NOT_A_STRING)
    _set(doc, path, value)
    return "schema"


def m_wrong_item_entry(rng: random.Random, doc: dict) -> str:
    doc["items"].insert(rng.randrange(len(doc["items"]) + 1), rng.choice((None, 1, "x", [], True)))
    return "schema"


def m_huge_number(rng: random.Random, doc: dict) -> str:
    path = rng.choice(NUMBER_PATHS + INT_PATHS + (("items", 0, "days_supply"),))
    value = rng.choice((1e308, -1e308, Raw(b"1" + b"0" * 30), Raw(b"18446744073709551616"),
                        1e10, 1_000_000_001, 9.99e99, Raw(b"-9223372036854775809")))
    _set(doc, path, value)
    return "schema"


def m_negative(rng: random.Random, doc: dict) -> str:
    path = rng.choice(NUMBER_PATHS + INT_PATHS)
    current = _get(doc, path)
    value = -abs(current) - rng.choice((0.01, 1, 100)) if isinstance(current, float) else -1
    if path == ("items", 0, "quantity"):
        value = rng.choice((0, -1, -0.5))
    _set(doc, path, value)
    return "schema"


def m_three_decimals(rng: random.Random, doc: dict) -> str:
    path = rng.choice(MONEY_PATHS)
    _set(doc, path, rng.choice((1.005, 0.001, 12.345, 99.999)))
    return "schema"


def m_bad_timestamp(rng: random.Random, doc: dict) -> str:
    value = rng.choice(BAD_TIMESTAMPS)
    if doc["visit"]["kind"] == "inpatient" and rng.random() < 0.4:
        doc["visit"][rng.choice(("admitted_at", "discharged_at"))] = value
    else:
        doc["settled_at"] = value
    return "schema"


def m_stay_inverted(rng: random.Random, doc: dict) -> str:
    v = doc["visit"]
    if v["kind"] != "inpatient":
        v["admitted_at"], v["discharged_at"] = "2025-08-02T10:00:00+08:00", "2025-08-01T10:00:00+08:00"
    else:
        v["admitted_at"], v["discharged_at"] = v["discharged_at"], v["admitted_at"]
        if v["admitted_at"] == v["discharged_at"]:
            v["admitted_at"] = "2099-01-01T00:00:00+08:00"
    return "schema"


def m_missing_field(rng: random.Random, doc: dict) -> str:
    paths = [(k,) for k in REQUIRED_TOP] + list(NESTED_REQUIRED)
    if not is_pharmacy(doc):
        paths += [("department",), ("doctor_id",), ("department", "id"),
                  ("department", "specialty")]
    if doc["visit"]["kind"] != "pharmacy":
        paths.append(("visit", "diagnoses"))
    if doc["visit"]["kind"] == "inpatient":
        paths += [("visit", "admitted_at"), ("visit", "discharged_at")]
    _delete(doc, rng.choice(paths))
    return "schema"


def m_missing_items(rng: random.Random, doc: dict) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        del doc["items"]
    elif choice == 1:
        doc["items"] = []
    elif choice == 2:
        doc["items"] = [{}]
    else:
        doc["items"] = [{"code": "x"}]
    return "schema"


def m_long_string(rng: random.Random, doc: dict) -> str:
    paths = STRING_PATHS + (("items", 0, "name"),)
    if not is_pharmacy(doc):
        paths += STRING_PATHS_CLINIC
    path = rng.choice(paths)
    n = rng.choices((1025 if path[-1] == "name" else 257, 2000, 5000, 100_000), (4, 3, 2, 1))[0]
    _set(doc, path, rng.choice("x字\u00e9") * n)
    return "schema"


def m_deep_invalid(rng: random.Random, doc: dict) -> str:
    """Nesting where a scalar belongs (within the decoder's depth limit)."""
    path = rng.choice(NUMBER_PATHS + STRING_PATHS)
    _set(doc, path, Raw(_nested_text(rng.randint(10, 1000))))
    return "schema"


def m_amounts(rng: random.Random, doc: dict) -> str:
    if rng.random() < 0.5:
        doc["total_amount"] = round(doc["total_amount"] + rng.choice((0.02, 5.0, 1000.0)), 2)
    else:
        doc["fund_amount"] = round(doc["total_amount"] + rng.choice((0.01, 1.0, 50.0)), 2)
    return "amounts"


def m_valid_extra(rng: random.Random, doc: dict) -> str:
    """Unknown extra fields are kept and ignored (SPEC §3), however odd."""
    extra: Any = rng.choice((Raw(_nested_text(rng.randint(1, 1000))), "x" * rng.randint(0, 2000),
                             [None, True, 1e300, -0.0, {"": []}], {"\u0000": "\u2028"}))
    target = rng.choice((doc, doc["visit"], doc["patient"], doc["items"][0]))
    target[rng.choice(("x_note", "注释", "", "settlement_id_"))] = extra
    return "valid"


def m_valid_unicode(rng: random.Random, doc: dict) -> str:
    """Unusual but legal ids: a new entity, still a settlement."""
    path = rng.choice((("region",), ("institution", "id"), ("items", 0, "code")))
    _set(doc, path, rng.choice(("六一〇三〇二", "H\u00e9\u0301", "\U0001f3e5-1", "a\tb", "'\"\\")))
    return "valid"


DOC_MUTATIONS: dict[str, tuple[Callable[[random.Random, dict], str], int]] = {
    "wrong_type": (m_wrong_type, 14),
    "wrong_item_entry": (m_wrong_item_entry, 3),
    "huge_number": (m_huge_number, 8),
    "negative_amount": (m_negative, 8),
    "three_decimals": (m_three_decimals, 3),
    "bad_timestamp": (m_bad_timestamp, 10),
    "stay_inverted": (m_stay_inverted, 2),
    "missing_field": (m_missing_field, 10),
    "missing_items": (m_missing_items, 4),
    "long_string": (m_long_string, 3),
    "deep_invalid": (m_deep_invalid, 2),
    "amounts": (m_amounts, 6),
    "valid_extra": (m_valid_extra, 4),
    "valid_unicode": (m_valid_unicode, 2),
}
