"""Build real Meshtastic MQTT envelopes, encrypted like firmware does, for tests and benches.

Written independently of the integration's decoder (its own channel hash and nonce code), so a
mistake in one is not mirrored in the other.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
import random
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from meshtastic.protobuf import mesh_pb2, mqtt_pb2, portnums_pb2, telemetry_pb2

DEFAULT_PSK = base64.b64decode("1PG7OiApB1nwvP+rz05pAQ==")


def hash_of(channel: str, key: bytes) -> int:
    """Return the firmware's channel hash."""
    value = 0
    for byte in channel.encode() + key:
        value ^= byte
    return value


def encrypt(key: bytes, packet_id: int, sender: int, plain: bytes) -> bytes:
    """Encrypt a serialized Data the way the firmware does (AES-CTR)."""
    nonce = packet_id.to_bytes(8, "little") + sender.to_bytes(4, "little") + bytes(4)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    return encryptor.update(plain) + encryptor.finalize()


def wire_varint(number: int, value: int) -> bytes:
    """Return one protobuf varint field, encoded by hand (for fields protobuf would refuse)."""
    return _varint(number << 3) + _varint(value)


def wire_bytes(number: int, data: bytes) -> bytes:
    """Return one length-delimited protobuf field, encoded by hand (e.g. invalid UTF-8 names)."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _varint(value: int) -> bytes:
    out = b""
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            return out + bytes((low,))
        out += bytes((low | 0x80,))


def gateway_id(num: int) -> str:
    """Return the `!xxxxxxxx` form of a node number."""
    return f"!{num:08x}"


@dataclass
class Envelope:
    """An envelope ready to publish: topic and payload."""

    topic: str
    payload: bytes


@dataclass
class MeshTraffic:
    """Make envelopes from one mesh under one root topic."""

    root: str = "msh/EU_868"
    channel: str = "LongFast"
    key: bytes = DEFAULT_PSK
    next_id: int = 1000
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def packet_id(self) -> int:
        """Return the next packet id, as a node numbers its packets."""
        self.next_id += 1
        return self.next_id

    def envelope(
        self,
        sender: int,
        portnum: int,
        payload: bytes,
        *,
        gateway: int,
        to: int = 0xFFFFFFFF,
        packet_id: int | None = None,
        hop_start: int = 3,
        hop_limit: int = 3,
        snr: float = 5.5,
        rssi: int = -90,
        request_id: int = 0,
        encrypted: bool = True,
        channel: str | None = None,
        key: bytes | None = None,
    ) -> Envelope:
        """Wrap one Data payload in a MeshPacket and a ServiceEnvelope."""
        channel = channel or self.channel
        key = self.key if key is None else key
        packet_id = self.packet_id() if packet_id is None else packet_id
        data = mesh_pb2.Data(portnum=portnum, payload=payload, request_id=request_id)
        packet = mesh_pb2.MeshPacket(
            to=to,
            id=packet_id,
            rx_snr=snr,
            rx_rssi=rssi,
            hop_start=hop_start,
            hop_limit=hop_limit,
            rx_time=1_700_000_000,
        )
        setattr(packet, "from", sender)
        if encrypted:
            packet.channel = hash_of(channel, key)
            packet.encrypted = encrypt(key, packet_id, sender, data.SerializeToString())
        else:
            packet.decoded.CopyFrom(data)
        envelope = mqtt_pb2.ServiceEnvelope(
            packet=packet, channel_id=channel, gateway_id=gateway_id(gateway)
        )
        return Envelope(
            f"{self.root}/2/e/{channel}/{gateway_id(gateway)}", envelope.SerializeToString()
        )

    def position(
        self,
        sender: int,
        lat: float,
        lon: float,
        *,
        precision: int = 32,
        time: int = 1_700_000_000,
        altitude: int = 120,
        **kw,
    ) -> Envelope:
        """Return a POSITION_APP envelope from sender."""
        message = mesh_pb2.Position(
            latitude_i=round(lat * 1e7),
            longitude_i=round(lon * 1e7),
            altitude=altitude,
            precision_bits=precision,
            time=time,
        )
        return self.envelope(sender, portnums_pb2.POSITION_APP, message.SerializeToString(), **kw)

    def node_info(self, sender: int, long_name: str, short_name: str, **kw) -> Envelope:
        """Return a NODEINFO_APP envelope carrying sender's names."""
        user = mesh_pb2.User(
            id=gateway_id(sender),
            long_name=long_name,
            short_name=short_name,
            hw_model=mesh_pb2.HardwareModel.HELTEC_V3,
        )
        return self.envelope(sender, portnums_pb2.NODEINFO_APP, user.SerializeToString(), **kw)

    def telemetry(self, sender: int, battery: int, voltage: float, **kw) -> Envelope:
        """Return a TELEMETRY_APP envelope with sender's device metrics."""
        message = telemetry_pb2.Telemetry(
            time=1_700_000_000,
            device_metrics=telemetry_pb2.DeviceMetrics(
                battery_level=battery,
                voltage=voltage,
                channel_utilization=12.5,
                air_util_tx=3.25,
                uptime_seconds=3600,
            ),
        )
        return self.envelope(sender, portnums_pb2.TELEMETRY_APP, message.SerializeToString(), **kw)

    def environment(self, sender: int, temperature: float, humidity: float, **kw) -> Envelope:
        """Return a TELEMETRY_APP envelope with sender's environment metrics."""
        message = telemetry_pb2.Telemetry(
            environment_metrics=telemetry_pb2.EnvironmentMetrics(
                temperature=temperature, relative_humidity=humidity
            )
        )
        return self.envelope(sender, portnums_pb2.TELEMETRY_APP, message.SerializeToString(), **kw)

    def neighbors(self, reporter: int, neighbors: list[tuple[int, float]], **kw) -> Envelope:
        """Return a NEIGHBORINFO_APP envelope: whom reporter hears, and at what SNR."""
        message = mesh_pb2.NeighborInfo(
            node_id=reporter,
            node_broadcast_interval_secs=21600,
            neighbors=[mesh_pb2.Neighbor(node_id=num, snr=snr) for num, snr in neighbors],
        )
        kw.setdefault("to", 1)
        return self.envelope(
            reporter, portnums_pb2.NEIGHBORINFO_APP, message.SerializeToString(), **kw
        )

    def traceroute_reply(
        self,
        traced: int,
        requester: int,
        route: list[int],
        snr_towards: list[float],
        route_back: list[int],
        snr_back: list[float],
        **kw,
    ) -> Envelope:
        """Return a TRACEROUTE_APP reply envelope along the given route."""
        message = mesh_pb2.RouteDiscovery(
            route=route,
            snr_towards=[round(snr * 4) for snr in snr_towards],
            route_back=route_back,
            snr_back=[round(snr * 4) for snr in snr_back],
        )
        return self.envelope(
            traced,
            portnums_pb2.TRACEROUTE_APP,
            message.SerializeToString(),
            to=requester,
            request_id=4242,
            **kw,
        )

    def text(self, sender: int, text: str, **kw) -> Envelope:
        """Return a TEXT_MESSAGE_APP envelope from sender."""
        return self.envelope(sender, portnums_pb2.TEXT_MESSAGE_APP, text.encode(), **kw)

    def pki(self, sender: int, to: int, *, gateway: int) -> Envelope:
        """Return a PKI-encrypted envelope, which no channel key opens."""
        packet = mesh_pb2.MeshPacket(
            to=to,
            id=self.packet_id(),
            encrypted=bytes(48),
            pki_encrypted=True,
            hop_start=3,
            hop_limit=3,
        )
        setattr(packet, "from", sender)
        envelope = mqtt_pb2.ServiceEnvelope(
            packet=packet, channel_id="PKI", gateway_id=gateway_id(gateway)
        )
        return Envelope(f"{self.root}/2/e/PKI/{gateway_id(gateway)}", envelope.SerializeToString())

    def map_report(
        self, sender: int, long_name: str, lat: float, lon: float, precision: int = 14
    ) -> Envelope:
        """Return a MAP_REPORT_APP envelope, as on the map topic."""
        report = mqtt_pb2.MapReport(
            long_name=long_name,
            short_name=long_name[:4],
            hw_model=mesh_pb2.HardwareModel.RAK4631,
            firmware_version="2.7.11.ee68575",
            region=3,
            modem_preset=0,
            latitude_i=round(lat * 1e7),
            longitude_i=round(lon * 1e7),
            position_precision=precision,
            num_online_local_nodes=12,
        )
        return self.map_envelope(sender, report.SerializeToString())

    def map_envelope(self, sender: int, report: bytes) -> Envelope:
        """Wrap a serialized MapReport (possibly hand-made) as a map-report envelope."""
        packet = mesh_pb2.MeshPacket(to=0xFFFFFFFF, id=self.packet_id())
        setattr(packet, "from", sender)
        packet.decoded.portnum = portnums_pb2.MAP_REPORT_APP
        packet.decoded.payload = report
        envelope = mqtt_pb2.ServiceEnvelope(
            packet=packet, channel_id="", gateway_id=gateway_id(sender)
        )
        return Envelope(f"{self.root}/2/map/", envelope.SerializeToString())

    def regional_mix(self, count: int, nodes: int = 300, garbage: float = 0.02) -> list[Envelope]:
        """Return envelopes shaped like a regional feed.

        Mostly encrypted position, telemetry and node info, some neighbor info and traceroutes;
        each packet via 1-3 gateways; `garbage` of the envelopes are random bytes. Like a real
        mesh, the radio topology is stable: a node is heard by the same gateways, reports the
        same neighbors and routes through the same relays, with SNRs that wander around their
        usual values.
        """
        rng = self.rng
        population = [0x20000000 + index for index in range(nodes)]
        gateways = population[: max(3, nodes // 10)]
        heard_by = {
            num: [
                (gateway, rng.uniform(-15, 10), rng.choice((0, 0, 1, 2)))
                for gateway in rng.sample(gateways, rng.randint(1, 3))
            ]
            for num in population
        }
        neighbors = {
            num: [(rng.choice(population), rng.uniform(-10, 10)) for _ in range(rng.randint(2, 6))]
            for num in population
        }
        routes = {num: (rng.choice(population), rng.sample(population, 2)) for num in population}
        out: list[Envelope] = []
        while len(out) < count:
            sender = rng.choice(population)
            packet_id = self.packet_id()
            roll = rng.random()
            for gateway, snr, hops in heard_by[sender]:
                if rng.random() < garbage:
                    out.append(
                        Envelope(
                            f"{self.root}/2/e/LongFast/!deadbeef",
                            rng.randbytes(rng.randint(0, 120)),
                        )
                    )
                kw = {
                    "gateway": gateway,
                    "packet_id": packet_id,
                    "hop_limit": 3 - hops,
                    "snr": round(snr + rng.uniform(-2, 2), 2),
                    "rssi": round(-95 + 2 * snr + rng.uniform(-3, 3)),
                }
                if roll < 0.35:
                    env = self.position(
                        sender,
                        48 + (sender % 97) / 97,
                        2 + (sender % 89) / 89,
                        precision=(32, 16, 13)[sender % 3],
                        **kw,
                    )
                elif roll < 0.65:
                    env = self.telemetry(sender, rng.randint(1, 101), 3.3 + rng.random(), **kw)
                elif roll < 0.85:
                    env = self.node_info(
                        sender, f"Node {sender:08x}", f"{sender & 0xFFFF:04x}", **kw
                    )
                elif roll < 0.93:
                    env = self.neighbors(
                        sender,
                        [
                            (neighbor, round(base + rng.uniform(-1, 1), 2))
                            for neighbor, base in neighbors[sender]
                        ],
                        **kw,
                    )
                elif roll < 0.97:
                    requester, relays = routes[sender]
                    env = self.traceroute_reply(
                        sender,
                        requester,
                        relays,
                        [1.0, 2.0, 3.0],
                        relays[::-1],
                        [4.0, 5.0, 6.0],
                        **kw,
                    )
                else:
                    env = self.text(sender, "hello mesh", **kw)
                out.append(env)
        return out[:count]


# Hostile traffic for fuzzing: every shape above, with any field value a broker could carry.

FUZZ_ROOT = "msh/EU_868"
FUZZ_KEY_128 = bytes(range(16))
FUZZ_KEY_256 = bytes(range(100, 132))
# What a fuzzed decoder is configured with: the default key and one AES-128 channel. "Secret"
# (AES-256) is deliberately left out so its packets exercise the missing-key path.
FUZZ_CHANNEL_KEYS = {"LongFast": "AQ==", "Ops": base64.b64encode(FUZZ_KEY_128).decode()}
FUZZ_CHANNELS = {"LongFast": DEFAULT_PSK, "Ops": FUZZ_KEY_128, "Secret": FUZZ_KEY_256}
# A few ids that recur, so fuzzed packets also meet each other (links heard again, duplicates).
FUZZ_NODES = tuple(0x10000001 + index for index in range(8))
_NODE_EDGES = (0, 1, 2, 0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x80000000)
_UINT32_EDGES = (0, 1, 7, 8, 128, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
_INT32_EDGES = (0, 1, -1, -128, 127, 2**31 - 1, -(2**31))
_FLOAT_EDGES = (
    float("nan"),
    float("inf"),
    float("-inf"),
    0.0,
    -0.0,
    1e-45,
    3.4e38,
    -3.4e38,
    -128.0,
    6.25,
)
_LATITUDE_EDGES = (0, 900_000_000, 900_000_001, -900_000_000, -900_000_001, 2**31 - 1, -(2**31))
_LONGITUDE_EDGES = (0, 1_800_000_000, 1_800_000_001, -1_800_000_000, -1_800_000_001)
_NAME_EDGES = (
    b"",
    b"Base\x00Camp\x07",
    "Lunar Tower 🌙".encode()[:-1],
    b"T01\xe0",
    b"\xff\xfe\xfd",
    b" \t\n\r ",
    "ü".encode() * 30,
    b"\x1b[31mred\x1b[0m",
    "\u202eevil\u200b".encode(),
    "\ud800".encode("utf-8", "surrogatepass"),
    b"x" * 200,
)
_TOPIC_WORDS = ("2", "e", "map", "msh", "EU_868", "US", "LongFast", "PKI", "!0badcafe", "", "json")
_ODD_CHARACTERS = "\x00\x7f\u0085\ufffd\ufeff\u200b\ud800\udfff#+ /🌙é"


class ByteSource:
    """Field values read from a byte string, biased towards the values that break decoders.

    Hypothesis hands the bytes over (and shrinks them towards zeros); the fuzz bench hands over
    random ones. Reading past the end gives zeros.
    """

    def __init__(self, data: bytes) -> None:
        """Read values from data; once it runs out, every value is zero."""
        self.data = data
        self.at = 0

    def take(self, count: int) -> bytes:
        """Return the next count bytes."""
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk.ljust(count, b"\x00")

    def byte(self) -> int:
        """Return the next byte."""
        return self.take(1)[0]

    def below(self, limit: int) -> int:
        """Return a number in [0, limit)."""
        return int.from_bytes(self.take(2), "little") % limit

    def chance(self, percent: int) -> bool:
        """Return True percent times in a hundred."""
        return self.byte() * 100 < percent * 256

    def choice[T](self, options: tuple[T, ...] | list[T]) -> T:
        """Return one of options."""
        return options[self.below(len(options))]

    def uint32(self, edges: tuple[int, ...] = _UINT32_EDGES) -> int:
        """Return a uint32, often one of the edge values where parsers break."""
        if self.chance(25):
            return self.choice(edges)
        return int.from_bytes(self.take(4), "little")

    def int32(self) -> int:
        """Return an int32 from the edges of its range or anywhere in it."""
        if self.chance(25):
            return self.choice(_INT32_EDGES)
        return int.from_bytes(self.take(4), "little", signed=True)

    def float32(self) -> float:
        """Return a float32, non-finite values included."""
        if self.chance(30):
            return self.choice(_FLOAT_EDGES)
        if self.chance(50):
            return (self.below(8000) - 4000) / 4
        return struct.unpack("<f", self.take(4))[0]

    def node(self) -> int:
        """Return a node number, the broadcast and reserved ones included."""
        roll = self.byte()
        if roll < 64:
            return self.choice(_NODE_EDGES)
        if roll < 160:
            return self.choice(FUZZ_NODES)
        return int.from_bytes(self.take(4), "little")

    def hops(self) -> int:
        """Return a hop count, out-of-range ones included."""
        return self.below(9) if self.chance(75) else self.uint32()

    def timestamp(self, now: float) -> int:
        """Return a timestamp near now, in the far past, or in the future."""
        if self.chance(40):
            edges = (0, 1, int(now), int(now) + 599, int(now) + 601, int(now) + 31_536_000)
            return self.choice((*edges, 0xFFFFFFFF))
        return self.uint32()

    def coordinate(self, edges: tuple[int, ...], limit: int) -> int:
        """Return a coordinate in 1e-7 degrees, out-of-range ones included."""
        if self.chance(30):
            return self.choice(edges)
        if self.chance(60):
            return int.from_bytes(self.take(4), "little") % (2 * limit + 1) - limit
        return self.int32()

    def name(self) -> bytes:
        """Return name bytes, invalid and cut UTF-8 included."""
        roll = self.byte()
        if roll < 80:
            return self.choice(_NAME_EDGES)
        if roll < 170:
            return self.take(self.below(49))
        # Code points of every width, controls and surrogates included.
        return "".join(chr(self.below(0x110000)) for _ in range(self.below(20))).encode(
            "utf-8", "surrogatepass"
        )

    def text(self, limit: int = 12) -> str:
        """Return text of up to limit characters, odd ones included."""
        return "".join(
            self.choice(_ODD_CHARACTERS) if self.chance(50) else chr(self.below(0x110000))
            for _ in range(self.below(limit + 1))
        )


def fuzz_topic(source: ByteSource) -> str:
    """Return a topic: mostly words of real topics in any order, with odd text and empty levels."""
    levels = [
        source.choice(_TOPIC_WORDS) if source.chance(70) else source.text()
        for _ in range(source.below(10))
    ]
    return "/".join(levels)


def fuzz_mutate(payload: bytes, source: ByteSource, operations: int = 4) -> bytes:
    """Return the payload with bytes flipped, set, inserted or deleted, truncated or extended."""
    data = bytearray(payload)
    for _ in range(1 + source.below(operations)):
        operation, at = source.below(6), source.below(len(data) + 1)
        if operation == 0 and data:
            data[at % len(data)] ^= 1 << source.below(8)
        elif operation == 1 and data:
            data[at % len(data)] = source.byte()
        elif operation == 2:
            del data[at:]
        elif operation == 3:
            data += source.take(1 + source.below(40))
        elif operation == 4:
            data[at:at] = source.take(1 + source.below(40))
        else:
            del data[at : at + 1 + source.below(40)]
    return bytes(data)


def _fuzz_data(source: ByteSource, now: float) -> tuple[int, bytes, int]:
    """Return (portnum, payload, request_id) of a real message shape with fuzzed values."""
    kind = source.below(9)
    if kind == 0:
        position = mesh_pb2.Position(
            latitude_i=source.coordinate(_LATITUDE_EDGES, 900_000_000),
            longitude_i=source.coordinate(_LONGITUDE_EDGES, 1_800_000_000),
            altitude=source.int32(),
            time=source.timestamp(now),
            precision_bits=source.uint32((0, 1, 10, 13, 14, 16, 31, 32, 33, 0xFFFFFFFF)),
        )
        if source.chance(15):
            position.ClearField("longitude_i")
        return portnums_pb2.POSITION_APP, position.SerializeToString(), 0
    if kind == 1:
        user = b"".join(
            (
                wire_bytes(1, source.name()),
                wire_bytes(2, source.name()),
                wire_bytes(3, source.name()),
                wire_varint(5, source.uint32((0, 43, 255, 0xFFFFFFFF))),
                wire_varint(7, source.uint32((0, 2, 12, 13, 0xFFFFFFFF))),
            )
        )
        return portnums_pb2.NODEINFO_APP, user, 0
    if kind == 2:
        telemetry = telemetry_pb2.Telemetry(time=source.timestamp(now))
        variant = source.below(4)
        if variant == 0:
            telemetry.device_metrics.CopyFrom(
                telemetry_pb2.DeviceMetrics(
                    battery_level=source.uint32((0, 100, 101, 0xFFFFFFFF)),
                    voltage=source.float32(),
                    channel_utilization=source.float32(),
                    air_util_tx=source.float32(),
                    uptime_seconds=source.uint32(),
                )
            )
        elif variant == 1:
            telemetry.environment_metrics.CopyFrom(
                telemetry_pb2.EnvironmentMetrics(
                    temperature=source.float32(),
                    relative_humidity=source.float32(),
                    barometric_pressure=source.float32(),
                    lux=source.float32(),
                    wind_direction=source.uint32(),
                )
            )
        elif variant == 2:
            telemetry.power_metrics.CopyFrom(
                telemetry_pb2.PowerMetrics(
                    ch1_voltage=source.float32(),
                    ch1_current=source.float32(),
                    ch8_voltage=source.float32(),
                )
            )
        else:
            telemetry.local_stats.num_packets_tx = source.uint32()
        return portnums_pb2.TELEMETRY_APP, telemetry.SerializeToString(), 0
    if kind == 3:
        info = mesh_pb2.NeighborInfo(
            node_id=source.node(),
            node_broadcast_interval_secs=source.uint32(),
            neighbors=[
                mesh_pb2.Neighbor(node_id=source.node(), snr=source.float32())
                for _ in range(source.below(14))
            ],
        )
        return portnums_pb2.NEIGHBORINFO_APP, info.SerializeToString(), 0
    if kind == 4:
        route = mesh_pb2.RouteDiscovery(
            route=[source.node() for _ in range(source.below(9))],
            snr_towards=[source.int32() for _ in range(source.below(10))],
            route_back=[source.node() for _ in range(source.below(9))],
            snr_back=[source.int32() for _ in range(source.below(10))],
        )
        request_id = source.uint32() if source.chance(60) else 0
        return portnums_pb2.TRACEROUTE_APP, route.SerializeToString(), request_id
    if kind == 5:
        return portnums_pb2.TEXT_MESSAGE_APP, source.name(), 0
    if kind == 6:
        return source.below(600), source.take(source.below(64)), source.uint32()
    if kind == 7:
        # A real shape on the wrong port.
        port = source.choice(
            (portnums_pb2.POSITION_APP, portnums_pb2.NODEINFO_APP, portnums_pb2.TELEMETRY_APP)
        )
        return port, source.take(source.below(64)), 0
    return portnums_pb2.ROUTING_APP, source.take(source.below(16)), source.uint32()


def _fuzz_map_report(source: ByteSource) -> bytes:
    return b"".join(
        (
            wire_bytes(1, source.name()),
            wire_bytes(2, source.name()),
            wire_varint(3, source.uint32((0, 2, 0xFFFFFFFF))),
            wire_varint(4, source.uint32((0, 9, 43, 0xFFFFFFFF))),
            wire_bytes(5, source.name()),
            wire_varint(6, source.uint32((0, 3, 99))),
            wire_varint(7, source.uint32((0, 8, 99))),
            # sfixed32 coordinates, as varints of their unsigned 32-bit form when fuzzed so.
            wire_varint(9, source.coordinate(_LATITUDE_EDGES, 900_000_000) & 0xFFFFFFFF),
            wire_varint(10, source.coordinate(_LONGITUDE_EDGES, 1_800_000_000) & 0xFFFFFFFF),
            wire_varint(12, source.uint32((0, 14, 32, 33))),
            wire_varint(13, source.uint32()),
        )
    )


def fuzz_envelope(source: ByteSource, now: float, root: str = FUZZ_ROOT) -> Envelope:
    """Return a real envelope of any shape with fuzzed field values and keys."""
    sender, packet_id = source.node(), source.uint32((0, 1, 0xFFFFFFFF))
    shape = source.below(20)
    if shape == 0:
        report = _fuzz_map_report(source)
        if source.chance(50):
            # The wire type the decoder expects for the coordinates.
            latitude = struct.pack("<i", source.coordinate(_LATITUDE_EDGES, 900_000_000))
            report += _varint(9 << 3 | 5) + latitude
        packet = mesh_pb2.MeshPacket(to=source.node(), id=packet_id)
        setattr(packet, "from", sender)
        packet.decoded.portnum = portnums_pb2.MAP_REPORT_APP
        packet.decoded.payload = report
        envelope = mqtt_pb2.ServiceEnvelope(packet=packet, gateway_id=gateway_id(sender))
        return Envelope(f"{root}/2/map/", envelope.SerializeToString())
    portnum, payload, request_id = _fuzz_data(source, now)
    data = mesh_pb2.Data(portnum=portnum, payload=payload, request_id=request_id)
    packet = mesh_pb2.MeshPacket(
        to=source.node(),
        id=packet_id,
        rx_time=source.timestamp(now),
        rx_snr=source.float32(),
        rx_rssi=source.int32(),
        hop_start=source.hops(),
        hop_limit=source.hops(),
        via_mqtt=source.chance(20),
        relay_node=source.byte(),
    )
    setattr(packet, "from", sender)
    channel = source.choice(tuple(FUZZ_CHANNELS))
    key = FUZZ_CHANNELS[channel]
    how = source.below(10)
    if how == 0:
        packet.decoded.CopyFrom(data)
    elif how == 1:
        # PKI: undecryptable bytes, metadata only.
        channel, packet.pki_encrypted = "PKI", True
        packet.encrypted = source.take(source.below(96))
    else:
        if how == 2:
            # A wrong key with the channel's hash: the decoder must try it and give up.
            wrong = bytearray(source.take(len(key)))
            wrong[-1] ^= hash_of(channel, bytes(wrong)) ^ hash_of(channel, key)
            key = bytes(wrong)
        packet.channel = hash_of(channel, key) if how != 3 else source.byte()
        packet.encrypted = encrypt(key, packet_id, sender, data.SerializeToString())
    gateway = source.node() if source.chance(85) else sender
    # Envelope strings by hand: a broken gateway may upload invalid UTF-8 there too.
    channel_id = channel.encode() if source.chance(90) else source.name()
    gateway_text = gateway_id(gateway).encode() if source.chance(90) else source.name()
    payload = (
        mqtt_pb2.ServiceEnvelope(packet=packet).SerializeToString()
        + wire_bytes(2, channel_id)
        + wire_bytes(3, gateway_text)
    )
    topic_channel = channel if source.chance(90) else source.text(6).replace("/", "")
    return Envelope(f"{root}/2/e/{topic_channel}/{gateway_id(gateway)}", payload)
