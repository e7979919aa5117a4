"""Link settings read from a config entry's data and options, for setup and the config flow alike.

The config flow checks a link with the settings its running twin will use: both build them here,
so a form that passes connects the same way the entry does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import ssl
from typing import Any

from homeassistant.const import (
    ATTR_LATITUDE,
    ATTR_LONGITUDE,
    CONF_ADDRESS,
    CONF_HOST,
    CONF_LATITUDE,
    CONF_LONGITUDE,
    CONF_PASSWORD,
    CONF_PIN,
    CONF_PORT,
    CONF_USERNAME,
)
from homeassistant.core import HomeAssistant
from homeassistant.util.ssl import client_context, get_default_no_verify_context

from .const import (
    BLUETOOTH_CONNECT_TIMEOUT,
    CONF_CA_CERT,
    CONF_CONNECTION,
    CONF_DEVICE,
    CONF_FOLLOW_ENTITY,
    CONF_LOCATION,
    CONF_LOCATION_MODE,
    CONF_TLS,
    CONF_VERIFY_TLS,
    CONNECTION_BLUETOOTH,
    CONNECTION_SERIAL,
    DEFAULT_RADIO_PORT,
    LOCATION_ENTITY,
    LOCATION_FIXED,
)
from .links.mqtt import MqttSettings
from .links.radio_transport import RadioSettings
from .mesh.models import BROADCAST, parse_node_id


def ssl_context_factory(
    settings: Mapping[str, Any],
) -> Callable[[], ssl.SSLContext] | None:
    """Return how to build the TLS context a broker section asks for, or None for plain TCP."""
    if not settings.get(CONF_TLS):
        return None
    if not settings.get(CONF_VERIFY_TLS, True):
        return get_default_no_verify_context
    if ca_cert := settings.get(CONF_CA_CERT):

        def with_private_ca() -> ssl.SSLContext:
            context = ssl.create_default_context(cafile=ca_cert)
            return context

        return with_private_ca
    return client_context


def mqtt_settings(section: Mapping[str, Any], client_id: str) -> MqttSettings:
    """Build link settings from a broker section of the entry data."""
    return MqttSettings(
        host=section[CONF_HOST],
        port=section[CONF_PORT],
        username=section.get(CONF_USERNAME) or None,
        password=section.get(CONF_PASSWORD) or None,
        client_id=client_id,
        ssl_context_factory=ssl_context_factory(section),
    )


def radio_settings(section: Mapping[str, Any]) -> RadioSettings:
    """Build link settings from the radio section of the entry data."""
    if section.get(CONF_CONNECTION) == CONNECTION_SERIAL:
        return RadioSettings(device=section[CONF_DEVICE])
    if section.get(CONF_CONNECTION) == CONNECTION_BLUETOOTH:
        return RadioSettings(
            address=section[CONF_ADDRESS],
            pin=section.get(CONF_PIN) or None,
            connect_timeout=BLUETOOTH_CONNECT_TIMEOUT,
        )
    return RadioSettings(host=section[CONF_HOST], port=section.get(CONF_PORT, DEFAULT_RADIO_PORT))


def mesh_filters(topics: list[str]) -> set[str]:
    """Return the filters for the encrypted envelopes and map reports under each root."""
    return {f"{root}/2/{kind}/#" for root in topics for kind in ("e", "map")}


def lightning_location(hass: HomeAssistant, section: Mapping[str, Any]) -> tuple[float, float]:
    """Return the coordinates the lightning monitor watches right now."""
    mode = section.get(CONF_LOCATION_MODE)
    if mode == LOCATION_FIXED:
        location = section[CONF_LOCATION]
        return location[CONF_LATITUDE], location[CONF_LONGITUDE]
    if mode == LOCATION_ENTITY and (state := hass.states.get(section[CONF_FOLLOW_ENTITY])):
        latitude = state.attributes.get(ATTR_LATITUDE)
        longitude = state.attributes.get(ATTR_LONGITUDE)
        if isinstance(latitude, (int, float)) and isinstance(longitude, (int, float)):
            return float(latitude), float(longitude)
    return hass.config.latitude, hass.config.longitude


def parse_target(target: str) -> tuple[int | None, int]:
    """Return (destination, channel) for 'channel:N' or a node id; (None, 0) if neither."""
    text = target.strip().lower()
    if text.startswith("channel:"):
        index = text.partition(":")[2]
        return (BROADCAST, int(index)) if index.isdigit() and int(index) < 8 else (None, 0)
    return parse_node_id(text), 0
