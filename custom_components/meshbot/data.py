"""Typed config entry and the runtime object stored on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

if TYPE_CHECKING:
    from .runtime import MeshbotHub


@dataclass
class MeshbotRuntime:
    """Everything a loaded meshbot entry owns."""

    hub: MeshbotHub
    # The registry id of the entry's hub device, which parents the radio's and the nodes' devices.
    hub_device_id: str


type MeshbotConfigEntry = ConfigEntry[MeshbotRuntime]
