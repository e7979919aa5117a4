"""The mesh collector end to end: real envelopes through a real Mosquitto into Home Assistant.

Everything is read where a user reads it: entities, devices, bus events, the get_topology
action, the diagnostics download; time moves with freezegun.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from datetime import timedelta
import inspect
from itertools import pairwise
import json
import math
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from meshtastic.protobuf import mesh_pb2, portnums_pb2
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.meshbot.compat import async_entry_device
from custom_components.meshbot.const import (
    CONF_CHANNEL_KEYS,
    CONF_MAX_TRACKED_NODES,
    CONF_NODE_POLICY,
    CONF_TRACK_POSITIONS,
    CONF_TRACKED_NODES,
    DOMAIN,
    EVENT_NODE_DISCOVERED,
    FLUSH_SECONDS,
    POLICY_ALL,
    POLICY_CHOSEN,
    POLICY_DIRECT,
    POLICY_NEARBY,
    POLICY_NONE,
    PRUNE_SECONDS,
)
from custom_components.meshbot.mesh_coordinator import NEW_DEVICES_PER_FLUSH
from custom_components.meshbot.sensor import NODE_SENSORS
from meshbot_dev.entries import broker_section, entry_for, radio_section
from meshbot_dev.fake_node import FakeNode
from meshbot_dev.mesh_traffic import MeshTraffic
from meshbot_dev.mosquitto import MosquittoBroker, publish_many

from .support.seen import (
    Diagnostics,
    connectivity,
    flush,
    is_on,
    later,
    topology,
    until_subscribed,
)
from .support.waiting import eventually, until

GATEWAY_A = 0x0A0A0A0A
GATEWAY_B = 0x0B0B0B0B
NEAR = 0x11111111  # about 1.5 km from the test home (32.87336, -117.22743)
FAR = 0x22222222  # Paris
QUIET = 0x33333333
PRIVATE_KEY = bytes(range(32))
# As long as the full collections the end-to-end bench sees in Home Assistant.
STALL_SECONDS = 0.3


def mesh_entry(broker: MosquittoBroker, **options: Any) -> MockConfigEntry:
    entry = entry_for(mesh=broker_section(broker.port))
    merged = {
        **entry.options,
        CONF_CHANNEL_KEYS: {"LongFast": "AQ==", "Secret": base64.b64encode(PRIVATE_KEY).decode()},
        **options,
    }
    return MockConfigEntry(domain=DOMAIN, title=entry.title, data=dict(entry.data), options=merged)


async def start(hass: HomeAssistant, diagnostics: Diagnostics, entry: MockConfigEntry) -> None:
    """Set the entry up and wait until the broker acknowledged every subscription."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until_subscribed(hass, diagnostics, entry, "mesh")


async def until_envelopes(diagnostics: Diagnostics, entry: MockConfigEntry, count: int) -> None:
    """Wait until the collector has decoded `count` envelopes (each is decoded as it arrives)."""

    async def decoded() -> bool:
        return bool((await diagnostics(entry))["mesh"]["decoder"]["envelopes"] == count)

    await eventually(decoded)


async def nodes_known(hass: HomeAssistant) -> dict[str, dict[str, Any]]:
    """Return the nodes the get_topology action knows, by id."""
    return {node["id"]: node for node in (await topology(hass))["nodes"]}


def link_keys(mesh: dict[str, Any]) -> set[tuple[str, str, str]]:
    """Return the (from, to, source) of every link of a get_topology answer."""
    return {(link["from"], link["to"], link["source"]) for link in mesh["links"]}


def node_id(num: int) -> str:
    return f"!{num:08x}"


def node_device(hass: HomeAssistant, entry: MockConfigEntry, num: int) -> dr.DeviceEntry | None:
    """Return the Home Assistant device of node `num`, if it has one."""
    return async_entry_device(hass, entry.entry_id, f"{entry.entry_id}_!{num:08x}")


async def remove_device_as_user(client: Any, device_id: str, entry_id: str) -> dict[str, Any]:
    """Delete a device as its page does: by device alone from 2026.10 on, by entry before."""
    if len(inspect.signature(client.remove_device).parameters) == 1:
        return await client.remove_device(device_id)
    return await client.remove_device(device_id, entry_id)


async def publish_scene(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics, entry: MockConfigEntry
) -> MeshTraffic:
    """Publish the scene below and wait until the collector has decoded all of it."""
    traffic = MeshTraffic()
    await hass.async_add_executor_job(publish_many, broker, scene(traffic))
    await until_envelopes(diagnostics, entry, SCENE_SIZE)
    return traffic


def scene(traffic: MeshTraffic) -> list[tuple[str, bytes]]:
    """A small mesh: two nodes near and far, heard via two gateways, with every packet kind."""
    envelopes = []
    for gateway, snr, hop_limit in ((GATEWAY_A, 6.5, 3), (GATEWAY_B, -3.0, 2)):
        # The same packet uploaded by two gateways: one direct reception, one relayed.
        envelopes.append(
            traffic.position(
                NEAR,
                32.88,
                -117.23,
                gateway=gateway,
                packet_id=501,
                hop_limit=hop_limit,
                snr=snr,
                rssi=-80,
            )
        )
    envelopes += [
        traffic.node_info(NEAR, "Near Node", "NEAR", gateway=GATEWAY_A),
        traffic.telemetry(NEAR, 87, 4.01, gateway=GATEWAY_A),
        traffic.position(FAR, 48.8566, 2.3522, precision=13, gateway=GATEWAY_B, hop_limit=1),
        traffic.node_info(FAR, "Far Node", "FAR", gateway=GATEWAY_B, hop_limit=1),
        traffic.neighbors(NEAR, [(FAR, 4.25), (GATEWAY_A, 9.5)], gateway=GATEWAY_A, hop_limit=2),
        traffic.traceroute_reply(
            FAR,
            NEAR,
            [GATEWAY_B],
            [2.0, 3.0],
            [GATEWAY_B],
            [1.5, 2.5],
            gateway=GATEWAY_A,
            hop_limit=2,
        ),
        traffic.text(
            QUIET, "on the secret channel", gateway=GATEWAY_A, channel="Secret", key=PRIVATE_KEY
        ),
        traffic.pki(NEAR, FAR, gateway=GATEWAY_A),
    ]
    out = [(e.topic, e.payload) for e in envelopes]
    out.append((f"{traffic.root}/2/e/LongFast/!0a0a0a0a", b"\xff\x00garbage"))
    return out


SCENE_SIZE = len(scene(MeshTraffic()))


async def test_envelopes_become_nodes_links_and_sensors(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics
) -> None:
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    await publish_scene(hass, broker, diagnostics, entry)
    await flush(hass)

    mesh = await topology(hass)
    nodes = {node["id"]: node for node in mesh["nodes"]}
    assert set(nodes) >= {node_id(n) for n in (NEAR, FAR, QUIET, GATEWAY_A, GATEWAY_B)}
    near = nodes[node_id(NEAR)]
    assert near["long_name"] == "Near Node"
    assert hass.states.get("sensor.near_node_battery").state == "87"
    assert near["hops_away"] == 0, "the best of the two receptions"
    assert hass.states.get("sensor.near_node_hops_away").state == "0"
    # The latest direct reception (the node info and telemetry, via gateway A).
    assert float(hass.states.get("sensor.near_node_snr").state) == 5.5
    assert hass.states.get("sensor.near_node_rssi").state == "-90"
    report = (await diagnostics(entry))["mesh"]
    heard_by = {node["id"]: node["heard_by"] for node in report["topology"]["nodes"]}
    assert set(heard_by[node_id(NEAR)]) == {node_id(GATEWAY_A), node_id(GATEWAY_B)}
    assert report["decoder"]["duplicates"] == 1
    links = {(link["from"], link["to"], link["source"]): link for link in mesh["links"]}
    assert (node_id(NEAR), node_id(GATEWAY_A), "direct") in links
    assert (node_id(NEAR), node_id(GATEWAY_B), "direct") not in links, (
        "a relayed copy is not a direct link"
    )
    assert links[(node_id(FAR), node_id(NEAR), "neighbor")]["snr"] == 4.25
    assert (node_id(NEAR), node_id(GATEWAY_B), "traceroute") in links
    assert (node_id(GATEWAY_B), node_id(FAR), "traceroute") in links
    assert links[(node_id(GATEWAY_B), node_id(FAR), "traceroute")]["snr"] == 3.0
    assert sum(report["decoder"]["rejected"].values()) == 1

    def value(name: str) -> str:
        state_obj = hass.states.get(f"sensor.meshbot_test_{name}")
        assert state_obj is not None, name
        return state_obj.state

    assert int(value("nodes_known")) == len(nodes)
    assert int(value("neighbor_links")) == 2
    assert int(value("traceroute_links")) == 4
    assert int(value("direct_links")) >= 1
    assert value("undecodable") == "1"
    assert int(value("message_rate")) == SCENE_SIZE
    assert value("last_message") not in ("unknown", None)
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("options", "devices"),
    [
        ({CONF_NODE_POLICY: POLICY_NONE}, set()),
        ({CONF_NODE_POLICY: POLICY_NEARBY}, {NEAR}),
        ({CONF_NODE_POLICY: POLICY_CHOSEN, CONF_TRACKED_NODES: [f"!{FAR:08x}"]}, {FAR}),
        ({CONF_NODE_POLICY: POLICY_ALL, CONF_MAX_TRACKED_NODES: 3}, "three"),
    ],
    ids=["none", "nearby", "chosen", "all-capped"],
)
async def test_node_policy_decides_which_nodes_become_devices(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    options: dict[str, Any],
    devices: Any,
) -> None:
    entry = mesh_entry(broker, **options)
    await start(hass, diagnostics, entry)
    await publish_scene(hass, broker, diagnostics, entry)
    await flush(hass)
    registry = dr.async_get(hass)
    node_devices = {
        device.serial_number
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if device.serial_number
    }
    if devices == "three":
        assert len(node_devices) == 3
    else:
        assert node_devices == {f"!{num:08x}" for num in devices}
    await hass.config_entries.async_unload(entry.entry_id)


async def test_node_sensors_and_new_nodes_without_reload(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics
) -> None:
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    traffic = await publish_scene(hass, broker, diagnostics, entry)
    await flush(hass)
    registry = er.async_get(hass)
    battery = registry.async_get_entity_id(
        "sensor", DOMAIN, f"{entry.entry_id}_!{NEAR:08x}_battery"
    )
    assert battery is not None
    assert hass.states.get(battery).state == "87"
    hops = registry.async_get_entity_id("sensor", DOMAIN, f"{entry.entry_id}_!{NEAR:08x}_hops_away")
    assert hass.states.get(hops).state == "0"
    neighbors = registry.async_get_entity_id(
        "sensor", DOMAIN, f"{entry.entry_id}_!{NEAR:08x}_neighbor_count"
    )
    assert int(hass.states.get(neighbors).state) >= 3

    # A node that walks into range later gets its device, without a reload.
    newcomer = 0x44444444
    assert (
        registry.async_get_entity_id("sensor", DOMAIN, f"{entry.entry_id}_!{newcomer:08x}_battery")
        is None
    )
    envelope = traffic.position(newcomer, 32.87, -117.22, gateway=GATEWAY_A)
    await hass.async_add_executor_job(publish_many, broker, [(envelope.topic, envelope.payload)])
    await until_envelopes(diagnostics, entry, SCENE_SIZE + 1)
    await flush(hass)
    assert registry.async_get_entity_id(
        "sensor", DOMAIN, f"{entry.entry_id}_!{newcomer:08x}_battery"
    )
    assert entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("track_positions", [True, False])
async def test_trackers_only_behind_the_privacy_switch(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics, track_positions: bool
) -> None:
    entry = mesh_entry(
        broker, **{CONF_TRACK_POSITIONS: track_positions, CONF_NODE_POLICY: POLICY_ALL}
    )
    await start(hass, diagnostics, entry)
    await publish_scene(hass, broker, diagnostics, entry)
    await flush(hass)
    trackers = hass.states.async_all("device_tracker")
    if not track_positions:
        assert trackers == []
    else:
        by_name = {state.attributes.get("friendly_name"): state for state in trackers}
        far = by_name["Far Node"]
        assert far.attributes["latitude"] == pytest.approx(48.8566, abs=1e-6)
        # 13 precision bits: a cell of 2^19 x 1e-7 degrees, about 5.8 km: radius 2.9 km.
        assert far.attributes["gps_accuracy"] == pytest.approx(2918, abs=2)
        assert by_name["Near Node"].attributes["gps_accuracy"] == 0
    await hass.config_entries.async_unload(entry.entry_id)


async def test_discovery_events_fire_once_per_node_even_across_restarts(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics
) -> None:
    events: list[Event] = []
    hass.bus.async_listen(EVENT_NODE_DISCOVERED, callback(lambda event: events.append(event)))
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    messages = scene(MeshTraffic())
    await hass.async_add_executor_job(publish_many, broker, messages)
    await until_envelopes(diagnostics, entry, SCENE_SIZE)
    await flush(hass)
    discovered = {event.data["node_id"] for event in events}
    assert f"!{NEAR:08x}" in discovered and f"!{FAR:08x}" in discovered
    assert len(events) == len(discovered)
    assert all(event.data["config_entry_id"] == entry.entry_id for event in events)

    before = await topology(hass)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    after = await topology(hass)
    assert {node["id"] for node in after["nodes"]} == {node["id"] for node in before["nodes"]}, (
        "the mesh survives a restart"
    )
    assert link_keys(after) == link_keys(before)
    await until_subscribed(hass, diagnostics, entry, "mesh")
    await hass.async_add_executor_job(publish_many, broker, messages[:3])
    await until_envelopes(diagnostics, entry, 3)
    await flush(hass)
    assert len(events) == len(discovered), "known nodes are not rediscovered"
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    "stored",
    [
        {"truncated": True},
        {"version": 1, "minor_version": 1, "key": "k", "data": ["not", "a", "mesh"]},
        {
            "version": 1,
            "minor_version": 1,
            "key": "k",
            "data": {
                "state": {
                    "format": 1,
                    "nodes": [{"id": "!zz"}, 7, {"id": "!11111111", "first_seen": "x"}],
                    "links": [[1], "x"],
                },
                "tracked": [None, "!11111111"],
            },
        },
    ],
    ids=["unreadable", "wrong-shape", "bad-records"],
)
async def test_corrupt_storage_starts_empty_never_fails_setup(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    diagnostics: Diagnostics,
    stored: dict[str, Any],
) -> None:
    entry = mesh_entry(broker)
    hass_storage[f"{DOMAIN}.{entry.entry_id}.mesh"] = stored
    await start(hass, diagnostics, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert (await topology(hass))["nodes"] == []
    assert hass.states.get("sensor.meshbot_test_nodes_known").state == "0"
    if "truncated" in stored:
        assert "saved mesh is unreadable" in caplog.text
    await hass.async_add_executor_job(publish_many, broker, scene(MeshTraffic()))

    async def near_known() -> bool:
        return node_id(NEAR) in await nodes_known(hass)

    await eventually(near_known)
    await hass.config_entries.async_unload(entry.entry_id)
    saved = hass_storage[f"{DOMAIN}.{entry.entry_id}.mesh"]["data"]
    assert f"!{NEAR:08x}" in {node["id"] for node in saved["state"]["nodes"]}, "saved on unload"


async def test_get_topology_action_with_filters(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics
) -> None:
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    await publish_scene(hass, broker, diagnostics, entry)

    async def call(**data: Any) -> dict[str, Any]:
        return await hass.services.async_call(
            DOMAIN, "get_topology", data, blocking=True, return_response=True
        )

    everything = await call()
    assert {link["source"] for link in everything["links"]} == {"direct", "neighbor", "traceroute"}
    link = next(
        link
        for link in everything["links"]
        if link["source"] == "neighbor" and link["from"] == f"!{FAR:08x}"
    )
    assert link == {**link, "to": f"!{NEAR:08x}", "snr": 4.25, "rssi": None}
    assert link["last_seen"].endswith("+00:00")
    node = next(n for n in everything["nodes"] if n["id"] == f"!{NEAR:08x}")
    assert node["long_name"] == "Near Node" and node["latitude"] == pytest.approx(32.88)
    json.dumps(everything)

    neighbors_only = await call(sources=["neighbor"])
    assert {link["source"] for link in neighbors_only["links"]} == {"neighbor"}
    around_far = await call(node=f"!{FAR:08x}")
    assert all(f"!{FAR:08x}" in (link["from"], link["to"]) for link in around_far["links"])
    near_home = await call(radius_km=50)
    assert {n["id"] for n in near_home["nodes"]} == {f"!{NEAR:08x}"}
    assert (await call(max_age={"seconds": 0}))["links"] == []
    with pytest.raises(ServiceValidationError):
        await call(node="not-a-node")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_deleting_a_node_device_forgets_the_node(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics, hass_ws_client: Any
) -> None:
    # Before the diagnostics start the HTTP server: newer releases freeze its routes then.
    assert await async_setup_component(hass, "config", {})
    assert await async_setup_component(hass, "websocket_api", {})
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    await publish_scene(hass, broker, diagnostics, entry)
    await flush(hass)
    registry = dr.async_get(hass)
    device = node_device(hass, entry, NEAR)
    assert device is not None
    client = await hass_ws_client(hass)
    response = await remove_device_as_user(client, device.id, entry.entry_id)
    assert response["success"]
    assert node_id(NEAR) not in await nodes_known(hass)
    assert registry.async_get(device.id) is None
    hub_device = async_entry_device(hass, entry.entry_id, entry.entry_id)
    response = await remove_device_as_user(client, hub_device.id, entry.entry_id)
    assert not response["success"], "the hub device goes only with the entry"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_message_storm_writes_each_entity_at_most_once_a_second(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics
) -> None:
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    traffic = await publish_scene(hass, broker, diagnostics, entry)
    await flush(hass)
    writes: list[str] = []
    hass.bus.async_listen("state_changed", lambda event: writes.append(event.data["entity_id"]))
    storm = [traffic.telemetry(NEAR, 50 + i % 40, 3.9, gateway=GATEWAY_A) for i in range(400)]
    started = time.monotonic()
    await hass.async_add_executor_job(publish_many, broker, [(e.topic, e.payload) for e in storm])
    await until_envelopes(diagnostics, entry, SCENE_SIZE + 400)
    await flush(hass)
    elapsed = time.monotonic() - started
    battery = "sensor.near_node_battery"
    assert battery in writes, "the flush publishes the changes"
    # 400 updates of one node, but at most one write per entity per elapsed second.
    assert max(Counter(writes).values()) <= math.ceil(elapsed) + 1
    assert hass.states.get(battery).state == str(50 + 399 % 40)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_crowd_of_new_nodes_gets_devices_over_the_next_flushes_unheard(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics
) -> None:
    entry = mesh_entry(
        broker,
        **{CONF_NODE_POLICY: POLICY_ALL, CONF_MAX_TRACKED_NODES: 20, CONF_TRACK_POSITIONS: True},
    )
    await start(hass, diagnostics, entry)
    registry = dr.async_get(hass)
    # (real loop time, device id) of every device created: each flush's come together.
    created: list[tuple[float, str]] = []

    @callback
    def record(event: Event[dr.EventDeviceRegistryUpdatedData]) -> None:
        if event.data["action"] == "create":
            created.append((hass.loop.time(), event.data["device_id"]))

    remove = hass.bus.async_listen(dr.EVENT_DEVICE_REGISTRY_UPDATED, record)
    traffic = MeshTraffic()
    crowd = [0x44440000 + index for index in range(NEW_DEVICES_PER_FLUSH * 2 + 1)]
    # Each node is heard once, then never again.
    envelopes = [traffic.telemetry(num, 70, 3.9, gateway=GATEWAY_A) for num in crowd]
    await hass.async_add_executor_job(
        publish_many, broker, [(e.topic, e.payload) for e in envelopes]
    )
    await until_envelopes(diagnostics, entry, len(crowd))
    # Only the real one-second flushes run: three are enough for the whole crowd.
    await until(lambda: all(node_device(hass, entry, num) for num in crowd))
    await hass.async_block_till_done()
    remove()
    batches: list[list[int]] = []
    last = -math.inf
    for at, device_id in created:
        if at - last > FLUSH_SECONDS / 2:
            batches.append([])
        device = registry.async_get(device_id)
        assert device is not None and device.serial_number is not None
        batches[-1].append(int(device.serial_number[1:], 16))
        last = at
    # A few devices a flush keeps each flush short; the rest follow without new traffic.
    assert max(len(batch) for batch in batches) == NEW_DEVICES_PER_FLUSH
    assert len(batches) >= 3
    # The crowd, and the gateway that heard it.
    assert sorted(num for batch in batches for num in batch) == sorted([*crowd, GATEWAY_A])
    # Each device has all its entities, every one with a state, however spread their adding.
    entities = er.async_get(hass)
    for num in crowd:
        device = node_device(hass, entry, num)
        assert device is not None
        on_device = er.async_entries_for_device(entities, device.id)
        # Its sensors, its online sensor and its tracker (no telemetry sensor: it sent none).
        assert len(on_device) == len(NODE_SENSORS) + 2
        assert {entity.domain for entity in on_device} == {
            "sensor",
            "binary_sensor",
            "device_tracker",
        }
        states = [hass.states.get(entity.entity_id) for entity in on_device]
        assert all(state is not None and state.state != "unavailable" for state in states)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_messages_per_minute_counts_sixty_seconds_not_sixty_flushes(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
) -> None:
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    await publish_scene(hass, broker, diagnostics, entry)
    await flush(hass)
    rate = "sensor.meshbot_test_message_rate"
    assert hass.states.get(rate).state == str(SCENE_SIZE)
    # Flushes come a second apart plus their own run time: 59 more of them span over a minute.
    for _ in range(58):
        await later(hass, frozen, 1.02)
    assert hass.states.get(rate).state == str(SCENE_SIZE), "59.16 s: still within the minute"
    await later(hass, frozen, 1.02)
    assert hass.states.get(rate).state == "0"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_stalled_flush_still_writes_each_entity_a_full_second_apart(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics
) -> None:
    """A full garbage collection can stall a flush between two entity writes for 100-300 ms.

    The entities written after the stall must not get their next write sooner than a second
    later: the next flush is counted from the end of this one, not from its start.
    """
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    traffic = await publish_scene(hass, broker, diagnostics, entry)
    await flush(hass)
    writes: dict[str, list[float]] = {}
    stalls: list[float] = []

    @callback
    def record(event: Event) -> None:
        writes.setdefault(event.data["entity_id"], []).append(time.monotonic())
        if not stalls and event.data["entity_id"].startswith("sensor.near_node"):
            # Block the loop between two of the node's writes, as a collection would.
            stalls.append(time.monotonic())
            time.sleep(STALL_SECONDS)

    remove = hass.bus.async_listen(EVENT_STATE_CHANGED, record)

    # The battery changes with every message, so every real flush writes the node.
    storm = [traffic.telemetry(NEAR, 50 + level, 3.9, gateway=GATEWAY_A) for level in range(30)]
    await hass.async_add_executor_job(
        publish_many, broker, [(e.topic, e.payload) for e in storm], 0.1
    )
    await until_envelopes(diagnostics, entry, SCENE_SIZE + 30)
    await asyncio.sleep(FLUSH_SECONDS * 1.5)
    remove()
    assert stalls, "a flush wrote the node during the storm"
    resumed = stalls[0] + STALL_SECONDS
    # Written by the stalled flush once the stall was over: the entities at risk.
    after_stall = [
        entity_id
        for entity_id, times in writes.items()
        if any(resumed <= t < resumed + 0.1 for t in times)
    ]
    assert after_stall, "the stall came between two of the flush's writes"
    gaps = {
        entity_id: min(b - a for a, b in pairwise(times))
        for entity_id, times in writes.items()
        if len(times) > 1
    }
    assert len(gaps) >= 2, f"real flushes wrote the node more than once: {writes}"
    # The timer's own clock resolution is the only slack.
    closest = min(gaps.items(), key=lambda item: item[1])
    assert closest[1] >= FLUSH_SECONDS - 0.005, f"written {closest[1]:.3f} s apart: {closest[0]}"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_diagnostics_include_topology_without_positions(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics
) -> None:
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    await publish_scene(hass, broker, diagnostics, entry)
    report = await diagnostics(entry)
    dumped = json.dumps(report)
    assert "48.85" not in dumped and "32.88" not in dumped and "117.23" not in dumped
    assert base64.b64encode(PRIVATE_KEY).decode() not in dumped
    assert report["mesh"]["decoder"]["duplicates"] == 1
    links = (await topology(hass))["links"]
    assert links and len(report["mesh"]["topology"]["links"]) == len(links)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_radio_packets_feed_the_mesh_and_the_direct_policy(
    hass: HomeAssistant, fake_node: FakeNode
) -> None:
    entry = entry_for(radio=radio_section(fake_node.port))
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=entry.title,
        data=dict(entry.data),
        options={**entry.options, CONF_NODE_POLICY: POLICY_DIRECT},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: is_on(hass, connectivity(hass, entry, "radio")))

    def heard(sender: int, hop_limit: int, name: str) -> mesh_pb2.FromRadio:
        user = mesh_pb2.User(id=f"!{sender:08x}", long_name=name, short_name=name[:4])
        packet = mesh_pb2.MeshPacket(
            to=0xFFFFFFFF,
            id=sender & 0xFFFF,
            hop_start=3,
            hop_limit=hop_limit,
            rx_snr=7.25,
            rx_rssi=-71,
            decoded=mesh_pb2.Data(
                portnum=portnums_pb2.NODEINFO_APP, payload=user.SerializeToString()
            ),
        )
        setattr(packet, "from", sender)
        return mesh_pb2.FromRadio(packet=packet)

    fake_node.broadcast(heard(NEAR, 3, "Next Door"))
    fake_node.broadcast(heard(FAR, 1, "Two Hops"))

    async def far_known() -> bool:
        return node_id(FAR) in await nodes_known(hass)

    await eventually(far_known)
    await flush(hass)
    mesh = await topology(hass)
    links = {(link["from"], link["to"], link["source"]): link for link in mesh["links"]}
    link = links[(node_id(NEAR), node_id(fake_node.node_num), "radio")]
    assert (link["snr"], link["rssi"]) == (7.25, -71)
    assert not any(link["from"] == node_id(FAR) for link in mesh["links"]), (
        "a relayed packet is no direct link"
    )
    assert (await nodes_known(hass))[node_id(FAR)]["hops_away"] == 2
    registry = dr.async_get(hass)
    node_devices = {
        device.name
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if device.serial_number and (DOMAIN, f"{entry.entry_id}_radio") not in device.identifiers
    }
    assert node_devices == {"Next Door"}
    assert hass.states.get("sensor.meshbot_test_radio_heard_links").state == "1"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_stale_nodes_and_links_are_pruned(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
) -> None:
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    await publish_scene(hass, broker, diagnostics, entry)
    await flush(hass)
    battery = "sensor.near_node_battery"
    assert hass.states.get(battery).state == "87"

    assert (await topology(hass))["links"]
    assert hass.states.get("sensor.meshbot_test_direct_links").state != "0"

    # The prune timer runs every PRUNE_SECONDS: each firing sets the next one that far off.
    frozen.tick(25 * 3600)
    await flush(hass, PRUNE_SECONDS + 1)
    mesh = await topology(hass)
    assert mesh["links"] == [], "links expire after 24 h"
    assert hass.states.get("sensor.meshbot_test_direct_links").state == "0"
    assert node_id(NEAR) in {node["id"] for node in mesh["nodes"]}, "nodes are kept for 72 h"
    assert hass.states.get(battery).state == "87"

    frozen.tick(48 * 3600)
    await flush(hass, 2 * PRUNE_SECONDS + 2)
    assert (await topology(hass))["nodes"] == []
    assert hass.states.get(battery).state == "unavailable"
    assert hass.states.get("sensor.meshbot_test_nodes_known").state == "0"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_get_topology_needs_one_mesh_entry(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    auth_broker: MosquittoBroker,
    diagnostics: Diagnostics,
) -> None:
    lightning_only = entry_for(lightning=broker_section(broker.port))
    lightning_only.add_to_hass(hass)
    assert await hass.config_entries.async_setup(lightning_only.entry_id)

    async def call(**data: Any) -> dict[str, Any]:
        return await hass.services.async_call(
            DOMAIN, "get_topology", data, blocking=True, return_response=True
        )

    with pytest.raises(ServiceValidationError) as error:
        await call()
    assert error.value.translation_key == "no_mesh"
    first = mesh_entry(broker)
    await start(hass, diagnostics, first)
    second_entry = MockConfigEntry(
        domain=DOMAIN, title="second", data={"mesh": broker_section(auth_broker.port)}
    )
    second_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(second_entry.entry_id)
    with pytest.raises(ServiceValidationError) as error:
        await call()
    assert error.value.translation_key == "choose_entry"
    await hass.async_add_executor_job(publish_many, broker, scene(MeshTraffic()))
    await until_envelopes(diagnostics, first, SCENE_SIZE)
    chosen = await call(config_entry_id=first.entry_id)
    assert {node["id"] for node in chosen["nodes"]} >= {f"!{NEAR:08x}"}
    with pytest.raises(ServiceValidationError) as error:
        await call(config_entry_id=lightning_only.entry_id)
    assert error.value.translation_key == "entry_not_loaded"
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)


async def test_the_mesh_is_saved_during_steady_traffic(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    hass_storage: dict[str, Any],
    diagnostics: Diagnostics,
) -> None:
    from unittest.mock import patch

    save_delay = 3
    with patch("custom_components.meshbot.mesh_coordinator.SAVE_DELAY_SECONDS", save_delay):
        entry = mesh_entry(broker)
        await start(hass, diagnostics, entry)
        key = f"{DOMAIN}.{entry.entry_id}.mesh"
        traffic = MeshTraffic()
        base = dt_util.utcnow()
        # A change every second for longer than the save delay: a save must still happen.
        for second in range(save_delay + 3):
            envelope = traffic.telemetry(NEAR, 50, 3.9, gateway=GATEWAY_A)
            await hass.async_add_executor_job(
                publish_many, broker, [(envelope.topic, envelope.payload)]
            )
            await until_envelopes(diagnostics, entry, second + 1)
            async_fire_time_changed(hass, base + timedelta(seconds=second + 1))
            await hass.async_block_till_done()
        assert key in hass_storage, "saved within the delay despite constant changes"
        nodes = hass_storage[key]["data"]["state"]["nodes"]
        assert f"!{NEAR:08x}" in {node["id"] for node in nodes}
        await hass.config_entries.async_unload(entry.entry_id)


async def test_a_first_connection_to_a_busy_feed_spreads_discovery_events(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics
) -> None:
    from custom_components.meshbot.mesh_coordinator import DISCOVERIES_PER_FLUSH

    events: list[Event] = []
    hass.bus.async_listen(EVENT_NODE_DISCOVERED, callback(lambda event: events.append(event)))
    entry = mesh_entry(broker)
    await start(hass, diagnostics, entry)
    traffic = MeshTraffic()
    crowd = [traffic.node_info(0x30000000 + i, f"N{i}", "N", gateway=GATEWAY_A) for i in range(60)]
    await hass.async_add_executor_job(publish_many, broker, [(e.topic, e.payload) for e in crowd])
    await until_envelopes(diagnostics, entry, 60)
    for _ in range(6):
        before = len(events)
        await flush(hass)
        assert len(events) - before <= DISCOVERIES_PER_FLUSH
    assert len({event.data["node_id"] for event in events}) == len(events) == 61
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_device_takes_the_name_the_node_announces_later(
    hass: HomeAssistant, broker: MosquittoBroker, diagnostics: Diagnostics
) -> None:
    entry = mesh_entry(broker, **{CONF_NODE_POLICY: POLICY_ALL})
    await start(hass, diagnostics, entry)
    traffic = MeshTraffic()
    late = 0x55555555
    first = traffic.position(late, 32.87, -117.22, gateway=GATEWAY_A)
    await hass.async_add_executor_job(publish_many, broker, [(first.topic, first.payload)])
    await until_envelopes(diagnostics, entry, 1)
    await flush(hass)
    registry = dr.async_get(hass)
    device = node_device(hass, entry, late)
    # Until the node tells its name, the one its firmware gives it, as the Meshtastic apps show.
    assert device.name == "Meshtastic 5555"
    assert device.serial_number == "!55555555"
    entity_ids = {
        entity.entity_id for entity in er.async_entries_for_device(er.async_get(hass), device.id)
    }
    assert (
        hass.states.get(min(entity_ids)).attributes["friendly_name"].startswith("Meshtastic 5555 ")
    )
    writes: Counter[str] = Counter()

    def count(event: Event[Any]) -> None:
        if event.data["entity_id"] in entity_ids:
            writes[event.data["entity_id"]] += 1

    for event_type in (EVENT_STATE_CHANGED, EVENT_STATE_REPORTED):
        # state_reported listeners must filter; this one keeps every report.
        hass.bus.async_listen(event_type, callback(count), callback(lambda _data: True))
    info = traffic.node_info(late, "Late Name", "LATE", gateway=GATEWAY_A)
    await hass.async_add_executor_job(publish_many, broker, [(info.topic, info.payload)])
    await until_envelopes(diagnostics, entry, 2)
    assert (await nodes_known(hass))[node_id(late)]["long_name"] == "Late Name"
    await flush(hass)
    assert registry.async_get(device.id).name == "Late Name"
    assert registry.async_get(device.id).model == "HELTEC_V3"
    assert hass.states.get(min(entity_ids)).attributes["friendly_name"].startswith("Late Name")
    # The rename rewrites every entity of the device (their names start with it): that write
    # must be the only one, however many of the node's figures the same packet changed.
    assert writes and max(writes.values()) == 1, writes
    await hass.config_entries.async_unload(entry.entry_id)
