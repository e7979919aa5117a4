"""An MQTT 3.1.1 broker that does what Mosquitto never would, for the link tests.

Mosquitto keeps to the protocol: it refuses topics that are not UTF-8 and packets it cannot
frame. A broker on the internet may not. This one answers CONNECT, SUBSCRIBE and PINGREQ as a
3.1.1 broker and sends whatever raw bytes a test asks for. It encodes packets itself on purpose:
it must be able to send what no MQTT library would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import struct

CONNACK_ACCEPTED = b"\x20\x02\x00\x00"
# A 3.1.1 broker's answer to a protocol level it does not speak (return code 1).
CONNACK_BAD_VERSION = b"\x20\x02\x00\x01"
PINGRESP = b"\xd0\x00"
SUBACK_REFUSED = 0x80


def remaining_length(length: int) -> bytes:
    """Encode an MQTT remaining length."""
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(out)


def publish_packet(topic: bytes, payload: bytes) -> bytes:
    """Return a QoS 0 PUBLISH with raw topic bytes (they need not be UTF-8)."""
    body = struct.pack("!H", len(topic)) + topic + payload
    return b"\x30" + remaining_length(len(body)) + body


class HostileBroker:
    """A broker on 127.0.0.1 that speaks just enough 3.1.1 and sends what it is told to."""

    def __init__(self, refuse: Iterable[str] = ()) -> None:
        """Refuse subscriptions to the filters in `refuse`."""
        self.refuse = set(refuse)
        self.port = 0
        self.protocol_levels: list[int] = []
        self.subscriptions: list[str] = []
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._subscribed = asyncio.Event()

    async def start(self) -> HostileBroker:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Close every connection and stop listening."""
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def subscribed(self) -> None:
        """Wait until a client has subscribed."""
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def send(self, data: bytes, chunk: int = 64 * 1024) -> None:
        """Send raw bytes to every connected client, in chunks as a network would."""
        for writer in self._writers:
            for start in range(0, len(data), chunk):
                writer.write(data[start : start + chunk])
                await writer.drain()

    async def _read_packet(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        first = (await reader.readexactly(1))[0]
        length, multiplier = 0, 1
        while True:
            byte = (await reader.readexactly(1))[0]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            if not byte & 0x80:
                break
        return first, await reader.readexactly(length)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            while True:
                first, body = await self._read_packet(reader)
                kind = first & 0xF0
                if kind == 0x10:
                    # Protocol name (2-byte length + b"MQTT"), then the level.
                    level = body[6]
                    self.protocol_levels.append(level)
                    writer.write(CONNACK_ACCEPTED if level == 4 else CONNACK_BAD_VERSION)
                elif kind == 0x80:
                    writer.write(self._suback(body))
                    self._subscribed.set()
                elif kind == 0xC0:
                    writer.write(PINGRESP)
                elif kind == 0xE0:
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.remove(writer)
            writer.close()

    def _suback(self, body: bytes) -> bytes:
        packet_id, pos, codes = body[:2], 2, bytearray()
        while pos < len(body):
            (size,) = struct.unpack_from("!H", body, pos)
            topic = body[pos + 2 : pos + 2 + size].decode()
            pos += 2 + size + 1
            self.subscriptions.append(topic)
            codes.append(SUBACK_REFUSED if topic in self.refuse else 0)
        payload = packet_id + bytes(codes)
        return b"\x90" + remaining_length(len(payload)) + payload
