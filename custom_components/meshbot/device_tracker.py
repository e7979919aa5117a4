"""Mesh nodes with a position, on the map; only when the user turned position tracking on."""

from __future__ import annotations

from homeassistant.components.device_tracker import (
    SourceType,
    TrackerEntity,
    TrackerEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_TRACK_POSITIONS, DEFAULT_TRACK_POSITIONS
from .data import MeshbotConfigEntry
from .entity import MeshNodeEntity, async_setup_node_entities

PARALLEL_UPDATES = 0
METERS_PER_DEGREE = 111_320.0

POSITION = TrackerEntityDescription(key="position")


def accuracy_meters(precision_bits: int | None) -> int:
    """Return the radius of the cell a position was rounded to (0 for exact positions)."""
    if not precision_bits or precision_bits >= 32:
        return 0
    cell_degrees = 2.0 ** (32 - precision_bits) * 1e-7
    return round(cell_degrees * METERS_PER_DEGREE / 2)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeshbotConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a tracker per tracked node, if the privacy switch allows positions."""
    mesh = entry.runtime_data.mesh
    if mesh is None or not entry.options.get(CONF_TRACK_POSITIONS, DEFAULT_TRACK_POSITIONS):
        return

    async_setup_node_entities(
        entry, mesh, async_add_entities, lambda num: [NodeTracker(entry, mesh, num, POSITION)]
    )


class NodeTracker(MeshNodeEntity, TrackerEntity):
    """Where a node last said it was."""

    _attr_source_type = SourceType.GPS
    # The tracker is the node itself on the map: it takes the device's name.
    _attr_name = None

    @property
    def latitude(self) -> float | None:
        """Return the node's latitude."""
        node = self.node
        return node.latitude if node else None

    @property
    def longitude(self) -> float | None:
        """Return the node's longitude."""
        node = self.node
        return node.longitude if node else None

    def _fingerprint(self) -> object:
        return (self.available, self.latitude, self.longitude, self.location_accuracy)

    @property
    def location_accuracy(self) -> float:
        """Return the accuracy the node's precision bits allow."""
        node = self.node
        return accuracy_meters(node.precision_bits if node else None)
