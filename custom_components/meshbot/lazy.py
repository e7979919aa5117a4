"""Modules imported on first use, and their loading in Home Assistant's import executor.

The Meshtastic protobufs and the mesh decoder take as long to import as the rest of meshbot, and
only a running radio or mesh link needs them: they stay off Home Assistant's startup.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.start import async_at_started

# What a radio or mesh link needs before its first message, imported by its background task.
MESH_PROTOCOL = (
    "google.protobuf.message",
    "meshtastic.protobuf.mesh_pb2",
    "meshtastic.protobuf.portnums_pb2",
    f"{__package__}.mesh.lenient",
    f"{__package__}.mesh.decode",
    f"{__package__}.mesh.requests",
)
# What a Bluetooth radio needs before it connects: bleak, its retrying connector, the transport.
BLE_CLIENT = (
    "bleak_retry_connector",
    f"{__package__}.links.ble",
)
# What an MQTT link needs before it connects: paho-mqtt and meshbot's client made of it.
MQTT_CLIENT = (
    "paho.mqtt.client",
    f"{__package__}.links.paho_client",
)


class LazyModule:
    """A module imported the first time one of its names is read."""

    def __init__(self, name: str) -> None:
        """Import `name` (absolute) only when first needed."""
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        """Import the module if needed and keep the name, so that later reads are plain."""
        value = getattr(importlib.import_module(self._name), attr)
        setattr(self, attr, value)
        return value


def _import_all(names: tuple[str, ...]) -> None:
    for name in names:
        importlib.import_module(name)


async def async_import(hass: HomeAssistant, names: tuple[str, ...]) -> None:
    """Import modules in Home Assistant's import executor, if they are not imported yet."""
    if not all(name in sys.modules for name in names):
        await hass.async_add_import_executor_job(_import_all, names)


async def async_import_once_started(hass: HomeAssistant, names: tuple[str, ...]) -> None:
    """Import modules a link needs in the import executor, once Home Assistant runs.

    During startup the import would hold the interpreter lock while the event loop still sets
    up integrations, and so stretch Home Assistant's start; afterwards it costs nobody a wait.
    """
    if not all(name in sys.modules for name in names):
        started: asyncio.Future[None] = hass.loop.create_future()

        async def on_started(_hass: HomeAssistant) -> None:
            if not started.done():
                started.set_result(None)

        cancel = async_at_started(hass, on_started)
        try:
            await started
        finally:
            cancel()
        await async_import(hass, names)
