"""Recent strikes on the map: off by default, capped, gone when they leave the window."""

from __future__ import annotations

from homeassistant.components.geo_location import GeolocationEvent
from homeassistant.const import UnitOfLength
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_MAP_STRIKES, DEFAULT_MAP_STRIKES
from .data import MeshbotConfigEntry
from .lightning.strikes import Strike
from .mesh.state import iso

PARALLEL_UPDATES = 0
SOURCE = "meshbot_lightning"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeshbotConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Keep one map entity per recent strike, up to the configured number."""
    monitor = entry.runtime_data.lightning
    cap = int(entry.options.get(CONF_MAP_STRIKES, DEFAULT_MAP_STRIKES))
    if monitor is None or cap <= 0:
        return
    shown: dict[tuple[float, float, float], StrikeOnMap] = {}

    @callback
    def refresh() -> None:
        wanted = {
            (strike.time, strike.latitude, strike.longitude): strike
            for strike in sorted(monitor.window, key=lambda strike: strike.time)[-cap:]
        }
        for key in [key for key in shown if key not in wanted]:
            hass.async_create_task(shown.pop(key).async_remove(force_remove=True))
        fresh = [StrikeOnMap(strike) for key, strike in wanted.items() if key not in shown]
        for entity in fresh:
            shown[entity.key] = entity
        if fresh:
            async_add_entities(fresh)

    refresh()
    entry.async_on_unload(monitor.async_add_listener(refresh))


class StrikeOnMap(GeolocationEvent):
    """One strike, where and when it fell."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    _attr_source = SOURCE
    _attr_unit_of_measurement = UnitOfLength.KILOMETERS

    def __init__(self, strike: Strike) -> None:
        """Show `strike`."""
        self.key = (strike.time, strike.latitude, strike.longitude)
        # One translation per compass point: a placeholder's value is never translated, and
        # the points differ between languages (W is O in French).
        self._attr_translation_key = f"strike_{strike.compass.lower()}"
        self._attr_translation_placeholders = {"distance": f"{strike.distance_km:.0f}"}
        self._attr_latitude = strike.latitude
        self._attr_longitude = strike.longitude
        self._attr_distance = round(strike.distance_km, 1)
        self._attr_extra_state_attributes = {"time": iso(strike.time)}
