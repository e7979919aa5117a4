"""Connectivity of each link, as a diagnostic binary sensor that is always available."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
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
from .data import MeshbotConfigEntry
from .entity import MeshbotEntity

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


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeshbotConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a connectivity sensor for every configured link."""
    hub = entry.runtime_data.hub
    async_add_entities(
        LinkConnectivitySensor(entry, description)
        for description in CONNECTIVITY_DESCRIPTIONS
        if description.link in hub.supervisors
    )
    if hub.lightning is not None:
        async_add_entities([LightningNearbySensor(entry, NEARBY)])


def _timestamp(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat() if value is not None else None


class LinkConnectivitySensor(MeshbotEntity, BinarySensorEntity):
    """Whether a link is connected, with why it is not and when it last heard something."""

    entity_description: LinkConnectivityDescription
    # Refreshed every minute while traffic flows: history of it would only fill the database.
    _unrecorded_attributes = frozenset({"last_message"})

    async def async_added_to_hass(self) -> None:
        """Follow the link's state changes."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.hub.async_add_listener(self.entity_description.link, self.async_write_ha_state)
        )

    @property
    def is_on(self) -> bool:
        """Return whether the link is connected."""
        return self.hub.supervisors[self.entity_description.link].state.connected

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """Return the last error, the last message time and the reconnect count."""
        kind = self.entity_description.link
        state = self.hub.supervisors[kind].state
        return {
            "last_error": state.last_error,
            "last_message": _timestamp(self.hub.links[kind].last_message_at),
            "connected_since": _timestamp(state.connected_since),
            "reconnects": state.reconnects,
        }


class LightningNearbySensor(MeshbotEntity, BinarySensorEntity):
    """On while lightning is nearby: N strikes within the alert distance in M minutes."""

    async def async_added_to_hass(self) -> None:
        """Follow the lightning monitor."""
        await super().async_added_to_hass()
        assert self.hub.lightning is not None
        self.async_on_remove(self.hub.lightning.async_add_listener(self.async_write_ha_state))

    @property
    def is_on(self) -> bool:
        """Return whether the alert is on."""
        assert self.hub.lightning is not None
        return self.hub.lightning.alert.active

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """Return the alert's settings and when it started."""
        monitor = self.hub.lightning
        assert monitor is not None
        settings = monitor.alert_settings
        return {
            "alert_distance_km": settings.distance_km,
            "strikes_needed": settings.strikes,
            "period_minutes": settings.period_s / 60,
            "quiet_minutes": settings.quiet_s / 60,
            "since": _timestamp(monitor.alert.since),
        }
