"""A TCP fault proxy on asyncio: it sits between a client and a server (the Kafka broker,
PostgreSQL, the Zalo sandbox) and misbehaves on demand, as a network and a server do in
production.

Fault modes (each can be switched at any moment, while connections are open):

* **down** — the listening socket is closed (new connections are refused) and every open
  connection is reset; :meth:`FaultProxy.up` listens again on the same port;
* **latency + jitter** — every chunk is delivered ``latency ± jitter`` seconds after it arrived,
  per direction, order kept (a delay queue, not a sleep per chunk: throughput stays);
* **hang** — connections are accepted and kept, nothing is forwarded either way (a black hole,
  as a partition without RST looks); what was held back is delivered when the hang ends, as TCP
  retransmission would;
* **reset** — every open connection is aborted with an RST (``SO_LINGER 0``), once; with
  ``reset_new`` every new connection is reset at once as well;
* **slice** — writes are cut into pieces of ``1..slice_max`` bytes, each sent separately
  (with ``TCP_NODELAY``), so the peer's framing is tested on partial reads.

The upstream is ``(host, port)`` or a Unix socket path (the embedded PostgreSQL listens on a
Unix socket only; the proxy makes it reachable on TCP).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Final

__all__ = ["FaultProxy", "Faults", "unix_socket_of"]

_CHUNK: Final = 64 * 1024


@dataclass(slots=True)
class Faults:
    """The faults in force (mutable; read by every pump on every chunk)."""

    latency_s: float = 0.0
    jitter_s: float = 0.0
    #: Apply latency only to server → client (responses) when True; else both directions.
    latency_responses_only: bool = False
    hang: bool = False
    reset_new: bool = False
    slice_max: int = 0  # 0: no slicing

    def clear(self) -> None:
        self.latency_s = self.jitter_s = 0.0
        self.latency_responses_only = False
        self.hang = self.reset_new = False
        self.slice_max = 0


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for w in (self.client, self.server):
            if w is None:
                continue
            sock = w.get_extra_info("socket")
            with contextlib.suppress(OSError, AttributeError):
                if sock is not None and sock.family != socket.AF_UNIX:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()
        for t in self.tasks:
            t.cancel()


class FaultProxy:
    """Listens on ``listen_host:listen_port`` (0: a free port) and forwards to ``upstream``."""

    def __init__(
        self,
        upstream: tuple[str, int] | str,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        name: str = "proxy",
        rng: random.Random | None = None,
    ) -> None:
        self.upstream = upstream
        self.listen_host = listen_host
        self.port = listen_port
        self.name = name
        self.faults = Faults()
        self.rng = rng or random.Random()
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._unhung = asyncio.Event()
        self._unhung.set()
        #: Connections accepted since start, and resets sent (for reports and tests).
        self.accepted = 0
        self.resets = 0

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.listen_host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(
            self._accept, self.listen_host, self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        await self.down()
        self._unhung.set()

    async def down(self) -> None:
        """Refuse new connections and reset the open ones."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.reset()

    async def up(self) -> None:
        """Listen again on the same port (after :meth:`down`)."""
        if self._server is None:
            for attempt in range(50):
                try:
                    await self.start()
                except OSError:
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.1)
                else:
                    return

    def reset(self) -> int:
        """Abort every open connection with an RST; returns how many."""
        conns = list(self._conns)
        for c in conns:
            c.abort()
        self._conns.clear()
        self.resets += len(conns)
        return len(conns)

    # -- fault switches --------------------------------------------------------------------------
    def set_latency(
        self, latency_s: float, jitter_s: float = 0.0, *, responses_only: bool = False
    ) -> None:
        self.faults.latency_s, self.faults.jitter_s = latency_s, jitter_s
        self.faults.latency_responses_only = responses_only

    def hang(self, on: bool = True) -> None:
        self.faults.hang = on
        if on:
            self._unhung.clear()
        else:
            self._unhung.set()

    def slice_writes(self, max_bytes: int) -> None:
        self.faults.slice_max = max_bytes

    def clear(self) -> None:
        """Remove every fault (a down proxy stays down: call :meth:`up`)."""
        self.faults.clear()
        self._unhung.set()

    # -- forwarding ------------------------------------------------------------------------------
    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(self.upstream, str):
            return await asyncio.open_unix_connection(self.upstream)
        return await asyncio.open_connection(*self.upstream)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        conn = _Conn(client=writer)
        self._conns.add(conn)
        sock = writer.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.faults.reset_new:
            self._conns.discard(conn)
            conn.abort()
            self.resets += 1
            return
        try:
            # A hang also holds new connections before they reach the server.
            await self._unhung.wait()
            up_reader, up_writer = await self._open_upstream()
        except (OSError, asyncio.CancelledError):
            self._conns.discard(conn)
            conn.abort()
            return
        conn.server = up_writer
        if conn not in self._conns:  # reset while connecting
            conn.abort()
            return
        conn.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, conn, response=False)),
            asyncio.create_task(self._pump(up_reader, writer, conn, response=True)),
        ]
        await asyncio.gather(*conn.tasks, return_exceptions=True)
        self._conns.discard(conn)
        for w in (writer, up_writer):
            with contextlib.suppress(Exception):
                w.close()

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        conn: _Conn,
        *,
        response: bool,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        last_due = 0.0

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._unhung.wait()
                await self._write(dst, data)
                if not data:
                    return

        writer_task = asyncio.create_task(deliver())
        try:
            while True:
                data = await src.read(_CHUNK)
                f = self.faults
                delay = 0.0
                if (f.latency_s or f.jitter_s) and (response or not f.latency_responses_only):
                    delay = max(0.0, f.latency_s + self.rng.uniform(-f.jitter_s, f.jitter_s))
                last_due = max(last_due, time.monotonic() + delay)
                queue.put_nowait((last_due, data))
                if not data:  # EOF: forwarded as a half-close after what came before
                    break
            await writer_task
        except (OSError, asyncio.IncompleteReadError):
            conn.abort()
        finally:
            writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer_task

    async def _write(self, dst: asyncio.StreamWriter, data: bytes) -> None:
        if not data:
            with contextlib.suppress(OSError, RuntimeError):
                if dst.can_write_eof():
                    dst.write_eof()
            return
        slice_max = self.faults.slice_max
        if slice_max <= 0:
            dst.write(data)
            await dst.drain()
            return
        i = 0
        while i < len(data):
            n = self.rng.randint(1, slice_max)
            dst.write(data[i : i + n])
            await dst.drain()
            await asyncio.sleep(0)  # let each piece leave as its own segment
            i += n


def unix_socket_of(socket_dir: str, port: int) -> str:
    """The Unix socket path of a PostgreSQL listening in ``socket_dir`` on ``port``."""
    return f"{socket_dir.rstrip('/')}/.s.PGSQL.{port}"
