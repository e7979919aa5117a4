"""The mesh coordinator: the mesh's state, persistence, coalesced updates and events.

The radio's frames and the broker's envelopes are decoded and folded into the state as they
arrive (cheap, no entity work). Once a second the changes are drained: the mesh-wide figures are
published as one snapshot through the coordinator, only the entities of nodes that changed are
told (a keyed subscription per node), newly discovered nodes fire one event each, and a save is
scheduled. A message storm therefore costs at most one state write per entity per second. The
entity work of a flush is spread over loop iterations, a few nodes or new entities at a time, so
that no iteration holds the event loop for more than a few milliseconds.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
import itertools
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import (
    CONF_ACTIVE_MINUTES,
    CONF_CHANNEL_KEYS,
    CONF_LINK_MAX_AGE_HOURS,
    CONF_MAX_TRACKED_NODES,
    CONF_NODE_MAX_AGE_HOURS,
    CONF_NODE_POLICY,
    CONF_NODE_RADIUS_KM,
    CONF_TRACKED_NODES,
    DEFAULT_ACTIVE_MINUTES,
    DEFAULT_CHANNEL_KEYS,
    DEFAULT_LINK_MAX_AGE_HOURS,
    DEFAULT_MAX_TRACKED_NODES,
    DEFAULT_NODE_MAX_AGE_HOURS,
    DEFAULT_NODE_POLICY,
    DEFAULT_NODE_RADIUS_KM,
    EVENT_MESSAGE,
    EVENT_NODE_DISCOVERED,
    FLUSH_SECONDS,
    LOGGER,
    POLICY_ALL,
    POLICY_CHOSEN,
    POLICY_DIRECT,
    POLICY_NEARBY,
    PRUNE_SECONDS,
    SAVE_DELAY_SECONDS,
)
from .flush_timer import async_track_spaced_interval
from .geo.sphere import haversine_km
from .lazy import LazyModule
from .mesh.models import (
    BROADCAST,
    DecodedPacket,
    LinkSource,
    NodeRecord,
    TextObs,
    node_id,
    parse_node_id,
)
from .mesh.state import MeshState, Node, check_storage, iso
from .persistence import SnapshotStore, snapshot_key

if TYPE_CHECKING:
    from meshtastic.protobuf import mesh_pb2

    from .mesh import decode
    from .mesh.decode import MeshDecoder
else:
    # Imported by the links in the executor before their first message (lazy.MESH_PROTOCOL).
    decode = LazyModule(f"{__package__}.mesh.decode")

_LOGGER = logging.getLogger(__name__)

MESSAGE_RATE_WINDOW = 60
RECENT_MESSAGES = 256
DISCOVERIES_PER_FLUSH = 20
# A node device brings about 13 entities (and one per metric it reports): a flush adds a few
# devices, the following ones the rest.
NEW_DEVICES_PER_FLUSH = 4
# What one loop iteration of a flush does: tell the entities of this many changed nodes (about
# 0.3 ms a node), or add this many entities of new devices (about 1 ms an entity, with its
# registry entries). Done in one go, a flush of 50 tracked nodes and 4 new devices held the loop
# for 20-45 ms in the end-to-end bench; in steps, no step takes more than a few ms.
NODES_PER_STEP = 5
ENTITIES_PER_STEP = 2
# Counting active nodes walks the whole database: once per this many seconds is plenty.
ACTIVE_RECOUNT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class NodePlatform:
    """How a platform makes the entities of node devices."""

    build: Callable[[int], Iterable[Entity]]
    add: Callable[[list[Entity]], None]
    # A growing platform's `build` returns only the entities it has not made yet (one per metric
    # the node reported), and is called again when the node reports a new metric.
    grows: bool = False


@dataclass(frozen=True, slots=True)
class MeshSnapshot:
    """The mesh as a whole, as its entities show it after a flush."""

    nodes_known: int
    nodes_active: int
    links_by_source: Mapping[str, int]
    messages_per_minute: int
    undecodable: int
    last_message_at: float | None
    # The local radio's own telemetry, for the radio device's sensors.
    radio_telemetry: Mapping[str, float]


class MeshCoordinator(DataUpdateCoordinator[MeshSnapshot]):
    """Own the mesh state of one entry; push mesh-wide snapshots and per-node updates."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Prepare an empty state; `async_load` restores the saved one."""
        super().__init__(hass, LOGGER, config_entry=entry, name="meshbot mesh")
        entry_id = entry.entry_id
        # The base class types its entry as optional; this one always has it.
        self.entry = entry
        self.entry_id = entry_id
        self.options = dict(entry.options)
        self._decoder: MeshDecoder | None = None
        self.state = MeshState()
        self.tracked: set[int] = set()
        self.local_node: int | None = None
        self.last_message_at: float | None = None
        self._store = SnapshotStore(
            hass,
            snapshot_key(entry_id, "mesh"),
            self._data_to_save,
            SAVE_DELAY_SECONDS,
            _check_saved_mesh,
            # Encoding a big mesh to JSON takes tens of milliseconds: not on the event loop.
            serialize_in_event_loop=False,
        )
        self._node_listeners: dict[int, list[CALLBACK_TYPE]] = {}
        # Per platform with node entities: what builds a node's entities, what adds them, and
        # whether it grows: builds again, when the node reports a new metric, what it lacks.
        self._node_platforms: list[NodePlatform] = []
        # How many metrics each tracked node had when its growing platforms last built for it.
        self._metrics_built: dict[int, int] = {}
        self._recent_messages: OrderedDict[tuple[int, int], None] = OrderedDict()
        # (monotonic time of a flush, messages since the flush before) over the last minute, for
        # the rate sensor: flushes are a second apart plus their own run time, so the minute is
        # counted in seconds, not in flushes.
        self._rate: deque[tuple[float, int]] = deque()
        self._this_second = 0
        self._pending_discoveries: deque[int] = deque()
        # Wanted nodes that did not fit in a flush's share of new devices: the next flushes add
        # them, without waiting for the node to be heard again.
        self._waiting_devices: list[int] = []
        self._active_count = 0
        self._active_counted_at = -math.inf
        # Tracked nodes heard within the active window at the last check, for their online
        # sensors: a node falling silent changes nothing else a flush would notice.
        self._online: set[int] = set()
        self._online_checked_at = -math.inf
        self.data = self._snapshot()

    # Lifecycle

    async def async_load(self) -> None:
        """Restore the saved mesh; a file it cannot read means starting empty, never failing."""
        data = await self._store.async_load(
            "Starting with an empty mesh: the saved mesh is unreadable"
        )
        if data is not None:
            self.state = MeshState.from_storage(data.get("state"))
            for raw in data.get("recent_messages") or []:
                if isinstance(raw, list) and len(raw) == 2 and all(isinstance(v, int) for v in raw):
                    self._recent_messages[(raw[0], raw[1])] = None
            self.tracked = {
                num for raw in data.get("tracked", []) if (num := parse_node_id(str(raw)))
            } & set(self.state.nodes)
            # Discovery events the last run had no time to fire: each fires once, here.
            pending = (parse_node_id(str(raw)) for raw in data.get("pending_discoveries", []))
            self._pending_discoveries.extend(
                num for num in pending if num is not None and num in self.state.nodes
            )
        self._update_tracked(self.state.nodes)
        # What the entities show first, before any flush.
        self.data = self._snapshot()

    @callback
    def async_start(self) -> None:
        """Start the flush and prune timers; the entry cancels them when it unloads."""
        register = self.entry.async_on_unload
        register(
            async_track_spaced_interval(
                self.hass, self._async_flush, FLUSH_SECONDS, "meshbot mesh flush"
            )
        )
        register(
            async_track_time_interval(
                self.hass,
                self._async_prune,
                timedelta(seconds=PRUNE_SECONDS),
                name="meshbot mesh prune",
                cancel_on_shutdown=True,
            )
        )

    async def async_save(self) -> None:
        """Write the mesh now (unload)."""
        await self._store.async_save()

    def _data_to_save(self) -> dict[str, Any]:
        # Called in the executor (serialize_in_event_loop=False) while the loop keeps changing
        # the mesh: every collection is copied in one step before it is walked.
        tracked = list(self.tracked)
        recent = list(self._recent_messages)
        # Nodes discovered since the last flush have no event yet either.
        pending = [*self._pending_discoveries, *self.state.discovered]
        return {
            "state": self.state.to_storage(),
            "tracked": sorted(node_id(num) for num in tracked),
            "recent_messages": [list(key) for key in recent],
            "pending_discoveries": [node_id(num) for num in dict.fromkeys(pending)],
        }

    @property
    def decoder(self) -> MeshDecoder:
        """Return the decoder, made on first use: only a running link needs it."""
        if (decoder := self._decoder) is None:
            keys = self.options.get(CONF_CHANNEL_KEYS, DEFAULT_CHANNEL_KEYS)
            decoder = self._decoder = decode.MeshDecoder(keys)
        return decoder

    # Ingest (called per message: keep it lean)

    def on_envelope(self, topic: str, payload: bytes) -> None:
        """Decode one MQTT envelope into the state."""
        now = time.time()
        self.last_message_at = now
        self._this_second += 1
        packet = self.decoder.decode(topic, payload, now)
        if packet is not None:
            self.state.apply(packet, now)

    def on_radio_frame(self, frame: mesh_pb2.FromRadio, local_node: int | None) -> None:
        """Fold what the local radio sends (a packet it heard, a node record) into the state."""
        now = time.time()
        self.local_node = local_node
        self.last_message_at = now
        self._this_second += 1
        decoded = self.decoder.radio_frame(frame, local_node, now)
        if isinstance(decoded, NodeRecord):
            self.state.merge_record(decoded, now)
        elif decoded is not None:
            self.state.apply(decoded, now)
            if isinstance(decoded.observation, TextObs) and decoded.sender != local_node:
                self._on_text(decoded, decoded.observation, now)

    def _on_text(self, packet: DecodedPacket, text: TextObs, now: float) -> None:
        # A node replays its queue when a client reconnects: a message is news only once.
        key = (packet.sender, packet.packet_id)
        if key in self._recent_messages:
            return
        self._recent_messages[key] = None
        if len(self._recent_messages) > RECENT_MESSAGES:
            self._recent_messages.popitem(last=False)
        self._store.schedule()
        sender = self.state.nodes.get(packet.sender)
        reception = packet.reception
        direct = text.destination != BROADCAST
        message = {
            "config_entry_id": self.entry_id,
            "type": "direct_message" if direct else "channel_message",
            "sender": node_id(packet.sender),
            "sender_name": sender.name if sender else node_id(packet.sender),
            "destination": node_id(text.destination) if direct else "broadcast",
            "channel": int(text.channel) if text.channel.isdigit() else 0,
            "text": text.text,
            "snr": reception.snr if reception else None,
            "rssi": reception.rssi if reception else None,
            "hops": reception.hops if reception else None,
            "time": iso(now),
        }
        self.hass.bus.async_fire(EVENT_MESSAGE, message)

    # Coalesced updates

    @property
    def messages_per_minute(self) -> int:
        """Return the messages received during the last minute."""
        return sum(count for _, count in self._rate)

    @callback
    def _async_flush(self, _now: Any = None) -> asyncio.Task[None] | None:
        """Drain the changes; return the task updating the entities, which the next flush awaits."""
        # Read at each flush, not bound once, so that time moved in tests reaches the rate.
        now, rate = time.monotonic(), self._rate
        rate.append((now, self._this_second))
        rate_changed = self._this_second != 0
        while now - rate[0][0] >= MESSAGE_RATE_WINDOW:
            if rate.popleft()[1]:
                rate_changed = True
        self._this_second = 0
        changed, discovered, links_changed = self.state.drain()
        if changed or discovered or links_changed:
            self._store.schedule()
        self._pending_discoveries.extend(discovered)
        self._fire_discoveries()
        # Entities added below write their first state themselves: only the others.
        to_refresh = (changed | self._online_changes()) & self.tracked
        nodes, built = self.state.nodes, self._metrics_built
        # Telemetry only ever adds metrics to a node: a new count is a new metric.
        grown = [
            num
            for num in to_refresh
            if (node := nodes.get(num)) is not None and len(node.telemetry) != built.get(num)
        ]
        new_devices: list[int] = []
        if changed or self._waiting_devices:
            # Creating a device and its entities is costly: a few per flush, the rest of the
            # wanted nodes in the following flushes.
            new_devices = self._update_tracked(changed, NEW_DEVICES_PER_FLUSH)
        publish = bool(changed or links_changed or rate_changed or new_devices)
        if not to_refresh and not new_devices:
            if publish:
                self.async_set_updated_data(self._snapshot())
            return None
        return self.entry.async_create_task(
            self.hass,
            self._async_update_entities(list(to_refresh), new_devices, grown, publish),
            "meshbot mesh flush",
            eager_start=False,
        )

    async def _async_update_entities(
        self, to_refresh: list[int], new_devices: list[int], grown: list[int], publish: bool
    ) -> None:
        """Update the changed nodes, the snapshot, the new devices and metrics, a few at a time."""
        for start in range(0, len(to_refresh), NODES_PER_STEP):
            if start and not await self._async_next_step():
                return
            for num in to_refresh[start : start + NODES_PER_STEP]:
                for listener in self._node_listeners.get(num, ()):
                    listener()
        if publish:
            self.async_set_updated_data(self._snapshot())
        platforms = list(self._node_platforms)
        growing = [platform for platform in platforms if platform.grows]
        for num, platforms_of_node in itertools.chain(
            ((num, platforms) for num in new_devices), ((num, growing) for num in grown)
        ):
            if (node := self.state.nodes.get(num)) is not None:
                self._metrics_built[num] = len(node.telemetry)
            for platform in platforms_of_node:
                entities = list(platform.build(num))
                for start in range(0, len(entities), ENTITIES_PER_STEP):
                    if not await self._async_next_step():
                        return
                    platform.add(entities[start : start + ENTITIES_PER_STEP])

    async def _async_next_step(self) -> bool:
        """Let the loop run other work; return whether the entry is still there to update."""
        await asyncio.sleep(0)
        # An unload began meanwhile: its platforms may already be gone.
        return self.entry.state is ConfigEntryState.LOADED

    def _snapshot(self) -> MeshSnapshot:
        local = self.state.nodes.get(self.local_node) if self.local_node is not None else None
        return MeshSnapshot(
            nodes_known=len(self.state.nodes),
            nodes_active=self.nodes_active(),
            links_by_source=dict(self.state.links_by_source),
            messages_per_minute=self.messages_per_minute,
            undecodable=decoder.counters.rejected_total if (decoder := self._decoder) else 0,
            last_message_at=self.last_message_at,
            radio_telemetry=dict(local.telemetry) if local is not None else {},
        )

    def _fire_discoveries(self) -> None:
        # A first connection to a busy feed discovers thousands of nodes at once: spread their
        # events over the following seconds instead of flooding the bus and the recorder.
        pending = self._pending_discoveries
        if pending:
            # The events fired are no longer pending in the saved mesh.
            self._store.schedule()
        for _ in range(min(len(pending), DISCOVERIES_PER_FLUSH)):
            node = self.state.nodes.get(pending.popleft())
            if node is None:
                continue
            self.hass.bus.async_fire(
                EVENT_NODE_DISCOVERED,
                {
                    "config_entry_id": self.entry_id,
                    "node_id": node.id,
                    "long_name": node.long_name,
                    "short_name": node.short_name,
                },
            )

    @callback
    def _async_prune(self, _now: Any = None) -> None:
        options = self.options
        removed = self.state.prune(
            time.time(),
            options.get(CONF_NODE_MAX_AGE_HOURS, DEFAULT_NODE_MAX_AGE_HOURS) * 3600,
            options.get(CONF_LINK_MAX_AGE_HOURS, DEFAULT_LINK_MAX_AGE_HOURS) * 3600,
        )
        if removed:
            _LOGGER.debug("Pruned %d stale nodes and links", removed)
            self._store.schedule()
            for num in list(self.tracked):
                if num not in self.state.nodes:
                    for listener in self._node_listeners.get(num, ()):
                        listener()
            self.async_set_updated_data(self._snapshot())

    # Which nodes become devices

    def wanted(self, node: Node) -> bool:
        """Return whether the node policy makes this node a Home Assistant device."""
        options = self.options
        policy = options.get(CONF_NODE_POLICY, DEFAULT_NODE_POLICY)
        if policy == POLICY_ALL:
            return True
        if policy == POLICY_CHOSEN:
            return bool(node.id in options.get(CONF_TRACKED_NODES, []))
        if policy == POLICY_NEARBY:
            if node.latitude is None or node.longitude is None:
                return False
            radius = float(options.get(CONF_NODE_RADIUS_KM, DEFAULT_NODE_RADIUS_KM))
            home = self.hass.config
            return (
                haversine_km(home.latitude, home.longitude, node.latitude, node.longitude) <= radius
            )
        if policy == POLICY_DIRECT:
            local = self.local_node
            return local is not None and any(
                link.source == LinkSource.RADIO
                and link.source_node == node.num
                and link.target_node == local
                for link in self.state.links_of(node.num)
            )
        return False

    def _update_tracked(self, candidates: Iterable[int], at_once: int | None = None) -> list[int]:
        """Make wanted nodes devices, up to the cap and `at_once`; return the new ones."""
        cap = int(self.options.get(CONF_MAX_TRACKED_NODES, DEFAULT_MAX_TRACKED_NODES))
        room = cap - len(self.tracked)
        waiting, self._waiting_devices = self._waiting_devices, []
        if room <= 0:
            return []
        nodes = self.state.nodes
        untracked = {
            num
            for num in itertools.chain(candidates, waiting)
            if num not in self.tracked
            and (node := nodes.get(num)) is not None
            and self.wanted(node)
        }
        if not untracked:
            return []
        # Most recently heard first, so the cap keeps the liveliest nodes.
        wanted = sorted(untracked, key=lambda num: nodes[num].last_seen, reverse=True)[:room]
        fresh = wanted if at_once is None else wanted[:at_once]
        self._waiting_devices = wanted[len(fresh) :]
        self.tracked.update(fresh)
        return fresh

    @callback
    def async_untrack(self, num: int) -> None:
        """Forget a node the user deleted; it returns only if heard again and wanted."""
        self.tracked.discard(num)
        self._metrics_built.pop(num, None)
        self.state.forget(num)
        self._store.schedule()

    # Listeners

    @callback
    def async_add_node_platform(
        self,
        build: Callable[[int], Iterable[Entity]],
        add: Callable[[list[Entity]], None],
        grows: bool = False,
    ) -> CALLBACK_TYPE:
        """Add what `build` makes for each new device (and new metric) through `add`.

        Return the remover.
        """
        platform = NodePlatform(build, add, grows)
        self._node_platforms.append(platform)
        return lambda: self._node_platforms.remove(platform)

    @callback
    def async_subscribe(self, num: int, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` (at most once a second) when node `num` changes; return the remover."""
        listeners = self._node_listeners.setdefault(num, [])
        listeners.append(listener)

        def remove() -> None:
            listeners.remove(listener)
            if not listeners:
                self._node_listeners.pop(num, None)

        return remove

    @property
    def active_window(self) -> float:
        """Return how long, in seconds, a node stays active (online) after it was last heard."""
        return float(self.options.get(CONF_ACTIVE_MINUTES, DEFAULT_ACTIVE_MINUTES)) * 60

    def is_online(self, node: Node, now: float) -> bool:
        """Return whether the node was heard within the active window."""
        return node.last_heard is not None and now - node.last_heard <= self.active_window

    def nodes_active(self) -> int:
        """Return how many nodes were heard within the active window (recounted every 10 s)."""
        now = time.time()
        if now - self._active_counted_at >= ACTIVE_RECOUNT_SECONDS:
            self._active_count = sum(
                1 for node in self.state.nodes.values() if self.is_online(node, now)
            )
            self._active_counted_at = now
        return self._active_count

    def _online_changes(self) -> set[int]:
        """Return the tracked nodes that came online or fell silent (checked every 10 s)."""
        now = time.time()
        if now - self._online_checked_at < ACTIVE_RECOUNT_SECONDS:
            return set()
        self._online_checked_at = now
        nodes = self.state.nodes
        online = {
            num
            for num in self.tracked
            if (node := nodes.get(num)) is not None and self.is_online(node, now)
        }
        changes = online ^ self._online
        self._online = online
        return changes


def _check_saved_mesh(data: dict[str, Any]) -> None:
    """Raise ValueError saying why a saved mesh cannot be read."""
    check_storage(data.get("state"))
    for key in ("tracked", "recent_messages", "pending_discoveries"):
        if not isinstance(data.get(key, []), list):
            raise ValueError(f"{key!r} is {type(data[key]).__name__}, not a list")
