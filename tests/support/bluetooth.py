"""Home Assistant's Bluetooth integration in tests: its missing USB packages, and advertisements.

Core's Bluetooth integration depends on its USB integration, whose packages (aiousbwatcher, and
serialx on newer Home Assistant) are not installed in the test environments: where they are
missing, a stand-in for the USB integration takes its place (Bluetooth uses it only to hear of
adapters plugged in later). Advertisements are injected the way core's own Bluetooth tests do it
(`tests/components/bluetooth/__init__.py`): through the manager's advertisement callback.
"""

from __future__ import annotations

from collections.abc import Callable
import importlib
import sys
import time
import types
from typing import Any

ADAPTER_SOURCE = "00:00:00:00:00:01"


def _usb_stand_in() -> types.ModuleType:
    module = types.ModuleType("homeassistant.components.usb")
    module.DOMAIN = "usb"  # type: ignore[attr-defined]

    async def async_setup(hass: Any, config: Any) -> bool:
        return True

    def async_register_scan_request_callback(hass: Any, callback: Callable[[], None]) -> Any:
        return lambda: None

    module.async_setup = async_setup  # type: ignore[attr-defined]
    module.async_register_scan_request_callback = async_register_scan_request_callback  # type: ignore[attr-defined]
    return module


def install_usb_stand_in() -> None:
    """Put the stand-in in place of Home Assistant's USB integration if it cannot import."""
    try:
        importlib.import_module("homeassistant.components.usb")
    except ModuleNotFoundError:
        sys.modules["homeassistant.components.usb"] = _usb_stand_in()


def service_info(address: str, name: str, service_uuids: list[str], rssi: int = -60) -> Any:
    """Return what Home Assistant's scanner makes of one connectable advertisement."""
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData
    from homeassistant.components.bluetooth import BluetoothServiceInfoBleak

    advertisement = AdvertisementData(
        local_name=name,
        manufacturer_data={},
        service_data={},
        service_uuids=service_uuids,
        tx_power=-127,
        rssi=rssi,
        platform_data=(),
    )
    return BluetoothServiceInfoBleak(
        name=name,
        address=address,
        rssi=rssi,
        manufacturer_data={},
        service_data={},
        service_uuids=service_uuids,
        source=ADAPTER_SOURCE,
        device=BLEDevice(address, name, details={}),
        advertisement=advertisement,
        connectable=True,
        time=time.monotonic(),
        tx_power=-127,
    )


def inject(hass: Any, info: Any) -> None:
    """Hand an advertisement to Home Assistant's Bluetooth manager, as an adapter would."""
    from homeassistant.components.bluetooth import (
        async_get_advertisement_callback,
    )

    async_get_advertisement_callback(hass)(info)
