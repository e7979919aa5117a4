"""Topic -> ServiceEnvelope -> decrypted Data -> typed observation, per PROTOCOLS.md.

Every envelope either becomes a DecodedPacket or is counted under a rejection reason; nothing
raises out of `MeshDecoder.decode`, whatever bytes the broker hands over.
"""

from __future__ import annotations

import base64
import enum
import math
import time
from typing import Any, Final, Protocol

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from meshtastic.protobuf import config_pb2, mesh_pb2, mqtt_pb2, portnums_pb2, telemetry_pb2

from .channels import ChannelCipher, channel_hash, expand_psk
from .lenient import parse_lenient
from .models import (
    BROADCAST,
    ENVIRONMENT_METRICS,
    POWER_METRICS,
    DecodeCounters,
    DecodedPacket,
    MapReportObs,
    NeighborsObs,
    NodeInfoObs,
    NodeRecord,
    Observation,
    PositionObs,
    Reception,
    TelemetryObs,
    TextObs,
    TracerouteObs,
    parse_node_id,
    valid_node,
)

PORT_TEXT = portnums_pb2.PortNum.TEXT_MESSAGE_APP
PORT_POSITION = portnums_pb2.PortNum.POSITION_APP
PORT_NODEINFO = portnums_pb2.PortNum.NODEINFO_APP
PORT_TELEMETRY = portnums_pb2.PortNum.TELEMETRY_APP
PORT_TRACEROUTE = portnums_pb2.PortNum.TRACEROUTE_APP
PORT_NEIGHBORINFO = portnums_pb2.PortNum.NEIGHBORINFO_APP
PORT_MAP_REPORT = portnums_pb2.PortNum.MAP_REPORT_APP

MAX_ENVELOPE = 4096
# How many (sender, packet id) pairs are remembered, at least, to collapse the copies other
# gateways upload: at a busy feed's 1,000 distinct packets/s, the last 20 s.
DEDUP_WINDOW = 20_000
UNKNOWN_HOP = 0xFFFFFFFF
# The radio header keeps hop_start and hop_limit in 3 bits: larger values are not from a radio.
MAX_HOPS = 7
# Timestamps further ahead than this are clock errors, not news.
FUTURE_SLACK = 600
CACHE_LIMIT = 4096


# Markers told apart from None, as one-member enums so type checkers narrow them.
class _Missing(enum.Enum):
    """A cache miss, where None is a cached answer."""

    MISSING = 0


class Rejected(enum.Enum):
    """What a payload decoder returns when it counted a rejection."""

    REJECTED = 0


_MISSING: Final = _Missing.MISSING
REJECTED: Final = Rejected.REJECTED

DEVICE_METRICS = frozenset(
    {"battery_level", "voltage", "channel_utilization", "air_util_tx", "uptime_seconds"}
)
# A node's own counters, sent to its API client (the radio link) only.
LOCAL_STATS = frozenset(
    {
        "uptime_seconds",
        "channel_utilization",
        "air_util_tx",
        "num_packets_tx",
        "num_packets_rx",
        "num_packets_rx_bad",
        "num_tx_relay",
        "num_online_nodes",
        "num_total_nodes",
    }
)


# What is read of each metrics message: the wanted fields' descriptors, as ListFields returns
# them, with each field's name and whether it is a float32. Looked up once per field: reading
# a descriptor's name and type per value cost a telemetry packet more than its parse.
type _MetricFields = dict[FieldDescriptor, tuple[str, bool]]


def _metric_fields(message: Any, names: frozenset[str]) -> _MetricFields:
    return {
        field: (field.name, field.type == FieldDescriptor.TYPE_FLOAT)
        for field in message.DESCRIPTOR.fields
        if field.name in names
    }


_DEVICE_FIELDS = _metric_fields(telemetry_pb2.DeviceMetrics, DEVICE_METRICS)
# Telemetry's variants: the kind each one is, and what is read of it.
_TELEMETRY_VARIANTS: Final[dict[str, tuple[str, _MetricFields]]] = {
    "device_metrics": ("device", _DEVICE_FIELDS),
    "environment_metrics": (
        "environment",
        _metric_fields(telemetry_pb2.EnvironmentMetrics, ENVIRONMENT_METRICS),
    ),
    "local_stats": ("local", _metric_fields(telemetry_pb2.LocalStats, LOCAL_STATS)),
    "power_metrics": ("power", _metric_fields(telemetry_pb2.PowerMetrics, POWER_METRICS)),
}


def _metric_values(metrics: Message, fields: _MetricFields) -> dict[str, float]:
    """Return the wanted metrics the node set (ListFields: only those, in one call), finite.

    A float32 keeps the 7 significant digits it holds: 12.6 stays 12.6, not 12.6000003814697,
    in the states and the recorder's history.
    """
    values: dict[str, float] = {}
    for field, value in metrics.ListFields():
        wanted = fields.get(field)
        if wanted is not None and math.isfinite(value):
            name, is_float32 = wanted
            values[name] = float(f"{value:.7g}") if is_float32 else float(value)
    return values


class _ProtobufEnum(Protocol):
    def Name(self, number: Any) -> str: ...


def _enum_name(protobuf_enum: _ProtobufEnum, value: int) -> str | None:
    try:
        return protobuf_enum.Name(value)
    except ValueError:
        return None


def clean_text(value: str, limit: int) -> str:
    """Strip control characters and bound the length of a name from the air."""
    if not value.isprintable():
        value = "".join(ch for ch in value if ch.isprintable())
    return value[:limit].strip()


def hops_travelled(hop_start: int, hop_limit: int) -> int | None:
    """Return hop_start - hop_limit, or None when unknown (hop_start 0) or impossible."""
    if 0 < hop_start <= MAX_HOPS and hop_limit <= hop_start:
        return hop_start - hop_limit
    return None


class RecentPackets:
    """The last packets decoded, as (sender, packet id), to tell a copy from news.

    Two plain dicts of int keys: the newer fills up to `window` packets, then becomes the older
    and the oldest ones go, so between `window` and twice as many packets are remembered. A
    lookup and an insert are one dict operation each. Holding only ints, both dicts are left out
    of every full garbage collection in Home Assistant's process, which would otherwise walk
    all their keys each time.
    """

    __slots__ = ("_newer", "_older", "_window")

    def __init__(self, window: int) -> None:
        """Remember at least the last `window` packets."""
        self._window = window
        self._newer: dict[int, None] = {}
        self._older: dict[int, None] = {}

    def __contains__(self, key: int) -> bool:
        """Return whether the packet was decoded recently."""
        return key in self._newer or key in self._older

    def add(self, key: int) -> None:
        """Remember a packet."""
        newer = self._newer
        newer[key] = None
        if len(newer) >= self._window:
            self._older, self._newer = newer, {}


def topic_channel(topic: str) -> tuple[str, str] | None:
    """Return ("e" or "map", channel) from a topic, finding the `2/e` or `2/map` segment."""
    levels = topic.split("/")
    for index in range(len(levels) - 1):
        if levels[index] == "2" and levels[index + 1] in ("e", "map"):
            kind = levels[index + 1]
            channel = levels[index + 2] if kind == "e" and index + 2 < len(levels) else ""
            return kind, channel
    return None


class MeshDecoder:
    """Decode envelopes with the configured channel keys; count every rejection."""

    def __init__(self, channel_keys: dict[str, str] | None = None) -> None:
        """Prepare the keys, indexed by the channel hash the firmware puts in packets."""
        self.counters = DecodeCounters()
        self._keys_by_hash: dict[int, list[tuple[str, ChannelCipher]]] = {}
        for name, text in (channel_keys or {}).items():
            key = expand_psk(base64.b64decode(text))
            if key is not None:
                # Built once: constructing cipher objects per packet costs more than the
                # decryption itself.
                self._keys_by_hash.setdefault(channel_hash(name, key), []).append(
                    (name, ChannelCipher(key))
                )
        self._recent = RecentPackets(DEDUP_WINDOW)
        # A feed has few distinct topics (one per gateway and channel) and gateway ids; both
        # caches are cleared when full so a flood of invented topics cannot grow them.
        self._topics: dict[str, tuple[str, str] | None] = {}
        self._gateways: dict[str, int | None] = {}

    def decode(self, topic: str, payload: bytes, now: float | None = None) -> DecodedPacket | None:
        """Return the decoded packet, or None after counting why it was rejected."""
        counters = self.counters
        counters.envelopes += 1
        if now is None:
            now = time.time()
        # One function, not a wrapper around a second: the call per envelope is measurable.
        try:
            topics = self._topics
            where = topics.get(topic, _MISSING)
            if where is _MISSING:
                if len(topics) >= CACHE_LIMIT:
                    topics.clear()
                where = topics[topic] = topic_channel(topic)
            if where is None:
                counters.reject("topic")
                return None
            if len(payload) > MAX_ENVELOPE:
                counters.reject("oversized")
                return None
            if where[0] == "map":
                return self._map_report(payload, now)
            envelope = mqtt_pb2.ServiceEnvelope()
            try:
                parse_lenient(envelope, payload)
            except DecodeError:
                counters.reject("envelope")
                return None
            if not envelope.HasField("packet"):
                counters.reject("envelope")
                return None
            packet = envelope.packet
            sender = getattr(packet, "from")
            if not 1 < sender < BROADCAST:
                counters.reject("node_id")
                return None
            gateway_text = envelope.gateway_id
            gateways = self._gateways
            gateway = gateways.get(gateway_text, _MISSING)
            if gateway is _MISSING:
                if len(gateways) >= CACHE_LIMIT:
                    gateways.clear()
                gateway = parse_node_id(gateway_text)
                gateways[gateway_text] = (
                    gateway if gateway is not None and valid_node(gateway) else None
                )
                gateway = gateways[gateway_text]
            reception = None
            hop_start, hop_limit = packet.hop_start, packet.hop_limit
            hops = (
                hop_start - hop_limit
                if 0 < hop_start <= MAX_HOPS and hop_limit <= hop_start
                else None
            )
            if gateway is not None and gateway != sender:
                snr = packet.rx_snr
                reception = Reception(
                    gateway,
                    snr if snr and math.isfinite(snr) else None,
                    packet.rx_rssi or None,
                    hops,
                    now,
                )
            packet_id = packet.id
            # One int for the pair: packet ids are 32 bits.
            key = sender << 32 | packet_id
            recent = self._recent
            duplicate = key in recent
            channel_id = envelope.channel_id
            decoded = DecodedPacket(
                sender,
                packet.to,
                packet_id,
                channel_id or where[1],
                reception,
                hops == 0 and reception is not None,
                duplicate,
                None,
                packet.pki_encrypted or channel_id == "PKI",
            )
            if duplicate:
                # The same packet via another gateway: its reception is news, its content is not.
                counters.duplicates += 1
                return decoded
            if decoded.pki:
                recent.add(key)
                counters.decoded += 1
                return decoded
            data = self._data(packet, sender, packet_id)
            if data is None:
                return None
            observation = self._observation(sender, decoded.destination, decoded.channel, data, now)
            if observation is REJECTED:
                return None
            decoded.observation = observation
            # Only a packet that decoded makes later copies duplicates: a copy of a rejected one
            # (no key, wrong key, bad payload) is rejected in turn, not passed on as a duplicate.
            recent.add(key)
            counters.decoded += 1
            return decoded
        except Exception:  # noqa: BLE001
            # A decoder bug on one hostile envelope must not stop the collector.
            counters.reject("internal_error")
            return None

    def decode_radio(
        self, packet: mesh_pb2.MeshPacket, local_node: int, now: float | None = None
    ) -> DecodedPacket | None:
        """Decode a packet the local radio heard (already decrypted by the node, usually)."""
        counters = self.counters
        counters.envelopes += 1
        now = time.time() if now is None else now
        try:
            sender = getattr(packet, "from")
            if not valid_node(sender):
                counters.reject("node_id")
                return None
            hops = hops_travelled(packet.hop_start, packet.hop_limit)
            own = sender == local_node
            reception = None
            if not own and valid_node(local_node):
                reception = Reception(
                    gateway=local_node,
                    snr=packet.rx_snr if packet.rx_snr and math.isfinite(packet.rx_snr) else None,
                    rssi=packet.rx_rssi or None,
                    hops=hops,
                    rx_time=now,
                )
            decoded = DecodedPacket(
                sender=sender,
                destination=packet.to,
                packet_id=packet.id,
                channel=str(packet.channel),
                reception=reception,
                direct=hops == 0 and reception is not None,
                duplicate=False,
                pki=packet.pki_encrypted,
                via_radio=True,
            )
            data = self._data(packet, sender, packet.id)
            if data is None:
                return None
            observation = self._observation(sender, packet.to, decoded.channel, data, now)
            if observation is REJECTED:
                return None
            decoded.observation = observation
            counters.decoded += 1
            return decoded
        except Exception:  # noqa: BLE001
            counters.reject("internal_error")
            return None

    def radio_frame(
        self, frame: mesh_pb2.FromRadio, local_node: int | None, now: float | None = None
    ) -> DecodedPacket | NodeRecord | None:
        """Decode what the local radio sends: a packet it heard or an entry of its node database.

        Other frames (its own settings, the handshake's end, logs) say nothing about the mesh.
        """
        now = time.time() if now is None else now
        variant = frame.WhichOneof("payload_variant")
        if variant == "packet":
            return self.decode_radio(frame.packet, local_node or 0, now)
        if variant == "node_info":
            return self.node_record(frame.node_info, now)
        return None

    def node_record(self, info: mesh_pb2.NodeInfo, now: float) -> NodeRecord | None:
        """Return what a radio's node database entry says about a node (its handshake dump)."""
        num = info.num
        if not valid_node(num):
            self.counters.reject("node_id")
            return None
        observations: list[Observation] = []
        if info.HasField("user"):
            user = info.user
            observations.append(
                NodeInfoObs(
                    num,
                    clean_text(user.long_name, 39),
                    clean_text(user.short_name, 4),
                    _enum_name(mesh_pb2.HardwareModel, user.hw_model),
                    _enum_name(config_pb2.Config.DeviceConfig.Role, user.role),
                )
            )
        if info.HasField("position"):
            position = self._position(num, info.position, now, count=False)
            if isinstance(position, PositionObs):
                observations.append(position)
        if info.HasField("device_metrics"):
            values = _metric_values(info.device_metrics, _DEVICE_FIELDS)
            if values:
                observations.append(TelemetryObs(num, "device", values))
        return NodeRecord(
            num,
            observations,
            # The node's clock may be unset (0) or wrong: never trust a time from the future.
            last_heard=float(info.last_heard) if 0 < info.last_heard <= now else None,
            snr=info.snr if info.snr and math.isfinite(info.snr) else None,
            hops_away=info.hops_away
            if info.HasField("hops_away") and info.hops_away <= MAX_HOPS
            else None,
        )

    def _data(
        self, packet: mesh_pb2.MeshPacket, sender: int, packet_id: int
    ) -> mesh_pb2.Data | None:
        variant = packet.WhichOneof("payload_variant")
        if variant == "decoded":
            return packet.decoded
        if variant != "encrypted":
            self.counters.reject("no_payload")
            return None
        candidates = self._keys_by_hash.get(packet.channel)
        if not candidates:
            self.counters.reject("no_key")
            return None
        encrypted = packet.encrypted
        for _name, cipher in candidates:
            plain = cipher.decrypt(packet_id, sender, encrypted)
            data = mesh_pb2.Data()
            try:
                data.ParseFromString(plain)
            except DecodeError:
                continue
            # A wrong key usually fails to parse; when it parses, port 0 gives it away.
            if data.portnum:
                return data
        self.counters.reject("decrypt")
        return None

    def _observation(
        self, sender: int, destination: int, channel: str, data: mesh_pb2.Data, now: float
    ) -> Observation | Rejected | None:
        port = data.portnum
        try:
            if port == PORT_POSITION:
                message = mesh_pb2.Position()
                message.ParseFromString(data.payload)
                return self._position(sender, message, now)
            if port == PORT_NODEINFO:
                user = mesh_pb2.User()
                parse_lenient(user, data.payload)
                return NodeInfoObs(
                    node=sender,
                    long_name=clean_text(user.long_name, 39),
                    short_name=clean_text(user.short_name, 4),
                    hw_model=_enum_name(mesh_pb2.HardwareModel, user.hw_model),
                    role=_enum_name(config_pb2.Config.DeviceConfig.Role, user.role),
                )
            if port == PORT_TELEMETRY:
                telemetry = telemetry_pb2.Telemetry()
                telemetry.ParseFromString(data.payload)
                return self._telemetry(sender, telemetry)
            if port == PORT_NEIGHBORINFO:
                info = mesh_pb2.NeighborInfo()
                info.ParseFromString(data.payload)
                return self._neighbors(sender, info)
            if port == PORT_TRACEROUTE:
                route = mesh_pb2.RouteDiscovery()
                route.ParseFromString(data.payload)
                return self._traceroute(sender, destination, route, bool(data.request_id))
            if port == PORT_TEXT:
                return TextObs(
                    sender=sender,
                    destination=destination,
                    channel=channel,
                    text=data.payload.decode("utf-8", errors="replace")[:500],
                )
        except DecodeError:
            self.counters.reject("payload")
            return REJECTED
        return None

    def _position(
        self, node: int, message: mesh_pb2.Position, now: float, *, count: bool = True
    ) -> PositionObs | Rejected | None:
        if not (message.HasField("latitude_i") and message.HasField("longitude_i")):
            return None
        latitude, longitude = message.latitude_i * 1e-7, message.longitude_i * 1e-7
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180) or (
            latitude == 0 and longitude == 0
        ):
            if count:
                self.counters.reject("position_range")
            return REJECTED
        reported = message.time or None
        if reported is not None and reported > now + FUTURE_SLACK:
            reported = None
        return PositionObs(
            node=node,
            latitude=latitude,
            longitude=longitude,
            altitude=message.altitude if message.HasField("altitude") else None,
            precision_bits=message.precision_bits or None,
            time=reported,
        )

    def _telemetry(self, node: int, telemetry: telemetry_pb2.Telemetry) -> TelemetryObs | None:
        variant = telemetry.WhichOneof("variant")
        if variant is None or (read := _TELEMETRY_VARIANTS.get(variant)) is None:
            return None
        kind, fields = read
        values = _metric_values(getattr(telemetry, variant), fields)
        return TelemetryObs(node, kind, values) if values else None

    def _neighbors(self, sender: int, info: mesh_pb2.NeighborInfo) -> NeighborsObs | Rejected:
        reporter = info.node_id or sender
        if not valid_node(reporter):
            self.counters.reject("node_id")
            return REJECTED
        neighbors = tuple(
            (neighbor.node_id, float(neighbor.snr))
            for neighbor in info.neighbors[:10]
            if valid_node(neighbor.node_id)
            and neighbor.node_id != reporter
            and math.isfinite(neighbor.snr)
        )
        return NeighborsObs(
            reporter=reporter,
            neighbors=neighbors,
            interval=info.node_broadcast_interval_secs or None,
        )

    def _traceroute(
        self, sender: int, destination: int, route: mesh_pb2.RouteDiscovery, is_reply: bool
    ) -> TracerouteObs:
        # A reply travels from the traced node back to the requester: its `route` lists the
        # hops requester -> traced and `route_back` the way home.
        origin, target = (destination, sender) if is_reply else (sender, destination)
        hops: list[tuple[int, int, float | None]] = []
        towards = _route_hops([origin, *route.route, target], list(route.snr_towards), is_reply)
        hops.extend(towards)
        if is_reply:
            back = [target, *route.route_back, origin]
            hops.extend(_route_hops(back, list(route.snr_back), complete=False))
        return TracerouteObs(
            origin=origin,
            destination=target,
            hops=tuple(
                hop
                for hop in hops
                if valid_node(hop[0])
                and valid_node(hop[1])
                and hop[0] != hop[1]
                and hop[0] != UNKNOWN_HOP
                and hop[1] != UNKNOWN_HOP
            ),
        )

    def _map_report(self, payload: bytes, now: float) -> DecodedPacket | None:
        envelope = mqtt_pb2.ServiceEnvelope()
        try:
            parse_lenient(envelope, payload)
        except DecodeError:
            self.counters.reject("envelope")
            return None
        packet = envelope.packet
        sender = getattr(packet, "from")
        if not valid_node(sender) or packet.WhichOneof("payload_variant") != "decoded":
            self.counters.reject("map_report")
            return None
        report = mqtt_pb2.MapReport()
        try:
            parse_lenient(report, packet.decoded.payload)
        except DecodeError:
            self.counters.reject("map_report")
            return None
        position: PositionObs | Rejected | None = None
        if report.latitude_i or report.longitude_i:
            position = self._position(
                sender,
                mesh_pb2.Position(
                    latitude_i=report.latitude_i,
                    longitude_i=report.longitude_i,
                    altitude=report.altitude,
                    precision_bits=report.position_precision,
                ),
                now,
                # The report still counts as decoded (names, firmware); only its position goes.
                count=False,
            )
        self.counters.decoded += 1
        return DecodedPacket(
            sender=sender,
            destination=packet.to,
            packet_id=packet.id,
            channel="map",
            reception=None,
            direct=False,
            duplicate=False,
            observation=MapReportObs(
                node=sender,
                long_name=clean_text(report.long_name, 39),
                short_name=clean_text(report.short_name, 4),
                hw_model=_enum_name(mesh_pb2.HardwareModel, report.hw_model),
                role=_enum_name(config_pb2.Config.DeviceConfig.Role, report.role),
                firmware_version=clean_text(report.firmware_version, 32) or None,
                region=_enum_name(config_pb2.Config.LoRaConfig.RegionCode, report.region),
                modem_preset=_enum_name(
                    config_pb2.Config.LoRaConfig.ModemPreset, report.modem_preset
                ),
                position=position if isinstance(position, PositionObs) else None,
                online_local_nodes=report.num_online_local_nodes or None,
            ),
        )


def _route_hops(
    path: list[int], snrs: list[int], complete: bool
) -> list[tuple[int, int, float | None]]:
    """Return the hops of a route that really happened, with their SNR in dB.

    Every node that receives the packet appends an SNR (-128 when unknown), so the SNR list says
    how far the packet got: a request caught mid-route has not reached its destination yet.
    Firmware older than 2.3 sends no SNRs at all; then only a reply's complete route is known.
    """
    if not snrs:
        count = len(path) - 1 if complete else 0
        return [(path[index], path[index + 1], None) for index in range(count)]
    count = min(len(snrs), len(path) - 1)
    return [
        (path[index], path[index + 1], None if snrs[index] == -128 else snrs[index] / 4)
        for index in range(count)
    ]
