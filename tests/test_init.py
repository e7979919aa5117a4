"""Setup, the startup contract, link supervision, reauthentication, unload and reload."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import (
    CONF_HOST,
    CONF_LATITUDE,
    CONF_LONGITUDE,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_USERNAME,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import paho.mqtt.client as paho
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.meshbot.compat import async_entry_device
from custom_components.meshbot.const import (
    CONF_CHANNEL_KEYS,
    CONF_CONNECTION,
    CONF_LIGHTNING,
    CONF_LOCATION,
    CONF_LOCATION_MODE,
    CONF_MESH,
    CONF_RADIO,
    CONNECTION_TCP,
    DOMAIN,
    LOCATION_FIXED,
)
from custom_components.meshbot.lightning.geohash import encode
from meshbot_dev.entries import MESH_PASSWORD, MESH_USER, broker_section, entry_for, radio_section
from meshbot_dev.fake_node import FakeNode
from meshbot_dev.mosquitto import (
    UNRESOLVABLE_HOST,
    HangingListener,
    MosquittoBroker,
    SilentListener,
    refused_port,
)

from .support.waiting import until

RADIO = "binary_sensor.meshbot_test_radio_link"
MESH = "binary_sensor.meshbot_test_mesh_collector"
LIGHTNING = "binary_sensor.meshbot_test_lightning_monitor"
ALL_SENSORS = (RADIO, MESH, LIGHTNING)


def state_of(hass: HomeAssistant, entity_id: str) -> str | None:
    state = hass.states.get(entity_id)
    return state.state if state else None


def meshbot_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("meshbot ")]


def publish(broker: MosquittoBroker, topic: str, payload: bytes) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


async def test_links_connect_and_sensors_turn_on(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_node: FakeNode
) -> None:
    await until(lambda: all(state_of(hass, sensor) == STATE_ON for sensor in ALL_SENSORS))
    radio = hass.states.get(RADIO)
    assert radio is not None
    assert radio.attributes["device_class"] == "connectivity"
    assert radio.attributes["last_error"] is None
    assert radio.attributes["connected_since"] is not None
    entity = er.async_get(hass).async_get(RADIO)
    assert entity is not None
    assert entity.entity_category is er.EntityCategory.DIAGNOSTIC
    assert entity.unique_id == f"{init_integration.entry_id}_radio_connectivity"
    device = dr.async_get(hass).async_get(entity.device_id)
    assert device is not None
    assert device.entry_type is None, "a hub device, not a service"
    assert fake_node.handshakes == 1


async def test_a_hub_registered_as_a_service_becomes_a_device(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    # Earlier versions registered the hub as a service: the integrations page then read
    # "1 service" for an entry with a radio and its mesh.
    mock_config_entry.add_to_hass(hass)
    registry = dr.async_get(hass)
    registry.async_get_or_create(
        config_entry_id=mock_config_entry.entry_id,
        identifiers={(DOMAIN, mock_config_entry.entry_id)},
        entry_type=dr.DeviceEntryType.SERVICE,
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    hub = async_entry_device(hass, mock_config_entry.entry_id, mock_config_entry.entry_id)
    assert hub is not None
    assert hub.entry_type is None
    assert all(
        device.entry_type is None
        for device in dr.async_entries_for_config_entry(registry, mock_config_entry.entry_id)
    )
    await hass.config_entries.async_unload(mock_config_entry.entry_id)


@pytest.mark.parametrize("target", ["refused", "silent", "hanging", "unresolvable"])
async def test_setup_never_waits_for_the_network(
    hass: HomeAssistant, name_resolution: None, target: str
) -> None:
    listener: SilentListener | HangingListener | None = None
    host = "127.0.0.1"
    if target == "silent":
        listener = SilentListener()
        port = listener.port
    elif target == "hanging":
        listener = HangingListener()
        port = listener.port
    else:
        port = refused_port()
        if target == "unresolvable":
            host = UNRESOLVABLE_HOST
    entry = entry_for(
        radio=radio_section(port, host),
        mesh=broker_section(port, host),
        lightning=broker_section(port, host),
    )
    entry.add_to_hass(hass)
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is ConfigEntryState.LOADED
        await hass.async_block_till_done()
        if target in ("silent", "hanging"):
            # Setup finished while every first attempt is still waiting on its peer.
            assert all(
                hass.states.get(sensor).attributes["last_error"] is None for sensor in ALL_SENSORS
            )
        for sensor in ALL_SENSORS:
            assert state_of(hass, sensor) == STATE_OFF, "available and off, not unavailable"
        assert len(meshbot_tasks()) == 3
        assert await hass.config_entries.async_unload(entry.entry_id)
        assert meshbot_tasks() == []
    finally:
        if listener is not None:
            listener.close()


async def test_connectivity_follows_a_killed_and_restarted_broker(
    hass: HomeAssistant, init_integration: MockConfigEntry, broker: MosquittoBroker
) -> None:
    await until(lambda: state_of(hass, MESH) == STATE_ON and state_of(hass, LIGHTNING) == STATE_ON)
    await hass.async_add_executor_job(broker.stop)
    await until(
        lambda: state_of(hass, MESH) == STATE_OFF and state_of(hass, LIGHTNING) == STATE_OFF
    )
    mesh = hass.states.get(MESH)
    assert mesh is not None
    assert mesh.attributes["last_error"]
    assert state_of(hass, RADIO) == STATE_ON, "one link's outage does not touch the others"
    await hass.async_add_executor_job(broker.start)
    await until(lambda: state_of(hass, MESH) == STATE_ON and state_of(hass, LIGHTNING) == STATE_ON)
    mesh = hass.states.get(MESH)
    assert mesh is not None
    assert mesh.attributes["reconnects"] >= 1
    assert mesh.attributes["last_error"] is None


async def test_connectivity_follows_a_radio_that_closes(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_node: FakeNode
) -> None:
    await until(lambda: state_of(hass, RADIO) == STATE_ON)
    port = fake_node.port
    await fake_node.stop()
    await until(lambda: state_of(hass, RADIO) == STATE_OFF)
    await fake_node.start_tcp(port)
    await until(lambda: state_of(hass, RADIO) == STATE_ON)
    assert fake_node.handshakes == 2


async def test_link_outages_are_logged_once(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    broker: MosquittoBroker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await until(lambda: state_of(hass, MESH) == STATE_ON)
    caplog.clear()
    await hass.async_add_executor_job(broker.stop)
    await until(lambda: hass.states.get(MESH).attributes["reconnects"] >= 4)
    await hass.async_add_executor_job(broker.start)
    await until(lambda: state_of(hass, MESH) == STATE_ON)
    mesh_lines = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("Mesh collector")
    ]
    assert len([line for line in mesh_lines if "lost its connection" in line]) == 1
    assert len([line for line in mesh_lines if "is back" in line]) == 1


async def test_rejected_credentials_start_reauthentication(
    hass: HomeAssistant, hass_client: Any, auth_broker: MosquittoBroker
) -> None:
    entry = entry_for(
        mesh=broker_section(auth_broker.port, **{CONF_USERNAME: MESH_USER, CONF_PASSWORD: "stale"})
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: hass.config_entries.flow.async_progress_by_handler(DOMAIN))
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert flows[0]["context"]["entry_id"] == entry.entry_id
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["links"]["mesh"]["state"]["auth_failed"]
    reconnects = hass.states.get(MESH).attributes["reconnects"]
    await asyncio.sleep(0.5)
    assert hass.states.get(MESH).attributes["reconnects"] == reconnects, (
        "no retry with credentials known to be bad"
    )
    assert state_of(hass, MESH) == STATE_OFF
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_USERNAME: MESH_USER, CONF_PASSWORD: MESH_PASSWORD}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    await until(lambda: state_of(hass, MESH) == STATE_ON)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_unload_ends_every_task_and_connection(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_node: FakeNode
) -> None:
    await until(lambda: all(state_of(hass, sensor) == STATE_ON for sensor in ALL_SENSORS))
    assert len(meshbot_tasks()) == 3
    async with asyncio.timeout(5):
        assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert meshbot_tasks() == []
    await until(lambda: fake_node.client_count == 0, timeout=5)
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    for sensor in ALL_SENSORS:
        assert state_of(hass, sensor) == "unavailable"


async def test_deleting_the_entry_deletes_what_it_saved(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    entry_id = init_integration.entry_id
    saved = {f"meshbot.{entry_id}.mesh", f"meshbot.{entry_id}.lightning"}
    assert await hass.config_entries.async_unload(entry_id)
    assert saved <= set(hass_storage), "unloading saves the mesh and the strikes"
    assert await hass.config_entries.async_setup(entry_id)
    await hass.async_block_till_done()
    await hass.config_entries.async_remove(entry_id)
    await hass.async_block_till_done()
    assert not saved & set(hass_storage)


async def test_twenty_reloads_leave_one_of_everything(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_node: FakeNode
) -> None:
    for _ in range(20):
        assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert len(meshbot_tasks()) == 3
    await until(lambda: all(state_of(hass, sensor) == STATE_ON for sensor in ALL_SENSORS))
    await until(lambda: fake_node.client_count == 1, timeout=5)
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert meshbot_tasks() == []
    await until(lambda: fake_node.client_count == 0, timeout=5)


async def test_home_assistant_stop_ends_the_links(
    hass: HomeAssistant, init_integration: MockConfigEntry, fake_node: FakeNode
) -> None:
    await until(lambda: state_of(hass, RADIO) == STATE_ON)
    async with asyncio.timeout(5):
        await hass.async_stop()
    assert meshbot_tasks() == []
    await until(lambda: fake_node.client_count == 0, timeout=5)


async def test_messages_arrive_on_the_subscribed_topics(
    hass: HomeAssistant,
    hass_client: Any,
    init_integration: MockConfigEntry,
    broker: MosquittoBroker,
) -> None:
    await until(lambda: state_of(hass, MESH) == STATE_ON and state_of(hass, LIGHTNING) == STATE_ON)
    await asyncio.sleep(0.2)
    near = encode(hass.config.latitude, hass.config.longitude, 8)
    far = encode(-hass.config.latitude, hass.config.longitude + 90, 8)
    for tile in (near, far):
        await hass.async_add_executor_job(
            publish, broker, "blitzortung/1.1/" + "/".join(tile), b'{"lat": 0}'
        )
    await hass.async_add_executor_job(publish, broker, "msh/EU_868/2/e/LongFast/!0000abcd", b"\x0a")
    await hass.async_add_executor_job(publish, broker, "msh/US/2/e/LongFast/!0000abcd", b"\x0a")

    async def messages() -> tuple[int, int]:
        links = (await get_diagnostics_for_config_entry(hass, hass_client, init_integration))[
            "links"
        ]
        return links["lightning"]["messages"], links["mesh"]["messages"]

    async with asyncio.timeout(10):
        while not all(await messages()):
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    lightning_messages, mesh_messages = await messages()
    assert lightning_messages == 1, "only tiles around home"
    assert mesh_messages == 1, "only the configured root topic"
    # The last-message attribute is refreshed once a minute, not on every message.
    assert hass.states.get(LIGHTNING).attributes["last_message"] is None
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_block_till_done()
    assert hass.states.get(LIGHTNING).attributes["last_message"] is not None


async def test_diagnostics_never_show_secrets(
    hass: HomeAssistant, hass_client: Any, auth_broker: MosquittoBroker, fake_node: FakeNode
) -> None:
    entry = entry_for(
        radio=radio_section(fake_node.port),
        mesh=broker_section(
            auth_broker.port, **{CONF_USERNAME: MESH_USER, CONF_PASSWORD: MESH_PASSWORD}
        ),
        lightning=broker_section(auth_broker.port),
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=entry.title,
        data={
            **entry.data,
            "lightning": {
                **entry.data["lightning"],
                CONF_LOCATION_MODE: LOCATION_FIXED,
                CONF_LOCATION: {CONF_LATITUDE: 45.123456, CONF_LONGITUDE: 6.654321},
            },
        },
        options={
            **entry.options,
            "channel_keys": {"Secret": "c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU2Nzg5MDEy"},
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: state_of(hass, RADIO) == STATE_ON)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    dumped = json.dumps(diagnostics)
    for secret in (
        MESH_PASSWORD,
        MESH_USER,
        "c2VjcmV0a2V5",
        "45.123",
        "6.654",
        str(hass.config.latitude),
    ):
        assert secret not in dumped
    assert diagnostics["links"]["radio"]["radio"]["node_num"] == fake_node.node_num
    assert diagnostics["links"]["radio"]["state"]["connected"] is True
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("data", "state"),
    [
        ({CONF_MESH: {CONF_PORT: 1883}}, ConfigEntryState.SETUP_ERROR),
        ({CONF_RADIO: {CONF_CONNECTION: CONNECTION_TCP}}, ConfigEntryState.SETUP_ERROR),
        (
            {
                CONF_LIGHTNING: {
                    CONF_HOST: "127.0.0.1",
                    CONF_PORT: 1883,
                    CONF_LOCATION_MODE: "fixed",
                }
            },
            ConfigEntryState.SETUP_ERROR,
        ),
    ],
    ids=["mesh-without-host", "radio-without-host", "fixed-place-without-coordinates"],
)
async def test_diagnostics_answer_in_any_entry_state(
    hass: HomeAssistant,
    hass_client: Any,
    data: dict[str, Any],
    state: ConfigEntryState,
) -> None:
    # Settings a hand edit or an older meshbot stored: setup fails with a reason, not a traceback.
    entry = MockConfigEntry(
        domain=DOMAIN, title="meshbot: test", data=data, options={CONF_CHANNEL_KEYS: {}}
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is state
    assert entry.reason is not None
    assert "saved settings cannot be used" in entry.reason

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["entry"]["state"] == state.value
    assert diagnostics["entry"]["reason"] == entry.reason
    assert diagnostics["entry"]["data"] == data
    assert diagnostics["links"] == {}
    assert diagnostics["mesh"] is None


async def test_diagnostics_of_an_unloaded_entry_show_no_stale_links(
    hass: HomeAssistant, hass_client: Any, init_integration: MockConfigEntry
) -> None:
    running = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert set(running["links"]) == {"radio", "mesh", "lightning"}
    assert running["entry"]["state"] == ConfigEntryState.LOADED.value

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    stopped = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert stopped["entry"]["state"] == ConfigEntryState.NOT_LOADED.value
    assert stopped["links"] == {}
    assert stopped["mesh"] is None
