"""Build real Meshtastic MQTT envelopes, encrypted like firmware does, for tests and benches.

Written independently of the integration's decoder (its own channel hash and nonce code), so a
mistake in one is not mirrored in the other.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
import random

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
        message = mesh_pb2.Position(
            latitude_i=round(lat * 1e7),
            longitude_i=round(lon * 1e7),
            altitude=altitude,
            precision_bits=precision,
            time=time,
        )
        return self.envelope(sender, portnums_pb2.POSITION_APP, message.SerializeToString(), **kw)

    def node_info(self, sender: int, long_name: str, short_name: str, **kw) -> Envelope:
        user = mesh_pb2.User(
            id=gateway_id(sender),
            long_name=long_name,
            short_name=short_name,
            hw_model=mesh_pb2.HardwareModel.HELTEC_V3,
        )
        return self.envelope(sender, portnums_pb2.NODEINFO_APP, user.SerializeToString(), **kw)

    def telemetry(self, sender: int, battery: int, voltage: float, **kw) -> Envelope:
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
        message = telemetry_pb2.Telemetry(
            environment_metrics=telemetry_pb2.EnvironmentMetrics(
                temperature=temperature, relative_humidity=humidity
            )
        )
        return self.envelope(sender, portnums_pb2.TELEMETRY_APP, message.SerializeToString(), **kw)

    def neighbors(self, reporter: int, neighbors: list[tuple[int, float]], **kw) -> Envelope:
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
        return self.envelope(sender, portnums_pb2.TEXT_MESSAGE_APP, text.encode(), **kw)

    def pki(self, sender: int, to: int, *, gateway: int) -> Envelope:
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
        """Return envelopes shaped like a regional feed: mostly encrypted position, telemetry and
        node info, some neighbor info and traceroutes, each packet via 1-3 gateways, 2% garbage.
        """
        rng = self.rng
        population = [0x20000000 + index for index in range(nodes)]
        gateways = population[: max(3, nodes // 10)]
        out: list[Envelope] = []
        while len(out) < count:
            if rng.random() < garbage:
                out.append(
                    Envelope(
                        f"{self.root}/2/e/LongFast/!deadbeef", rng.randbytes(rng.randint(0, 120))
                    )
                )
                continue
            sender = rng.choice(population)
            packet_id = self.packet_id()
            roll = rng.random()
            heard_by = rng.sample(gateways, rng.randint(1, 3))
            for gateway in heard_by:
                hop_limit = rng.choice((3, 3, 2, 1))
                kw = {
                    "gateway": gateway,
                    "packet_id": packet_id,
                    "hop_limit": hop_limit,
                    "snr": round(rng.uniform(-15, 10), 2),
                    "rssi": rng.randint(-125, -60),
                }
                if roll < 0.35:
                    env = self.position(
                        sender,
                        48 + rng.random(),
                        2 + rng.random(),
                        precision=rng.choice((32, 16, 13)),
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
                            (rng.choice(population), round(rng.uniform(-10, 10), 2))
                            for _ in range(rng.randint(1, 6))
                        ],
                        **kw,
                    )
                elif roll < 0.97:
                    hops = rng.sample(population, 2)
                    env = self.traceroute_reply(
                        sender,
                        rng.choice(population),
                        hops,
                        [1.0, 2.0, 3.0],
                        hops[::-1],
                        [4.0, 5.0, 6.0],
                        **kw,
                    )
                else:
                    env = self.text(sender, "hello mesh", **kw)
                out.append(env)
        return out[:count]
