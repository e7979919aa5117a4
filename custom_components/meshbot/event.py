"""Event entities: text messages heard by the radio, and lightning strikes."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import EVENT_MESSAGE
from .data import MeshbotConfigEntry
from .entity import MeshbotEntity
from .lightning_coordinator import LightningCoordinator, strike_data
from .mesh_coordinator import MeshCoordinator

PARALLEL_UPDATES = 0

MESSAGES = EventEntityDescription(
    key="radio_messages",
    translation_key="radio_messages",
    event_types=["channel_message", "direct_message"],
)


STRIKES = EventEntityDescription(
    key="lightning_strike",
    translation_key="lightning_strike",
    event_types=["strike"],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeshbotConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the message event entity when the entry has a radio, the strike one with lightning."""
    runtime = entry.runtime_data
    if runtime.radio is not None and runtime.mesh is not None:
        async_add_entities([RadioMessageEvent(entry, runtime.mesh, MESSAGES)])
    if runtime.lightning is not None:
        async_add_entities([LightningStrikeEvent(entry, runtime.lightning, STRIKES)])


class RadioMessageEvent(MeshbotEntity[MeshCoordinator], EventEntity):
    """Fires once for every new text message the radio hears."""

    async def async_added_to_hass(self) -> None:
        """Follow the entry's message events on the bus: a message is news at once."""
        await super().async_added_to_hass()
        entry_id = self.coordinator.entry.entry_id

        @callback
        def of_this_entry(data: dict[str, Any]) -> bool:
            return bool(data["config_entry_id"] == entry_id)

        self.async_on_remove(
            self.hass.bus.async_listen(EVENT_MESSAGE, self._async_message, of_this_entry)
        )

    @callback
    def _handle_coordinator_update(self) -> None:
        """Ignore the mesh's flushes: nothing the entity shows changes with them."""

    @callback
    def _async_message(self, event: Event[dict[str, Any]]) -> None:
        message = event.data
        attributes = {key: value for key, value in message.items() if key != "type"}
        self._trigger_event(message["type"], attributes)
        self.async_write_ha_state()


class LightningStrikeEvent(MeshbotEntity[LightningCoordinator], EventEntity):
    """Fires for strikes: at most once a second, with the nearest of that second's strikes."""

    # Each strike's details change every time: history of them would only fill the database.
    _unrecorded_attributes = frozenset(
        {"distance_km", "azimuth", "compass", "latitude", "longitude", "time", "strikes"}
    )

    @callback
    def _handle_coordinator_update(self) -> None:
        strikes = self.coordinator.data.fresh
        if not strikes:
            return
        nearest = min(strikes, key=lambda strike: strike.distance_km)
        self._trigger_event("strike", {**strike_data(nearest), "strikes": len(strikes)})
        self.async_write_ha_state()
