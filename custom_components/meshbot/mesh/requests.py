"""What a request to one node carries, and its answer as plain JSON for an action's response.

A request is a packet to the node with `want_response` set, on the port of what it asks for:
an empty Position, a Telemetry with the wanted variant set (and empty: the firmware answers only
a variant it recognises), or an empty RouteDiscovery. The answer is the node's packet on the same
port whose `request_id` is the request's packet id.
"""

from __future__ import annotations

from collections.abc import Callable
import math
from typing import Any, Final

from google.protobuf.message import DecodeError
from meshtastic.protobuf import mesh_pb2, telemetry_pb2

from .airtime import RequestKind
from .decode import PORT_POSITION, PORT_TELEMETRY, PORT_TRACEROUTE, UNKNOWN_HOP, MeshDecoder
from .models import PositionObs, TelemetryObs, node_id, valid_node
from .state import iso

PORTS: Final = {
    RequestKind.POSITION: PORT_POSITION,
    RequestKind.TELEMETRY: PORT_TELEMETRY,
    RequestKind.TRACEROUTE: PORT_TRACEROUTE,
}
# The telemetry a request can ask for, by the Telemetry variant that asks for it.
TELEMETRY_TYPES: Final = {"device": "device_metrics", "environment": "environment_metrics"}
# A receiver that could not measure the SNR reports this (dB x 4).
UNKNOWN_SNR: Final = -128

# Answers come on the radio's frames, which the mesh coordinator's decoder has decoded and counted
# already; a decoder of their own reads them again without counting anything twice.
_ANSWERS: Final = MeshDecoder()

type NameOf = Callable[[int], str]


def request_payload(kind: RequestKind, telemetry_type: str = "device") -> bytes:
    """Return the payload of a request of `kind` (for telemetry: of `telemetry_type`)."""
    if kind is RequestKind.TELEMETRY:
        message = telemetry_pb2.Telemetry()
        getattr(message, TELEMETRY_TYPES[telemetry_type]).SetInParent()
        return message.SerializeToString()
    # The official clients ask with their own position, or an empty one when they have none:
    # meshbot has none to share.
    return b""


def position_answer(
    packet: mesh_pb2.MeshPacket, local_node: int, name_of: NameOf
) -> dict[str, Any]:
    """Return a position answer as JSON; a node without a fix answers with no coordinates."""
    node = getattr(packet, "from")
    observation = _observe(packet, local_node)
    position = observation if isinstance(observation, PositionObs) else None
    return {
        "node": node_id(node),
        "name": name_of(node),
        "latitude": position.latitude if position else None,
        "longitude": position.longitude if position else None,
        "altitude": position.altitude if position else None,
        "precision_bits": position.precision_bits if position else None,
        "time": iso(position.time) if position and position.time else None,
    }


def telemetry_answer(
    packet: mesh_pb2.MeshPacket, local_node: int, name_of: NameOf
) -> dict[str, Any]:
    """Return a telemetry answer as JSON: the metrics by the names the sensors use."""
    node = getattr(packet, "from")
    observation = _observe(packet, local_node)
    telemetry = observation if isinstance(observation, TelemetryObs) else None
    return {
        "node": node_id(node),
        "name": name_of(node),
        "type": telemetry.kind if telemetry else None,
        # The decoder already gave each metric back as the node measured it (no float32 noise).
        "metrics": dict(telemetry.values) if telemetry else {},
    }


def traceroute_answer(packet: mesh_pb2.MeshPacket, name_of: NameOf) -> dict[str, Any] | None:
    """Return a traceroute answer as JSON, each way a list of hops; None if it does not parse.

    Each hop names the node that received and the SNR it measured; the first entry of a way is
    where it starts. The way back is None from older firmware, which does not trace it.
    """
    route = mesh_pb2.RouteDiscovery()
    try:
        route.ParseFromString(packet.decoded.payload)
    except DecodeError:
        return None
    traced, requester = getattr(packet, "from"), packet.to
    back = None
    # As the Meshtastic CLI reads it: the way back was traced when each of its receivers
    # appended an SNR, one more than the relays.
    if len(route.snr_back) == len(route.route_back) + 1:
        back = _hops([traced, *route.route_back, requester], list(route.snr_back), name_of)
    return {
        "node": node_id(traced),
        "name": name_of(traced),
        "towards": _hops([requester, *route.route, traced], list(route.snr_towards), name_of),
        "back": back,
    }


def _hops(path: list[int], snrs: list[int], name_of: NameOf) -> list[dict[str, Any]]:
    # SNRs are for the receivers, one per hop; firmware older than 2.3 sends none at all.
    valid = len(snrs) == len(path) - 1
    hops: list[dict[str, Any]] = []
    for index, num in enumerate(path):
        known = valid_node(num) and num != UNKNOWN_HOP
        snr = snrs[index - 1] if valid and index else UNKNOWN_SNR
        hops.append(
            {
                # A relay that did not add itself (an old or a private node) is unknown.
                "node": node_id(num) if known else None,
                "name": name_of(num) if known else None,
                "snr": snr / 4 if snr != UNKNOWN_SNR and math.isfinite(snr) else None,
            }
        )
    return hops


def _observe(packet: mesh_pb2.MeshPacket, local_node: int) -> object:
    decoded = _ANSWERS.decode_radio(packet, local_node)
    return decoded.observation if decoded is not None else None
