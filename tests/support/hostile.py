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
import random
from dataclasses import dataclass
from typing import Any

import orjson

from support.hostile_docs import DOC_MUTATIONS, dumps, is_pharmacy
from support.hostile_text import TEXT_MUTATIONS

MB = 1024 * 1024
HUGE_STRING_BYTES = 10 * MB
HUGE_MUTATIONS = ("huge_string_field", "huge_extra_field", "huge_invalid_utf8", "huge_array")


@dataclass(frozen=True, slots=True)
class Hostile:
    key: bytes | None
    value: bytes | None  # None: a Kafka tombstone (null value)
    mutation: str
    expect: str | None  # "valid" | "not_json" | "schema" | "amounts" | "duplicate" | None

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
    doc["doctor_id" if not is_pharmacy(doc) else "region"] = "D" * HUGE_STRING_BYTES
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
