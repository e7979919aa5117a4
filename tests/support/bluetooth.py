"""Home Assistant's Bluetooth integration in tests: advertisements.

Advertisements are injected the way core's own Bluetooth tests do it
(`tests/components/bluetooth/__init__.py`): through the manager's advertisement callback.
"""

from __future__ import annotations

import time
from typing import Any

ADAPTER_SOURCE = "00:00:00:00:00:01"


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
