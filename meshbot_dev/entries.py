"""Config entries for meshbot as tests, the demo and the benchmarks build them."""

from __future__ import annotations

from typing import Any

from homeassistant.const import CONF_ADDRESS, CONF_HOST, CONF_PIN, CONF_PORT
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meshbot.const import (
    CONF_CHANNEL_KEYS,
    CONF_CONNECTION,
    CONF_LIGHTNING,
    CONF_LOCATION_MODE,
    CONF_MESH,
    CONF_MESH_TOPICS,
    CONF_RADIO,
    CONF_RADIUS_KM,
    CONF_TLS,
    CONF_VERIFY_TLS,
    CONNECTION_BLUETOOTH,
    CONNECTION_TCP,
    DOMAIN,
    LOCATION_HOME,
)

# The credentials of the brokers that require a login.
MESH_USER = "meshuser"
MESH_PASSWORD = "correct horse battery staple"


def radio_section(port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    """Return entry data for a TCP radio."""
    return {CONF_CONNECTION: CONNECTION_TCP, CONF_HOST: host, CONF_PORT: port}


def bluetooth_section(address: str, pin: str | None = None) -> dict[str, Any]:
    """Return entry data for a Bluetooth radio."""
    section = {CONF_CONNECTION: CONNECTION_BLUETOOTH, CONF_ADDRESS: address}
    if pin is not None:
        section[CONF_PIN] = pin
    return section


def broker_section(port: int, host: str = "127.0.0.1", **extra: Any) -> dict[str, Any]:
    """Return entry data for a plain MQTT broker."""
    return {CONF_HOST: host, CONF_PORT: port, CONF_TLS: False, CONF_VERIFY_TLS: True, **extra}


def entry_for(
    radio: dict[str, Any] | None = None,
    mesh: dict[str, Any] | None = None,
    lightning: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """Return a meshbot entry with the given link sections."""
    data: dict[str, Any] = {}
    if radio is not None:
        data[CONF_RADIO] = radio
    if mesh is not None:
        data[CONF_MESH] = mesh
    if lightning is not None:
        data[CONF_LIGHTNING] = {CONF_LOCATION_MODE: LOCATION_HOME, **lightning}
    return MockConfigEntry(
        domain=DOMAIN,
        title="meshbot: test",
        data=data,
        options={
            CONF_MESH_TOPICS: ["msh/EU_868"],
            CONF_CHANNEL_KEYS: {"LongFast": "AQ=="},
            CONF_RADIUS_KM: 100.0,
        },
    )
