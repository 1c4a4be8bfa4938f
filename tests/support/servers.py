"""Real Kafka-protocol broker and PostgreSQL for the tests.

Chosen in this order: servers named by ``KETNOI_TEST_KAFKA_BOOTSTRAP`` /
``KETNOI_TEST_DATABASE_URL``; else testcontainers when a Docker engine answers; else the
embedded Tansu broker and embedded PostgreSQL that ``ketnoi up`` uses.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

from ketnoi_stack.embedded import EmbeddedPostgres, TansuBroker, free_port

__all__ = ["docker_available", "kafka_server", "postgres_server"]


@functools.cache
def docker_available() -> bool:
    """True when a Docker engine answers a ping (checked once per session)."""
    if os.environ.get("KETNOI_TEST_NO_DOCKER"):
        return False
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    import docker  # noqa: PLC0415

    try:
        client = docker.from_env(timeout=3)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def kafka_server() -> Iterator[tuple[str, str]]:
    """Yields (bootstrap, kind)."""
    if bootstrap := os.environ.get("KETNOI_TEST_KAFKA_BOOTSTRAP"):
        yield bootstrap, "env"
    elif docker_available():
        from testcontainers.kafka import KafkaContainer  # noqa: PLC0415

        with KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka:
            yield kafka.get_bootstrap_server(), "testcontainers"
    else:
        broker = TansuBroker(port=free_port()).start()
        try:
            yield broker.bootstrap, "embedded"
        finally:
            broker.stop()


@contextlib.contextmanager
def postgres_server(tmp: Path) -> Iterator[tuple[str, str, EmbeddedPostgres | None]]:
    """Yields (admin URL of a maintenance database, kind, embedded handle or None)."""
    if url := os.environ.get("KETNOI_TEST_DATABASE_URL"):
        yield url, "env", None
    elif docker_available():
        from testcontainers.postgres import PostgresContainer  # noqa: PLC0415

        with PostgresContainer("postgres:17-alpine") as pg:
            yield pg.get_connection_url(driver=None), "testcontainers", None
    else:
        pg = EmbeddedPostgres(tmp / "pg", database="ketnoi_test").start()
        try:
            yield pg.url(), "embedded", pg
        finally:
            pg.stop()
