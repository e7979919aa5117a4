"""A Bluetooth radio as Home Assistant sees it: through its Bluetooth integration and GATT."""

from __future__ import annotations

from datetime import timedelta
import json
import logging
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import CONF_PIN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.meshbot.const import DOMAIN
from custom_components.meshbot.links.ble import SERVICE_UUID
from meshbot_dev.entries import bluetooth_section, entry_for, radio_section
from meshbot_dev.fake_node import FakeNode

from .support.bluetooth import inject, service_info
from .support.waiting import until

ADDRESS = "AA:BB:CC:DD:EE:01"
RADIO_LINK = "binary_sensor.meshbot_test_radio_link"


def radio_connected(hass: HomeAssistant) -> bool:
    """Return whether the radio's connectivity sensor says connected."""
    state = hass.states.get(RADIO_LINK)
    return state is not None and state.state == "on"


def advertise(hass: HomeAssistant, address: str = ADDRESS) -> None:
    inject(hass, service_info(address, "Meshtastic_ee01", [SERVICE_UUID]))


@pytest.fixture
async def ble_entry(hass: HomeAssistant, enable_bluetooth: None, ble_node: FakeNode) -> Any:
    advertise(hass)
    entry = entry_for(radio=bluetooth_section(ADDRESS))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: radio_connected(hass))
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)


async def test_handshake_and_node_database_reach_home_assistant(
    hass: HomeAssistant, ble_entry: MockConfigEntry, ble_node: FakeNode
) -> None:
    topology = await hass.services.async_call(
        DOMAIN, "get_topology", {}, blocking=True, return_response=True
    )
    names = {node["id"]: node["long_name"] for node in topology["nodes"]}
    for num in ble_node.other_nodes:
        assert names[f"!{num:08x}"] == f"Node {num:08x}"
    assert hass.states.get(RADIO_LINK).attributes.get("last_error") is None


async def test_send_text_over_bluetooth_reaches_the_node(
    hass: HomeAssistant, ble_entry: MockConfigEntry, ble_node: FakeNode
) -> None:
    response = await hass.services.async_call(
        DOMAIN,
        "send_text",
        {"message": "hello by air", "destination": "!0000beef", "want_ack": True},
        blocking=True,
        return_response=True,
    )
    packet = ble_node.sent_packets[-1]
    assert (packet.to, packet.decoded.payload) == (0x0000BEEF, b"hello by air")
    assert response == {"packet_id": packet.id, "acknowledged": True, "error": None}


async def test_a_lost_connection_comes_back_with_back_off(
    hass: HomeAssistant, ble_entry: MockConfigEntry, ble_node: FakeNode
) -> None:
    before = ble_node.connections
    ble_node.behaviour.in_range = False
    ble_node.gatt_clients[-1].drop()
    await until(lambda: not radio_connected(hass))
    state = hass.states.get(RADIO_LINK)
    assert state.state == "off"
    # Out of reach: the supervisor keeps trying, spaced by its back-off, and says why.
    await until(lambda: hass.states.get(RADIO_LINK).attributes["reconnects"] >= 2)
    assert "not found" in hass.states.get(RADIO_LINK).attributes["last_error"]
    assert ble_node.connections == before
    ble_node.behaviour.in_range = True
    await until(lambda: radio_connected(hass))
    assert ble_node.connections == before + 1
    assert ble_node.gatt_connected == 1


async def test_unload_leaves_no_bluetooth_connection(
    hass: HomeAssistant, enable_bluetooth: None, ble_node: FakeNode
) -> None:
    advertise(hass)
    entry = entry_for(radio=bluetooth_section(ADDRESS))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: radio_connected(hass))
    assert ble_node.gatt_connected == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert ble_node.gatt_connected == 0
    assert any(message.disconnect for message in ble_node.received)


async def test_out_of_range_for_long_raises_a_repair_cleared_when_back(
    hass: HomeAssistant, ble_entry: MockConfigEntry, ble_node: FakeNode
) -> None:
    from habluetooth.const import UNAVAILABLE_TRACK_SECONDS

    registry = ir.async_get(hass)
    issue_id = f"radio_out_of_range_{ble_entry.entry_id}"
    # Connected, the node stops advertising: that silence is no absence.
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=UNAVAILABLE_TRACK_SECONDS + 1)
    )
    await hass.async_block_till_done()
    assert registry.async_get_issue(DOMAIN, issue_id) is None

    ble_node.behaviour.in_range = False
    ble_node.gatt_clients[-1].drop()
    await until(lambda: not radio_connected(hass))
    await until(lambda: registry.async_get_issue(DOMAIN, issue_id) is not None)
    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue.translation_key == "radio_out_of_range"
    assert issue.translation_placeholders == {"radio": f"bluetooth {ADDRESS}"}

    ble_node.behaviour.in_range = True
    advertise(hass)
    await until(lambda: registry.async_get_issue(DOMAIN, issue_id) is None)
    await until(lambda: radio_connected(hass))


async def test_an_entry_without_a_bluetooth_radio_leaves_bluetooth_alone(
    hass: HomeAssistant, fake_node: FakeNode
) -> None:
    entry = entry_for(radio=radio_section(fake_node.port))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: radio_connected(hass))
    assert "bluetooth" not in hass.config.components
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_paired_radio_keeps_its_pin_out_of_logs_and_diagnostics(
    hass: HomeAssistant,
    enable_bluetooth: None,
    ble_node: FakeNode,
    diagnostics: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ble_node.behaviour.pin = "482913"
    advertise(hass)
    entry = entry_for(radio=bluetooth_section(ADDRESS, pin="482913"))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: radio_connected(hass))
    assert ble_node.gatt_clients[-1].paired
    data = await diagnostics(entry)
    assert data["entry"]["data"]["radio"]["pin"] == "**REDACTED**"
    # The node changed its PIN (a random PIN does at every boot): the link stops, says why, and
    # asks the user for the new PIN.
    ble_node.behaviour.pin = "111111"
    ble_node.gatt_clients[-1].drop()
    await until(lambda: "pairing" in (hass.states.get(RADIO_LINK).attributes["last_error"] or ""))

    def reauth_flows() -> list[Any]:
        return [
            flow
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            if flow["context"]["source"] == SOURCE_REAUTH
        ]

    await until(lambda: len(reauth_flows()) == 1)
    (flow,) = reauth_flows()
    assert flow["step_id"] == "radio_bluetooth_pin"
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {CONF_PIN: "222222"})
    assert result["errors"] == {"base": "pairing_failed"}
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {CONF_PIN: "111111"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data["radio"][CONF_PIN] == "111111"
    await until(lambda: radio_connected(hass))
    assert "482913" not in json.dumps(data)
    assert "482913" not in caplog.text and "111111" not in caplog.text
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert ble_node.gatt_connected == 0
