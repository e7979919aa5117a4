"""meshbot: Meshtastic mesh and Blitzortung lightning for Home Assistant."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
from .data import MeshbotConfigEntry, MeshbotRuntime
from .entity import hub_device_info
from .frontend import async_register_card
from .mesh.models import parse_node_id
from .persistence import async_remove_snapshots
from .runtime import MeshbotHub
from .services import async_setup_services

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.DEVICE_TRACKER,
    Platform.EVENT,
    Platform.GEO_LOCATION,
    Platform.SENSOR,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions and the topology card once, whatever entries exist."""
    async_setup_services(hass)
    await async_register_card(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: MeshbotConfigEntry) -> bool:
    """Set up meshbot; the links connect in the background, never before this returns."""
    hub = MeshbotHub(hass, entry)
    # Local disk only; the links have not started and nothing waits on the network.
    if hub.mesh is not None:
        await hub.mesh.async_load()
    if hub.lightning is not None:
        await hub.lightning.async_load()
    # Registered before any entity, so that the devices it parents can name it by registry id.
    hub_device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **hub_device_info(entry)
    )
    entry.runtime_data = MeshbotRuntime(hub=hub, hub_device_id=hub_device.id)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    hub.async_start()
    if hub.mesh is not None:
        hub.mesh.async_start(entry.async_on_unload)
    if hub.lightning is not None:
        hub.lightning.async_start(entry.async_on_unload)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: MeshbotConfigEntry) -> bool:
    """Unload meshbot; the entry cancels the link tasks, which close their sockets."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        hub = entry.runtime_data.hub
        for part in (hub.mesh, hub.lightning):
            if part is not None:
                await part.async_save()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: MeshbotConfigEntry) -> None:
    """Delete what the entry saved: the mesh and the strikes have no use without it."""
    await async_remove_snapshots(hass, entry.entry_id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: MeshbotConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a node's device; the hub device stays while the entry exists."""
    mesh = entry.runtime_data.hub.mesh
    for domain, identifier in device.identifiers:
        if domain != DOMAIN or identifier == entry.entry_id:
            continue
        num = parse_node_id(identifier.rpartition("_")[2])
        if num is not None and mesh is not None:
            mesh.async_untrack(num)
            return True
    return False
