"""A fake Meshtastic node: the stream protocol over TCP or a pty, GATT to a Bluetooth client.

The framing here is written independently of the integration's codec on purpose, so a bug in
one is not mirrored by the other. No Bluetooth exists on these machines, so the GATT side is a
bleak client (`FakeGattClient`): the one mock of the radio, standing where bleak's would.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
import os
import socket
import struct
import tty
from typing import Any

from google.protobuf.message import Message
from meshtastic.protobuf import channel_pb2, config_pb2, mesh_pb2, portnums_pb2, telemetry_pb2

HEADER = b"\x94\xc3"
CONFIG_ONLY_ID = 69420


def frame(message: mesh_pb2.FromRadio) -> bytes:
    """Serialize and frame one FromRadio."""
    payload = message.SerializeToString()
    return HEADER + bytes((len(payload) >> 8, len(payload) & 0xFF)) + payload


def node_id(num: int) -> str:
    """Return the `!xxxxxxxx` id of a node number."""
    return f"!{num:08x}"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out) + bytes((value,))


def _length_delimited(message: type[Message], name: str, data: bytes) -> bytes:
    number = message.DESCRIPTOR.fields_by_name[name].number
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def raw_node_record(num: int, long_name: bytes, short_name: bytes) -> bytes:
    """Return a FromRadio node record with names of any bytes, as sloppy firmware sends them.

    protobuf itself refuses to write invalid UTF-8 (a name cut inside a character), so the
    names are written by hand; the record also holds a position and device metrics.
    """
    user = mesh_pb2.User(id=node_id(num), hw_model=mesh_pb2.HardwareModel.RAK4631)
    user_bytes = (
        user.SerializeToString()
        + _length_delimited(mesh_pb2.User, "long_name", long_name)
        + _length_delimited(mesh_pb2.User, "short_name", short_name)
    )
    info = mesh_pb2.NodeInfo(
        num=num,
        position=mesh_pb2.Position(latitude_i=458_000_000, longitude_i=48_000_000),
        device_metrics=telemetry_pb2.DeviceMetrics(battery_level=77, voltage=3.9),
        last_heard=1_700_000_000,
    )
    info_bytes = info.SerializeToString() + _length_delimited(mesh_pb2.NodeInfo, "user", user_bytes)
    return mesh_pb2.FromRadio(id=5).SerializeToString() + _length_delimited(
        mesh_pb2.FromRadio, "node_info", info_bytes
    )


def heard(
    sender: int, packet_id: int, port: int, message: Message, to: int = 0xFFFFFFFF, **extra: Any
) -> mesh_pb2.FromRadio:
    """Return a frame of a packet the radio heard directly from `sender` (SNR 6, RSSI -80)."""
    packet = mesh_pb2.MeshPacket(
        to=to,
        id=packet_id,
        hop_start=3,
        hop_limit=3,
        rx_snr=6.0,
        rx_rssi=-80,
        decoded=mesh_pb2.Data(portnum=port, payload=message.SerializeToString(), **extra),
    )
    setattr(packet, "from", sender)
    return mesh_pb2.FromRadio(packet=packet)


@dataclass
class NodeBehaviour:
    """What the fake node does; tests flip these to create faults."""

    answer_handshake: bool = True
    answer_heartbeat: bool = True
    debug_text: bool = False
    answer_queue: bool = True
    queue_full: bool = False
    # Routing error to acknowledge wanted-ack packets with (None: never acknowledge).
    ack_reason: int | None = 0
    # Bluetooth: the PIN pairing needs (None: no pairing), and whether any adapter hears the node.
    pin: str | None = None
    in_range: bool = True
    # Requests (want_response) to a node of the database are answered by that node after this
    # delay, as firmware does; `answer_requests` off leaves them unanswered, and `request_nak`
    # refuses them with that routing error instead (NO_RESPONSE comes from the node asked).
    answer_requests: bool = True
    answer_delay: float = 0.0
    request_nak: mesh_pb2.Routing.Error.ValueType | None = None
    # The radio's own rate limit runs (another client traced a route less than 30 s ago): a
    # traceroute is refused with a notice, and its queue status still says accepted.
    traceroute_rate_limited: bool = False
    # A traceroute's answer: the relays each way and the SNR each receiver measured (dB x 4).
    route: list[int] = field(default_factory=list)
    snr_towards: list[int] = field(default_factory=lambda: [24])
    route_back: list[int] = field(default_factory=list)
    snr_back: list[int] = field(default_factory=lambda: [20])
    # What a node answers a position request with (None: the default position of each node).
    position: mesh_pb2.Position | None = None
    # Bytes every answer carries instead of its message, as a buggy or hostile node sends.
    answer_payload: bytes | None = None


@dataclass
class _Client:
    write: Callable[[bytes], None]
    close: Callable[[], None]
    buffer: bytearray = field(default_factory=bytearray)
    # A GATT client takes whole messages, without the stream header.
    deliver: Callable[[mesh_pb2.FromRadio], None] | None = None


# The node's GATT service (firmware's MeshBLEService).
SERVICE_UUID = "6ba1b218-15a8-461f-9fa8-5dcae273eafd"
TO_RADIO_UUID = "f75c76d2-129e-4dad-a1dd-7866124401e7"
FROM_RADIO_UUID = "2c55e69e-4993-11ed-b878-0242ac120002"
FROM_NUM_UUID = "ed9da18c-a800-4f66-a670-aa7547e34453"


class FakeGattClient:
    """A bleak client connected to the fake node: ToRadio writes in, FromRadio reads out.

    Like the firmware, the node queues each FromRadio for reading and notifies FromNum with its
    count; a read of an empty queue returns no bytes. Every operation yields to the loop, as a
    real GATT round trip does.
    """

    def __init__(self, node: FakeNode, disconnected_callback: Callable[[Any], None] | None) -> None:
        """Connect to `node`."""
        self._node = node
        self._disconnected_callback = disconnected_callback
        self._queue: deque[bytes] = deque()
        self._notify: Callable[[Any, bytearray], None] | None = None
        self._from_num = 0
        self.is_connected = True
        self.paired = False
        self.reads = 0
        self.client = _Client(write=self._queue_raw, close=self.drop, deliver=self._queue_message)

    def _queue_raw(self, data: bytes) -> None:
        self._queue.append(bytes(data))
        self._from_num += 1
        if self._notify is not None:
            self._notify(FROM_NUM_UUID, bytearray(self._from_num.to_bytes(4, "little")))

    def _queue_message(self, message: mesh_pb2.FromRadio) -> None:
        self._queue_raw(message.SerializeToString())

    def _check_link(self, characteristic: str) -> None:
        from bleak.exc import BleakError

        if not self.is_connected:
            raise BleakError("Not connected")
        if self._node.behaviour.pin is not None and not self.paired:
            # What BlueZ reports for a characteristic the firmware guards with ENC_MITM.
            raise BleakError(f"{characteristic}: Insufficient Authentication")

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair, with the passkey the client offers."""
        from bleak.exc import BleakError

        await asyncio.sleep(0)
        pin = self._node.behaviour.pin
        if pin is not None and kwargs.get("passkey") != int(pin):
            raise BleakError("org.bluez.Error.AuthenticationFailed")
        self.paired = True

    async def start_notify(self, characteristic: str, callback: Callable[..., None]) -> None:
        """Subscribe to FromNum."""
        await asyncio.sleep(0)
        self._check_link(characteristic)
        assert characteristic == FROM_NUM_UUID
        self._notify = callback

    async def write_gatt_char(
        self, characteristic: str, data: bytes, response: bool = False
    ) -> None:
        """Take one bare ToRadio."""
        await asyncio.sleep(0)
        self._check_link(characteristic)
        assert characteristic == TO_RADIO_UUID
        message = mesh_pb2.ToRadio()
        message.ParseFromString(bytes(data))
        self._node.received.append(message)
        self._node._on_to_radio(self.client, message)

    async def read_gatt_char(self, characteristic: str) -> bytearray:
        """Return the next queued FromRadio, or nothing once the queue is drained."""
        await asyncio.sleep(0)
        self._check_link(characteristic)
        assert characteristic == FROM_RADIO_UUID
        self.reads += 1
        return bytearray(self._queue.popleft() if self._queue else b"")

    async def disconnect(self) -> None:
        """Disconnect, as the client asks."""
        await asyncio.sleep(0)
        self._gone()

    def drop(self) -> None:
        """Lose the connection from the node's side: out of range, turned off, rebooted."""
        if self.is_connected:
            self._gone()
            if self._disconnected_callback is not None:
                self._disconnected_callback(self)

    def _gone(self) -> None:
        self.is_connected = False
        if self.client in self._node._clients:
            self._node._clients.remove(self.client)


class FakeNode:
    """A node with a node database, reachable by one API client at a time like real firmware."""

    def __init__(
        self,
        node_num: int = 0x1A2B3C4D,
        firmware_version: str = "2.7.11.ee68575",
        other_nodes: int = 3,
    ) -> None:
        """Describe the node; nothing listens until `start_tcp` or `start_pty`."""
        self.node_num = node_num
        self.firmware_version = firmware_version
        self.other_nodes = [0x10000000 + index for index in range(other_nodes)]
        self.behaviour = NodeBehaviour()
        self.received: list[mesh_pb2.ToRadio] = []
        self.sent_packets: list[mesh_pb2.MeshPacket] = []
        self.connections = 0
        self.handshakes = 0
        self._clients: list[_Client] = []
        self._server: asyncio.Server | None = None
        self._master_fd: int | None = None
        self._slave_fd: int | None = None
        self.port: int | None = None
        self.device: str | None = None
        self._next_id = 1
        # The hop limit of the node's LoRa settings, which its API clients use for their packets.
        self.hop_limit = 3
        # Firmware counts its boots in MyNodeInfo.reboot_count.
        self.reboot_count = 7
        # The channels the handshake announces; tests add secondary ones.
        self.channels = [
            channel_pb2.Channel(
                index=0,
                role=channel_pb2.Channel.Role.PRIMARY,
                settings=channel_pb2.ChannelSettings(psk=b"\x01"),
            )
        ]
        self._tcp_writers: list[asyncio.StreamWriter] = []
        self.gatt_clients: list[FakeGattClient] = []
        # Answers on their way, cancelled when the node stops.
        self._pending_answers: set[asyncio.TimerHandle] = set()

    # Transports

    async def establish_connection(
        self,
        client_class: type,
        device: Any,
        name: str,
        disconnected_callback: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ) -> FakeGattClient:
        """Connect a GATT client, as bleak-retry-connector's `establish_connection` does."""
        from bleak_retry_connector import BleakNotFoundError

        await asyncio.sleep(0)
        if not self.behaviour.in_range:
            raise BleakNotFoundError(f"{name} - {device.address}: device not found")
        # One central at a time, like the firmware's single connection.
        self.close_clients()
        gatt = FakeGattClient(self, disconnected_callback)
        self._clients.append(gatt.client)
        self.gatt_clients.append(gatt)
        self.connections += 1
        return gatt

    @property
    def gatt_connected(self) -> int:
        """Return how many GATT clients are still connected."""
        return sum(client.is_connected for client in self.gatt_clients)

    async def start_tcp(self, port: int = 0) -> int:
        """Listen on 127.0.0.1 and return the port."""
        self._server = await asyncio.start_server(self._on_tcp_client, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _on_tcp_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # Real firmware serves one API client: a new one silently replaces the old.
        self.close_clients()
        client = _Client(write=writer.write, close=writer.close)
        self._clients.append(client)
        self._tcp_writers.append(writer)
        self.connections += 1
        try:
            while data := await reader.read(4096):
                self._on_bytes(client, data)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if client in self._clients:
                self._clients.remove(client)
            if writer in self._tcp_writers:
                self._tcp_writers.remove(writer)
            writer.close()

    def start_pty(self) -> str:
        """Open a pseudo-terminal pair and return the device path a client opens."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master_fd, self._slave_fd = master, slave
        self.device = os.ttyname(slave)
        client = _Client(write=self._pty_write, close=lambda: None)
        self._clients.append(client)
        asyncio.get_running_loop().add_reader(master, self._on_pty_readable, client)
        return self.device

    def _pty_write(self, data: bytes) -> None:
        if self._master_fd is not None:
            with suppress(BlockingIOError, OSError):
                os.write(self._master_fd, data)

    def _on_pty_readable(self, client: _Client) -> None:
        try:
            data = os.read(self._master_fd, 4096)  # type: ignore[arg-type]
        except (BlockingIOError, OSError):
            return
        if data:
            if not client.buffer:
                self.connections += 0
            self._on_bytes(client, data)

    async def stop(self) -> None:
        """Stop listening and drop every client."""
        for handle in self._pending_answers:
            handle.cancel()
        self._pending_answers.clear()
        self.close_clients()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._master_fd is not None:
            asyncio.get_running_loop().remove_reader(self._master_fd)
            os.close(self._master_fd)
            self._master_fd = None
        if self._slave_fd is not None:
            os.close(self._slave_fd)
            self._slave_fd = None

    async def reboot(self, down_for: float = 0.3) -> None:
        """Restart as firmware does (an update, a settings change), then serve again.

        Over TCP the network stack dies with the node: connections are reset, not closed, and
        connects are refused until it is back. On a serial port the USB bridge stays: the boot
        log comes out, then a `rebooted` frame. Either way the node forgets its client's
        session and comes back with its reboot count one higher.
        """
        self.reboot_count += 1
        for writer in list(self._tcp_writers):
            # Linger 0: the close is a reset (RST), as from a node whose stack died.
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        if self._server is not None and self.port is not None:
            self._server.close()
            await self._server.wait_closed()
            await asyncio.sleep(down_for)
            self._server = await asyncio.start_server(self._on_tcp_client, "127.0.0.1", self.port)
        if self._master_fd is not None:
            self._pty_write(b"INFO  | ??:??:?? 0 \r\n\r\n//\\ E S H T /\\ S T / C\r\n\r\n")
            self._pty_write(frame(mesh_pb2.FromRadio(rebooted=True)))

    def close_clients(self) -> None:
        """Close every TCP client connection, as a reboot or a competing client would."""
        for client in list(self._clients):
            if self._master_fd is None or client.write != self._pty_write:
                client.close()
                # A GATT client's close already took it off the list.
                if client in self._clients:
                    self._clients.remove(client)

    # Protocol

    def _on_bytes(self, client: _Client, data: bytes) -> None:
        buffer = client.buffer
        buffer += data
        while True:
            start = buffer.find(HEADER)
            if start < 0:
                del buffer[: max(0, len(buffer) - 1)]
                return
            if len(buffer) - start < 4:
                del buffer[:start]
                return
            length = (buffer[start + 2] << 8) | buffer[start + 3]
            if len(buffer) - start - 4 < length:
                del buffer[:start]
                return
            payload = bytes(buffer[start + 4 : start + 4 + length])
            del buffer[: start + 4 + length]
            message = mesh_pb2.ToRadio()
            message.ParseFromString(payload)
            self.received.append(message)
            self._on_to_radio(client, message)

    def _send(self, client: _Client, message: mesh_pb2.FromRadio) -> None:
        message.id = self._next_id
        self._next_id += 1
        if client.deliver is not None:
            client.deliver(message)
            return
        if self.behaviour.debug_text:
            client.write(b"DEBUG | 12:00:00 [Router] noise between frames \x94 \r\n")
        client.write(frame(message))

    def _on_to_radio(self, client: _Client, message: mesh_pb2.ToRadio) -> None:
        variant = message.WhichOneof("payload_variant")
        if variant == "want_config_id" and self.behaviour.answer_handshake:
            for reply in self.handshake(message.want_config_id):
                self._send(client, reply)
            self.handshakes += 1
        elif variant == "heartbeat" and self.behaviour.answer_heartbeat:
            self._send(
                client,
                mesh_pb2.FromRadio(queueStatus=mesh_pb2.QueueStatus(free=16, maxlen=16)),
            )
        elif variant == "packet":
            self.sent_packets.append(message.packet)
            if not self.behaviour.answer_queue:
                return
            if self._rate_limited(message.packet):
                # Firmware says why first, then queues nothing but still reports success.
                self._send(
                    client,
                    mesh_pb2.FromRadio(
                        clientNotification=mesh_pb2.ClientNotification(
                            reply_id=message.packet.id,
                            level=mesh_pb2.LogRecord.Level.WARNING,
                            message="TraceRoute can only be sent once every 30 seconds",
                        )
                    ),
                )
                self._send(
                    client,
                    mesh_pb2.FromRadio(
                        queueStatus=mesh_pb2.QueueStatus(
                            free=16, maxlen=16, mesh_packet_id=message.packet.id
                        )
                    ),
                )
                return
            full = self.behaviour.queue_full
            self._send(
                client,
                mesh_pb2.FromRadio(
                    queueStatus=mesh_pb2.QueueStatus(
                        res=11 if full else 0,
                        free=0 if full else 15,
                        maxlen=16,
                        mesh_packet_id=message.packet.id,
                    )
                ),
            )
            if not full and message.packet.decoded.want_response:
                # The answer, or the refusal, is the request's acknowledgement.
                self._answer_later(client, message.packet)
            elif not full and message.packet.want_ack and self.behaviour.ack_reason is not None:
                routing = mesh_pb2.Routing(error_reason=self.behaviour.ack_reason)
                ack = mesh_pb2.MeshPacket(
                    to=self.node_num,
                    id=message.packet.id ^ 0x5A5A,
                    decoded=mesh_pb2.Data(
                        portnum=portnums_pb2.ROUTING_APP,
                        payload=routing.SerializeToString(),
                        request_id=message.packet.id,
                    ),
                )
                setattr(
                    ack,
                    "from",
                    message.packet.to if message.packet.to != 0xFFFFFFFF else self.node_num,
                )
                self._send(client, mesh_pb2.FromRadio(packet=ack))

        elif variant == "disconnect":
            client.close()

    def _rate_limited(self, packet: mesh_pb2.MeshPacket) -> bool:
        return (
            self.behaviour.traceroute_rate_limited
            and packet.decoded.portnum == portnums_pb2.TRACEROUTE_APP
        )

    def _answer_later(self, client: _Client, request: mesh_pb2.MeshPacket) -> None:
        behaviour = self.behaviour
        if request.to not in self.other_nodes:
            # Nobody acknowledges: the radio gives up after its retransmissions.
            reply = self._routing(request, self.node_num, mesh_pb2.Routing.Error.MAX_RETRANSMIT)
        elif behaviour.request_nak is not None:
            reply = self._routing(request, request.to, behaviour.request_nak)
        elif not behaviour.answer_requests:
            return
        else:
            reply = self._answer(request)

        def deliver() -> None:
            self._pending_answers.discard(handle)
            if client in self._clients:
                self._send(client, reply)

        handle = asyncio.get_running_loop().call_later(behaviour.answer_delay, deliver)
        self._pending_answers.add(handle)

    def _routing(
        self, request: mesh_pb2.MeshPacket, sender: int, reason: mesh_pb2.Routing.Error.ValueType
    ) -> mesh_pb2.FromRadio:
        packet = mesh_pb2.MeshPacket(
            to=self.node_num,
            id=request.id ^ 0x5A5A,
            decoded=mesh_pb2.Data(
                portnum=portnums_pb2.ROUTING_APP,
                payload=mesh_pb2.Routing(error_reason=reason).SerializeToString(),
                request_id=request.id,
            ),
        )
        setattr(packet, "from", sender)
        return mesh_pb2.FromRadio(packet=packet)

    def _answer(self, request: mesh_pb2.MeshPacket) -> mesh_pb2.FromRadio:
        behaviour = self.behaviour
        port = request.decoded.portnum
        node = request.to
        index = self.other_nodes.index(node)
        answer: Message
        if port == portnums_pb2.POSITION_APP:
            answer = behaviour.position or mesh_pb2.Position(
                latitude_i=458_000_000 + index * 10_000,
                longitude_i=48_000_000 + index * 10_000,
                altitude=400 + index,
                precision_bits=32,
                time=1_700_000_000,
            )
        elif port == portnums_pb2.TELEMETRY_APP:
            asked = telemetry_pb2.Telemetry.FromString(request.decoded.payload)
            variant = asked.WhichOneof("variant")
            if variant == "device_metrics":
                answer = telemetry_pb2.Telemetry(
                    time=1_700_000_000,
                    device_metrics=telemetry_pb2.DeviceMetrics(
                        battery_level=64, voltage=3.81, channel_utilization=12.5, air_util_tx=1.5
                    ),
                )
            elif variant == "environment_metrics":
                answer = telemetry_pb2.Telemetry(
                    time=1_700_000_000,
                    environment_metrics=telemetry_pb2.EnvironmentMetrics(
                        temperature=1.5, relative_humidity=88.0, barometric_pressure=1003.25
                    ),
                )
            else:
                # The firmware's telemetry modules answer only a variant they know.
                return self._routing(request, node, mesh_pb2.Routing.Error.NO_RESPONSE)
        elif port == portnums_pb2.TRACEROUTE_APP:
            answer = mesh_pb2.RouteDiscovery(
                route=behaviour.route,
                snr_towards=behaviour.snr_towards,
                route_back=behaviour.route_back,
                snr_back=behaviour.snr_back,
            )
        else:
            return self._routing(request, node, mesh_pb2.Routing.Error.NO_RESPONSE)
        hops = len(behaviour.route_back)
        hop_start = max(self.hop_limit, hops)
        packet = mesh_pb2.MeshPacket(
            to=self.node_num,
            id=request.id ^ 0xA5A5,
            hop_start=hop_start,
            hop_limit=hop_start - hops,
            rx_snr=behaviour.snr_back[-1] / 4 if behaviour.snr_back else 0.0,
            rx_rssi=-90,
            decoded=mesh_pb2.Data(
                portnum=port,
                payload=answer.SerializeToString()
                if behaviour.answer_payload is None
                else behaviour.answer_payload,
                request_id=request.id,
            ),
        )
        setattr(packet, "from", node)
        return mesh_pb2.FromRadio(packet=packet)

    def node_info(self, num: int, long_name: str | None = None) -> mesh_pb2.NodeInfo:
        """Return a NodeInfo as the node database holds it."""
        return mesh_pb2.NodeInfo(
            num=num,
            user=mesh_pb2.User(
                id=node_id(num),
                long_name=long_name or f"Node {num:08x}",
                short_name=f"{num & 0xFFFF:04x}",
                hw_model=mesh_pb2.HardwareModel.HELTEC_V3,
            ),
            snr=6.25,
            last_heard=1_700_000_000,
        )

    def handshake(self, config_id: int) -> list[mesh_pb2.FromRadio]:
        """Return the replies to want_config_id, in firmware order."""
        replies = [
            mesh_pb2.FromRadio(
                my_info=mesh_pb2.MyNodeInfo(
                    my_node_num=self.node_num, reboot_count=self.reboot_count
                )
            ),
            mesh_pb2.FromRadio(node_info=self.node_info(self.node_num, "Fake Base")),
            mesh_pb2.FromRadio(
                metadata=mesh_pb2.DeviceMetadata(
                    firmware_version=self.firmware_version,
                    hw_model=mesh_pb2.HardwareModel.HELTEC_V3,
                )
            ),
            *(mesh_pb2.FromRadio(channel=channel) for channel in self.channels),
            mesh_pb2.FromRadio(
                config=config_pb2.Config(
                    lora=config_pb2.Config.LoRaConfig(
                        region=config_pb2.Config.LoRaConfig.RegionCode.EU_868,
                        hop_limit=self.hop_limit,
                    )
                )
            ),
        ]
        if config_id != CONFIG_ONLY_ID:
            replies += [
                mesh_pb2.FromRadio(node_info=self.node_info(num)) for num in self.other_nodes
            ]
        replies.append(mesh_pb2.FromRadio(config_complete_id=config_id))
        return replies

    def broadcast(self, message: mesh_pb2.FromRadio) -> None:
        """Send a live FromRadio to every connected client."""
        for client in self._clients:
            self._send(client, message)

    def send_raw(self, data: bytes) -> None:
        """Send raw bytes (garbage, broken frames) to every connected client."""
        for client in self._clients:
            client.write(data)

    @property
    def client_count(self) -> int:
        """Return how many TCP clients are connected."""
        return len(self._clients)
