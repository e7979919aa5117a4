"""Bluetooth radios through Home Assistant's Bluetooth integration: their devices and its setup.

Home Assistant's Bluetooth integration (and bleak under it) costs startup time: it is imported and
set up only for an entry with a Bluetooth radio, never at meshbot's import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import CONF_ADDRESS
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from .const import CONF_CONNECTION, CONNECTION_BLUETOOTH
from .links.radio_transport import BleDeviceLookup

BLUETOOTH = "bluetooth"


def ble_device_lookup(hass: HomeAssistant, section: Mapping[str, Any]) -> BleDeviceLookup | None:
    """Return how the radio link finds its Bluetooth device now, for a Bluetooth radio."""
    if section.get(CONF_CONNECTION) != CONNECTION_BLUETOOTH:
        return None
    address = section[CONF_ADDRESS]

    def lookup() -> Any:
        # Each connection asks again: the radio may be heard by another adapter or proxy now.
        if BLUETOOTH not in hass.config.components:
            return None
        from homeassistant.components import bluetooth  # noqa: PLC0415

        return bluetooth.async_ble_device_from_address(hass, address, connectable=True)

    return lookup


async def async_setup_bluetooth(hass: HomeAssistant) -> None:
    """Set up Home Assistant's Bluetooth integration unless it is already."""
    if BLUETOOTH not in hass.config.components:
        await async_setup_component(hass, BLUETOOTH, {})
        # A failed setup is Home Assistant's to report; the radio then stays "not in range".
