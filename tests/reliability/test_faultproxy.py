"""The fault proxy does what it says, mode by mode, on real sockets (an echo server)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .faultproxy import FaultProxy


class Echo:
    """A TCP (or Unix socket) echo server that records the size of every read."""

    def __init__(self) -> None:
        self.reads: list[int] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                self.reads.append(len(data))
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    e = Echo()
    e.server = await asyncio.start_server(e.handle, "127.0.0.1", 0)
    e.port = e.server.sockets[0].getsockname()[1]
    yield e
    e.server.close()


@pytest.fixture
async def proxy(echo: Echo) -> AsyncIterator[FaultProxy]:
    p = await FaultProxy(("127.0.0.1", echo.port), rng=random.Random(7)).start()
    yield p
    await p.stop()


async def connect(p: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", p.port)


async def roundtrip(p: FaultProxy, payload: bytes = b"ping") -> bytes:
    reader, writer = await connect(p)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    finally:
        writer.close()


async def test_passes_bytes_through(proxy: FaultProxy):
    assert await roundtrip(proxy, b"x" * 200_000) == b"x" * 200_000


async def test_down_refuses_and_resets_then_up_again(proxy: FaultProxy):
    reader, writer = await connect(proxy)
    writer.write(b"a")
    assert await reader.readexactly(1) == b"a"
    await proxy.down()
    # The open connection is reset (RST) and new ones are refused.
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    with pytest.raises(ConnectionRefusedError):
        await connect(proxy)
    await proxy.up()
    assert await roundtrip(proxy) == b"ping"


async def test_latency_and_jitter_delay_each_direction_in_order(proxy: FaultProxy):
    proxy.set_latency(0.2, 0.05)
    reader, writer = await connect(proxy)
    t0 = time.monotonic()
    for i in range(20):  # pieces sent quickly: their jitter must not reorder them
        writer.write(f"{i:02d}".encode())
        await writer.drain()
        await asyncio.sleep(0.002)
    got = await asyncio.wait_for(reader.readexactly(40), 10)
    took = time.monotonic() - t0
    writer.close()
    assert got == b"".join(f"{i:02d}".encode() for i in range(20))
    # Both directions: at least 2 × (0.2 - 0.05), at most 2 × (0.2 + 0.05) plus slack.
    assert 0.3 <= took < 1.2, took
    proxy.set_latency(0.2, 0.0, responses_only=True)
    t0 = time.monotonic()
    await roundtrip(proxy)
    assert 0.19 <= time.monotonic() - t0 < 0.45


async def test_hang_holds_everything_until_released(proxy: FaultProxy):
    reader, writer = await connect(proxy)
    proxy.hang()
    writer.write(b"held")
    await writer.drain()
    pending = asyncio.ensure_future(reader.readexactly(4))
    await asyncio.sleep(0.5)
    assert not pending.done(), "nothing may pass while the proxy hangs"
    # A new connection hangs too (accepted, not forwarded).
    new_reader, new_writer = await connect(proxy)
    new_writer.write(b"new!")
    await new_writer.drain()
    proxy.hang(False)
    assert await asyncio.wait_for(pending, 5) == b"held"
    assert await asyncio.wait_for(new_reader.readexactly(4), 5) == b"new!"
    writer.close()
    new_writer.close()


async def test_reset_aborts_open_connections_with_rst(proxy: FaultProxy):
    reader, writer = await connect(proxy)
    writer.write(b"a")
    assert await reader.readexactly(1) == b"a"
    assert proxy.reset() == 1
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(1), 5)
    proxy.faults.reset_new = True
    reader, writer = await connect(proxy)  # accepted by the kernel, then reset
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(1), 5)
    proxy.clear()
    assert await roundtrip(proxy) == b"ping"


async def test_slice_cuts_writes_into_small_pieces(proxy: FaultProxy, echo: Echo):
    proxy.slice_writes(3)
    payload = bytes(range(256)) * 4
    assert await roundtrip(proxy, payload) == payload  # intact, in order
    assert len(echo.reads) > len(payload) // 10  # the server saw many small reads
    assert max(echo.reads) <= 3 * 4  # pieces of at most 3 bytes (a few may coalesce)


async def test_unix_socket_upstream(tmp_path: Path):
    echo = Echo()
    path = str(tmp_path / "s.sock")
    server = await asyncio.start_unix_server(echo.handle, path)
    proxy = await FaultProxy(path).start()
    try:
        assert await roundtrip(proxy) == b"ping"
    finally:
        await proxy.stop()
        server.close()
