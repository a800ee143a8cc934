"""The edge of the pipeline: raw bytes -> a frozen ``Settlement`` or a ``Rejection`` (SPEC §3, §9).

Reason codes, in order of precedence:

- ``not_json``: the message is not a JSON text (not UTF-8, syntax error, NaN/Infinity,
  empty, null Kafka value).
- ``schema``: it is JSON but breaks the field rules of SPEC §3/§11 (including a non-object
  top level, more than 2 decimals on money, absurd magnitudes, nesting too deep for the
  decoder, ``visit.discharged_at`` before ``visit.admitted_at``). All field errors are
  listed (at most 20). Any unexpected exception while checking also ends here.
- ``amounts``: every field is valid but the money does not add up across fields:
  ``|total_amount - Σ items[].amount| > 0.01`` or ``fund_amount > total_amount``. Checked
  in integer fen, so exactly 0.01 off passes and 0.02 fails. Only reached with no schema
  error.
- ``duplicate``: a settlement_id already processed (decided by the caller, which owns the
  deduplication state; ``duplicate(settlement_id)`` builds the rejection).

Every function here returns a value and never raises on input: the worker must not crash.
Error messages never contain patient values. ``Rejection.to_dlq`` builds the
``settlements-dlq`` record of ``schemas/dlq.schema.json``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from detectors.domain import ITEM_CATEGORIES, Item, Settlement
from service.validation_fields import (
    CATEGORY_SET,
    MAX_DAYS_SUPPLY,
    MAX_ERRORS,
    MAX_ID_LEN,
    MAX_NAME_LEN,
    MAX_QUANTITY,
    MAX_SETTLEMENT_ID_LEN,
    MISSING,
    Errors,
    TooManyErrors,
    department_field,
    doctor_field,
    enum_field,
    institution_field,
    integer_field,
    kind_of,
    money_field,
    patient_field,
    show,
    string_field,
    strings_field,
    timestamp_field,
    to_fen,
    type_error,
    visit_field,
)

REASONS = ("not_json", "schema", "amounts", "duplicate")
AMOUNT_TOLERANCE_FEN = 1  # SPEC §11: |total_amount - Σ item amounts| <= 0.01 is valid
MAX_RAW_BYTES = 64 * 1024  # DLQ records carry at most this much of the original message
# A settlement is a few KB. The intake refuses longer messages before decoding them (a
# 10 MB JSON array decodes into hundreds of MB of objects); valid ones are forwarded whole
# between stages as an escaped JSON string (at most twice as long), which must stay under
# the producer's 1 MB request limit.
MAX_MESSAGE_BYTES = 256 * 1024

# orjson refuses some valid JSON texts because of its own limits; those are schema errors.
_DECODER_LIMITS = {
    "depth limit exceeded": "$: nesting deeper than the decoder limit (1024 levels)",
    "number is infinity": "$: number out of range (overflows a double)",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an input message cannot be processed (SPEC §9).

    Attributes:
        reason: ``not_json`` | ``schema`` | ``amounts`` | ``duplicate``.
        errors: human-actionable ``"path: message"`` strings, e.g.
            ``"items[3].amount: must be >= 0"``; at least one, at most 20.
        settlement_id: the event's settlement_id when it could be read and is valid.
    """

    reason: str
    errors: tuple[str, ...]
    settlement_id: str | None = None

    def to_dlq(
        self, raw: bytes | str | None, source: dict | None = None, *, rejected_at: str | None = None
    ) -> dict:
        """The ``settlements-dlq`` record (``schemas/dlq.schema.json``).

        Args:
            raw: the original message value. Kept as UTF-8 text, or base64 with
                ``raw_encoding: "base64"`` when it is not valid UTF-8; at most
                ``MAX_RAW_BYTES`` bytes of it, with ``raw_truncated: true`` and ``raw_size``
                (the original length in bytes) when cut.
            source: optional ``{"topic", "partition", "offset"}`` of the input message.
            rejected_at: optional RFC 3339 time stamped by the caller (never read here).
        """
        record: dict[str, Any] = {
            "reason": self.reason,
            "errors": list(self.errors),
            "settlement_id": self.settlement_id,
        }
        if raw is None:
            data = b""
        elif isinstance(raw, str):
            data = raw.encode("utf-8", "surrogatepass")
        else:
            data = bytes(raw)
        cut = data[:MAX_RAW_BYTES]
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            record["raw"] = base64.b64encode(cut).decode("ascii")
            record["raw_encoding"] = "base64"
        else:
            end = len(cut)
            if end < len(data):  # back off to a character boundary
                while end > 0 and (data[end] & 0xC0) == 0x80:
                    end -= 1
            record["raw"] = data[:end].decode("utf-8")
        if len(cut) < len(data):
            record["raw_truncated"] = True
            record["raw_size"] = len(data)
        if source is not None:
            record["source"] = source
        if rejected_at is not None:
            record["rejected_at"] = rejected_at
        return record


def duplicate(settlement_id: str) -> Rejection:
    """The rejection of a settlement_id already processed within the deduplication window."""
    return Rejection(
        "duplicate",
        (f"settlement_id: {settlement_id!r} was already processed (duplicate)",),
        settlement_id,
    )


def oversized(size: int) -> Rejection:
    """The rejection of a message longer than ``MAX_MESSAGE_BYTES`` (a ``schema`` error, like
    the decoder's own limits), decided by the caller before decoding."""
    return Rejection("schema", (f"$: message is {size} bytes, over the limit of "
                                f"{MAX_MESSAGE_BYTES} bytes",))


def parse_settlement(raw: bytes | str) -> tuple[Settlement, dict] | Rejection:
    """Decode and validate one message value.

    Returns ``(settlement, decoded)``, where ``decoded`` is the event as a dict with unknown
    extra fields intact (for forwarding), or a ``Rejection``. Never raises.
    """
    if raw is None:
        return Rejection("not_json", ("$: empty message (null value)",))
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        text = str(exc)
        for key, message in _DECODER_LIMITS.items():
            if key in text:
                return Rejection("schema", (message,))
        if "not valid UTF-8" in text:
            return Rejection("not_json", ("$: not valid UTF-8 text",))
        return Rejection("not_json", (f"$: not valid JSON: {text[:200]}",))
    except Exception as exc:  # noqa: BLE001 - e.g. an input of the wrong type
        return Rejection("not_json", (f"$: cannot decode ({type(exc).__name__})",))
    result = settlement_from_dict(obj)
    if isinstance(result, Rejection):
        return result
    return result, obj


def settlement_from_dict(obj: Any) -> Settlement | Rejection:
    """Validate an already-decoded event (``POST /v1/check``). Never raises."""
    try:
        settlement, errors = check_settlement(obj)
        if settlement is None:
            return Rejection("schema", tuple(errors), read_settlement_id(obj))
        amount_errors = _amount_errors(settlement)
        if amount_errors:
            return Rejection("amounts", amount_errors, settlement.settlement_id)
        return settlement
    except Exception as exc:  # noqa: BLE001 - a bug here must not stop the worker
        return Rejection("schema", (f"$: could not be validated ({type(exc).__name__})",))


def check_settlement(obj: Any) -> tuple[Settlement | None, list[str]]:
    """All field (``schema``) checks of SPEC §3/§11 on a decoded event.

    Returns the domain settlement and ``[]``, or ``None`` and at most ``MAX_ERRORS`` errors
    (the last one saying more were cut). Money rules across fields are not checked here.
    """
    if not isinstance(obj, dict):
        return None, [f"$: must be a JSON object, got {kind_of(obj)}"]
    errors = Errors()
    try:
        settlement = _build(errors, obj)
    except TooManyErrors:
        settlement = None
    if len(errors) > MAX_ERRORS:
        return None, errors[: MAX_ERRORS - 1] + ["(further errors not shown)"]
    return settlement, errors


def read_settlement_id(obj: Any) -> str | None:
    """The settlement id of a decoded event when it is a valid one, else None."""
    if isinstance(obj, dict):
        sid = obj.get("settlement_id")
        if type(sid) is str and 0 < len(sid) <= MAX_SETTLEMENT_ID_LEN:
            return sid
    return None


def _build(errors: Errors, obj: dict) -> Settlement | None:
    get = obj.get
    sid_v = get("settlement_id", MISSING)
    sid = string_field(errors, "settlement_id", sid_v, MAX_SETTLEMENT_ID_LEN)
    settled = timestamp_field(errors, "settled_at", get("settled_at", MISSING))
    region = string_field(errors, "region", get("region", MISSING))
    institution_v = get("institution", MISSING)
    institution = institution_field(errors, institution_v)
    pharmacy = isinstance(institution_v, dict) and institution_v.get("kind") == "pharmacy"
    department = department_field(errors, get("department", MISSING), pharmacy)
    doctor_id = doctor_field(errors, get("doctor_id", MISSING), pharmacy)
    patient = patient_field(errors, get("patient", MISSING))
    visit = visit_field(errors, get("visit", MISSING))
    items = _items(errors, get("items", MISSING))
    total_fen = money_field(errors, "total_amount", get("total_amount", MISSING))
    fund_fen = money_field(errors, "fund_amount", get("fund_amount", MISSING))
    if errors:
        return None
    return Settlement(
        sid, settled[0], settled[1], region, institution, department, doctor_id,
        patient, visit, items, total_fen, fund_fen,
    )  # fmt: skip


def _items(errors: Errors, value: Any) -> tuple[Item, ...] | None:
    if not isinstance(value, list):
        type_error(errors, "items", value, "an array")
        return None
    if not value:
        errors.add("items", "must have at least 1 item")
        return None
    items = [_item(errors, i, it) for i, it in enumerate(value)]
    return None if None in items else tuple(items)


def _item(errors: Errors, i: int, it: Any) -> Item | None:
    """One item line; the happy path makes no message strings (it runs ~10 times per event)."""
    if not isinstance(it, dict):
        type_error(errors, f"items[{i}]", it, "an object")
        return None
    get = it.get
    n = len(errors)
    code = get("code", MISSING)
    if not (type(code) is str and 0 < len(code) <= MAX_ID_LEN):
        string_field(errors, f"items[{i}].code", code)
    category = get("category", MISSING)
    if not (type(category) is str and category in CATEGORY_SET):
        enum_field(errors, f"items[{i}].category", category, CATEGORY_SET, ITEM_CATEGORIES)
    q = get("quantity", MISSING)
    tq = type(q)
    if not ((tq is int or tq is float) and 0 < q <= MAX_QUANTITY):
        if tq is int or tq is float:
            errors.add(f"items[{i}].quantity", f"must be > 0 and <= {MAX_QUANTITY}, got {show(q)}")
        else:
            type_error(errors, f"items[{i}].quantity", q, "a number")
    unit_price = get("unit_price", MISSING)
    unit_fen = to_fen(unit_price)
    if unit_fen is None:
        money_field(errors, f"items[{i}].unit_price", unit_price)
    amount = get("amount", MISSING)
    amount_fen = to_fen(amount)
    if amount_fen is None:
        money_field(errors, f"items[{i}].amount", amount)
    name = get("name")
    if name is not None and not (type(name) is str and len(name) <= MAX_NAME_LEN):
        if isinstance(name, str):
            errors.add(f"items[{i}].name", f"must be at most {MAX_NAME_LEN} characters")
        else:
            type_error(errors, f"items[{i}].name", name, "a string")
    days = get("days_supply")
    if days is not None and not (type(days) is int and 0 <= days <= MAX_DAYS_SUPPLY):
        days = integer_field(errors, f"items[{i}].days_supply", days, 0, MAX_DAYS_SUPPLY)
    traces = get("trace_codes")
    if traces is None:
        traces = ()
    elif _codes(traces):
        traces = tuple(traces)
    else:
        strings_field(errors, f"items[{i}].trace_codes", traces, 0)
    if len(errors) != n:
        return None
    return Item(code, category, float(q), unit_fen, amount_fen, name, days, traces)


def _codes(value: Any) -> bool:
    """Fast path of ``strings_field``: a list of non-empty, bounded strings."""
    if type(value) is not list:
        return False
    for v in value:
        if not (type(v) is str and 0 < len(v) <= MAX_ID_LEN):
            return False
    return True


def _amount_errors(s: Settlement) -> tuple[str, ...]:
    errors = []
    items_fen = sum(i.amount_fen for i in s.items)
    if abs(s.total_fen - items_fen) > AMOUNT_TOLERANCE_FEN:
        errors.append(
            f"total_amount: {_yuan(s.total_fen)} differs from the sum of items[].amount "
            f"{_yuan(items_fen)} by {_yuan(abs(s.total_fen - items_fen))} (at most 0.01 allowed)"
        )
    if s.fund_fen > s.total_fen:
        errors.append(f"fund_amount: {_yuan(s.fund_fen)} exceeds total_amount {_yuan(s.total_fen)}")
    return tuple(errors)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"
