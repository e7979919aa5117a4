"""meshbot: Meshtastic mesh and Blitzortung lightning for Home Assistant."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant

from .data import MeshbotConfigEntry, MeshbotRuntime
from .runtime import MeshbotHub

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR]


async def async_setup_entry(hass: HomeAssistant, entry: MeshbotConfigEntry) -> bool:
    """Set up meshbot; the links connect in the background, never before this returns."""
    hub = MeshbotHub(hass, entry)
    entry.runtime_data = MeshbotRuntime(hub=hub)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    hub.async_start()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: MeshbotConfigEntry) -> bool:
    """Unload meshbot; the entry cancels the link tasks, which close their sockets."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
