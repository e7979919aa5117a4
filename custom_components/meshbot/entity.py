"""Base entity for meshbot: one service device per config entry."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN
from .data import MeshbotConfigEntry
from .runtime import MeshbotHub


class MeshbotEntity(Entity):
    """An entity of the meshbot hub device."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: MeshbotConfigEntry, description: EntityDescription) -> None:
        """Attach the entity to the entry's hub device."""
        self.entity_description = description
        self.hub: MeshbotHub = entry.runtime_data.hub
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer="meshbot",
            model="Mesh and lightning hub",
            entry_type=DeviceEntryType.SERVICE,
        )
