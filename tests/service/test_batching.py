"""The batching shell's safety switches: direct sends only under at-least-once with a
running producer, and (embedded mode) offset jumps are logged, never committed past."""

from __future__ import annotations

import asyncio

from faust.transport.consumer import Consumer
from faust.types.enums import ProcessingGuarantee

from service import tansu_compat
from service.batching import Direct
from service.settings import Settings
from service.worker import build


def test_direct_sends_only_at_least_once_with_a_started_producer(tmp_path):
    app, _rt = build(Settings(broker="kafka://127.0.0.1:1", partitions=2, data_dir=tmp_path,
                              app_id="fs-batching-a"))
    assert Direct.of(app) is None, "producer not started (test_context): Faust's own path"
    app.producer._producer = object()  # as if started
    assert isinstance(Direct.of(app), Direct)

    eos, _ = build(Settings(broker="kafka://127.0.0.1:1", partitions=2, data_dir=tmp_path,
                            app_id="fs-batching-b", broker_profile="kafka",
                            processing_guarantee="exactly_once"))
    assert eos.conf.processing_guarantee == ProcessingGuarantee.EXACTLY_ONCE
    eos.producer._producer = object()
    assert Direct.of(eos) is None, "exactly-once sends stay transactional"


def test_an_offset_jump_registers_no_gap(caplog):
    tansu_compat.never_skip_gaps()

    class Fake:
        _gap: dict = {}

    asyncio.run(Consumer._add_gap(Fake(), type("TP", (), {"topic": "t", "partition": 3})(),
                                  10, 20))
    assert Fake._gap == {}
    assert "offsets jumped in t[3]: 10..19" in caplog.text
