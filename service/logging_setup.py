"""Logging for the service: text or JSON lines, with a patient-id redaction seatbelt.

The rule is that code never logs patient ids (SPEC §9, STYLE). :class:`RedactPatientIds`
is a seatbelt on the handler, not a licence: it masks anything that looks like a patient id
in the final message and in exception text, whatever logger produced it (ours, Faust's,
aiokafka's).

Faust's worker (mode) clears the root handlers and applies its own ``dictConfig`` when it
starts, so the worker must be given :func:`dict_config` as ``logging_config``; the CLI calls
:func:`configure` for everything else. Both produce the same configuration.
"""

from __future__ import annotations

import logging
import logging.config
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

# Synthetic ids are ``p-`` + 8 hex digits (service/synth/population.py: ``patient_id``);
# real ones may be resident id numbers (18 characters: 17 digits + digit or X).
DEFAULT_PATIENT_ID_PATTERNS: tuple[str, ...] = (
    r"\bp-[0-9a-fA-F]{8,}\b",
    r"(?<![0-9.])[0-9]{17}[0-9Xx](?![0-9A-Za-z]|\.[0-9])",  # not the digits of a float
)
REDACTED = "<patient-id>"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

Format = Literal["text", "json"]


class RedactPatientIds(logging.Filter):
    """Mask patient-id look-alikes in a record's message and exception text.

    Input: any ``LogRecord``. Output: always ``True`` (records are rewritten, never dropped):
    ``msg`` becomes the formatted, masked message with no ``args``; ``exc_text`` and
    ``stack_info`` are rendered and masked. Attach it to handlers (handler filters see the
    records of every logger; a logger's filters do not see its children's records).
    """

    def __init__(self, patterns: Iterable[str] = DEFAULT_PATIENT_ID_PATTERNS,
                 replacement: str = REDACTED, name: str = "") -> None:
        super().__init__(name)
        self.pattern = re.compile("|".join(f"(?:{p})" for p in patterns))
        self.replacement = replacement
        self._exc_formatter = logging.Formatter()

    def redact(self, text: str) -> str:
        return self.pattern.sub(self.replacement, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw parts, masked
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = self.redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, RFC 3339, ms), ``level``, ``logger``, ``msg``,
    and ``exc`` / ``stack`` when the record carries an exception or stack."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(doc, default=str).decode()


def dict_config(level: str, fmt: Format,
                patterns: Iterable[str] = DEFAULT_PATIENT_ID_PATTERNS) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: one stderr handler on the root logger.

    Pass it to ``faust.Worker(..., logging_config=...)``: mode applies it in place of its own
    coloured console setup. Existing loggers stay enabled.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', not {fmt!r}")
    formatter: dict[str, Any] = ({"()": f"{__name__}.JsonFormatter"} if fmt == "json"
                                 else {"format": TEXT_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_patient_ids": {"()": f"{__name__}.RedactPatientIds",
                                           "patterns": tuple(patterns)}},
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                 "formatter": "default", "filters": ["redact_patient_ids"]}},
        "root": {"level": level.upper(), "handlers": ["default"]},
    }


def configure(level: str, fmt: Format,
              patterns: Iterable[str] = DEFAULT_PATIENT_ID_PATTERNS) -> None:
    """Configure the root logger (replacing its handlers) from settings ``log_level`` and
    ``log_format``."""
    logging.config.dictConfig(dict_config(level, fmt, patterns))
