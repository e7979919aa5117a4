"""What a radio session and the transports under it agree on: settings and the transport's face.

`stream.RadioLink` is the session; `stream._StreamProtocol` (TCP, serial) and `ble.GattTransport`
(Bluetooth LE) carry it. Both sides import this module, never each other's, so the session can
load a transport lazily (bleak only for a Bluetooth radio) without an import circle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class RadioSettings:
    """How to reach the radio: a TCP host, a serial device or a Bluetooth address."""

    host: str | None = None
    port: int = 4403
    device: str | None = None
    address: str | None = None
    # The node's Bluetooth pairing PIN, for nodes that require pairing; never logged.
    pin: str | None = field(default=None, repr=False)
    connect_timeout: float = 10.0
    handshake_timeout: float = 60.0
    heartbeat_interval: float = 300.0
    # A node answers a heartbeat with a queue status, so silence this long means a dead link.
    liveness_timeout: float = 660.0
    # False asks only for the node's own configuration (a quick connection check).
    want_nodes: bool = True


class RadioTransport(Protocol):
    """What a radio session needs from the connection under it."""

    # Set (to an exception) when the connection ends.
    closed: asyncio.Future[None]
    # The loop time of the last byte received, for the liveness check.
    last_received: float

    def send_message(self, payload: bytes) -> None:
        """Send one serialized ToRadio; never wait."""

    async def release(self) -> None:
        """Let go of the connection, bounded; return once the radio is free for the next one."""


# Looks up the radio's current Bluetooth device (a `bleak` BLEDevice), or None when not in range.
BleDeviceLookup = Callable[[], Any]
