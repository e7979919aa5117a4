"""The mesh as meshbot knows it: a node database and a neighbor graph, bounded in size.

Links come from three sources (NeighborInfo, direct receptions by gateways, traceroutes; the
local radio adds a fourth) and keep their source, SNR, RSSI, first and last seen and a count.
Both tables evict the least recently heard entry when full, so invented node ids cannot grow
memory without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
import math
from typing import Any, Final, NamedTuple

from ..geo.sphere import haversine_km
from .models import (
    DecodedPacket,
    LinkSource,
    MapReportObs,
    NeighborsObs,
    NodeInfoObs,
    NodeRecord,
    PositionObs,
    TelemetryObs,
    TextObs,
    TracerouteObs,
    default_node_name,
    node_id,
    parse_node_id,
    valid_node,
)

DEFAULT_MAX_NODES = 10_000
DEFAULT_MAX_LINKS = 50_000
MAX_GATEWAYS_PER_NODE = 16
STORAGE_FORMAT = 1

type LinkKey = tuple[int, int, str]
# What the table keeps of a link besides its key: (first seen, last seen, SNR, RSSI, count).
# A plain tuple of numbers, not an object, for the garbage collector's sake: every full
# collection walks each tracked object and everything it refers to, which made 50,000 link
# objects cost a Home Assistant process ~50 ms more per collection. Tuples of atoms and their
# keys (of plain str, not enum members, which are tracked) are untracked after one collection.
type LinkRow = tuple[float, float, float | None, int | None, int]
# Final, so the type checker knows which element of a row each index reads.
_FIRST: Final = 0
_LAST: Final = 1
_SNR: Final = 2
_RSSI: Final = 3
_COUNT: Final = 4
NEIGHBOR, DIRECT, TRACEROUTE, RADIO = (
    LinkSource.NEIGHBOR.value,
    LinkSource.DIRECT.value,
    LinkSource.TRACEROUTE.value,
    LinkSource.RADIO.value,
)


@dataclass(slots=True)
class Node:
    """One node and the latest of everything it told us."""

    num: int
    first_seen: float
    last_seen: float
    last_heard: float | None = None
    long_name: str | None = None
    short_name: str | None = None
    hw_model: str | None = None
    role: str | None = None
    firmware_version: str | None = None
    region: str | None = None
    modem_preset: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    altitude: int | None = None
    precision_bits: int | None = None
    position_at: float | None = None
    telemetry: dict[str, float] = field(default_factory=dict)
    telemetry_at: float | None = None
    hops_away: int | None = None
    snr: float | None = None
    rssi: int | None = None
    gateways: dict[int, float] = field(default_factory=dict)
    last_packet_id: int | None = None

    @property
    def id(self) -> str:
        """Return the `!xxxxxxxx` id."""
        return node_id(self.num)

    @property
    def name(self) -> str:
        """Return the best display name; until the node tells its own, the firmware's default."""
        return self.long_name or self.short_name or default_node_name(self.num)


class Link(NamedTuple):
    """A directed radio link, `source_node` heard by `target_node`: a read-only view of a row."""

    source_node: int
    target_node: int
    source: str
    first_seen: float
    last_seen: float
    snr: float | None
    rssi: int | None
    times_heard: int

    @classmethod
    def of(cls, key: LinkKey, row: LinkRow) -> Link:
        """Return the view of a table entry."""
        source_node, target_node, source = key
        first_seen, last_seen, snr, rssi, times_heard = row
        return cls(source_node, target_node, source, first_seen, last_seen, snr, rssi, times_heard)


def iso(timestamp: float | None) -> str | None:
    """Format an epoch timestamp as ISO 8601 in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp is not None else None


class MeshState:
    """Nodes and links, updated from decoded packets; reports what changed."""

    def __init__(
        self, max_nodes: int = DEFAULT_MAX_NODES, max_links: int = DEFAULT_MAX_LINKS
    ) -> None:
        """Start empty with the given caps."""
        self.max_nodes = max_nodes
        self.max_links = max_links
        self.nodes: OrderedDict[int, Node] = OrderedDict()
        self.links: OrderedDict[LinkKey, LinkRow] = OrderedDict()
        # Kept as links come and go, so sensors never walk the whole table.
        self.links_by_source: dict[str, int] = {}
        # Each node's link keys; dicts (not sets) so that, holding only untracked tuples, the
        # garbage collector can untrack them too.
        self._adjacency: dict[int, dict[LinkKey, None]] = {}
        self.changed: set[int] = set()
        self.discovered: list[int] = []
        self.links_changed = False
        self.evicted_nodes = 0
        self.evicted_links = 0

    # Updates

    def _node(self, num: int, now: float) -> Node:
        node = self.nodes.get(num)
        if node is None:
            node = Node(num=num, first_seen=now, last_seen=now)
            self.nodes[num] = node
            self.discovered.append(num)
            if len(self.nodes) > self.max_nodes:
                self._evict_node()
        else:
            node.last_seen = now
            self.nodes.move_to_end(num)
        self.changed.add(num)
        return node

    def _evict_node(self) -> None:
        num, _ = self.nodes.popitem(last=False)
        self.evicted_nodes += 1
        self.changed.discard(num)
        for key in list(self._adjacency.get(num, ())):
            self._drop_link(key)
        self._adjacency.pop(num, None)

    def _drop_link(self, key: LinkKey) -> None:
        if self.links.pop(key, None) is None:
            return
        self.links_by_source[key[2]] -= 1
        self.links_changed = True
        for end in (key[0], key[1]):
            keys = self._adjacency.get(end)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del self._adjacency[end]

    def add_link(
        self,
        source_node: int,
        target_node: int,
        source: str,
        now: float,
        snr: float | None = None,
        rssi: int | None = None,
        touch_ends: bool = True,
    ) -> None:
        """Record that `target_node` heard `source_node`, according to `source`.

        Hearing a link is news of both its ends; `touch_ends=False` is for callers that have
        just touched them. `source` is one of the plain-str constants (NEIGHBOR, DIRECT, ...):
        an enum member in the key would keep the key tracked by the garbage collector.
        """
        if source_node == target_node:
            return
        key = (source_node, target_node, source)
        links = self.links
        row = links.get(key)
        if row is None:
            self._node(source_node, now)
            self._node(target_node, now)
            links[key] = (now, now, snr, rssi, 1)
            self.links_by_source[source] = self.links_by_source.get(source, 0) + 1
            self._adjacency.setdefault(source_node, {})[key] = None
            self._adjacency.setdefault(target_node, {})[key] = None
            if len(links) > self.max_links:
                self.evicted_links += 1
                self._drop_link(next(iter(links)))
        else:
            links[key] = _heard_again(row, now, snr, rssi)
            links.move_to_end(key)
            if touch_ends:
                self._node(source_node, now)
                self._node(target_node, now)
        self.links_changed = True

    def apply(self, packet: DecodedPacket, now: float) -> None:
        """Fold one decoded packet into the state (the hot path: keep it lean)."""
        nodes, changed = self.nodes, self.changed
        sender = packet.sender
        node = nodes.get(sender)
        if node is None:
            node = self._node(sender, now)
        else:
            node.last_seen = now
            nodes.move_to_end(sender)
            changed.add(sender)
        node.last_heard = now
        reception = packet.reception
        if reception is not None:
            heard_by = reception.gateway
            gateway = nodes.get(heard_by)
            if gateway is None:
                gateway = self._node(heard_by, now)
            else:
                gateway.last_seen = now
                nodes.move_to_end(heard_by)
                changed.add(heard_by)
            gateway.last_heard = now
            # Insertion order is recency order: the first gateway is the stalest.
            gateways = node.gateways
            gateways.pop(heard_by, None)
            gateways[heard_by] = now
            if len(gateways) > MAX_GATEWAYS_PER_NODE:
                del gateways[next(iter(gateways))]
            hops = reception.hops
            if hops is not None:
                if packet.duplicate and node.last_packet_id == packet.packet_id:
                    node.hops_away = hops if node.hops_away is None else min(node.hops_away, hops)
                else:
                    node.hops_away = hops
            if packet.direct:
                snr = reception.snr
                # Of the copies of one packet, the best reception says most about the node.
                if snr is not None and (not packet.duplicate or node.snr is None or snr > node.snr):
                    node.snr, node.rssi = snr, reception.rssi
                source = RADIO if packet.via_radio else DIRECT
                key = (sender, heard_by, source)
                links = self.links
                row = links.get(key)
                if row is None:
                    self.add_link(sender, heard_by, source, now, snr, reception.rssi, False)
                else:
                    # The common case, inlined: a gateway hearing a node it heard before.
                    links[key] = _heard_again(row, now, snr, reception.rssi)
                    links.move_to_end(key)
                    self.links_changed = True
        if not packet.duplicate:
            node.last_packet_id = packet.packet_id
        observation = packet.observation
        if observation is not None:
            _APPLY[type(observation)](self, node, observation, now)

    def merge_record(self, record: NodeRecord, now: float) -> None:
        """Fold in what another node database (the radio's) knows of a node."""
        node = self._node(record.num, now)
        last_heard = record.last_heard
        if last_heard is not None and (node.last_heard is None or last_heard > node.last_heard):
            node.last_heard = last_heard
        if record.snr is not None and node.snr is None:
            node.snr = record.snr
        if record.hops_away is not None and node.hops_away is None:
            node.hops_away = record.hops_away
        for observation in record.observations:
            _APPLY[type(observation)](self, node, observation, now)

    @staticmethod
    def _position(node: Node, position: PositionObs, now: float) -> None:
        node.latitude, node.longitude = position.latitude, position.longitude
        node.altitude = position.altitude
        node.precision_bits = position.precision_bits
        node.position_at = now

    def prune(self, now: float, node_max_age: float, link_max_age: float) -> int:
        """Forget links and nodes not seen within their windows; return how many went."""
        removed = 0
        for key, row in list(self.links.items()):
            if now - row[_LAST] <= link_max_age:
                break
            self._drop_link(key)
            removed += 1
        for num, node in list(self.nodes.items()):
            if now - node.last_seen <= node_max_age:
                break
            del self.nodes[num]
            for key in list(self._adjacency.get(num, ())):
                self._drop_link(key)
            self._adjacency.pop(num, None)
            self.changed.discard(num)
            removed += 1
        return removed

    def forget(self, num: int) -> None:
        """Remove a node and its links (the user deleted its device)."""
        if self.nodes.pop(num, None) is None:
            return
        for key in list(self._adjacency.get(num, ())):
            self._drop_link(key)
        self._adjacency.pop(num, None)

    def drain(self) -> tuple[set[int], list[int], bool]:
        """Return and reset what changed since the last call."""
        changed, discovered, links_changed = self.changed, self.discovered, self.links_changed
        self.changed, self.discovered, self.links_changed = set(), [], False
        return changed, discovered, links_changed

    # Queries

    def link(self, source_node: int, target_node: int, source: str) -> Link | None:
        """Return one link, or None if the table does not have it."""
        key = (source_node, target_node, source)
        row = self.links.get(key)
        return None if row is None else Link.of(key, row)

    def iter_links(self) -> Iterator[Link]:
        """Yield every link, least recently heard first."""
        for key, row in self.links.items():
            yield Link.of(key, row)

    def links_of(self, num: int) -> Iterator[Link]:
        """Yield every link that starts or ends at a node."""
        links = self.links
        for key in self._adjacency.get(num, ()):
            yield Link.of(key, links[key])

    def neighbor_summary(self, num: int) -> tuple[int, float | None]:
        """Return how many distinct nodes a node has links with, and the best link SNR."""
        peers: set[int] = set()
        best: float | None = None
        links = self.links
        for key in self._adjacency.get(num, ()):
            peers.add(key[1] if key[0] == num else key[0])
            snr = links[key][_SNR]
            if snr is not None and (best is None or snr > best):
                best = snr
        return len(peers), best

    def count_links_by_source(self) -> dict[str, int]:
        """Return how many links each source contributed."""
        return {str(source): self.links_by_source.get(source, 0) for source in LinkSource}

    def topology(
        self,
        now: float,
        sources: Iterable[str] | None = None,
        max_age: float | None = None,
        around: int | None = None,
        within: tuple[float, float, float] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Return nodes and links as plain JSON, filtered by source, age, node and radius."""
        wanted = set(sources) if sources else None
        if around is not None:
            candidate_links = list(self.links_of(around))
        else:
            candidate_links = list(self.iter_links())
        links = [
            link
            for link in candidate_links
            if (wanted is None or link.source in wanted)
            and (max_age is None or now - link.last_seen <= max_age)
        ]
        if within is not None:
            latitude, longitude, radius = within

            def inside(num: int) -> bool:
                node = self.nodes.get(num)
                return bool(
                    node is not None
                    and node.latitude is not None
                    and node.longitude is not None
                    and haversine_km(latitude, longitude, node.latitude, node.longitude) <= radius
                )

            links = [
                link for link in links if inside(link.source_node) and inside(link.target_node)
            ]
        if around is not None or within is not None or wanted is not None:
            nums = {end for link in links for end in (link.source_node, link.target_node)}
            if around is not None:
                nums.add(around)
            if within is not None:
                nums |= {num for num in self.nodes if inside(num)}
        else:
            nums = set(self.nodes)
        if max_age is not None:
            nums = {
                num
                for num in nums
                if num in self.nodes and now - self.nodes[num].last_seen <= max_age
            }
        return {
            "nodes": [self.node_json(self.nodes[num]) for num in sorted(nums) if num in self.nodes],
            "links": [link_json(link) for link in links],
        }

    @staticmethod
    def node_json(node: Node) -> dict[str, Any]:
        """Return a node as the action and diagnostics show it."""
        return {
            "id": node.id,
            "long_name": node.long_name,
            "short_name": node.short_name,
            "hw_model": node.hw_model,
            "role": node.role,
            "latitude": node.latitude,
            "longitude": node.longitude,
            "altitude": node.altitude,
            "precision_bits": node.precision_bits,
            "hops_away": node.hops_away,
            "last_heard": iso(node.last_heard),
            "last_seen": iso(node.last_seen),
        }

    # Persistence

    def to_storage(self) -> dict[str, Any]:
        """Return a JSON-safe snapshot, oldest first so a reload keeps the eviction order.

        Safe to call from another thread while the event loop changes the state: each table is
        copied in one step (a single call that holds the interpreter lock) before it is walked.
        """
        nodes = list(self.nodes.values())
        links = list(self.links.items())
        return {
            "format": STORAGE_FORMAT,
            "nodes": [_node_storage(node) for node in nodes],
            "links": [[*key, *row] for key, row in links],
        }

    @classmethod
    def from_storage(
        cls, data: Any, max_nodes: int = DEFAULT_MAX_NODES, max_links: int = DEFAULT_MAX_LINKS
    ) -> MeshState:
        """Rebuild state from a snapshot; skip any entry that does not parse."""
        state = cls(max_nodes, max_links)
        if not isinstance(data, dict) or data.get("format") != STORAGE_FORMAT:
            return state
        nodes, links = data.get("nodes"), data.get("links")
        for raw in nodes[-max_nodes:] if isinstance(nodes, list) else ():
            node = _node_from_storage(raw)
            if node is not None:
                state.nodes[node.num] = node
        for raw in links[-max_links:] if isinstance(links, list) else ():
            if not isinstance(raw, list) or len(raw) != 8:
                continue
            source_node, target_node, source, first, last, snr, rssi, count = raw
            first, last = _stored_time(first), _stored_time(last)
            if (
                not isinstance(source_node, int)
                or not isinstance(target_node, int)
                or source not in LinkSource.__members__.values()
                or first is None
                or last is None
                or not isinstance(count, int)
            ):
                continue
            source = LinkSource(source).value
            key = (source_node, target_node, source)
            if source_node in state.nodes and target_node in state.nodes:
                if key not in state.links:
                    state.links_by_source[source] = state.links_by_source.get(source, 0) + 1
                state.links[key] = (first, last, _stored_float(snr), _stored_int(rssi), count)
                state._adjacency.setdefault(source_node, {})[key] = None
                state._adjacency.setdefault(target_node, {})[key] = None
        state.drain()
        return state


def check_storage(data: Any) -> None:
    """Raise ValueError saying why `data` is not a snapshot `MeshState.from_storage` reads."""
    if not isinstance(data, dict):
        raise ValueError(f"the mesh is {type(data).__name__}, not an object")
    if data.get("format") != STORAGE_FORMAT:
        raise ValueError(
            f"the mesh has format {data.get('format')!r}; this meshbot reads {STORAGE_FORMAT}"
        )
    for key in ("nodes", "links"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"the mesh's {key!r} is {type(data.get(key)).__name__}, not a list")


def _apply_position(state: MeshState, node: Node, observation: PositionObs, now: float) -> None:
    MeshState._position(node, observation, now)


def _apply_telemetry(state: MeshState, node: Node, observation: TelemetryObs, now: float) -> None:
    node.telemetry.update(observation.values)
    node.telemetry_at = now


def _apply_node_info(
    state: MeshState, node: Node, observation: NodeInfoObs | MapReportObs, now: float
) -> None:
    node.long_name = observation.long_name or node.long_name
    node.short_name = observation.short_name or node.short_name
    node.hw_model = observation.hw_model or node.hw_model
    node.role = observation.role or node.role


def _apply_neighbors(state: MeshState, node: Node, observation: NeighborsObs, now: float) -> None:
    for neighbor, snr in observation.neighbors:
        state.add_link(neighbor, observation.reporter, NEIGHBOR, now, snr)


def _apply_traceroute(state: MeshState, node: Node, observation: TracerouteObs, now: float) -> None:
    for hop_from, hop_to, snr in observation.hops:
        state.add_link(hop_from, hop_to, TRACEROUTE, now, snr)


def _apply_map_report(state: MeshState, node: Node, observation: MapReportObs, now: float) -> None:
    _apply_node_info(state, node, observation, now)
    node.firmware_version = observation.firmware_version or node.firmware_version
    node.region = observation.region or node.region
    node.modem_preset = observation.modem_preset or node.modem_preset
    if observation.position is not None:
        MeshState._position(node, observation.position, now)


def _apply_nothing(state: MeshState, node: Node, observation: object, now: float) -> None:
    """Text messages change nothing in the node database."""


# Dispatch on the observation's type: cheaper than a chain of isinstance checks per packet.
_APPLY: dict[type, Any] = {
    PositionObs: _apply_position,
    TelemetryObs: _apply_telemetry,
    NodeInfoObs: _apply_node_info,
    NeighborsObs: _apply_neighbors,
    TracerouteObs: _apply_traceroute,
    MapReportObs: _apply_map_report,
    TextObs: _apply_nothing,
}


def _heard_again(row: LinkRow, now: float, snr: float | None, rssi: int | None) -> LinkRow:
    """Return a link's row after one more hearing; an unknown SNR or RSSI keeps the last one."""
    return (
        row[_FIRST],
        now,
        row[_SNR] if snr is None else snr,
        row[_RSSI] if rssi is None else rssi,
        row[_COUNT] + 1,
    )


def link_json(link: Link) -> dict[str, Any]:
    """Return a link as the action and diagnostics show it."""
    return {
        "from": node_id(link.source_node),
        "to": node_id(link.target_node),
        "source": link.source,
        "snr": link.snr,
        "rssi": link.rssi,
        "first_seen": iso(link.first_seen),
        "last_seen": iso(link.last_seen),
        "count": link.times_heard,
    }


_STORED_FIELDS = (
    "first_seen",
    "last_seen",
    "last_heard",
    "long_name",
    "short_name",
    "hw_model",
    "role",
    "firmware_version",
    "region",
    "modem_preset",
    "latitude",
    "longitude",
    "altitude",
    "precision_bits",
    "position_at",
    "telemetry",
    "telemetry_at",
    "hops_away",
    "snr",
    "rssi",
)


def _node_storage(node: Node) -> dict[str, Any]:
    stored: dict[str, Any] = {"id": node.id}
    for name in _STORED_FIELDS:
        value = getattr(node, name)
        if value is not None and value != {}:
            # A copy: the snapshot is encoded off the event loop while the node keeps changing.
            stored[name] = dict(value) if isinstance(value, dict) else value
    return stored


# The range `iso()` can format (years 1970 to 9999).
_MAX_TIMESTAMP = 253_402_300_799


def _stored_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _stored_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _stored_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _stored_time(value: Any) -> float | None:
    number = _stored_float(value)
    return number if number is not None and 0 <= number <= _MAX_TIMESTAMP else None


def _stored_latitude(value: Any) -> float | None:
    number = _stored_float(value)
    return number if number is not None and -90 <= number <= 90 else None


def _stored_longitude(value: Any) -> float | None:
    number = _stored_float(value)
    return number if number is not None and -180 <= number <= 180 else None


def _stored_telemetry(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {
        name: number
        for name, raw in value.items()
        if isinstance(name, str) and (number := _stored_float(raw)) is not None
    }


# How each stored field is checked: a hand-edited or damaged file must not plant a value of the
# wrong type that breaks the entities, the topology action or the next update.
_STORED_CHECKS = {
    "last_heard": _stored_time,
    "long_name": _stored_str,
    "short_name": _stored_str,
    "hw_model": _stored_str,
    "role": _stored_str,
    "firmware_version": _stored_str,
    "region": _stored_str,
    "modem_preset": _stored_str,
    "latitude": _stored_latitude,
    "longitude": _stored_longitude,
    "altitude": _stored_int,
    "precision_bits": _stored_int,
    "position_at": _stored_time,
    "telemetry": _stored_telemetry,
    "telemetry_at": _stored_time,
    "hops_away": _stored_int,
    "snr": _stored_float,
    "rssi": _stored_int,
}


def _node_from_storage(raw: Any) -> Node | None:
    if not isinstance(raw, dict):
        return None
    num = parse_node_id(str(raw.get("id", "")))
    if num is None or not valid_node(num):
        return None
    first_seen, last_seen = _stored_time(raw.get("first_seen")), _stored_time(raw.get("last_seen"))
    if first_seen is None or last_seen is None:
        return None
    node = Node(num=num, first_seen=first_seen, last_seen=last_seen)
    for name, check in _STORED_CHECKS.items():
        if name in raw:
            setattr(node, name, check(raw[name]))
    if node.latitude is None or node.longitude is None:
        node.latitude = node.longitude = None
    return node
