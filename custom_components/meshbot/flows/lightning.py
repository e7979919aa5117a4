"""The lightning monitor's config steps and options: the relay, where to watch, the alert."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_LATITUDE, CONF_LONGITUDE, CONF_PORT
from homeassistant.helpers import selector
import voluptuous as vol

from ..const import (
    CONF_ALERT_DISTANCE_KM,
    CONF_ALERT_MINUTES,
    CONF_ALERT_STRIKES,
    CONF_FOLLOW_ENTITY,
    CONF_LIGHTNING,
    CONF_LOCATION,
    CONF_LOCATION_MODE,
    CONF_MAP_STRIKES,
    CONF_MESH_ALERT_TARGETS,
    CONF_QUIET_MINUTES,
    CONF_RADIUS_KM,
    CONF_WINDOW_MINUTES,
    DEFAULT_ALERT_DISTANCE_KM,
    DEFAULT_ALERT_MINUTES,
    DEFAULT_ALERT_STRIKES,
    DEFAULT_LIGHTNING_HOST,
    DEFAULT_MAP_STRIKES,
    DEFAULT_MQTT_PORT,
    DEFAULT_QUIET_MINUTES,
    DEFAULT_RADIUS_KM,
    DEFAULT_WINDOW_MINUTES,
    LOCATION_ENTITY,
    LOCATION_FIXED,
    LOCATION_HOME,
    MAX_MAP_STRIKES,
    MAX_RADIUS_KM,
)
from ..settings import parse_target
from . import fields
from .base import LinkFlow
from .fields import FieldError, OptionsPart

LOCATION_MODES = (LOCATION_HOME, LOCATION_FIXED, LOCATION_ENTITY)
FOLLOWED_DOMAINS = ("device_tracker", "person", "zone")
# Numeric lightning options: (minimum, maximum, unit).
LIGHTNING_NUMBER_OPTIONS = {
    CONF_WINDOW_MINUTES: (5, 240, "min"),
    CONF_ALERT_DISTANCE_KM: (1, 500, "km"),
    CONF_ALERT_STRIKES: (1, 100, None),
    CONF_ALERT_MINUTES: (1, 120, "min"),
    CONF_QUIET_MINUTES: (1, 240, "min"),
    CONF_MAP_STRIKES: (0, MAX_MAP_STRIKES, None),
}
LIGHTNING_NUMBER_DEFAULTS = {
    CONF_WINDOW_MINUTES: DEFAULT_WINDOW_MINUTES,
    CONF_ALERT_DISTANCE_KM: DEFAULT_ALERT_DISTANCE_KM,
    CONF_ALERT_STRIKES: DEFAULT_ALERT_STRIKES,
    CONF_ALERT_MINUTES: DEFAULT_ALERT_MINUTES,
    CONF_QUIET_MINUTES: DEFAULT_QUIET_MINUTES,
    CONF_MAP_STRIKES: DEFAULT_MAP_STRIKES,
}
LIGHTNING_INTEGER_OPTIONS = frozenset({CONF_ALERT_STRIKES, CONF_MAP_STRIKES})
RADIUS = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=1,
        max=MAX_RADIUS_KM,
        step=1,
        unit_of_measurement="km",
        mode=selector.NumberSelectorMode.BOX,
    )
)


def radius(value: Any) -> float:
    """Return the radius strikes are counted within; raise FieldError."""
    return fields.number(value, 1, MAX_RADIUS_KM)


def location_mode(value: Any) -> str:
    """Return where to watch: home, fixed coordinates or an entity; raise FieldError."""
    if value not in LOCATION_MODES:
        raise FieldError("invalid_location_mode")
    return str(value)


def location(value: Any) -> dict[str, float]:
    """Return coordinates on the globe; raise FieldError."""
    if not isinstance(value, Mapping):
        raise FieldError("invalid_location")
    try:
        return {
            CONF_LATITUDE: fields.number(value.get(CONF_LATITUDE), -90, 90),
            CONF_LONGITUDE: fields.number(value.get(CONF_LONGITUDE), -180, 180),
        }
    except FieldError:
        raise FieldError("invalid_location") from None


def followed_entity(value: Any) -> str:
    """Return a person, device tracker or zone to follow; raise FieldError."""
    return fields.entity_id(value, FOLLOWED_DOMAINS)


def alert_targets(value: Any) -> list[str]:
    """Return where the mesh alert goes: channels and node ids; raise FieldError."""
    targets = fields.text_list(value)
    if any(parse_target(target)[0] is None for target in targets):
        raise FieldError("invalid_target")
    return targets


RELAY_CHECKS = {
    CONF_LOCATION_MODE: location_mode,
    CONF_RADIUS_KM: radius,
    CONF_HOST: fields.host,
    CONF_PORT: fields.port,
}
LIGHTNING_CHECKS = {
    CONF_RADIUS_KM: radius,
    CONF_MESH_ALERT_TARGETS: alert_targets,
    **fields.number_checks(LIGHTNING_NUMBER_OPTIONS, LIGHTNING_INTEGER_OPTIONS),
}


class LightningSteps(LinkFlow):
    """Configure the Blitzortung relay and where to watch: home, coordinates or an entity."""

    def __init__(self) -> None:
        """Start with no relay chosen."""
        super().__init__()
        self._lightning_pending: dict[str, Any] = {}

    async def async_step_lightning(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Configure the Blitzortung relay, the radius and where to watch."""
        errors: dict[str, str] = {}
        if user_input is not None:
            section = fields.read(user_input, RELAY_CHECKS, errors)
            radius_km = section.pop(CONF_RADIUS_KM, None)
            if not errors:
                await self._check_broker(CONF_LIGHTNING, section, errors)
            if not errors:
                self._lightning_pending = section
                self._options[CONF_RADIUS_KM] = radius_km
                if section[CONF_LOCATION_MODE] == LOCATION_FIXED:
                    return await self.async_step_lightning_location()
                if section[CONF_LOCATION_MODE] == LOCATION_ENTITY:
                    return await self.async_step_lightning_entity()
                self._data[CONF_LIGHTNING] = section
                return self._menu()
        current = self._data.get(CONF_LIGHTNING, {})
        schema = vol.Schema(
            {
                vol.Required(CONF_LOCATION_MODE, default=LOCATION_HOME): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=list(LOCATION_MODES), translation_key=CONF_LOCATION_MODE
                    )
                ),
                vol.Required(CONF_RADIUS_KM, default=DEFAULT_RADIUS_KM): RADIUS,
                vol.Required(CONF_HOST, default=DEFAULT_LIGHTNING_HOST): str,
                vol.Required(CONF_PORT, default=DEFAULT_MQTT_PORT): fields.PORT,
            }
        )
        suggested = user_input or {
            **current,
            CONF_RADIUS_KM: self._options.get(CONF_RADIUS_KM, DEFAULT_RADIUS_KM),
        }
        return self.async_show_form(
            step_id="lightning",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    async def async_step_lightning_location(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick fixed coordinates to watch."""
        errors: dict[str, str] = {}
        if user_input is not None:
            checked = fields.read(user_input, {CONF_LOCATION: location}, errors)
            if not errors:
                self._data[CONF_LIGHTNING] = {**self._lightning_pending, **checked}
                return self._menu()
        current = self._data.get(CONF_LIGHTNING, {}).get(CONF_LOCATION) or {
            CONF_LATITUDE: self.hass.config.latitude,
            CONF_LONGITUDE: self.hass.config.longitude,
        }
        return self.async_show_form(
            step_id="lightning_location",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_LOCATION, default=current): selector.LocationSelector(
                        selector.LocationSelectorConfig(radius=False)
                    )
                }
            ),
            errors=errors,
        )

    async def async_step_lightning_entity(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick a person, device tracker or zone whose location to follow."""
        errors: dict[str, str] = {}
        if user_input is not None:
            checked = fields.read(user_input, {CONF_FOLLOW_ENTITY: followed_entity}, errors)
            if not errors:
                self._data[CONF_LIGHTNING] = {**self._lightning_pending, **checked}
                return self._menu()
        schema = vol.Schema(
            {
                vol.Required(CONF_FOLLOW_ENTITY): selector.EntitySelector(
                    selector.EntitySelectorConfig(domain=list(FOLLOWED_DOMAINS))
                )
            }
        )
        return self.async_show_form(
            step_id="lightning_entity",
            data_schema=self.add_suggested_values_to_schema(
                schema, self._data.get(CONF_LIGHTNING, {})
            ),
            errors=errors,
        )


def _lightning_fields() -> dict[Any, Any]:
    return {
        vol.Required(CONF_RADIUS_KM): RADIUS,
        **fields.number_fields(LIGHTNING_NUMBER_OPTIONS, LIGHTNING_NUMBER_DEFAULTS),
        vol.Optional(CONF_MESH_ALERT_TARGETS): selector.TextSelector(
            selector.TextSelectorConfig(multiple=True)
        ),
    }


def _lightning_suggestions(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        CONF_RADIUS_KM: options.get(CONF_RADIUS_KM, DEFAULT_RADIUS_KM),
        CONF_MESH_ALERT_TARGETS: options.get(CONF_MESH_ALERT_TARGETS, []),
        **{
            key: options.get(key, LIGHTNING_NUMBER_DEFAULTS[key])
            for key in LIGHTNING_NUMBER_OPTIONS
        },
    }


def _read_lightning_options(
    user_input: Mapping[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    return fields.read({CONF_MESH_ALERT_TARGETS: [], **user_input}, LIGHTNING_CHECKS, errors)


LIGHTNING_OPTIONS = OptionsPart(
    applies=lambda data: CONF_LIGHTNING in data,
    fields=_lightning_fields,
    suggested=_lightning_suggestions,
    read=_read_lightning_options,
)
