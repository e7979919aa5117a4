"""A Meshtastic radio session on the event loop, over the stream protocol or Bluetooth.

`RadioLink` is the session: the want_config handshake, the node database, restarts, heartbeats,
liveness and sending. It talks to the radio through a `RadioTransport`: the stream protocol here
(TCP port 4403 and USB serial, framed), or GATT over Bluetooth LE (`ble.py`, bare protobufs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import logging
import random
import time
from typing import TYPE_CHECKING, Any, cast

from ..lazy import LazyModule
from .errors import LinkClosedByPeer, LinkError, LinkTimeoutError
from .radio_transport import BleDeviceLookup, RadioSettings, RadioTransport
from .supervisor import MarkUp

if TYPE_CHECKING:
    from google.protobuf import message as pb_message
    from meshtastic.protobuf import channel_pb2, mesh_pb2, portnums_pb2

    from ..mesh import lenient
else:
    # The link's background task imports them in the executor before it connects.
    pb_message = LazyModule("google.protobuf.message")
    channel_pb2 = LazyModule("meshtastic.protobuf.channel_pb2")
    mesh_pb2 = LazyModule("meshtastic.protobuf.mesh_pb2")
    portnums_pb2 = LazyModule("meshtastic.protobuf.portnums_pb2")
    lenient = LazyModule(f"{__package__.rpartition('.')[0]}.mesh.lenient")

_LOGGER = logging.getLogger(__name__)

START = b"\x94\xc3"
MAX_FRAME = 512
# The official clients send these before want_config so a sleeping serial console wakes up.
WAKE_BYTES = b"\xc3" * 32
# Config ids the firmware treats specially (69420: config only, 69421: nodes only).
CONFIG_ONLY_ID = 69420
RESERVED_CONFIG_IDS = {CONFIG_ONLY_ID, 69421}
SERIAL_BAUDRATE = 115200

FrameHandler = Callable[["mesh_pb2.FromRadio"], None]


def encode_frame(payload: bytes) -> bytes:
    """Wrap a serialized protobuf in the stream header."""
    if len(payload) > MAX_FRAME:
        raise ValueError(f"frame of {len(payload)} bytes exceeds {MAX_FRAME}")
    return START + len(payload).to_bytes(2, "big") + payload


class FrameDecoder:
    """Cut a byte stream into frame payloads; resynchronise on anything else.

    The buffer never holds more than one frame header and body, whatever arrives.
    """

    def __init__(self) -> None:
        """Start with an empty buffer."""
        self._buffer = bytearray()
        self.frames = 0
        self.skipped_bytes = 0
        self.oversized = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete frame payloads found after adding `data`."""
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        pos = 0
        size = len(buffer)
        while True:
            start = buffer.find(START, pos)
            if start < 0:
                # A trailing 0x94 may be the first half of the next header.
                keep = 1 if size > pos and buffer[-1] == START[0] else 0
                self.skipped_bytes += size - pos - keep
                pos = size - keep
                break
            self.skipped_bytes += start - pos
            if size - start < 4:
                pos = start
                break
            length = (buffer[start + 2] << 8) | buffer[start + 3]
            if length > MAX_FRAME:
                # Not a real header (or a corrupt one): look for the next start marker.
                self.oversized += 1
                self.skipped_bytes += 1
                pos = start + 1
                continue
            end = start + 4 + length
            if end > size:
                pos = start
                break
            frames.append(bytes(buffer[start + 4 : end]))
            pos = end
        del buffer[:pos]
        self.frames += len(frames)
        return frames


@dataclass(frozen=True)
class RadioChannel:
    """A channel the radio sends and listens on."""

    index: int
    # Empty for a primary channel the apps name after its modem preset ("LongFast").
    name: str
    primary: bool


@dataclass
class RadioInfo:
    """What the handshake told us about the local node."""

    node_num: int | None = None
    firmware_version: str | None = None
    hw_model: str | None = None
    nodes_in_db: int = 0
    reboot_count: int | None = None
    # The hop limit the node's LoRa settings give its own packets (None until they arrive).
    hop_limit: int | None = None
    # The enabled channels, in index order.
    channels: list[RadioChannel] = field(default_factory=list)


class _StreamProtocol(asyncio.Protocol):
    """Feed received bytes through the frame decoder to a callback."""

    def __init__(
        self, on_payload: Callable[[bytes], None], on_noise: Callable[[int, int], None]
    ) -> None:
        self._decoder = FrameDecoder()
        self._on_payload = on_payload
        # (oversized headers, bytes between frames) of each read, for the link's counters.
        self._on_noise = on_noise
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.made: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        # Silence is measured on the loop's clock, the one the heartbeat waits run on.
        self._loop = loop
        self.last_received = loop.time()
        # A serial port closes in the executor, later: its release waits for that.
        self.waits_for_close = False

    @property
    def decoder(self) -> FrameDecoder:
        return self._decoder

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # TCP and serial connections both hand over a full (writable) Transport.
        self.transport = cast(asyncio.Transport, transport)
        if not self.made.done():
            self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.last_received = self._loop.time()
        decoder = self._decoder
        oversized, skipped = decoder.oversized, decoder.skipped_bytes
        for payload in decoder.feed(data):
            self._on_payload(payload)
        if decoder.oversized != oversized or decoder.skipped_bytes != skipped:
            self._on_noise(decoder.oversized - oversized, decoder.skipped_bytes - skipped)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            # An orderly close is what a radio does when another client takes it; a restarting
            # radio resets the connection or falls silent.
            error = (
                LinkError(f"connection lost: {exc}")
                if exc
                else LinkClosedByPeer("the radio closed the connection")
            )
            self.closed.set_exception(error)
            self.closed.exception()

    def send(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(payload)

    def send_message(self, payload: bytes) -> None:
        self.send(encode_frame(payload))

    async def release(self) -> None:
        if self.transport is None:
            return
        # Serial ports are released at once so the next attempt can reopen them.
        self.transport.abort()
        if self.waits_for_close:
            # The serial transport closes its port in the executor, later: wait for that, so
            # an ended session has let go of the port's exclusive lock and an immediate
            # reconnect can take it.
            await asyncio.wait((self.closed,), timeout=PORT_RELEASE_TIMEOUT)


def _close_late_serial(opening: asyncio.Future[Any]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result()[0].abort()


# How long an ended serial session waits for its port to close (an executor job, normally quick).
PORT_RELEASE_TIMEOUT = 1.0
BROADCAST_ADDR = 0xFFFFFFFF
# Text payload limits (UTF-8 bytes) the firmware accepts for a direct and a broadcast message.
MAX_TEXT_DIRECT = 200
MAX_TEXT_BROADCAST = 233


# What the firmware uses when the LoRa settings leave the hop limit unset, and its ceiling: the
# packet header keeps the hop limit in 3 bits.
DEFAULT_HOP_LIMIT = 3
MAX_HOP_LIMIT = 7


class RequestRefused(LinkError):
    """Raise when the mesh or the radio refused a request: a routing error, or a notice."""

    def __init__(self, reason: str) -> None:
        """Keep the reason: a routing error's name, or the radio's own words."""
        super().__init__(reason)
        self.reason = reason


class RequestTimeout(LinkTimeoutError):
    """Raise when the radio queued a request and no answer came in time."""

    def __init__(self, timeout: float) -> None:
        """Say how long the answer was waited for."""
        super().__init__(f"no answer within {timeout:g} s")
        self.timeout = timeout


class TextTooLongError(ValueError):
    """Raise when a text exceeds what one Meshtastic packet carries."""

    def __init__(self, size: int, limit: int) -> None:
        """Say how long the text is and what the limit is."""
        super().__init__(f"{size} bytes of text, at most {limit} fit in one message")
        self.size = size
        self.limit = limit


@dataclass(frozen=True, slots=True)
class _Request:
    """A request waiting for its answer: who must answer, on which port."""

    destination: int
    port: int
    answer: asyncio.Future[mesh_pb2.MeshPacket]


@dataclass(frozen=True)
class SendResult:
    """What became of a sent text."""

    packet_id: int
    acknowledged: bool | None = None
    error: str | None = None


def _routing_error(reason: int) -> str:
    try:
        return mesh_pb2.Routing.Error.Name(mesh_pb2.Routing.Error.ValueType(reason))
    except ValueError:
        return f"ERROR_{reason}"


class RadioLink:
    """A Meshtastic node reached over TCP, serial or Bluetooth, kept through the handshake."""

    def __init__(
        self,
        settings: RadioSettings,
        on_frame: FrameHandler | None = None,
        ble_device: BleDeviceLookup | None = None,
    ) -> None:
        """Connect with `settings`; hand every FromRadio after the handshake to `on_frame`.

        `ble_device` finds a Bluetooth radio's device each time it connects (a radio moves
        between adapters and proxies).
        """
        if not settings.host and not settings.device and not settings.address:
            raise ValueError("a radio needs a host, a serial device or a Bluetooth address")
        if settings.address and ble_device is None:
            raise ValueError("a Bluetooth radio needs a way to find its device")
        self.settings = settings
        self._ble_device = ble_device
        self.info = RadioInfo()
        self.last_message_at: float | None = None
        # Frames dropped: unparseable, empty, or announced longer than any frame can be.
        self.bad_frames = 0
        # Bytes between frames: a serial port's debug text, line noise.
        self.skipped_bytes = 0
        # Restarts of the radio seen: by its reboot count, or its `rebooted` frame.
        self.restarts = 0
        self._reboot_count: int | None = None
        self._restarted = False
        # Frames handed to `on_frame`: the mesh's news, for diagnostics.
        self.messages = 0
        self._on_frame = on_frame
        self._queued: dict[int, asyncio.Future[mesh_pb2.QueueStatus]] = {}
        self._acks: dict[int, asyncio.Future[int]] = {}
        self._requests: dict[int, _Request] = {}
        self._protocol: RadioTransport | None = None
        self._config_id = 0
        self._handshake: asyncio.Future[None] | None = None
        self._handler_error_logged = False

    def describe(self) -> str:
        """Return the radio's address."""
        if self.settings.device:
            return f"serial {self.settings.device}"
        if self.settings.address:
            return f"bluetooth {self.settings.address}"
        return f"tcp://{self.settings.host}:{self.settings.port}"

    @property
    def connected(self) -> bool:
        """Return whether the handshake completed on a live connection."""
        return (
            self._protocol is not None
            and self._handshake is not None
            and (self._handshake.done() and not self._handshake.exception())
        )

    def send(self, to_radio: mesh_pb2.ToRadio) -> None:
        """Send a ToRadio; raise LinkError when there is no connection."""
        if self._protocol is None:
            raise LinkError("the radio is not connected")
        self._protocol.send_message(to_radio.SerializeToString())

    def _on_noise(self, oversized: int, skipped_bytes: int) -> None:
        self.bad_frames += oversized
        self.skipped_bytes += skipped_bytes

    def _on_payload(self, payload: bytes) -> None:
        message = mesh_pb2.FromRadio()
        try:
            # A node record with a name cut inside a character keeps everything but the cut.
            lenient.parse_lenient(message, payload)
        except pb_message.DecodeError:
            self.bad_frames += 1
            return
        variant = message.WhichOneof("payload_variant")
        if variant is None:
            # Garbage often parses as a message of unknown fields only: nothing to act on.
            self.bad_frames += 1
            return
        self.last_message_at = time.time()
        handshake = self._handshake
        if handshake is not None and not handshake.done():
            self._record_handshake(variant, message)
            if variant == "config_complete_id" and message.config_complete_id == self._config_id:
                handshake.set_result(None)
            elif variant == "node_info" and (on_frame := self._on_frame) is not None:
                # The node database dump is news for the mesh picture, not live traffic.
                self._deliver(on_frame, message)
            return
        if variant == "queueStatus":
            status = message.queueStatus
            waiter = self._queued.pop(status.mesh_packet_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(status)
        elif variant == "packet":
            if self._acks:
                self._check_ack(message.packet)
            if self._requests:
                self._check_answer(message.packet)
        elif variant == "clientNotification" and self._requests:
            self._check_notice(message.clientNotification)
        if variant == "rebooted":
            # A serial radio that restarted keeps the port open but forgot the session: ask for
            # its configuration again on the same connection, as the Meshtastic apps do.
            _LOGGER.info("The radio on %s restarted; reloading its node database", self.describe())
            self._handshake = asyncio.get_running_loop().create_future()
            self.info = RadioInfo()
            self.send(mesh_pb2.ToRadio(want_config_id=self._config_id))
            return
        if (on_frame := self._on_frame) is not None:
            self._deliver(on_frame, message)

    def _deliver(
        self, on_frame: Callable[[mesh_pb2.FromRadio], None], message: mesh_pb2.FromRadio
    ) -> None:
        self.messages += 1
        try:
            on_frame(message)
        except Exception:
            if not self._handler_error_logged:
                self._handler_error_logged = True
                _LOGGER.exception("Radio frame handler failed")

    def _check_ack(self, packet: mesh_pb2.MeshPacket) -> None:
        if not packet.HasField("decoded") or packet.decoded.portnum != portnums_pb2.ROUTING_APP:
            return
        waiter = self._acks.pop(packet.decoded.request_id, None)
        if waiter is None or waiter.done():
            return
        routing = mesh_pb2.Routing()
        try:
            routing.ParseFromString(packet.decoded.payload)
        except pb_message.DecodeError:
            routing = mesh_pb2.Routing(error_reason=mesh_pb2.Routing.Error.BAD_REQUEST)
        waiter.set_result(routing.error_reason)

    def _check_answer(self, packet: mesh_pb2.MeshPacket) -> None:
        if not packet.HasField("decoded") or not packet.decoded.request_id:
            return
        request = self._requests.get(packet.decoded.request_id)
        if request is None or request.answer.done():
            return
        port, sender = packet.decoded.portnum, getattr(packet, "from")
        if port == portnums_pb2.ROUTING_APP and sender in (request.destination, self.info.node_num):
            routing = mesh_pb2.Routing()
            try:
                routing.ParseFromString(packet.decoded.payload)
            except pb_message.DecodeError:
                return
            # NONE is the acknowledgement of a request sent with want_ack, not its answer; an
            # error ends the wait, from the node asked (NO_RESPONSE) or the radio itself
            # (MAX_RETRANSMIT, NO_ROUTE).
            if routing.error_reason != mesh_pb2.Routing.Error.NONE:
                request.answer.set_exception(RequestRefused(_routing_error(routing.error_reason)))
                request.answer.exception()
        elif port == request.port and sender == request.destination:
            request.answer.set_result(packet)

    def _check_notice(self, notice: mesh_pb2.ClientNotification) -> None:
        # How the radio refuses a request it will not send, such as a traceroute within its
        # rate limit; its queue status still says the packet was accepted.
        request = self._requests.get(notice.reply_id)
        if request is not None and not request.answer.done():
            request.answer.set_exception(RequestRefused(notice.message or "refused by the radio"))
            request.answer.exception()

    async def _queue(self, packet: mesh_pb2.MeshPacket, queue_timeout: float) -> None:
        """Hand a packet to the radio; return once the radio queued it.

        Raise LinkError when the radio refuses the packet or its queue is full, at once, and
        LinkTimeoutError when it does not answer in time.
        """
        queued: asyncio.Future[mesh_pb2.QueueStatus] = asyncio.get_running_loop().create_future()
        self._queued[packet.id] = queued
        try:
            self.send(mesh_pb2.ToRadio(packet=packet))
            try:
                async with asyncio.timeout(queue_timeout):
                    status = await queued
            except TimeoutError as err:
                raise LinkTimeoutError(
                    f"the radio did not queue the message within {queue_timeout:g} s"
                ) from err
        finally:
            self._queued.pop(packet.id, None)
        if status.res:
            raise LinkError(
                "the radio's queue is full"
                if status.free == 0
                else f"the radio refused the message (error {status.res})"
            )

    async def send_text(
        self,
        text: str,
        destination: int = BROADCAST_ADDR,
        channel: int = 0,
        want_ack: bool = False,
        queue_timeout: float = 10.0,
        ack_timeout: float = 60.0,
    ) -> SendResult:
        """Send a text; return once the radio queued it (and acknowledged it, if asked).

        Raise TextTooLongError before sending, LinkError when the radio is not connected,
        refuses the packet or does not answer in time. A full queue is an error at once.
        """
        payload = text.encode()
        limit = MAX_TEXT_BROADCAST if destination == BROADCAST_ADDR else MAX_TEXT_DIRECT
        if len(payload) > limit:
            raise TextTooLongError(len(payload), limit)
        if not self.connected:
            raise LinkError("the radio is not connected")
        packet_id = random.randint(1, 0xFFFFFFFF)
        packet = mesh_pb2.MeshPacket(
            to=destination,
            channel=channel,
            id=packet_id,
            want_ack=want_ack,
            decoded=mesh_pb2.Data(portnum=portnums_pb2.TEXT_MESSAGE_APP, payload=payload),
        )
        acked: asyncio.Future[int] | None = None
        if want_ack:
            acked = self._acks[packet_id] = asyncio.get_running_loop().create_future()
        try:
            await self._queue(packet, queue_timeout)
            if acked is None:
                return SendResult(packet_id)
            try:
                async with asyncio.timeout(ack_timeout):
                    reason = await acked
            except TimeoutError:
                return SendResult(packet_id, acknowledged=False, error="TIMEOUT")
            return SendResult(
                packet_id,
                acknowledged=reason == mesh_pb2.Routing.Error.NONE,
                error=None if reason == mesh_pb2.Routing.Error.NONE else _routing_error(reason),
            )
        finally:
            self._acks.pop(packet_id, None)

    async def request(
        self,
        destination: int,
        port: int,
        payload: bytes,
        answer_timeout: float = 60.0,
        channel: int = 0,
        queue_timeout: float = 10.0,
    ) -> mesh_pb2.MeshPacket:
        """Ask one node for something (want_response); return its answer packet.

        The answer is the node's packet on the same port whose request_id is the request's
        packet id. Raise RequestRefused on a routing error or a refusal by the radio,
        RequestTimeout when no answer came within `answer_timeout`, and LinkError as
        send_text does.
        """
        if not self.connected:
            raise LinkError("the radio is not connected")
        packet_id = random.randint(1, 0xFFFFFFFF)
        hop_limit = self.info.hop_limit or DEFAULT_HOP_LIMIT
        packet = mesh_pb2.MeshPacket(
            to=destination,
            channel=channel,
            id=packet_id,
            hop_limit=min(hop_limit, MAX_HOP_LIMIT),
            # Delivered reliably, so that a request lost on the way ends in the radio's
            # MAX_RETRANSMIT or NO_ROUTE instead of a silent timeout; the firmware does the
            # same to every traceroute.
            want_ack=True,
            decoded=mesh_pb2.Data(
                portnum=portnums_pb2.PortNum.ValueType(port), payload=payload, want_response=True
            ),
        )
        request = self._requests[packet_id] = _Request(
            destination, port, asyncio.get_running_loop().create_future()
        )
        try:
            await self._queue(packet, queue_timeout)
            try:
                async with asyncio.timeout(answer_timeout):
                    return await request.answer
            except TimeoutError as err:
                raise RequestTimeout(answer_timeout) from err
        finally:
            self._requests.pop(packet_id, None)

    def _fail_waiters(self, error: LinkError) -> None:
        waiters: list[asyncio.Future[Any]] = [
            *self._queued.values(),
            *self._acks.values(),
            *(request.answer for request in self._requests.values()),
        ]
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()
        self._queued.clear()
        self._acks.clear()
        self._requests.clear()

    def _record_handshake(self, variant: str | None, message: Any) -> None:
        if variant == "my_info":
            self.info.node_num = message.my_info.my_node_num
            # Every handshake (a new session, or a serial radio's `rebooted`) reads the count
            # once: a new value is one restart.
            count = message.my_info.reboot_count
            known, self._reboot_count = self._reboot_count, count
            self._restarted = known is not None and known != count
            self.restarts += self._restarted
            self.info.reboot_count = count
        elif variant == "metadata":
            self.info.firmware_version = message.metadata.firmware_version or None
            self.info.hw_model = (
                mesh_pb2.HardwareModel.Name(message.metadata.hw_model)
                if (message.metadata.hw_model in mesh_pb2.HardwareModel.values())
                else None
            )
        elif variant == "node_info":
            self.info.nodes_in_db += 1
        elif variant == "channel":
            channel = message.channel
            if channel.role != channel_pb2.Channel.Role.DISABLED:
                self.info.channels.append(
                    RadioChannel(
                        channel.index,
                        channel.settings.name,
                        channel.role == channel_pb2.Channel.Role.PRIMARY,
                    )
                )
        elif variant == "config" and message.config.WhichOneof("payload_variant") == "lora":
            self.info.hop_limit = message.config.lora.hop_limit or None

    async def _open(self) -> RadioTransport:
        loop = asyncio.get_running_loop()
        settings = self.settings
        if settings.address and self._ble_device is not None:
            # Imported here so a TCP or serial setup never loads bleak.
            from .ble import open_gatt  # noqa: PLC0415

            return await open_gatt(settings, self._ble_device, self._on_payload)
        protocol = _StreamProtocol(self._on_payload, self._on_noise)
        if settings.device:
            protocol.waits_for_close = True
            # Imported here so a TCP-only setup never loads pyserial.
            import serial_asyncio_fast  # noqa: PLC0415

            opening = asyncio.ensure_future(
                serial_asyncio_fast.create_serial_connection(
                    loop,
                    lambda: protocol,
                    settings.device,
                    baudrate=SERIAL_BAUDRATE,
                    exclusive=True,
                )
            )
            try:
                await asyncio.shield(opening)
            except asyncio.CancelledError:
                # The port opens in the executor and may finish after we gave up: close it
                # then, or its exclusive lock would keep every later attempt out.
                opening.add_done_callback(_close_late_serial)
                raise
        elif settings.host:
            await loop.create_connection(lambda: protocol, settings.host, settings.port)
        else:
            raise ValueError("a radio needs a host or a serial device")
        # The serial transport announces itself on a later loop iteration; writes before
        # that would be lost.
        await protocol.made
        protocol.send(WAKE_BYTES)
        return protocol

    async def session(self, mark_up: MarkUp) -> None:
        """Connect, complete the handshake, then serve frames until the link dies."""
        settings = self.settings
        protocol: RadioTransport | None = None
        self.info = RadioInfo()
        self._handshake = asyncio.get_running_loop().create_future()
        if settings.want_nodes:
            self._config_id = random.randint(1, 0xFFFFFFFF)
            while self._config_id in RESERVED_CONFIG_IDS:
                self._config_id = random.randint(1, 0xFFFFFFFF)
        else:
            self._config_id = CONFIG_ONLY_ID
        try:
            try:
                async with asyncio.timeout(settings.connect_timeout):
                    protocol = await self._open()
            except TimeoutError as err:
                raise LinkTimeoutError(
                    f"no connection within {settings.connect_timeout:g} s"
                ) from err
            except LinkError:
                raise
            except OSError as err:
                raise LinkError(err.strerror or str(err)) from err
            except Exception as err:
                # pyserial raises its own SerialException for busy or missing ports.
                raise LinkError(str(err)) from err
            self._protocol = protocol
            self.send(mesh_pb2.ToRadio(want_config_id=self._config_id))
            done, _ = await asyncio.wait(
                (self._handshake, protocol.closed),
                timeout=settings.handshake_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if protocol.closed in done:
                protocol.closed.result()
            if self._handshake not in done:
                raise LinkTimeoutError(f"no handshake within {settings.handshake_timeout:g} s")
            if self._restarted:
                # The radio restarted since the last session, which is why that one ended.
                mark_up(restarted=True)
            else:
                mark_up()
            await self._serve(protocol)
        except asyncio.CancelledError:
            if protocol is not None:
                protocol.send_message(mesh_pb2.ToRadio(disconnect=True).SerializeToString())
            raise
        finally:
            self._protocol = None
            self._fail_waiters(LinkError("the radio link went down"))
            if self._handshake is not None and not self._handshake.done():
                self._handshake.cancel()
            if protocol is not None:
                await protocol.release()

    async def _serve(self, protocol: RadioTransport) -> None:
        settings = self.settings
        tick = min(settings.heartbeat_interval, settings.liveness_timeout / 4)
        clock = asyncio.get_running_loop().time
        last_heartbeat = clock()
        while True:
            done, _ = await asyncio.wait((protocol.closed,), timeout=tick)
            if done:
                protocol.closed.result()
                return
            now = clock()
            if now - protocol.last_received > settings.liveness_timeout:
                raise LinkTimeoutError(f"the radio went silent for {settings.liveness_timeout:g} s")
            if now - last_heartbeat >= settings.heartbeat_interval:
                self.send(mesh_pb2.ToRadio(heartbeat=mesh_pb2.Heartbeat()))
                last_heartbeat = now
