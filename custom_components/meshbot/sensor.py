"""Sensors: the mesh as a whole (on the hub device) and each tracked node (on its device)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    DEGREE,
    LIGHT_LUX,
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfLength,
    UnitOfMass,
    UnitOfPrecipitationDepth,
    UnitOfPressure,
    UnitOfSpeed,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import MeshbotConfigEntry
from .entity import (
    MeshbotEntity,
    MeshNodeEntity,
    async_setup_node_entities,
    radio_device_info,
    radio_device_link,
)
from .lightning.window import Direction, WindowSummary
from .lightning_coordinator import LightningCoordinator
from .mesh.models import POWER_CHANNELS, LinkSource
from .mesh.state import MeshState, Node
from .mesh_coordinator import MeshCoordinator, MeshSnapshot

PARALLEL_UPDATES = 0


def _time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


@dataclass(frozen=True, kw_only=True)
class MeshSensorDescription(SensorEntityDescription):
    """Describe a sensor of the mesh as a whole, or of the local radio."""

    value_fn: Callable[[MeshSnapshot], Any]


@dataclass(frozen=True, kw_only=True)
class NodeSensorDescription(SensorEntityDescription):
    """Describe a sensor of one node."""

    value_fn: Callable[[Node, MeshState], Any]


def _links(source: LinkSource) -> Callable[[MeshSnapshot], int]:
    return lambda mesh: mesh.links_by_source.get(source, 0)


MESH_SENSORS = (
    MeshSensorDescription(
        key="nodes_known",
        translation_key="nodes_known",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda mesh: mesh.nodes_known,
    ),
    MeshSensorDescription(
        key="nodes_active",
        translation_key="nodes_active",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda mesh: mesh.nodes_active,
    ),
    *(
        MeshSensorDescription(
            key=f"links_{source}",
            translation_key=f"links_{source}",
            state_class=SensorStateClass.MEASUREMENT,
            value_fn=_links(source),
        )
        for source in LinkSource
    ),
    MeshSensorDescription(
        key="messages_per_minute",
        translation_key="messages_per_minute",
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement="messages/min",
        value_fn=lambda mesh: mesh.messages_per_minute,
    ),
    MeshSensorDescription(
        key="undecodable_messages",
        translation_key="undecodable_messages",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda mesh: mesh.undecodable,
    ),
    MeshSensorDescription(
        key="last_message",
        translation_key="last_message",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda mesh: _time(mesh.last_message_at),
    ),
)


def _battery(node: Node, _state: MeshState) -> float | None:
    level = node.telemetry.get("battery_level")
    # Levels over 100 mean "on external power".
    return None if level is None else min(round(level), 100)


NODE_SENSORS = (
    NodeSensorDescription(
        key="last_heard",
        translation_key="last_heard",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda node, _: _time(node.last_heard),
    ),
    NodeSensorDescription(
        key="snr",
        translation_key="snr",
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS,
        # Radios measure SNR in quarter dB; a float32 from a simulator shows its noise digits.
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node, _: node.snr,
    ),
    NodeSensorDescription(
        key="rssi",
        translation_key="rssi",
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node, _: node.rssi,
    ),
    NodeSensorDescription(
        key="hops_away",
        translation_key="hops_away",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda node, _: node.hops_away,
    ),
    NodeSensorDescription(
        key="battery",
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_battery,
    ),
    NodeSensorDescription(
        key="voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node, _: node.telemetry.get("voltage"),
    ),
    NodeSensorDescription(
        key="channel_utilization",
        translation_key="channel_utilization",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node, _: node.telemetry.get("channel_utilization"),
    ),
    NodeSensorDescription(
        key="air_util_tx",
        translation_key="air_util_tx",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node, _: node.telemetry.get("air_util_tx"),
    ),
    NodeSensorDescription(
        key="neighbor_count",
        translation_key="neighbor_count",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda node, state: state.neighbor_summary(node.num)[0],
    ),
    NodeSensorDescription(
        key="best_neighbor_snr",
        translation_key="best_neighbor_snr",
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node, state: state.neighbor_summary(node.num)[1],
    ),
)


def _radio(
    telemetry_key: str, scale: Callable[[float], Any] = round
) -> Callable[[MeshSnapshot], Any]:
    """Read a figure from the radio's own node record, if it sent one."""

    def value(mesh: MeshSnapshot) -> Any:
        raw = mesh.radio_telemetry.get(telemetry_key)
        return None if raw is None else scale(raw)

    return value


RADIO_SENSORS = (
    MeshSensorDescription(
        key="radio_battery",
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_radio("battery_level", lambda level: min(round(level), 100)),
    ),
    MeshSensorDescription(
        key="radio_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        entity_registry_enabled_default=False,
        value_fn=_radio("voltage", float),
    ),
    MeshSensorDescription(
        key="radio_channel_utilization",
        translation_key="channel_utilization",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=_radio("channel_utilization", float),
    ),
    MeshSensorDescription(
        key="radio_air_util_tx",
        translation_key="air_util_tx",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_registry_enabled_default=False,
        value_fn=_radio("air_util_tx", float),
    ),
    MeshSensorDescription(
        key="radio_uptime",
        translation_key="uptime",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_radio("uptime_seconds"),
    ),
    *(
        MeshSensorDescription(
            key=f"radio_{name}",
            translation_key=name,
            state_class=state_class,
            entity_category=EntityCategory.DIAGNOSTIC,
            entity_registry_enabled_default=name == "online_nodes",
            value_fn=_radio(f"num_{name}"),
        )
        for name, state_class in (
            ("packets_rx", SensorStateClass.TOTAL_INCREASING),
            ("packets_tx", SensorStateClass.TOTAL_INCREASING),
            ("packets_rx_bad", SensorStateClass.TOTAL_INCREASING),
            ("tx_relay", SensorStateClass.TOTAL_INCREASING),
            ("online_nodes", SensorStateClass.MEASUREMENT),
            ("total_nodes", SensorStateClass.MEASUREMENT),
        )
    ),
)


def _measured(
    key: str, precision: int, translation_placeholders: dict[str, str] | None = None, **kwargs: Any
) -> SensorEntityDescription:
    return SensorEntityDescription(
        key=key,
        translation_key=kwargs.pop("translation_key", key),
        translation_placeholders=translation_placeholders,
        state_class=kwargs.pop("state_class", SensorStateClass.MEASUREMENT),
        suggested_display_precision=precision,
        **kwargs,
    )


def _temperature(key: str) -> SensorEntityDescription:
    return _measured(
        key,
        1,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
    )


def _lux(key: str) -> SensorEntityDescription:
    return _measured(
        key, 0, device_class=SensorDeviceClass.ILLUMINANCE, native_unit_of_measurement=LIGHT_LUX
    )


def _wind(key: str) -> SensorEntityDescription:
    return _measured(
        key,
        1,
        device_class=SensorDeviceClass.WIND_SPEED,
        native_unit_of_measurement=UnitOfSpeed.METERS_PER_SECOND,
    )


def _rainfall(key: str) -> SensorEntityDescription:
    return _measured(
        key,
        1,
        device_class=SensorDeviceClass.PRECIPITATION,
        native_unit_of_measurement=UnitOfPrecipitationDepth.MILLIMETERS,
    )


# What the environment and power telemetry measure, in the units the firmware sends them in
# (telemetry.proto); Home Assistant converts those of a device class to the user's units.
METRICS: tuple[SensorEntityDescription, ...] = (
    _temperature("temperature"),
    _measured(
        "relative_humidity",
        0,
        device_class=SensorDeviceClass.HUMIDITY,
        native_unit_of_measurement=PERCENTAGE,
    ),
    _measured(
        "barometric_pressure",
        1,
        device_class=SensorDeviceClass.ATMOSPHERIC_PRESSURE,
        native_unit_of_measurement=UnitOfPressure.HPA,
    ),
    # Home Assistant has no device class for resistance: shown as sent, in megaohms.
    _measured("gas_resistance", 2, native_unit_of_measurement="MΩ"),
    # Bosch's indoor air quality index (0-500), not an outdoor AQI.
    _measured("iaq", 0),
    _lux("lux"),
    _lux("white_lux"),
    _lux("ir_lux"),
    _lux("uv_lux"),
    _wind("wind_speed"),
    _wind("wind_gust"),
    _wind("wind_lull"),
    _measured(
        "wind_direction",
        0,
        device_class=SensorDeviceClass.WIND_DIRECTION,
        native_unit_of_measurement=DEGREE,
        state_class=SensorStateClass.MEASUREMENT_ANGLE,
    ),
    _rainfall("rainfall_1h"),
    _rainfall("rainfall_24h"),
    _measured(
        "soil_moisture",
        0,
        device_class=SensorDeviceClass.MOISTURE,
        native_unit_of_measurement=PERCENTAGE,
    ),
    _temperature("soil_temperature"),
    _measured(
        "distance",
        0,
        device_class=SensorDeviceClass.DISTANCE,
        native_unit_of_measurement=UnitOfLength.MILLIMETERS,
    ),
    _measured(
        "weight",
        2,
        device_class=SensorDeviceClass.WEIGHT,
        native_unit_of_measurement=UnitOfMass.KILOGRAMS,
    ),
    _measured("radiation", 1, native_unit_of_measurement="µR/h"),
    *(
        description
        for channel in POWER_CHANNELS
        for description in (
            _measured(
                f"ch{channel}_voltage",
                2,
                {"channel": str(channel)},
                translation_key="power_channel_voltage",
                device_class=SensorDeviceClass.VOLTAGE,
                native_unit_of_measurement=UnitOfElectricPotential.VOLT,
            ),
            _measured(
                f"ch{channel}_current",
                0,
                {"channel": str(channel)},
                translation_key="power_channel_current",
                device_class=SensorDeviceClass.CURRENT,
                native_unit_of_measurement=UnitOfElectricCurrent.MILLIAMPERE,
            ),
        )
    ),
)


def _described(metric: SensorEntityDescription) -> dict[str, Any]:
    return {field.name: getattr(metric, field.name) for field in fields(metric)}


def _node_metric(key: str) -> Callable[[Node, MeshState], Any]:
    return lambda node, _: node.telemetry.get(key)


NODE_METRIC_SENSORS = {
    metric.key: NodeSensorDescription(**_described(metric), value_fn=_node_metric(metric.key))
    for metric in METRICS
}
RADIO_METRIC_SENSORS = {
    metric.key: MeshSensorDescription(
        **(_described(metric) | {"key": f"radio_{metric.key}"}),
        value_fn=_radio(metric.key, float),
    )
    for metric in METRICS
}


@dataclass(frozen=True, kw_only=True)
class LightningSensorDescription(SensorEntityDescription):
    """Describe a sensor of the strikes around the watched place."""

    value_fn: Callable[[WindowSummary], Any]
    attributes_fn: Callable[[WindowSummary], dict[str, Any]] | None = None


def _trend_attributes(summary: WindowSummary) -> dict[str, Any]:
    trend = summary.trend
    if trend is None:
        return {}
    return {
        "speed_km_min": round(trend.speed_km_min, 2),
        "fitted_distance_km": round(trend.distance_km, 1),
        "strikes_used": trend.strikes,
    }


LIGHTNING_SENSORS = (
    LightningSensorDescription(
        key="strike_count",
        translation_key="strike_count",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda summary: summary.count,
    ),
    LightningSensorDescription(
        key="nearest_strike_distance",
        translation_key="nearest_strike_distance",
        device_class=SensorDeviceClass.DISTANCE,
        native_unit_of_measurement=UnitOfLength.KILOMETERS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda summary: summary.nearest.distance_km if summary.nearest else None,
    ),
    LightningSensorDescription(
        key="nearest_strike_azimuth",
        translation_key="nearest_strike_azimuth",
        native_unit_of_measurement=DEGREE,
        state_class=SensorStateClass.MEASUREMENT_ANGLE,
        suggested_display_precision=0,
        value_fn=lambda summary: summary.nearest.azimuth if summary.nearest else None,
        attributes_fn=lambda summary: (
            {"compass": summary.nearest.compass} if summary.nearest else {}
        ),
    ),
    LightningSensorDescription(
        key="last_strike",
        translation_key="last_strike",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda summary: _time(summary.last_time),
    ),
    LightningSensorDescription(
        key="strike_rate",
        translation_key="strike_rate",
        native_unit_of_measurement="strikes/10 min",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda summary: summary.rate_per_10min,
    ),
    LightningSensorDescription(
        key="storm_trend",
        translation_key="storm_trend",
        device_class=SensorDeviceClass.ENUM,
        options=[str(direction) for direction in Direction],
        value_fn=lambda summary: str(summary.trend.direction) if summary.trend else None,
        attributes_fn=_trend_attributes,
    ),
    LightningSensorDescription(
        key="storm_speed",
        translation_key="storm_speed",
        device_class=SensorDeviceClass.SPEED,
        native_unit_of_measurement=UnitOfSpeed.KILOMETERS_PER_HOUR,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda summary: summary.trend.speed_km_min * 60 if summary.trend else None,
    ),
    LightningSensorDescription(
        key="storm_arrival",
        translation_key="storm_arrival",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda summary: _time(summary.trend.eta) if summary.trend else None,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeshbotConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the mesh sensors, and the node sensors of every tracked node as it appears."""
    runtime = entry.runtime_data
    if (lightning := runtime.lightning) is not None:
        async_add_entities(
            LightningSensor(entry, lightning, description) for description in LIGHTNING_SENSORS
        )
    if (mesh := runtime.mesh) is None:
        return
    async_add_entities(MeshSensor(entry, mesh, description) for description in MESH_SENSORS)
    if runtime.radio is not None:
        radio_device = radio_device_info(entry)
        async_add_entities(
            MeshSensor(entry, mesh, description, radio_device) for description in RADIO_SENSORS
        )
        radio_metrics: set[str] = set()

        @callback
        def add_radio_metrics() -> None:
            fresh = [
                key
                for key in mesh.data.radio_telemetry
                if key in RADIO_METRIC_SENSORS and key not in radio_metrics
            ]
            if fresh:
                radio_metrics.update(fresh)
                async_add_entities(
                    MeshSensor(entry, mesh, RADIO_METRIC_SENSORS[key], radio_device_link(entry))
                    for key in fresh
                )

        add_radio_metrics()
        entry.async_on_unload(mesh.async_add_listener(add_radio_metrics))

    async_setup_node_entities(
        entry,
        mesh,
        async_add_entities,
        lambda num: [NodeSensor(entry, mesh, num, description) for description in NODE_SENSORS],
    )
    # What each node's metric sensors measure: a node gets one only once it reported the metric.
    node_metrics: dict[int, set[str]] = {}

    def build_metric_sensors(num: int) -> list[NodeSensor]:
        node = mesh.state.nodes.get(num)
        if node is None:
            return []
        made = node_metrics.setdefault(num, set())
        fresh = [key for key in node.telemetry if key in NODE_METRIC_SENSORS and key not in made]
        made.update(fresh)
        return [
            MetricSensor(entry, mesh, num, NODE_METRIC_SENSORS[key], made.discard) for key in fresh
        ]

    async_setup_node_entities(entry, mesh, async_add_entities, build_metric_sensors, grows=True)


class MeshSensor(MeshbotEntity[MeshCoordinator], SensorEntity):
    """A figure about the whole mesh, or one the local radio reports about itself."""

    entity_description: MeshSensorDescription

    @property
    def native_value(self) -> Any:
        """Return the figure."""
        return self.entity_description.value_fn(self.coordinator.data)


class NodeSensor(MeshNodeEntity, SensorEntity):
    """A figure about one node."""

    entity_description: NodeSensorDescription

    @property
    def native_value(self) -> Any:
        """Return the figure, or None when the node never reported it."""
        node = self.node
        return None if node is None else self.entity_description.value_fn(node, self.mesh.state)

    def _fingerprint(self) -> object:
        return (self.available, self.native_value)


class MetricSensor(NodeSensor):
    """A metric a node's sensors measure; made again if its device is deleted and comes back."""

    def __init__(
        self,
        entry: MeshbotConfigEntry,
        mesh: MeshCoordinator,
        num: int,
        description: NodeSensorDescription,
        forget: Callable[[str], None],
    ) -> None:
        """Attach the sensor to the node's device; `forget` is told when it is removed."""
        super().__init__(entry, mesh, num, description)
        self._forget = forget

    async def async_will_remove_from_hass(self) -> None:
        """Let the metric's sensor be made again if the node returns."""
        self._forget(self.entity_description.key)
        await super().async_will_remove_from_hass()


class LightningSensor(MeshbotEntity[LightningCoordinator], SensorEntity):
    """A figure about the strikes around the watched place; distances in the user's units."""

    entity_description: LightningSensorDescription

    @property
    def native_value(self) -> Any:
        """Return the figure."""
        return self.entity_description.value_fn(self.coordinator.data.summary)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return the details some figures carry (compass point, trend fit)."""
        attributes_fn = self.entity_description.attributes_fn
        if attributes_fn is None:
            return None
        return attributes_fn(self.coordinator.data.summary)
