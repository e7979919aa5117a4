"""Typed config entry and the runtime data stored on it: the entry's parts, each optional."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform

from .const import LinkKind
from .coordinator import LinkCoordinator, RadioCoordinator
from .lightning_coordinator import LightningCoordinator
from .links.mqtt import MqttLink
from .mesh_coordinator import MeshCoordinator


@dataclass
class MeshbotData:
    """Everything a loaded meshbot entry owns; a part is None when the entry does not have it."""

    # The registry id of the entry's hub device, which parents the radio's and the nodes' devices.
    hub_device_id: str
    radio: RadioCoordinator | None
    mesh_link: LinkCoordinator[MqttLink] | None
    lightning_link: LinkCoordinator[MqttLink] | None
    # The mesh's picture, fed by the radio and the mesh broker alike.
    mesh: MeshCoordinator | None
    lightning: LightningCoordinator | None
    # The platforms set up for the entry, which its unload must name again.
    platforms: list[Platform] = field(default_factory=list)

    @property
    def links(self) -> dict[LinkKind, LinkCoordinator[Any]]:
        """Return the entry's links by kind."""
        links: dict[LinkKind, LinkCoordinator[Any]] = {}
        for link in (self.radio, self.mesh_link, self.lightning_link):
            if link is not None:
                links[link.kind] = link
        return links


type MeshbotConfigEntry = ConfigEntry[MeshbotData]
