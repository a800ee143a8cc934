"""Mutations of a settlement's *bytes* for the hostile feed (truncated JSON, invalid UTF-8,
NaN, deep nesting, garbage, BOM, ...): each returns the new bytes and the outcome it is
designed to produce (``None``: only the validator can tell)."""

from __future__ import annotations

import random
from typing import Callable

from support.hostile_docs import INVALID_UTF8


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
