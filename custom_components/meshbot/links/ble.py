"""The Meshtastic GATT transport: a radio session's protobufs over Bluetooth LE.

The node serves one GATT service. A client writes each ToRadio, bare, to the ToRadio
characteristic, and reads FromRadio until a read comes back empty: after each write, and after
each FromNum notification (the node's "new data waits"). There is no stream header: one read is
one message. Every GATT operation is awaited with a bound, so a radio that stops answering
mid-operation ends the session instead of hanging it.

The connection is made with bleak-retry-connector's `establish_connection` on the device Home
Assistant's Bluetooth integration gives: it works through local adapters and ESPHome proxies alike.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import contextlib
import logging
from typing import Any

from bleak.exc import BleakError
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from .errors import LinkError, LinkPairingError, LinkPairingRequired, LinkTimeoutError
from .radio_transport import BleDeviceLookup, RadioSettings

_LOGGER = logging.getLogger(__name__)

SERVICE_UUID = "6ba1b218-15a8-461f-9fa8-5dcae273eafd"
TO_RADIO_UUID = "f75c76d2-129e-4dad-a1dd-7866124401e7"
FROM_RADIO_UUID = "2c55e69e-4993-11ed-b878-0242ac120002"
FROM_NUM_UUID = "ed9da18c-a800-4f66-a670-aa7547e34453"

# A read or write the radio has not answered in this long will not be answered.
GATT_TIMEOUT = 10.0
# How long letting go of the connection may take; a proxy that lost the radio may never answer.
DISCONNECT_TIMEOUT = 5.0
# Connection attempts per session inside establish_connection; the supervisor backs off between
# sessions, so a few quick retries here only cover the BLE stack's transient failures.
CONNECT_ATTEMPTS = 2
# What BlueZ, ESPHome and the firmware say when a characteristic needs an encrypted (paired) link.
_AUTH_MARKERS = ("authenticat", "encrypt", "not permitted", "notpermitted", "insufficient")


def needs_pairing(err: Exception) -> bool:
    """Return whether a GATT error means the node wants a paired, encrypted link."""
    text = str(err).lower()
    return any(marker in text for marker in _AUTH_MARKERS)


class GattTransport:
    """One GATT connection to a Meshtastic node, pumping ToRadio writes and FromRadio reads."""

    def __init__(self, on_payload: Callable[[bytes], None]) -> None:
        """Hand every non-empty FromRadio read to `on_payload`."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._on_payload = on_payload
        self.closed: asyncio.Future[None] = loop.create_future()
        self.last_received = loop.time()
        self._client: Any = None
        self._outbox: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    def _end(self, error: LinkError) -> None:
        if not self.closed.done():
            self.closed.set_exception(error)
            self.closed.exception()
        # Wake the pump so it sees the end and stops.
        self._wake.set()

    def _on_disconnected(self, _client: Any) -> None:
        self._end(LinkError("the radio disconnected (out of range, or turned off)"))

    def _on_from_num(self, _characteristic: Any, _data: bytearray) -> None:
        self._wake.set()

    async def connect(self, device: Any, settings: RadioSettings, lookup: BleDeviceLookup) -> None:
        """Connect, pair if the node needs it, subscribe to FromNum and start the pump."""
        self._client = client = await establish_connection(
            BleakClientWithServiceCache,
            device,
            settings.address or device.address,
            disconnected_callback=self._on_disconnected,
            max_attempts=CONNECT_ATTEMPTS,
            ble_device_callback=lookup,
        )
        if settings.pin:
            await self._pair(settings.pin)
        try:
            async with asyncio.timeout(GATT_TIMEOUT):
                await client.start_notify(FROM_NUM_UUID, self._on_from_num)
        except BleakError as err:
            if not needs_pairing(err):
                raise LinkError(f"the radio refused notifications: {err}") from err
            if settings.pin:
                raise LinkPairingError("the radio refused the pairing") from err
            raise LinkPairingRequired("the radio requires pairing with its PIN") from err
        except TimeoutError as err:
            raise LinkTimeoutError("the radio did not answer the subscription") from err
        self._pump = asyncio.create_task(self._run_pump(), name="meshbot bluetooth radio pump")

    async def _pair(self, pin: str) -> None:
        # bleak's pair() takes backend-specific keyword arguments. None of the installed
        # backends takes a passkey yet: on BlueZ the host's pairing agent answers the node's
        # passkey request, and ESPHome proxies pair "Just Works". The passkey is offered for the
        # backends that read it (and bleak's pairing callbacks, once released).
        try:
            async with asyncio.timeout(GATT_TIMEOUT * 3):
                await self._client.pair(passkey=int(pin))
        except (BleakError, TimeoutError, ValueError) as err:
            raise LinkPairingError("pairing with the radio failed") from err

    def send_message(self, payload: bytes) -> None:
        """Queue one serialized ToRadio for the pump to write."""
        if self.closed.done():
            return
        self._outbox.append(payload)
        self._wake.set()

    async def _run_pump(self) -> None:
        try:
            while not self.closed.done():
                await self._wake.wait()
                self._wake.clear()
                if self.closed.done():
                    return
                while self._outbox:
                    payload = self._outbox.popleft()
                    await self._gatt(self._client.write_gatt_char(TO_RADIO_UUID, payload, True))
                # Drained after every write too: the node answers want_config without a FromNum.
                while data := await self._gatt(self._client.read_gatt_char(FROM_RADIO_UUID)):
                    self.last_received = self._loop.time()
                    self._on_payload(bytes(data))
        except LinkError as err:
            self._end(err)
        except BleakError as err:
            self._end(LinkError(f"Bluetooth error: {err}"))

    async def _gatt(self, operation: Any) -> Any:
        try:
            async with asyncio.timeout(GATT_TIMEOUT):
                return await operation
        except TimeoutError as err:
            raise LinkTimeoutError(f"no GATT answer within {GATT_TIMEOUT:g} s") from err

    async def release(self) -> None:
        """Stop the pump and disconnect, bounded, so that nothing stays connected."""
        self._end(LinkError("the session ended"))
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(BleakError, TimeoutError, OSError):
            async with asyncio.timeout(DISCONNECT_TIMEOUT):
                # What is still queued is the session's goodbye (`disconnect`): the node then
                # frees its API state at once instead of waiting for its own timeout.
                while self._outbox and client.is_connected:
                    await client.write_gatt_char(TO_RADIO_UUID, self._outbox.popleft(), True)
                await client.disconnect()


async def open_gatt(
    settings: RadioSettings, lookup: BleDeviceLookup, on_payload: Callable[[bytes], None]
) -> GattTransport:
    """Connect to the radio's GATT service; raise LinkError when it is not usable."""
    device = lookup()
    if device is None:
        raise LinkError(f"the radio {settings.address} is not in range of any Bluetooth adapter")
    transport = GattTransport(on_payload)
    try:
        await transport.connect(device, settings, lookup)
    except BaseException as err:
        await transport.release()
        if isinstance(err, BleakError):
            raise LinkError(f"Bluetooth connection failed: {err}") from err
        raise
    return transport
