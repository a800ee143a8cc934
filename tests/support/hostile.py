"""Hostile settlement messages: seeded mutations of valid generated settlements (SPEC §9).

``build(valid_lines, mutants, seed)`` returns messages (Kafka key + value) in feed order:
valid lines, exact copies of earlier valid lines (duplicates) and mutants of every kind the
reliability issue lists — truncated JSON, wrong types, huge numbers,
NaN/Infinity, deep nesting, long and 10 MB strings, invalid UTF-8, negative amounts,
wrong time-zone offsets and impossible instants, missing fields and items, broken money
sums, non-object documents, empty and null values — plus a few valid oddities (unknown
extra fields, deep but legal nesting, unusual Unicode ids).

Every mutant gets a settlement_id of its own (``<original>~h<n>``) before it is mutated,
so the only duplicates are the deliberate exact copies (same key, so same partition and a
later offset than the original: always a duplicate within the window). Each message
names its mutation and the outcome the mutation is designed to produce (``expect``:
``valid`` or a DLQ reason); ``None`` means the outcome depends on random bytes and only
the validator can tell. Deterministic: the same arguments give the same messages.
"""

from __future__ import annotations

import copy
import itertools
import random
from dataclasses import dataclass
from typing import Any, Callable

import orjson

MB = 1024 * 1024
HUGE_STRING_BYTES = 10 * MB
HUGE_MUTATIONS = ("huge_string_field", "huge_extra_field", "huge_invalid_utf8", "huge_array")


@dataclass(frozen=True, slots=True)
class Hostile:
    key: bytes | None
    value: bytes | None  # None: a Kafka tombstone (null value)
    mutation: str
    expect: str | None  # "valid" | "not_json" | "schema" | "amounts" | "duplicate" | None


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


def _is_pharmacy(doc: dict) -> bool:
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
    if not _is_pharmacy(doc):
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
    if not _is_pharmacy(doc):
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
    if not _is_pharmacy(doc):
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


def t_truncate(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    return text[: rng.randrange(1, len(text))], "not_json"


def t_invalid_utf8(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    quotes = [i for i, c in enumerate(text) if c == 0x22]
    at = rng.choice(quotes) + 1  # inside a string (or just after one)
    return text[:at] + rng.choice(INVALID_UTF8) + text[at:], "not_json"


def t_nan_infinity(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    field = rng.choice((b'"total_amount":', b'"fund_amount":', b'"amount":', b'"quantity":'))
    start = text.index(field) + len(field)
    end = start
    while text[end:end + 1] not in (b",", b"}"):
        end += 1
    literal = rng.choice((b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf"))
    return text[:start] + literal + text[end:], "not_json"


def t_exponent_overflow(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    field = rng.choice((b'"total_amount":', b'"unit_price":'))
    start = text.index(field) + len(field)
    end = start
    while text[end:end + 1] not in (b",", b"}"):
        end += 1
    return text[:start] + rng.choice((b"1e400", b"-1e999", b"9" * 400 + b".0e9")) + text[end:], \
        "schema"


def t_too_deep(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    depth = rng.choice((1100, 5000, 20_000))
    return text[:-1] + b',"deep":' + b"[" * depth + b"]" * depth + b"}", "schema"


def t_garbage(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))), None


def t_flip_bytes(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    data = bytearray(text)
    for _ in range(rng.randint(1, 5)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data), None


def t_not_an_object(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    return rng.choice((b"[" + text + b"]", b'"settlement"', b"42", b"-0.5", b"null", b"true",
                       b"[]", b"{}", b"[{}]")), "schema"


def t_empty(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    return rng.choice((b"", b" ", b"\n", b"\x00")), "not_json"


def t_bom(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    return b"\xef\xbb\xbf" + text, "not_json"


def t_lone_surrogate(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    field = b'"region":"'
    at = text.index(field) + len(field)
    return text[:at] + rng.choice((b"\\ud800", b"\\udfff", b"\\u12G", b"\\x41")) + text[at:], \
        "not_json"


def t_trailing(rng: random.Random, text: bytes) -> tuple[bytes, str | None]:
    return text + rng.choice((b"}", b",", b" x", b"{}", text)), "not_json"


TEXT_MUTATIONS: dict[str, tuple[Callable[[random.Random, bytes], tuple[bytes, str | None]],
                                int]] = {
    "truncated_json": (t_truncate, 12),
    "invalid_utf8": (t_invalid_utf8, 8),
    "nan_infinity": (t_nan_infinity, 6),
    "exponent_overflow": (t_exponent_overflow, 3),
    "too_deep": (t_too_deep, 2),
    "garbage": (t_garbage, 4),
    "flipped_bytes": (t_flip_bytes, 6),
    "not_an_object": (t_not_an_object, 3),
    "empty": (t_empty, 2),
    "bom": (t_bom, 1),
    "lone_surrogate": (t_lone_surrogate, 2),
    "trailing_garbage": (t_trailing, 2),
}


# --- assembling a feed -------------------------------------------------------------------------

def _key(doc: Any) -> bytes | None:
    sid = doc.get("settlement_id") if isinstance(doc, dict) else None
    return sid.encode() if isinstance(sid, str) and sid else None


def huge_messages(base: dict, tag: str) -> list[Hostile]:
    """10 MB messages: a 10 MB id, a 10 MB unknown extra field (otherwise valid), 10 MB of
    a string that is not valid UTF-8, and a 10 MB array of empty objects (decoded, ~300 MB
    of Python objects). The intake refuses all four unread (``MAX_MESSAGE_BYTES``)."""
    out = []
    doc = copy.deepcopy(base)
    doc["settlement_id"] = f"{base['settlement_id']}~{tag}a"
    doc["doctor_id" if not _is_pharmacy(doc) else "region"] = "D" * HUGE_STRING_BYTES
    out.append(Hostile(_key(doc), orjson.dumps(doc), "huge_string_field", "schema"))
    doc = copy.deepcopy(base)
    doc["settlement_id"] = f"{base['settlement_id']}~{tag}b"
    doc["x_attachment"] = "字" * (HUGE_STRING_BYTES // 3)
    out.append(Hostile(_key(doc), orjson.dumps(doc), "huge_extra_field", "schema"))
    text = orjson.dumps({**base, "settlement_id": f"{base['settlement_id']}~{tag}c"})
    out.append(Hostile(None, text[:-1] + b',"blob":"' + b"\xfe" * HUGE_STRING_BYTES + b'"}',
                       "huge_invalid_utf8", "schema"))
    text = orjson.dumps({**base, "settlement_id": f"{base['settlement_id']}~{tag}d"})
    array = b"[" + b"{}," * (HUGE_STRING_BYTES // 3) + b"{}]"
    out.append(Hostile(None, text[:-1] + b',"rows":' + array + b"}", "huge_array", "schema"))
    return out


def build(valid_lines: list[bytes], mutants: int, seed: int, valid: int = 1000,
          duplicates: int = 200, huge: bool = True) -> list[Hostile]:
    """``mutants`` mutated messages (four of them 10 MB, in the middle, when ``huge``;
    only four because kafka-python's pure-Python CRC-32C spends ~1 s on each), the first
    ``valid`` valid lines in their order, and ``duplicates`` exact copies of valid lines
    already placed, shuffled together (the first message is valid)."""
    rng = random.Random(seed)
    docs = [orjson.loads(x) for x in valid_lines[:valid]]
    slots = ["m"] * (mutants - (len(HUGE_MUTATIONS) if huge else 0)) + ["d"] * duplicates \
        + ["v"] * (valid - 1)
    rng.shuffle(slots)
    slots.insert(0, "v")
    if huge:
        slots.insert(len(slots) // 2, "huge")
    out: list[Hostile] = []
    next_valid = 0
    names = list(DOC_MUTATIONS) + list(TEXT_MUTATIONS)
    weights = [DOC_MUTATIONS[k][1] for k in DOC_MUTATIONS] + \
              [TEXT_MUTATIONS[k][1] for k in TEXT_MUTATIONS]
    for i, slot in enumerate(slots):
        if slot == "huge":
            out.extend(huge_messages(docs[rng.randrange(len(docs))], f"huge{i}"))
        elif slot == "v":
            out.append(Hostile(_key(docs[next_valid]), valid_lines[next_valid], "valid",
                               "valid"))
            next_valid += 1
        elif slot == "d":
            j = rng.randrange(next_valid)
            out.append(Hostile(_key(docs[j]), valid_lines[j], "duplicate", "duplicate"))
        elif rng.random() < 0.005:
            out.append(Hostile(rng.choice((b"k", b"\xff" * 40)), None, "null_value",
                               "not_json"))
        else:
            base = docs[rng.randrange(len(docs))]
            doc = copy.deepcopy(base)
            doc["settlement_id"] = f"{base['settlement_id']}~h{i}"
            name = rng.choices(names, weights)[0]
            if name in DOC_MUTATIONS:
                expect = DOC_MUTATIONS[name][0](rng, doc)
                out.append(Hostile(_key(doc), dumps(doc), name, expect))
            else:
                value, expect = TEXT_MUTATIONS[name][0](rng, orjson.dumps(doc))
                key = _key(doc) if rng.random() < 0.7 else rng.choice((None, b"", b"\x00\xff"))
                out.append(Hostile(key, value, name, expect))
    return out
