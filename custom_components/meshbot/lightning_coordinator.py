"""The lightning coordinator: strikes in; coalesced snapshots, events and alerts out.

Strikes are parsed and windowed as they arrive (cheap). Once a second the coordinator publishes:
one snapshot to the entities (at most one write each), one bus event per strike up to a bound
(the rest of the second becomes one summary event), alert transitions, and mesh alerts through
the radio.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import logging
import time
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import ATTR_LATITUDE, ATTR_LONGITUDE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import (
    CONF_ALERT_DISTANCE_KM,
    CONF_ALERT_MINUTES,
    CONF_ALERT_STRIKES,
    CONF_FOLLOW_ENTITY,
    CONF_LIGHTNING,
    CONF_LOCATION_MODE,
    CONF_MESH_ALERT_TARGETS,
    CONF_QUIET_MINUTES,
    CONF_RADIUS_KM,
    CONF_WINDOW_MINUTES,
    DEFAULT_ALERT_DISTANCE_KM,
    DEFAULT_ALERT_MINUTES,
    DEFAULT_ALERT_STRIKES,
    DEFAULT_QUIET_MINUTES,
    DEFAULT_RADIUS_KM,
    DEFAULT_WINDOW_MINUTES,
    EVENT_LIGHTNING_ALERT,
    EVENT_LIGHTNING_STRIKE,
    FLUSH_SECONDS,
    LOCATION_ENTITY,
    LOGGER,
    MAX_RADIUS_KM,
    MAX_STRIKE_EVENTS_PER_SECOND,
    MESH_ALERT_INTERVAL_SECONDS,
    SAVE_DELAY_SECONDS,
)
from .flush_timer import async_track_spaced_interval
from .lightning.alert import AlertChange, AlertSettings, LightningAlert, Throttle
from .lightning.geohash import Circle, covering_topics, moved_enough
from .lightning.strikes import Strike
from .lightning.window import StrikeWindow, WindowSummary
from .links.mqtt import MqttLink, MqttSettings
from .links.stream import SendResult
from .mesh.state import iso
from .persistence import SnapshotStore, snapshot_key
from .settings import parse_target

_LOGGER = logging.getLogger(__name__)
type SendText = Callable[[str, int, int, bool], Awaitable[SendResult]]
# In quiet times the sensors are refreshed this often anyway, so the rate, trend and expiry move.
QUIET_REFRESH_SECONDS = 60.0


def strike_data(strike: Strike) -> dict[str, Any]:
    """Return a strike as events show it."""
    return {
        "distance_km": round(strike.distance_km, 2),
        "azimuth": round(strike.azimuth, 1),
        "compass": strike.compass,
        "latitude": round(strike.latitude, 5),
        "longitude": round(strike.longitude, 5),
        "time": iso(strike.time),
    }


def mesh_alert_text(summary: WindowSummary, distance_km: float) -> str:
    """Return the short text sent to the mesh when lightning comes close."""
    nearest = summary.nearest
    if nearest is None:
        return f"Lightning within {distance_km:g} km"
    text = f"Lightning {nearest.distance_km:.0f} km {nearest.compass}"
    trend = summary.trend
    if trend is not None and trend.direction == "approaching":
        text += f", approaching {trend.speed_km_min * 60:.0f} km/h"
    return text


@dataclass(frozen=True, slots=True)
class LightningSnapshot:
    """The strikes around the watched place and the alert, as the entities show them."""

    summary: WindowSummary
    alert_active: bool
    alert_since: float | None
    # The strikes that arrived since the snapshot before, for the strike event entity.
    fresh: tuple[Strike, ...] = ()


class LightningCoordinator(DataUpdateCoordinator[LightningSnapshot]):
    """Own the strike window and the alert of one entry; push a snapshot when they change."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        settings: MqttSettings,
        location: tuple[float, float],
        send_text: SendText,
    ) -> None:
        """Watch `location` within the configured radius through its own link to the relay."""
        super().__init__(hass, LOGGER, config_entry=entry, name="meshbot lightning")
        # The base class types its entry as optional; this one always has it.
        self.entry = entry
        # The radio's sender, for mesh alerts: an entry may have no radio, and then it raises.
        self.send_text = send_text
        self.link = link = MqttLink(settings, self.on_message)
        self.section: dict[str, Any] = dict(entry.data[CONF_LIGHTNING])
        self.options = options = dict(entry.options)
        radius = min(float(options.get(CONF_RADIUS_KM, DEFAULT_RADIUS_KM)), MAX_RADIUS_KM)
        self.circle = Circle(location[0], location[1], radius)
        self.window = StrikeWindow(
            location[0],
            location[1],
            radius,
            window_s=float(options.get(CONF_WINDOW_MINUTES, DEFAULT_WINDOW_MINUTES)) * 60,
        )
        self.alert_settings = AlertSettings(
            distance_km=float(options.get(CONF_ALERT_DISTANCE_KM, DEFAULT_ALERT_DISTANCE_KM)),
            strikes=int(options.get(CONF_ALERT_STRIKES, DEFAULT_ALERT_STRIKES)),
            period_s=float(options.get(CONF_ALERT_MINUTES, DEFAULT_ALERT_MINUTES)) * 60,
            quiet_s=float(options.get(CONF_QUIET_MINUTES, DEFAULT_QUIET_MINUTES)) * 60,
        )
        self.alert = LightningAlert(self.alert_settings)
        self.throttle = Throttle(MESH_ALERT_INTERVAL_SECONDS)
        self._published_at = self.clock()
        self.events_fired = 0
        self.events_summarised = 0
        self._fresh: list[Strike] = []
        self.data = self._snapshot(self._published_at)
        self._store = SnapshotStore(
            self.hass,
            snapshot_key(entry.entry_id, "lightning"),
            self._data_to_save,
            SAVE_DELAY_SECONDS,
            _check_saved_lightning,
        )
        link.set_filters(covering_topics(self.circle))

    @staticmethod
    def clock() -> float:
        """Return the wall-clock time, read at each call so that time moved in tests reaches it."""
        return time.time()

    # Lifecycle

    async def async_load(self) -> None:
        """Restore the window and the alert; a bad file means starting empty."""
        data = await self._store.async_load(
            "Starting with no recent strikes: the saved ones are unreadable"
        )
        if data is None:
            return
        self.window = StrikeWindow.from_storage(
            data.get("window"),
            self.window.latitude,
            self.window.longitude,
            self.clock(),
            self.window.radius_km,
            self.window.window_s,
        )
        self.alert = LightningAlert.from_storage(data.get("alert"), self.alert_settings)
        self.throttle = Throttle.from_storage(data.get("throttle"), MESH_ALERT_INTERVAL_SECONDS)
        # What the entities show first, before any flush.
        self.data = self._snapshot(self.clock())

    @callback
    def async_start(self) -> None:
        """Start the flush timer and, if asked, follow an entity's location."""
        register = self.entry.async_on_unload
        register(
            async_track_spaced_interval(
                self.hass, self._async_flush, FLUSH_SECONDS, "meshbot lightning flush"
            )
        )
        if self.section.get(CONF_LOCATION_MODE) == LOCATION_ENTITY:
            register(
                async_track_state_change_event(
                    self.hass, self.section[CONF_FOLLOW_ENTITY], self._async_followed_moved
                )
            )

    async def async_save(self) -> None:
        """Write the window now (unload)."""
        await self._store.async_save()

    def _data_to_save(self) -> dict[str, Any]:
        return {
            "window": self.window.to_storage(),
            "alert": self.alert.to_storage(),
            "throttle": self.throttle.to_storage(),
        }

    # Ingest (per message)

    def on_message(self, _topic: str, payload: bytes) -> None:
        """Parse one relay message into the window."""
        strike = self.window.ingest(payload, self.clock())
        if strike is not None:
            self._fresh.append(strike)
            self.alert.observe(strike)

    # Following a moving location

    @callback
    def _async_followed_moved(self, event: Event[EventStateChangedData]) -> None:
        state = event.data["new_state"]
        if state is None:
            return
        latitude = state.attributes.get(ATTR_LATITUDE)
        longitude = state.attributes.get(ATTR_LONGITUDE)
        if not isinstance(latitude, (int, float)) or not isinstance(longitude, (int, float)):
            return
        self.async_move(float(latitude), float(longitude))

    @callback
    def async_move(self, latitude: float, longitude: float) -> None:
        """Watch a new place; resubscribe only when it moved by a quarter of the radius."""
        new = Circle(latitude, longitude, self.circle.radius_km)
        if not moved_enough(self.circle, new):
            return
        self.circle = new
        # set_filters sends only the difference: tiles both places share stay subscribed.
        self.link.set_filters(covering_topics(new))
        self.window.set_location(latitude, longitude)
        self.alert.replay(self.window)
        self._fresh.clear()
        self._publish(self.clock())

    # Coalesced updates

    @callback
    def _async_flush(self, _now: Any = None) -> None:
        now = self.clock()
        self.window.expire(now)
        fresh, self._fresh = self._fresh, []
        change = self.alert.update(now)
        if (
            not fresh
            and change is None
            and self.data.summary.count == self.window.count
            # A clock stepped back (NTP on a board without a real-time clock) refreshes too.
            and 0 <= now - self._published_at < QUIET_REFRESH_SECONDS
        ):
            return
        entry_id = {"config_entry_id": self.entry.entry_id}
        for strike in fresh[:MAX_STRIKE_EVENTS_PER_SECOND]:
            self.hass.bus.async_fire(EVENT_LIGHTNING_STRIKE, {**strike_data(strike), **entry_id})
        self.events_fired += min(len(fresh), MAX_STRIKE_EVENTS_PER_SECOND)
        if len(fresh) > MAX_STRIKE_EVENTS_PER_SECOND:
            rest = fresh[MAX_STRIKE_EVENTS_PER_SECOND:]
            self.events_summarised += len(rest)
            nearest = min(rest, key=lambda strike: strike.distance_km)
            self.hass.bus.async_fire(
                EVENT_LIGHTNING_STRIKE,
                {**strike_data(nearest), **entry_id, "summarised": len(rest)},
            )
        if fresh:
            self._store.schedule()
        self._publish(now, tuple(fresh))
        if change is not None:
            self._async_alert_changed(change)

    def _publish(self, now: float, fresh: tuple[Strike, ...] = ()) -> None:
        self._published_at = now
        self.async_set_updated_data(self._snapshot(now, fresh))

    def _snapshot(self, now: float, fresh: tuple[Strike, ...] = ()) -> LightningSnapshot:
        return LightningSnapshot(
            summary=self.window.summary(now, self.alert_settings.distance_km),
            alert_active=self.alert.active,
            alert_since=self.alert.since,
            fresh=fresh,
        )

    def _async_alert_changed(self, change: AlertChange) -> None:
        summary = self.data.summary
        data: dict[str, Any] = {
            "state": str(change),
            "config_entry_id": self.entry.entry_id,
            "alert_distance_km": self.alert_settings.distance_km,
            "strikes": summary.count,
            "strikes_within_alert_distance": sum(
                1 for strike in self.window if strike.distance_km <= self.alert_settings.distance_km
            ),
        }
        if summary.nearest is not None:
            data["nearest_km"] = round(summary.nearest.distance_km, 2)
            data["nearest_compass"] = summary.nearest.compass
        self.hass.bus.async_fire(EVENT_LIGHTNING_ALERT, data)
        self._store.schedule()
        if change is AlertChange.STARTED and self.options.get(CONF_MESH_ALERT_TARGETS):
            self.entry.async_create_background_task(
                self.hass, self._async_mesh_alert(), "meshbot lightning mesh alert"
            )

    async def _async_mesh_alert(self) -> None:
        text = mesh_alert_text(self.data.summary, self.alert_settings.distance_km)
        now = self.clock()
        for target in self.options.get(CONF_MESH_ALERT_TARGETS, []):
            destination, channel = parse_target(target)
            if destination is None or not self.throttle.allow(target, now):
                continue
            try:
                await self.send_text(text, destination, channel, False)
            except HomeAssistantError as err:
                _LOGGER.warning("Could not send the lightning alert to %s: %s", target, err)


def _check_saved_lightning(data: dict[str, Any]) -> None:
    """Raise ValueError saying why saved strikes cannot be read."""
    for key in ("window", "alert", "throttle"):
        if not isinstance(data.get(key, {}), dict):
            raise ValueError(f"{key!r} is {type(data[key]).__name__}, not an object")
    if not isinstance(data.get("window", {}).get("strikes", []), list):
        raise ValueError("the window's 'strikes' is not a list")
