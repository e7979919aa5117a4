"""Connectivity of each link (diagnostic, always available), lightning nearby, nodes online."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
import time
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import LinkKind
from .coordinator import LinkCoordinator
from .data import MeshbotConfigEntry
from .entity import MeshbotEntity, MeshNodeEntity, async_setup_node_entities
from .lightning_coordinator import LightningCoordinator

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class LinkConnectivityDescription(BinarySensorEntityDescription):
    """Describe the connectivity sensor of one link."""

    link: LinkKind


CONNECTIVITY_DESCRIPTIONS = tuple(
    LinkConnectivityDescription(
        key=f"{kind}_connectivity",
        translation_key=f"{kind}_connectivity",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        link=kind,
    )
    for kind in LinkKind
)


NEARBY = BinarySensorEntityDescription(
    key="lightning_nearby",
    translation_key="lightning_nearby",
    device_class=BinarySensorDeviceClass.SAFETY,
)

ONLINE = BinarySensorEntityDescription(
    key="online",
    translation_key="online",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeshbotConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a connectivity sensor for every configured link."""
    runtime = entry.runtime_data
    links = runtime.links
    async_add_entities(
        LinkConnectivitySensor(entry, links[description.link], description)
        for description in CONNECTIVITY_DESCRIPTIONS
        if description.link in links
    )
    if runtime.lightning is not None:
        async_add_entities([LightningNearbySensor(entry, runtime.lightning, NEARBY)])
    if (mesh := runtime.mesh) is not None:
        async_setup_node_entities(
            entry,
            mesh,
            async_add_entities,
            lambda num: [NodeOnlineSensor(entry, mesh, num, ONLINE)],
        )


def _timestamp(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat() if value is not None else None


class LinkConnectivitySensor(MeshbotEntity[LinkCoordinator[Any]], BinarySensorEntity):
    """Whether a link is connected, with why it is not and when it last heard something."""

    entity_description: LinkConnectivityDescription
    # Refreshed every minute while traffic flows: history of it would only fill the database.
    _unrecorded_attributes = frozenset({"last_message"})

    @property
    def is_on(self) -> bool:
        """Return whether the link is connected."""
        return self.coordinator.data.connected

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """Return the last error, the last message time and the reconnect count."""
        status = self.coordinator.data
        return {
            "last_error": status.last_error,
            "last_message": _timestamp(status.last_message_at),
            "connected_since": _timestamp(status.connected_since),
            "reconnects": status.reconnects,
        }


class LightningNearbySensor(MeshbotEntity[LightningCoordinator], BinarySensorEntity):
    """On while lightning is nearby: N strikes within the alert distance in M minutes."""

    @property
    def is_on(self) -> bool:
        """Return whether the alert is on."""
        return self.coordinator.data.alert_active

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """Return the alert's settings and when it started."""
        settings = self.coordinator.alert_settings
        return {
            "alert_distance_km": settings.distance_km,
            "strikes_needed": settings.strikes,
            "period_minutes": settings.period_s / 60,
            "quiet_minutes": settings.quiet_s / 60,
            "since": _timestamp(self.coordinator.data.alert_since),
        }


class NodeOnlineSensor(MeshNodeEntity, BinarySensorEntity):
    """On while the node was heard within the active window (the "Nodes active" count's).

    The mesh coordinator tells the sensor when its node falls silent, within 10 s.
    """

    @property
    def is_on(self) -> bool:
        """Return whether the node was heard within the active window."""
        node = self.node
        return node is not None and self.mesh.is_online(node, time.time())

    def _fingerprint(self) -> object:
        return (self.available, self.is_on)
