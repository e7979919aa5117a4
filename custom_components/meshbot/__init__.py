"""meshbot: Meshtastic mesh and Blitzortung lightning for Home Assistant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .ble import ble_device_lookup
from .const import (
    CONF_LIGHTNING,
    CONF_MAP_STRIKES,
    CONF_MESH,
    CONF_MESH_TOPICS,
    CONF_RADIO,
    CONF_TRACK_POSITIONS,
    DEFAULT_MAP_STRIKES,
    DEFAULT_MESH_TOPICS,
    DEFAULT_TRACK_POSITIONS,
    DOMAIN,
    LinkKind,
)
from .coordinator import LinkCoordinator, RadioCoordinator, async_no_radio
from .data import MeshbotConfigEntry, MeshbotData
from .entity import hub_device_info, radio_device_info
from .frontend import async_register_card
from .lightning_coordinator import LightningCoordinator
from .links.mqtt import MqttLink
from .links.stream import RadioLink
from .mesh.models import parse_node_id
from .mesh_coordinator import MeshCoordinator
from .persistence import async_remove_snapshots
from .services import async_setup_services
from .settings import lightning_location, mesh_filters, mqtt_settings, radio_settings

if TYPE_CHECKING:
    from meshtastic.protobuf import mesh_pb2

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.DEVICE_TRACKER,
    Platform.EVENT,
    Platform.GEO_LOCATION,
    Platform.NOTIFY,
    Platform.SENSOR,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


def entry_platforms(data: Mapping[str, Any], options: Mapping[str, Any]) -> list[Platform]:
    """Return the platforms that have entities for these settings.

    A platform forwarded for nothing still makes Home Assistant set up its component at startup;
    a change of options reloads the entry, so the list never goes stale.
    """
    has_mesh = CONF_RADIO in data or CONF_MESH in data
    has_lightning = bool(data.get(CONF_LIGHTNING))
    wanted = {Platform.BINARY_SENSOR, Platform.SENSOR}
    if has_mesh and options.get(CONF_TRACK_POSITIONS, DEFAULT_TRACK_POSITIONS):
        wanted.add(Platform.DEVICE_TRACKER)
    if data.get(CONF_RADIO) or has_lightning:
        wanted.add(Platform.EVENT)
    if data.get(CONF_RADIO):
        wanted.add(Platform.NOTIFY)
    if has_lightning and int(options.get(CONF_MAP_STRIKES, DEFAULT_MAP_STRIKES)) > 0:
        wanted.add(Platform.GEO_LOCATION)
    return [platform for platform in PLATFORMS if platform in wanted]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions and the topology card once, whatever entries exist."""
    async_setup_services(hass)
    await async_register_card(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: MeshbotConfigEntry) -> bool:
    """Set up meshbot; the links connect in the background, never before this returns."""
    try:
        parts = _build_parts(hass, entry)
        platforms = entry_platforms(entry.data, entry.options)
    except (KeyError, TypeError, ValueError) as err:
        # Settings an older meshbot or a hand edit stored: a clear reason, not a traceback.
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="invalid_settings",
            translation_placeholders={"error": repr(err)},
        ) from err
    radio, mesh_link, lightning_link, mesh, lightning = parts
    # Local disk only; the links have not started and nothing waits on the network.
    for part in (mesh, lightning):
        if part is not None:
            await part.async_load()
    # Registered before any entity, so that the devices it parents can name it by registry id.
    hub_device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **hub_device_info(entry)
    )
    entry.runtime_data = runtime = MeshbotData(
        hub_device_id=hub_device.id,
        radio=radio,
        mesh_link=mesh_link,
        lightning_link=lightning_link,
        mesh=mesh,
        lightning=lightning,
        platforms=platforms,
    )
    if radio is not None:
        # Entities added to it once the radio answers (channels, telemetry) only link to it.
        dr.async_get(hass).async_get_or_create(
            config_entry_id=entry.entry_id, **radio_device_info(entry)
        )
    await hass.config_entries.async_forward_entry_setups(entry, platforms)
    for link_coordinator in runtime.links.values():
        link_coordinator.async_start()
    for part in (mesh, lightning):
        if part is not None:
            part.async_start()
    return True


def _build_parts(
    hass: HomeAssistant, entry: MeshbotConfigEntry
) -> tuple[
    RadioCoordinator | None,
    LinkCoordinator[MqttLink] | None,
    LinkCoordinator[MqttLink] | None,
    MeshCoordinator | None,
    LightningCoordinator | None,
]:
    """Build the entry's parts from its settings; raise KeyError, TypeError or ValueError."""
    data, options = entry.data, entry.options
    client_prefix = f"meshbot-{entry.entry_id[:12]}"
    # The radio and the mesh broker feed one shared picture of the mesh.
    mesh = MeshCoordinator(hass, entry) if CONF_RADIO in data or CONF_MESH in data else None
    radio = mesh_link = lightning_link = lightning = None
    if mesh is not None and (section := data.get(CONF_RADIO)):

        def on_frame(frame: mesh_pb2.FromRadio, mesh: MeshCoordinator = mesh) -> None:
            mesh.on_radio_frame(frame, radio_link.info.node_num)

        radio_link = RadioLink(
            radio_settings(section), on_frame, ble_device=ble_device_lookup(hass, section)
        )
        radio = RadioCoordinator(hass, entry, radio_link, mesh)
    if mesh is not None and (section := data.get(CONF_MESH)):
        link = MqttLink(mqtt_settings(section, f"{client_prefix}-mesh"), mesh.on_envelope)
        link.set_filters(mesh_filters(options.get(CONF_MESH_TOPICS, DEFAULT_MESH_TOPICS)))
        mesh_link = LinkCoordinator(hass, entry, LinkKind.MESH, link)
    if section := data.get(CONF_LIGHTNING):
        lightning = LightningCoordinator(
            hass,
            entry,
            mqtt_settings(section, f"{client_prefix}-lightning"),
            lightning_location(hass, section),
            radio.async_send_text if radio is not None else async_no_radio,
        )
        lightning_link = LinkCoordinator(hass, entry, LinkKind.LIGHTNING, lightning.link)
    return radio, mesh_link, lightning_link, mesh, lightning


async def async_unload_entry(hass: HomeAssistant, entry: MeshbotConfigEntry) -> bool:
    """Unload meshbot; the entry cancels the link tasks, which close their sockets."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, entry.runtime_data.platforms)
    if unloaded:
        runtime = entry.runtime_data
        for part in (runtime.mesh, runtime.lightning):
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
    mesh = entry.runtime_data.mesh
    for domain, identifier in device.identifiers:
        if domain != DOMAIN or identifier == entry.entry_id:
            continue
        num = parse_node_id(identifier.rpartition("_")[2])
        if num is not None and mesh is not None:
            mesh.async_untrack(num)
            return True
    return False
