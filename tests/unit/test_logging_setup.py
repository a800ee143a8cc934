"""service.logging_setup: JSON lines, text lines, patient-id redaction, Faust/mode wiring."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from service.logging_setup import (
    DEFAULT_PATIENT_ID_PATTERNS,
    REDACTED,
    JsonFormatter,
    RedactPatientIds,
    configure,
    dict_config,
)
from service.synth.population import patient_id


@pytest.fixture(autouse=True)
def _restore_root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("fund_sentinel.test", logging.WARNING, __file__, 10, msg, args,
                             exc_info)


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - we want the traceback
        return caught


@pytest.mark.parametrize("text,expected", [
    ("patient p-1a2b3c4d split", f"patient {REDACTED} split"),
    ("two: p-00000000,p-ffffffff.", f"two: {REDACTED},{REDACTED}."),
    ("resident 11010519491231002X here", f"resident {REDACTED} here"),
    ("resident 110105194912310021", f"resident {REDACTED}"),
    # Not patient ids: settlement ids, offsets, epoch ms, short hex, words with "p-".
    ("settlement S-2025-000123 at 3/17", "settlement S-2025-000123 at 3/17"),
    ("offset 1735689600000", "offset 1735689600000"),
    ("p-abc and top-1a2b3c4d", "p-abc and top-1a2b3c4d"),
])
def test_redacts_patient_id_lookalikes(text, expected):
    assert RedactPatientIds().redact(text) == expected


def test_synthetic_patient_ids_are_caught_by_the_default_pattern():
    f = RedactPatientIds()
    for i in (0, 1, 2, 99, 123_456, 2**31):
        assert f.redact(f"id {patient_id(i)}") == f"id {REDACTED}"


def test_filter_masks_args_and_exception_text_and_keeps_the_record():
    exc = _raised(KeyError("p-deadbeef"))
    rec = _record("claim for %s rejected", "p-0badf00d", exc=exc)
    assert RedactPatientIds().filter(rec) is True
    assert rec.getMessage() == f"claim for {REDACTED} rejected"
    assert "p-deadbeef" not in rec.exc_text and REDACTED in rec.exc_text


def test_pattern_is_configurable():
    f = RedactPatientIds(patterns=[r"\bPAT[0-9]{6}\b"], replacement="***")
    assert f.redact("PAT123456 and p-1a2b3c4d") == "*** and p-1a2b3c4d"


def test_json_formatter_writes_one_object_per_line():
    rec = _record("rows %d", 3, exc=_raised(ValueError("boom")))
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    doc = orjson.loads(line)
    assert doc["level"] == "WARNING" and doc["logger"] == "fund_sentinel.test"
    assert doc["msg"] == "rows 3"
    assert doc["ts"].endswith("Z") and "T" in doc["ts"]
    assert "ValueError: boom" in doc["exc"]


def test_json_lines_end_to_end_with_redaction(capsys):
    configure("info", "json")
    log = logging.getLogger("fund_sentinel.e2e")
    log.debug("not shown")
    log.info("patient %s", "p-12345678")
    try:
        raise RuntimeError("lookup p-87654321 failed")
    except RuntimeError:
        log.exception("agent crashed")
    lines = capsys.readouterr().err.splitlines()
    docs = [orjson.loads(x) for x in lines]
    assert [d["msg"] for d in docs] == [f"patient {REDACTED}", "agent crashed"]
    assert "p-87654321" not in lines[1] and "RuntimeError" in docs[1]["exc"]
    assert set(docs[0]) == {"ts", "level", "logger", "msg"}


def test_text_format_end_to_end(capsys):
    configure("warning", "text")
    logging.getLogger("fund_sentinel.e2e").info("hidden")
    logging.getLogger("fund_sentinel.e2e").warning("for p-abcdef01")
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert err.rstrip().endswith(f"WARNING fund_sentinel.e2e: for {REDACTED}")


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="log format"):
        dict_config("info", "xml")  # type: ignore[arg-type]


def test_mode_worker_logging_applies_our_config(capsys):
    """faust.Worker → mode.Worker._setup_logging → mode.utils.logging.setup_logging: it
    clears the root handlers and applies ``logging_config``; ours must survive that path."""
    from mode.utils.logging import setup_logging

    setup_logging(loglevel="INFO", logfile=None,
                  logging_config=dict_config("info", "json"), loghandlers=[])
    logging.getLogger("faust.transport").info("assigned to %s", "p-00c0ffee")
    doc = orjson.loads(capsys.readouterr().err.splitlines()[-1])
    assert doc == {**doc, "logger": "faust.transport", "msg": f"assigned to {REDACTED}"}


def test_faust_worker_passes_logging_config_to_mode():
    import faust

    app = faust.App("logging-setup-test", broker="kafka://127.0.0.1:1", web_enabled=False,
                    autodiscover=False)
    config = dict_config("info", "json")
    worker = faust.Worker(app, loglevel="INFO", quiet=True, logging_config=config)
    assert worker.logging_config is config


def test_default_patterns_compile():
    assert RedactPatientIds(DEFAULT_PATIENT_ID_PATTERNS).pattern.pattern


def test_handler_stream_gets_redacted_text():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactPatientIds())
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(_record("seen %s", "p-a1b2c3d4"))
    assert stream.getvalue() == f"seen {REDACTED}\n"


def test_float_digits_are_not_mistaken_for_resident_ids():
    """Regression: 'producer flush took 0.253469705581665043' was logged as
    'flush took 0.<patient-id>' (the 18-digit pattern matched a float's decimals)."""
    import logging as _logging

    from service.logging_setup import RedactPatientIds

    record = _logging.LogRecord("x", 20, "", 0, "flush took %s; card %s",
                                ("0.253469705581665043", "110101199003071234"), None)
    RedactPatientIds().filter(record)
    assert record.getMessage() == "flush took 0.253469705581665043; card <patient-id>"


def test_an_id_at_the_end_of_a_sentence_is_still_masked():
    import logging as _logging

    from service.logging_setup import RedactPatientIds

    record = _logging.LogRecord("x", 20, "", 0, "patient 110105194912310021.", (), None)
    RedactPatientIds().filter(record)
    assert record.getMessage() == "patient <patient-id>."
