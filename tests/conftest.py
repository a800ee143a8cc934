import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory):
    """A real Tansu broker started by the tests; fails (never skips) if it cannot start."""
    from service.broker import BrokerError, start_embedded

    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    try:
        broker = start_embedded(log_file=log)
    except BrokerError as exc:
        pytest.fail(f"embedded broker could not start: {exc}")
    yield broker
    broker.stop()
