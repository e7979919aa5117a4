"""Snapshots of what each platform registers and shows, beside the behaviour tests.

One entry with all three links against a real Mosquitto and the fake radio; every node the radio
knows becomes a device (policy "all") with its position tracked. Each platform is set up alone,
every entity enabled, and its registry entries and states are compared with
tests/__snapshots__/test_snapshots.ambr (`pytest tests/test_snapshots.py --snapshot-update` writes
it again after an intended change: read the diff before committing it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from unittest.mock import PropertyMock, patch

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
from meshtastic.protobuf import mesh_pb2, portnums_pb2
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.amber import AmberSnapshotExtension

from custom_components.meshbot.const import (
    CONF_NODE_POLICY,
    CONF_TRACK_POSITIONS,
    DOMAIN,
    POLICY_ALL,
)
from custom_components.meshbot.diagnostics import async_get_config_entry_diagnostics
from meshbot_dev.entries import broker_section, entry_for, radio_section
from meshbot_dev.fake_node import FakeNode, heard
from meshbot_dev.mosquitto import MosquittoBroker

# Fixed, so unique ids (which carry the entry id) are the same in every run.
ENTRY_ID = "01JMESHBOTSNAPSHOT00000000"
# Attributes that carry wall-clock times or depend on how fast the links came up.
VOLATILE = {"connected_since", "last_message", "last_heard", "last_seen", "first_seen", "since"}
TIME = "<a time>"
# What Home Assistant itself adds to every tracker from 2026.10 on, not meshbot.
ADDED_BY_NEWER_RELEASES = {"in_zones", "tracking_type"}


def registered(entity: er.RegistryEntry) -> dict[str, Any]:
    """Return what the entity registry holds that users see (the same on every release)."""
    return {
        "unique_id": entity.unique_id,
        "translation_key": entity.translation_key,
        "original_name": entity.original_name,
        "device_class": entity.original_device_class,
        "unit": entity.unit_of_measurement,
        "entity_category": entity.entity_category,
        "capabilities": {
            key: value
            for key, value in (plain(entity.capabilities) or {}).items()
            if key not in ADDED_BY_NEWER_RELEASES
        }
        or None,
        "has_entity_name": entity.has_entity_name,
    }


def device_shown(device: dr.DeviceEntry) -> dict[str, Any]:
    """Return what a device page shows of a device."""
    return {
        "identifiers": sorted(device.identifiers),
        "name": device.name,
        "manufacturer": device.manufacturer,
        "model": device.model,
        "sw_version": device.sw_version,
        "serial_number": device.serial_number,
        "entry_type": device.entry_type,
        "child of another device": device.via_device_id is not None,
    }


def plain(mapping: Mapping[Any, Any] | None) -> dict[str, Any] | None:
    """Return a mapping with plain string keys (2026.10 keys attributes by StrEnum members)."""
    return None if mapping is None else {str(key): value for key, value in mapping.items()}


def shown(state: State) -> dict[str, Any]:
    """Return what a state shows, with wall-clock times masked."""
    attributes = plain(state.attributes) or {}
    timestamp = attributes.get("device_class") == "timestamp"
    masked = timestamp and state.state not in ("unknown", "unavailable")
    return {
        "state": TIME if masked else state.state,
        "attributes": {
            key: TIME if key in VOLATILE and value is not None else value
            for key, value in attributes.items()
            if key not in ADDED_BY_NEWER_RELEASES
        },
    }


@pytest.fixture
def entry(fake_node: FakeNode, broker: MosquittoBroker) -> MockConfigEntry:
    template = entry_for(
        radio=radio_section(fake_node.port),
        mesh=broker_section(broker.port),
        lightning=broker_section(broker.port),
    )
    return MockConfigEntry(
        domain=DOMAIN,
        title="meshbot: test",
        entry_id=ENTRY_ID,
        data=dict(template.data),
        options={**template.options, CONF_NODE_POLICY: POLICY_ALL, CONF_TRACK_POSITIONS: True},
    )


async def set_up(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    fake_node: FakeNode,
) -> None:
    """Set the entry up, wait for every link, give one node a position, and flush."""
    entry.add_to_hass(hass)
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        async with asyncio.timeout(10):
            while not all(
                link["state"]["connected"]
                for link in (await async_get_config_entry_diagnostics(hass, entry))[
                    "links"
                ].values()
            ):
                await asyncio.sleep(0.05)
        fake_node.broadcast(
            heard(
                fake_node.other_nodes[0],
                1,
                portnums_pb2.POSITION_APP,
                mesh_pb2.Position(latitude_i=328733600, longitude_i=-1172274300, altitude=20),
            )
        )
        # Three flushes: the position lands, the paced devices appear, their entities settle.
        for _ in range(3):
            await asyncio.sleep(0.2)
            async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=1.1))
            await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (Platform.SENSOR, 68),
        # The three links, lightning nearby, and every tracked node's online sensor.
        (Platform.BINARY_SENSOR, 8),
        (Platform.EVENT, 2),
        # The radio's one channel, and a direct message to every tracked node.
        (Platform.NOTIFY, 5),
        # Every tracked node has a tracker, a position or not (unknown until one arrives).
        (Platform.DEVICE_TRACKER, 4),
    ],
)
async def test_platform_snapshot(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    entry: MockConfigEntry,
    fake_node: FakeNode,
    platform: Platform,
    expected: int,
) -> None:
    # Syrupy's own format and folder on both releases: the harnesses' extensions differ.
    snapshot = snapshot.use_extension(AmberSnapshotExtension)
    with patch("custom_components.meshbot.PLATFORMS", [platform]):
        await set_up(hass, entry, fake_node)
        entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
        assert len(entities) == expected, [entity.entity_id for entity in entities]
        # Named by unique id: entity ids of node entities differ between releases (2026.10
        # builds them from the device's name as it is when the entity registers).
        for entity in sorted(entities, key=lambda entity: entity.unique_id):
            name = entity.unique_id.removeprefix(f"{ENTRY_ID}_")
            assert registered(entity) == snapshot(name=f"{name}-entry")
            assert shown(hass.states.get(entity.entity_id)) == snapshot(name=f"{name}-state")
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_devices_snapshot(
    hass: HomeAssistant,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
    entry: MockConfigEntry,
    fake_node: FakeNode,
) -> None:
    snapshot = snapshot.use_extension(AmberSnapshotExtension)
    with patch("custom_components.meshbot.PLATFORMS", [Platform.SENSOR]):
        await set_up(hass, entry, fake_node)
        devices = sorted(
            dr.async_entries_for_config_entry(device_registry, entry.entry_id),
            key=lambda device: sorted(device.identifiers),
        )
        # The hub, the radio, and the four nodes it knows: its own node among them, so the
        # radio's name shows twice (its radio figures on one, its mesh figures on the other).
        assert len(devices) == 6, [device.name for device in devices]
        for device in devices:
            assert device_shown(device) == snapshot(name=sorted(device.identifiers)[0][1])
        assert await hass.config_entries.async_unload(entry.entry_id)
