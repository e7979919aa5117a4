"""Node devices as a user sees them through the radio: telemetry sensors and the online sensor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
from homeassistant.util.unit_system import US_CUSTOMARY_SYSTEM
from meshtastic.protobuf import portnums_pb2, telemetry_pb2
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.meshbot.const import CONF_NODE_POLICY, DOMAIN, POLICY_ALL
from custom_components.meshbot.mesh.models import ENVIRONMENT_METRICS, POWER_METRICS
from custom_components.meshbot.sensor import METRICS
from meshbot_dev.entries import entry_for, radio_section
from meshbot_dev.fake_node import FakeNode, heard

from .support.seen import later
from .support.waiting import until

RADIO_LINK = "binary_sensor.meshbot_test_radio_link"
GREENHOUSE = 0x10000000


def tracking_all(port: int) -> MockConfigEntry:
    """Return a radio entry that makes every node it hears a device."""
    template = entry_for(radio=radio_section(port))
    return MockConfigEntry(
        domain=DOMAIN,
        title=template.title,
        data=template.data,
        options={**template.options, CONF_NODE_POLICY: POLICY_ALL},
    )


@pytest.fixture
async def radio_entry(hass: HomeAssistant, fake_node: FakeNode) -> MockConfigEntry:
    entry = tracking_all(fake_node.port)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: (state := hass.states.get(RADIO_LINK)) and state.state == "on")
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)


async def flush_until(hass: HomeAssistant, condition: Callable[[], object]) -> None:
    """Run the mesh's once-a-second flushes until `condition()` holds."""
    async with asyncio.timeout(10):
        while not condition():
            async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=1.1))
            await hass.async_block_till_done()
            await asyncio.sleep(0.01)


def report(fake_node: FakeNode, sender: int, packet_id: int, telemetry: telemetry_pb2.Telemetry):
    """Have the radio hear `sender`'s telemetry."""
    fake_node.broadcast(heard(sender, packet_id, portnums_pb2.TELEMETRY_APP, telemetry))


def metric_entities(hass: HomeAssistant, entry: MockConfigEntry, prefix: str) -> dict[str, str]:
    """Return the entity ids of the metric sensors whose unique id starts with `prefix`."""
    metrics = {metric.key for metric in METRICS}
    return {
        key: entity.entity_id
        for entity in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if entity.unique_id.startswith(prefix)
        and (key := entity.unique_id.removeprefix(prefix)) in metrics
    }


def test_every_kept_metric_has_a_sensor() -> None:
    assert {metric.key for metric in METRICS} == ENVIRONMENT_METRICS | POWER_METRICS


async def test_a_first_environment_report_creates_exactly_its_sensors(
    hass: HomeAssistant, fake_node: FakeNode
) -> None:
    hass.config.units = US_CUSTOMARY_SYSTEM
    entry = tracking_all(fake_node.port)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: (state := hass.states.get(RADIO_LINK)) and state.state == "on")
    prefix = f"{entry.entry_id}_!{GREENHOUSE:08x}_"
    await flush_until(hass, lambda: hass.states.get("sensor.node_10000000_last_heard"))
    assert metric_entities(hass, entry, prefix) == {}, "no report, no metric sensor"

    report(
        fake_node,
        GREENHOUSE,
        501,
        telemetry_pb2.Telemetry(
            environment_metrics=telemetry_pb2.EnvironmentMetrics(
                temperature=1.5, relative_humidity=81.0, barometric_pressure=1013.2, wind_speed=5.0
            )
        ),
    )
    await flush_until(hass, lambda: len(metric_entities(hass, entry, prefix)) == 4)
    entities = metric_entities(hass, entry, prefix)
    assert entities.keys() == {
        "temperature",
        "relative_humidity",
        "barometric_pressure",
        "wind_speed",
    }
    await flush_until(hass, lambda: hass.states.get(entities["wind_speed"]))
    temperature = hass.states.get(entities["temperature"])
    # 1.5 °C in the user's Fahrenheit, to the suggested tenth.
    assert temperature.state == "34.7"
    assert temperature.attributes[ATTR_UNIT_OF_MEASUREMENT] == "°F"
    assert temperature.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.TEMPERATURE
    assert temperature.attributes["state_class"] == "measurement"
    assert temperature.name == "Node 10000000 Temperature"
    pressure = hass.states.get(entities["barometric_pressure"])
    assert pressure.attributes[ATTR_UNIT_OF_MEASUREMENT] == "inHg"
    assert float(pressure.state) == pytest.approx(29.92, abs=0.01)
    wind = hass.states.get(entities["wind_speed"])
    assert wind.attributes[ATTR_UNIT_OF_MEASUREMENT] == "mph"
    assert float(wind.state) == pytest.approx(11.18, abs=0.01)
    humidity = hass.states.get(entities["relative_humidity"])
    assert (humidity.state, humidity.attributes[ATTR_UNIT_OF_MEASUREMENT]) == ("81.0", "%")

    # A later report with one more metric adds only that one; the others follow its values.
    report(
        fake_node,
        GREENHOUSE,
        502,
        telemetry_pb2.Telemetry(
            environment_metrics=telemetry_pb2.EnvironmentMetrics(temperature=-2.0, lux=120.0)
        ),
    )
    await flush_until(hass, lambda: len(metric_entities(hass, entry, prefix)) == 5)
    await flush_until(hass, lambda: hass.states.get(entities["temperature"]).state == "28.4")
    lux = hass.states.get(metric_entities(hass, entry, prefix)["lux"])
    assert (lux.state, lux.attributes[ATTR_UNIT_OF_MEASUREMENT]) == ("120.0", "lx")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_power_channels_and_radio_telemetry_on_the_radio_device_survive_a_restart(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    entry = radio_entry
    radio_prefix = f"{entry.entry_id}_radio_"
    report(
        fake_node,
        fake_node.node_num,
        601,
        telemetry_pb2.Telemetry(
            power_metrics=telemetry_pb2.PowerMetrics(
                ch1_voltage=12.6, ch1_current=350.0, ch3_voltage=5.05
            )
        ),
    )
    report(
        fake_node,
        fake_node.node_num,
        602,
        telemetry_pb2.Telemetry(
            environment_metrics=telemetry_pb2.EnvironmentMetrics(temperature=21.25)
        ),
    )
    await flush_until(hass, lambda: len(metric_entities(hass, entry, radio_prefix)) == 4)
    radio = metric_entities(hass, entry, radio_prefix)
    assert radio.keys() == {"ch1_voltage", "ch1_current", "ch3_voltage", "temperature"}
    await flush_until(hass, lambda: all(hass.states.get(eid) for eid in radio.values()))
    registry = er.async_get(hass)
    radio_device = registry.async_get(radio["ch1_voltage"]).device_id
    assert {registry.async_get(eid).device_id for eid in radio.values()} == {radio_device}
    assert dr.async_get(hass).async_get(radio_device).name == "Fake Base"
    voltage = hass.states.get(radio["ch1_voltage"])
    assert (voltage.state, voltage.attributes[ATTR_UNIT_OF_MEASUREMENT]) == ("12.6", "V")
    assert voltage.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.VOLTAGE
    assert voltage.name.endswith("Channel 1 voltage")
    current = hass.states.get(radio["ch1_current"])
    assert (current.state, current.attributes[ATTR_UNIT_OF_MEASUREMENT]) == ("350.0", "mA")
    assert hass.states.get(radio["temperature"]).state == "21.25"

    # The radio's node is also a node device (every node is tracked): its sensors too.
    node_prefix = f"{entry.entry_id}_!{fake_node.node_num:08x}_"
    await flush_until(hass, lambda: len(metric_entities(hass, entry, node_prefix)) == 4)
    node = metric_entities(hass, entry, node_prefix)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await fake_node.stop()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    # Made from the saved mesh before the radio answers, with the same entity ids: their history
    # goes on.
    assert metric_entities(hass, entry, node_prefix) == node
    assert hass.states.get(node["ch1_voltage"]).state == "12.6"
    assert hass.states.get(node["temperature"]).state == "21.25"
    assert metric_entities(hass, entry, radio_prefix) == radio


async def test_a_node_is_online_while_heard_within_the_active_window(
    hass: HomeAssistant, frozen: FrozenDateTimeFactory, fake_node: FakeNode
) -> None:
    entry = tracking_all(fake_node.port)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: (state := hass.states.get(RADIO_LINK)) and state.state == "on")
    online = "binary_sensor.node_10000000_online"
    await flush_until(hass, lambda: hass.states.get(online))
    state = hass.states.get(online)
    # The radio's node database last heard it in 2023.
    assert state.state == "off"
    assert state.attributes[ATTR_DEVICE_CLASS] == BinarySensorDeviceClass.CONNECTIVITY
    assert state.name == "Node 10000000 Online"

    report(
        fake_node,
        GREENHOUSE,
        701,
        telemetry_pb2.Telemetry(device_metrics=telemetry_pb2.DeviceMetrics(battery_level=90)),
    )
    await flush_until(hass, lambda: hass.states.get(online).state == "on")

    # Nearly two hours (the default active window) of silence: still online.
    await later(hass, frozen, 119 * 60)
    assert hass.states.get(online).state == "on"
    # News within the window restarts it.
    report(
        fake_node,
        GREENHOUSE,
        702,
        telemetry_pb2.Telemetry(device_metrics=telemetry_pb2.DeviceMetrics(battery_level=89)),
    )
    await flush_until(hass, lambda: hass.states.get("sensor.node_10000000_battery").state == "89")
    await later(hass, frozen, 119 * 60)
    assert hass.states.get(online).state == "on"
    await later(hass, frozen, 2 * 60)
    assert hass.states.get(online).state == "off"
    await hass.config_entries.async_unload(entry.entry_id)
