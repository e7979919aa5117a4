"""Base entities for meshbot: the entry's hub device, and one device per mesh node.

Entities of a whole part (a link, the mesh, the lightning) follow its coordinator and read its
snapshot; entities of a node follow that node alone through the mesh coordinator's keyed
subscription, so that one node's packet never rewrites another node's entities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .compat import VIA_DEVICE_BY_REGISTRY_ID
from .const import DOMAIN
from .data import MeshbotConfigEntry
from .mesh.models import node_id
from .mesh.state import Node
from .mesh_coordinator import MeshCoordinator


def hub_device_info(entry: MeshbotConfigEntry) -> DeviceInfo:
    """Return the entry's own device, which holds the link entities and parents the others."""
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer="meshbot",
        model="Mesh and lightning hub",
        # A hub that the radio and the nodes hang from, not a web service: the integration page
        # counts it as a device. None, not left out, clears the "service" earlier versions
        # registered.
        entry_type=None,
    )


def via_hub(entry: MeshbotConfigEntry) -> DeviceInfo:
    """Return the device info fields that make a device a child of the entry's hub device."""
    if VIA_DEVICE_BY_REGISTRY_ID:
        # The key is new in Home Assistant 2026.8; the oldest supported one's DeviceInfo lacks it,
        # so the type checker of either release accepts only the cast.
        return cast(DeviceInfo, {"via_device_id": entry.runtime_data.hub_device_id})
    return DeviceInfo(via_device=(DOMAIN, entry.entry_id))


def radio_device_info(entry: MeshbotConfigEntry) -> DeviceInfo:
    """Return the device of the entry's radio; its names fill in once the radio answers."""
    return DeviceInfo(
        identifiers={(DOMAIN, f"{entry.entry_id}_radio")},
        name="Meshtastic radio",
        manufacturer="Meshtastic",
        **via_hub(entry),
    )


def radio_device_link(entry: MeshbotConfigEntry) -> DeviceInfo:
    """Return the radio's device for an entity added after the radio named it.

    The entry registers the device before its platforms. Its full device info would rename it
    back to "Meshtastic radio" each time an entity of it is added later.
    """
    return DeviceInfo(identifiers={(DOMAIN, f"{entry.entry_id}_radio")})


@callback
def async_setup_node_entities(
    entry: MeshbotConfigEntry,
    mesh: MeshCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[int], Iterable[Entity]],
    grows: bool = False,
) -> None:
    """Add the entities `build` makes for each tracked node, now and as more nodes are tracked.

    With `grows`, `build` is also called when a node reports a metric for the first time, and
    returns only the entities it did not make before.
    """
    async_add_entities(entity for num in sorted(mesh.tracked) for entity in build(num))
    entry.async_on_unload(mesh.async_add_node_platform(build, async_add_entities, grows))


class MeshbotEntity[CoordinatorT: DataUpdateCoordinator[Any]](CoordinatorEntity[CoordinatorT]):
    """An entity of a whole part, on the entry's hub device unless told otherwise."""

    _attr_has_entity_name = True

    def __init__(
        self,
        entry: MeshbotConfigEntry,
        coordinator: CoordinatorT,
        description: EntityDescription,
        device_info: DeviceInfo | None = None,
    ) -> None:
        """Follow `coordinator`, whose snapshot the entity shows."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = device_info or hub_device_info(entry)


class MeshNodeEntity(Entity):
    """An entity of one mesh node's device, updated at most once a second."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self,
        entry: MeshbotConfigEntry,
        mesh: MeshCoordinator,
        num: int,
        description: EntityDescription,
    ) -> None:
        """Attach the entity to the node's device."""
        self.entity_description = description
        self.mesh = mesh
        self.num = num
        self._last_fingerprint: object = None
        node = mesh.state.nodes.get(num)
        ident = node_id(num)
        self._attr_unique_id = f"{entry.entry_id}_{ident}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, f"{entry.entry_id}_{ident}")},
            name=node.name if node else ident,
            manufacturer="Meshtastic",
            model=node.hw_model if node else None,
            sw_version=node.firmware_version if node else None,
            serial_number=ident,
            **via_hub(entry),
        )

    @property
    def node(self) -> Node | None:
        """Return the node, or None once it was pruned or evicted."""
        return self.mesh.state.nodes.get(self.num)

    @property
    def available(self) -> bool:
        """Return whether the mesh still knows the node."""
        return self.node is not None

    async def async_added_to_hass(self) -> None:
        """Follow the node's changes."""
        await super().async_added_to_hass()
        self.async_on_remove(self.mesh.async_subscribe(self.num, self._async_node_changed))

    def _fingerprint(self) -> object:
        """Return what the entity shows; a write is skipped when it did not change."""
        return self.available

    @callback
    def _async_write_ha_state(self) -> None:
        """Write the state and remember what it showed, whoever asked for the write.

        Home Assistant rewrites every entity of a renamed device itself; remembering that
        write keeps the node's own update in the same second from writing them a second time.
        Home Assistant names this method as the one to override (the public one is final).
        """
        self._last_fingerprint = self._fingerprint()
        super()._async_write_ha_state()

    @callback
    def _async_node_changed(self) -> None:
        node = self.node
        device = self.device_entry
        if (
            node is not None
            and device is not None
            and device.name_by_user is None
            and device.name != node.name
        ):
            # The device was created before the node told its name (node info comes rarely).
            dr.async_get(self.hass).async_update_device(
                device.id, name=node.name, model=node.hw_model, sw_version=node.firmware_version
            )
        # One packet changes one or two figures of a node, not all of its entities.
        if self._fingerprint() != self._last_fingerprint:
            self.async_write_ha_state()
