"""Event entities: text messages heard by the radio, and lightning strikes."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import LinkKind
from .data import MeshbotConfigEntry
from .entity import MeshbotEntity
from .lightning.strikes import Strike
from .lightning_monitor import strike_data

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
    """Add the message event entity when the entry has a radio."""
    hub = entry.runtime_data.hub
    if LinkKind.RADIO in hub.links and hub.mesh is not None:
        async_add_entities([RadioMessageEvent(entry, MESSAGES)])
    if hub.lightning is not None:
        async_add_entities([LightningStrikeEvent(entry, STRIKES)])


class RadioMessageEvent(MeshbotEntity, EventEntity):
    """Fires once for every new text message the radio hears."""

    async def async_added_to_hass(self) -> None:
        """Follow the radio's messages."""
        await super().async_added_to_hass()
        assert self.hub.mesh is not None
        self.async_on_remove(self.hub.mesh.async_add_message_listener(self._async_message))

    @callback
    def _async_message(self, message: dict[str, Any]) -> None:
        attributes = {key: value for key, value in message.items() if key != "type"}
        self._trigger_event(message["type"], attributes)
        self.async_write_ha_state()


class LightningStrikeEvent(MeshbotEntity, EventEntity):
    """Fires for strikes: at most once a second, with the nearest of that second's strikes."""

    # Each strike's details change every time: history of them would only fill the database.
    _unrecorded_attributes = frozenset(
        {"distance_km", "azimuth", "compass", "latitude", "longitude", "time", "strikes"}
    )

    async def async_added_to_hass(self) -> None:
        """Follow the strikes."""
        await super().async_added_to_hass()
        assert self.hub.lightning is not None
        self.async_on_remove(self.hub.lightning.async_add_strike_listener(self._async_strikes))

    @callback
    def _async_strikes(self, strikes: list[Strike]) -> None:
        nearest = min(strikes, key=lambda strike: strike.distance_km)
        self._trigger_event("strike", {**strike_data(nearest), "strikes": len(strikes)})
        self.async_write_ha_state()
