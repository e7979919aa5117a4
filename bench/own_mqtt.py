"""meshbot's own MQTT 3.1.1 client, kept as the baseline paho-mqtt is measured against.

The integration used it until paho-mqtt replaced it (issue #13); bench/mqtt.py runs both side by
side in one process. It is frozen: fix nothing here, it is the yardstick.

Both collectors (Meshtastic and Blitzortung) use it. It needs no thread: DNS, TCP, TLS and
CONNACK are awaited with one deadline, so a dead broker can never hold Home Assistant, and
cancelling a session closes its socket at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
import functools
import logging
import ssl
import struct
import time
from typing import Any, cast

from custom_components.meshbot.links.counters import MqttCounters
from custom_components.meshbot.links.errors import (
    LinkAuthError,
    LinkError,
    LinkProtocolError,
    LinkTimeoutError,
    LinkTlsError,
)
from custom_components.meshbot.links.supervisor import MarkUp

_LOGGER = logging.getLogger(__name__)

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
PUBREC = 0x50
PUBREL = 0x60
PUBCOMP = 0x70
SUBSCRIBE = 0x82
SUBACK = 0x90
UNSUBSCRIBE = 0xA2
UNSUBACK = 0xB0
PINGREQ = b"\xc0\x00"
PINGRESP = 0xD0
DISCONNECT = b"\xe0\x00"

# Meshtastic envelopes stay under 1 KiB and strikes under 200 B; anything this large is
# skipped without being buffered, so a hostile broker cannot grow memory.
MAX_PACKET = 256 * 1024
TOPICS_PER_SUBSCRIBE = 8

CONNACK_ERRORS = {
    1: "the broker refused the protocol version",
    2: "the broker rejected the client id",
    3: "the broker is unavailable",
    4: "the broker rejected the username or password",
    5: "the broker refused to authorise the client",
}
AUTH_REFUSALS = {4, 5}

MessageHandler = Callable[[str, bytes], None]


@dataclass(frozen=True)
class MqttSettings:
    """Where and how to connect; the password never leaves this object."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = "meshbot"
    keepalive: int = 60
    connect_timeout: float = 10.0
    # Built lazily in the executor: loading CA files is blocking I/O.
    ssl_context_factory: Callable[[], ssl.SSLContext] | None = None


def encode_length(length: int) -> bytes:
    """Encode an MQTT remaining length."""
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(out)


def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_length(len(body)) + body


def build_connect(settings: MqttSettings) -> bytes:
    """Build the CONNECT packet for a clean session."""
    flags = 0x02
    payload = _string(settings.client_id)
    if settings.username is not None:
        flags |= 0x80
        payload += _string(settings.username)
        if settings.password is not None:
            flags |= 0x40
            payload += _string(settings.password)
    header = _string("MQTT") + bytes((4, flags)) + struct.pack("!H", settings.keepalive)
    return _packet(CONNECT, header + payload)


def build_publish(topic: str, payload: bytes, retain: bool = False) -> bytes:
    """Build a QoS 0 PUBLISH packet."""
    return _packet(PUBLISH | (1 if retain else 0), _string(topic) + payload)


class MqttProtocol(asyncio.Protocol):
    """Frame MQTT packets out of the byte stream and hand publishes to the handler."""

    def __init__(self, on_message: MessageHandler, counters: MqttCounters) -> None:
        """Deliver each PUBLISH to `on_message`; count what is dropped."""
        self._on_message = on_message
        self._counters = counters
        self._buffer = bytearray()
        self._skip = 0
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks: dict[int, asyncio.Future[bytes]] = {}
        # Silence is measured on the loop's clock, the one the keepalive waits run on.
        self._loop = asyncio.get_running_loop()
        self.last_received = self._loop.time()
        self.last_sent = self._loop.time()
        self._handler_error_logged = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        # A TCP or TLS connection always hands over a full (writable) Transport.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake the session waiting on this connection."""
        error = LinkError(f"connection lost: {exc}" if exc else "the broker closed the connection")
        waiting: list[asyncio.Future[Any]] = [self.connack, self.closed, *self.acks.values()]
        for future in waiting:
            if not future.done():
                future.set_exception(error)
        # Retrieve the exceptions so an unawaited future does not log "never retrieved".
        for future in waiting:
            if future.done() and not future.cancelled():
                future.exception()

    def send(self, data: bytes) -> None:
        """Write bytes unless the connection is gone."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.last_sent = self._loop.time()

    def fail(self, error: LinkError) -> None:
        """End the connection with `error`."""
        if not self.closed.done():
            self.closed.set_exception(error)
            self.closed.exception()
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        """Parse every complete packet in the stream."""
        self.last_received = self._loop.time()
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return
            data = data[self._skip :]
            self._skip = 0
        if self._buffer:
            data = bytes(self._buffer) + data
            self._buffer.clear()
        # Views of an immutable bytes object: handlers may keep them (even in a traceback)
        # without pinning a buffer that must later shrink.
        view = memoryview(data)
        size = len(data)
        pos = 0
        while size - pos >= 2:
            length = 0
            multiplier = 1
            index = pos + 1
            while True:
                if index >= size:
                    self._buffer += view[pos:]
                    return
                byte = view[index]
                length += (byte & 0x7F) * multiplier
                index += 1
                if not byte & 0x80:
                    break
                multiplier *= 128
                if multiplier > 128**3:
                    self.fail(LinkProtocolError("malformed packet length from the broker"))
                    return
            end = index + length
            if length > MAX_PACKET:
                self._counters.oversized += 1
                self._skip = max(0, end - size)
                pos = min(end, size)
                continue
            if end > size:
                break
            self._dispatch(view[pos], view[index:end])
            pos = end
        if pos < size:
            self._buffer += view[pos:]

    def _dispatch(self, first: int, body: memoryview) -> None:
        kind = first & 0xF0
        if kind == PUBLISH:
            self._publish(first, body)
        elif kind == CONNACK:
            if len(body) >= 2 and not self.connack.done():
                self.connack.set_result(body[1])
        elif kind in (SUBACK, UNSUBACK):
            if len(body) >= 2:
                future = self.acks.pop(int.from_bytes(body[:2], "big"), None)
                if future is not None and not future.done():
                    future.set_result(bytes(body[2:]))
        elif kind == PUBREL & 0xF0 and len(body) >= 2:
            self.send(bytes((PUBCOMP, 2)) + bytes(body[:2]))

    def _publish(self, first: int, body: memoryview) -> None:
        qos = (first >> 1) & 0x03
        if len(body) < 2:
            self._counters.bad_topics += 1
            return
        topic_end = 2 + int.from_bytes(body[:2], "big")
        payload_start = topic_end + (2 if qos else 0)
        if payload_start > len(body):
            self._counters.bad_topics += 1
            return
        if qos == 1:
            self.send(bytes((PUBACK, 2)) + bytes(body[topic_end:payload_start]))
        elif qos == 2:
            self.send(bytes((PUBREC, 2)) + bytes(body[topic_end:payload_start]))
        try:
            topic = str(body[2:topic_end], "utf-8")
        except UnicodeDecodeError:
            self._counters.bad_topics += 1
            return
        self._counters.messages += 1
        try:
            self._on_message(topic, bytes(body[payload_start:]))
        except Exception:
            # The handler's bug must not cost the connection; say it once per session.
            self._counters.handler_errors += 1
            if not self._handler_error_logged:
                self._handler_error_logged = True
                _LOGGER.exception("Message handler failed on topic %s", topic)


class MqttLink:
    """One broker connection, kept subscribed to a changing set of topic filters."""

    def __init__(self, settings: MqttSettings, on_message: MessageHandler) -> None:
        """Connect with `settings` and deliver every message to `on_message`."""
        self.settings = settings
        self.counters = MqttCounters()
        self.last_message_at: float | None = None
        self.rejected_filters: set[str] = set()
        self._on_message = on_message
        self._filters: set[str] = set()
        self._protocol: MqttProtocol | None = None
        self._opening: MqttProtocol | None = None
        self._packet_id = 0
        self._ssl_context: ssl.SSLContext | None = None

    def describe(self) -> str:
        """Return the broker address, never the credentials."""
        scheme = "mqtts" if self.settings.ssl_context_factory else "mqtt"
        return f"{scheme}://{self.settings.host}:{self.settings.port}"

    @property
    def connected(self) -> bool:
        """Return whether a session is up."""
        return self._protocol is not None

    @property
    def filters(self) -> frozenset[str]:
        """Return the topic filters the link keeps subscribed."""
        return frozenset(self._filters)

    @property
    def awaiting_acknowledgement(self) -> int:
        """Return how many (un)subscribe requests of this session the broker has not answered."""
        protocol = self._protocol
        return len(protocol.acks) if protocol is not None else 0

    def _deliver(self, topic: str, payload: bytes) -> None:
        self.last_message_at = time.time()
        self._on_message(topic, payload)

    def _next_packet_id(self) -> int:
        self._packet_id = self._packet_id % 0xFFFF + 1
        return self._packet_id

    def _send_filters(self, kind: int, filters: Iterable[str]) -> None:
        protocol = self._protocol
        if protocol is None:
            return
        ordered = sorted(filters)
        for start in range(0, len(ordered), TOPICS_PER_SUBSCRIBE):
            chunk = ordered[start : start + TOPICS_PER_SUBSCRIBE]
            packet_id = self._next_packet_id()
            if kind == SUBSCRIBE:
                body = b"".join(_string(topic) + b"\x00" for topic in chunk)
            else:
                body = b"".join(_string(topic) for topic in chunk)
            ack: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            ack.add_done_callback(functools.partial(self._acked, kind, chunk))
            protocol.acks[packet_id] = ack
            protocol.send(_packet(kind, struct.pack("!H", packet_id) + body))

    def _acked(self, kind: int, chunk: list[str], future: asyncio.Future[bytes]) -> None:
        if future.cancelled() or future.exception() is not None or kind != SUBSCRIBE:
            return
        for topic, code in zip(chunk, future.result(), strict=False):
            if code == 0x80 and topic not in self.rejected_filters:
                self.rejected_filters.add(topic)
                _LOGGER.warning("%s refused the subscription to %s", self.describe(), topic)

    def set_filters(self, filters: Iterable[str]) -> None:
        """Subscribe to `filters`; on a live connection only the difference is sent."""
        wanted = set(filters)
        added, removed = wanted - self._filters, self._filters - wanted
        self._filters = wanted
        self.rejected_filters -= removed
        if added:
            self._send_filters(SUBSCRIBE, added)
        if removed:
            self._send_filters(UNSUBSCRIBE, removed)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 0; raise LinkError when not connected."""
        if self._protocol is None:
            raise LinkError("not connected")
        self._protocol.send(build_publish(topic, payload, retain))

    def _new_protocol(self) -> MqttProtocol:
        # Kept before CONNACK so a timeout or cancellation can still close the socket.
        self._opening = MqttProtocol(self._deliver, self.counters)
        return self._opening

    async def _open(self) -> MqttProtocol:
        loop = asyncio.get_running_loop()
        settings = self.settings
        if settings.ssl_context_factory is not None and self._ssl_context is None:
            try:
                self._ssl_context = await loop.run_in_executor(None, settings.ssl_context_factory)
            except (OSError, ssl.SSLError) as err:
                raise LinkTlsError(f"cannot load the TLS settings: {err}") from err
        _, protocol = await loop.create_connection(
            lambda: self._new_protocol(),
            settings.host,
            settings.port,
            ssl=self._ssl_context,
            server_hostname=settings.host if self._ssl_context else None,
            ssl_handshake_timeout=settings.connect_timeout if self._ssl_context else None,
        )
        protocol.send(build_connect(settings))
        code = await protocol.connack
        if code in AUTH_REFUSALS:
            protocol.fail(LinkAuthError(CONNACK_ERRORS[code]))
            raise LinkAuthError(CONNACK_ERRORS[code])
        if code:
            protocol.fail(LinkError(CONNACK_ERRORS.get(code, f"CONNACK code {code}")))
            raise LinkError(CONNACK_ERRORS.get(code, f"the broker refused with code {code}"))
        return protocol

    async def session(self, mark_up: MarkUp) -> None:
        """Connect, subscribe, and serve until the connection ends or goes silent."""
        settings = self.settings
        protocol: MqttProtocol | None = None
        try:
            try:
                async with asyncio.timeout(settings.connect_timeout):
                    protocol = await self._open()
            except TimeoutError as err:
                raise LinkTimeoutError(f"no CONNACK within {settings.connect_timeout:g} s") from err
            except ssl.SSLCertVerificationError as err:
                raise LinkTlsError(f"TLS certificate rejected: {err.verify_message}") from err
            except ssl.SSLError as err:
                raise LinkTlsError(f"TLS handshake failed: {err.reason or err}") from err
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as err:
                if settings.ssl_context_factory is None:
                    raise LinkError(err.strerror or str(err)) from err
                # Connected, then dropped during the handshake: a plain MQTT port hangs up on
                # a TLS hello.
                raise LinkTlsError(
                    "the broker hung up during the TLS handshake: is this port for TLS?"
                ) from err
            except OSError as err:
                raise LinkError(err.strerror or str(err)) from err
            self._protocol = protocol
            self._send_filters(SUBSCRIBE, self._filters)
            mark_up()
            await self._serve(protocol)
        except asyncio.CancelledError:
            if protocol is not None and protocol.transport is not None:
                protocol.send(DISCONNECT)
                protocol.transport.close()
            raise
        finally:
            self._protocol = None
            opening, self._opening = self._opening, None
            for candidate in (protocol, opening):
                if candidate is not None and candidate.transport is not None:
                    candidate.transport.abort()

    async def _serve(self, protocol: MqttProtocol) -> None:
        keepalive = self.settings.keepalive
        tick = max(keepalive / 2, 0.05)
        while True:
            done, _ = await asyncio.wait((protocol.closed,), timeout=tick)
            if done:
                protocol.closed.result()
                return
            now = asyncio.get_running_loop().time()
            if now - protocol.last_received > keepalive * 1.5:
                raise LinkTimeoutError(f"the broker went silent for {keepalive * 1.5:g} s")
            # Ping when either direction has been quiet: a link that only publishes (QoS 0, no
            # acks) hears nothing back otherwise, and would take a live broker for silent.
            if now - protocol.last_sent >= tick or now - protocol.last_received >= tick:
                protocol.send(PINGREQ)
