"""Typed observations decoded from Meshtastic packets; plain data, no behaviour.

They are created for every packet, so they are slotted but not frozen: a frozen dataclass
initialises each field through object.__setattr__, which doubles the cost on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

BROADCAST = 0xFFFFFFFF
# NeighborInfo goes to this pseudo-address: "MQTT and apps only".
BROADCAST_TO_APPS = 1

# The telemetry metrics kept (telemetry.proto), which the entities also know by name.
ENVIRONMENT_METRICS = frozenset(
    {
        "temperature",
        "relative_humidity",
        "barometric_pressure",
        "gas_resistance",
        "iaq",
        "lux",
        "white_lux",
        "ir_lux",
        "uv_lux",
        "wind_speed",
        "wind_gust",
        "wind_lull",
        "wind_direction",
        "rainfall_1h",
        "rainfall_24h",
        "soil_moisture",
        "soil_temperature",
        "distance",
        "weight",
        "radiation",
    }
)
# The environment message's own voltage and current are left out: they would overwrite the
# device metrics' battery voltage in the node's one telemetry map, and the firmware moves them to
# the power metrics anyway. A power monitor (INA219, INA3221...) reports up to eight channels.
POWER_CHANNELS = range(1, 9)
POWER_METRICS = frozenset(
    f"ch{channel}_{quantity}" for channel in POWER_CHANNELS for quantity in ("voltage", "current")
)


class LinkSource(StrEnum):
    """Where knowledge of a link comes from."""

    NEIGHBOR = "neighbor"
    DIRECT = "direct"
    TRACEROUTE = "traceroute"
    RADIO = "radio"


def node_id(num: int) -> str:
    """Return the `!xxxxxxxx` form of a node number."""
    return f"!{num:08x}"


def default_node_name(num: int) -> str:
    """Return the name Meshtastic firmware gives a node its owner has not named yet."""
    # The firmware's default long name: "Meshtastic" and the last 4 hex digits of the node id,
    # which its short name also is and what apps and screens show before the real name.
    return f"Meshtastic {num & 0xFFFF:04x}"


def parse_node_id(text: str) -> int | None:
    """Return the node number of a `!xxxxxxxx` id, or None if it is not one."""
    if len(text) != 9 or text[0] != "!":
        return None
    try:
        return int(text[1:], 16)
    except ValueError:
        return None


def valid_node(num: int) -> bool:
    """Return whether a number can be a real node (0 and broadcast cannot)."""
    return 0 < num < BROADCAST and num != BROADCAST_TO_APPS


@dataclass(slots=True)
class Reception:
    """One gateway's (or the local radio's) reception of a packet."""

    gateway: int
    snr: float | None
    rssi: int | None
    hops: int | None
    rx_time: float


@dataclass(slots=True)
class NodeInfoObs:
    """A node announced its user record."""

    node: int
    long_name: str
    short_name: str
    hw_model: str | None
    role: str | None


@dataclass(slots=True)
class PositionObs:
    """A node reported its position."""

    node: int
    latitude: float
    longitude: float
    altitude: int | None
    precision_bits: int | None
    time: int | None


@dataclass(slots=True)
class TelemetryObs:
    """A node reported device, environment, power or local metrics (only the fields it set)."""

    node: int
    kind: str
    values: dict[str, float]


@dataclass(slots=True)
class NeighborsObs:
    """A node reported the neighbors it hears, with the SNR it measured for each."""

    reporter: int
    neighbors: tuple[tuple[int, float], ...]
    interval: int | None


@dataclass(slots=True)
class TracerouteObs:
    """A traceroute: the hops towards the destination (and back, on a reply) with SNRs."""

    origin: int
    destination: int
    hops: tuple[tuple[int, int, float | None], ...]


@dataclass(slots=True)
class MapReportObs:
    """A node's periodic map report (unencrypted, with precision-limited position)."""

    node: int
    long_name: str
    short_name: str
    hw_model: str | None
    role: str | None
    firmware_version: str | None
    region: str | None
    modem_preset: str | None
    position: PositionObs | None
    online_local_nodes: int | None


@dataclass(slots=True)
class TextObs:
    """A text message."""

    sender: int
    destination: int
    channel: str
    text: str


type Observation = (
    NodeInfoObs | PositionObs | TelemetryObs | NeighborsObs | TracerouteObs | MapReportObs | TextObs
)


@dataclass(slots=True)
class DecodedPacket:
    """One envelope: who sent what, who heard it, and whether we had seen it already."""

    sender: int
    destination: int
    packet_id: int
    channel: str
    reception: Reception | None
    direct: bool
    duplicate: bool
    observation: Observation | None = None
    pki: bool = False
    # Heard by the local radio rather than reported by an MQTT gateway.
    via_radio: bool = False


@dataclass(slots=True)
class NodeRecord:
    """An entry of the local radio's node database, as its handshake dumps it."""

    num: int
    observations: list[Observation]
    # Only what the record can vouch for: a clock from the future, a NaN SNR or an impossible
    # hop count arrive as None.
    last_heard: float | None
    snr: float | None
    hops_away: int | None


@dataclass
class DecodeCounters:
    """Envelopes seen, decoded, and rejected by reason."""

    envelopes: int = 0
    decoded: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        """Count one rejection."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    @property
    def rejected_total(self) -> int:
        """Return how many envelopes were rejected for any reason."""
        return sum(self.rejected.values())
