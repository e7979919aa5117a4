"""Link coordinators: each link with its supervisor, its status published to its entities.

A link's status changes when it connects, drops or fails, and its last-message time with every
message; the coordinator publishes the first at once and the second once a minute, so that a
message storm never becomes a storm of state writes. Nothing here awaits the network: the
supervisor runs as a background task of the entry and connects on its own time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
import time
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .ble import BLUETOOTH, async_setup_bluetooth
from .compat import async_entry_device
from .const import ACTIVITY_REFRESH_SECONDS, BACKOFF, DOMAIN, LOGGER, LinkKind
from .errors import no_radio, request_error, request_paced, send_error
from .lazy import BLE_CLIENT, MESH_PROTOCOL, MQTT_CLIENT, async_import_once_started
from .links.backoff import Backoff
from .links.errors import LinkError
from .links.mqtt import MqttLink
from .links.stream import RadioLink, RequestRefused, RequestTimeout, SendResult, TextTooLongError
from .links.supervisor import Supervisor
from .mesh.airtime import RequestKind, RequestPacer
from .mesh.models import node_id
from .mesh_coordinator import MeshCoordinator

if TYPE_CHECKING:
    from meshtastic.protobuf import mesh_pb2

LINK_TITLES = {
    LinkKind.RADIO: "Radio link",
    LinkKind.MESH: "Mesh collector",
    LinkKind.LIGHTNING: "Lightning monitor",
}

# What each link imports before it connects (see lazy.py).
LINK_MODULES = {
    LinkKind.RADIO: MESH_PROTOCOL,
    LinkKind.MESH: MESH_PROTOCOL + MQTT_CLIENT,
    LinkKind.LIGHTNING: MQTT_CLIENT,
}


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """What a link's connectivity sensor shows."""

    connected: bool
    last_error: str | None
    last_message_at: float | None
    connected_since: float | None
    reconnects: int


class LinkCoordinator[LinkT: (MqttLink, RadioLink)](DataUpdateCoordinator[LinkStatus]):
    """One link and its supervisor; pushes the link's status, never polls."""

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, kind: LinkKind, link: LinkT
    ) -> None:
        """Supervise `link`; connect nothing yet."""
        super().__init__(hass, LOGGER, config_entry=entry, name=f"meshbot {kind} link")
        # The base class types its entry as optional; this one always has it.
        self.entry = entry
        self.kind = kind
        self.link: LinkT = link
        initial, maximum = BACKOFF[kind]
        self.supervisor = Supervisor(
            LINK_TITLES[kind],
            link,
            Backoff(initial, maximum),
            LOGGER,
            on_change=self._async_status_changed,
            # Only the mesh broker's credentials and a Bluetooth radio's PIN are secrets a user can
            # fix through reauthentication.
            on_auth_failed=self._async_auth_failed if self._reauthenticates() else None,
            detect_contention=kind is LinkKind.RADIO,
        )
        self.data = self._status()

    def _reauthenticates(self) -> bool:
        return self.kind is LinkKind.MESH

    @property
    def messages(self) -> int:
        """Return how many messages the link delivered."""
        link = self.link
        return link.counters.messages if isinstance(link, MqttLink) else link.messages

    def _status(self) -> LinkStatus:
        state = self.supervisor.state
        return LinkStatus(
            connected=state.connected,
            last_error=state.last_error,
            last_message_at=self.link.last_message_at,
            connected_since=state.connected_since,
            reconnects=state.reconnects,
        )

    @callback
    def async_start(self) -> None:
        """Start the supervisor as a background task of the entry; return at once."""
        entry = self.entry
        entry.async_create_background_task(
            self.hass, self._async_run(), f"meshbot {self.kind} link {entry.entry_id}"
        )
        entry.async_on_unload(
            async_track_time_interval(
                self.hass,
                self._async_refresh_activity,
                timedelta(seconds=ACTIVITY_REFRESH_SECONDS),
                name=f"meshbot {self.kind} link activity",
            )
        )

    def _link_modules(self) -> tuple[str, ...]:
        return LINK_MODULES[self.kind]

    async def _async_run(self) -> None:
        # Here rather than with the integration: Home Assistant's startup never waits on it.
        await async_import_once_started(self.hass, self._link_modules())
        await self._async_before_connecting()
        await self.supervisor.run()

    async def _async_before_connecting(self) -> None:
        """Prepare what the link needs from Home Assistant before its first session."""

    @callback
    def _async_status_changed(self) -> None:
        self.async_set_updated_data(self._status())

    @callback
    def _async_refresh_activity(self, _now: Any = None) -> None:
        if self.link.last_message_at != self.data.last_message_at:
            self._async_status_changed()

    @callback
    def _async_auth_failed(self) -> None:
        self.entry.async_start_reauth(self.hass, data={"link": str(self.kind)})


class RadioCoordinator(LinkCoordinator[RadioLink]):
    """The radio link: also names the radio's device, reports contention, sends text and asks."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        link: RadioLink,
        mesh: MeshCoordinator | None,
    ) -> None:
        """Supervise the radio; `mesh` gives the radio's device its node name."""
        self.mesh = mesh
        self.pacer = RequestPacer()
        self._contention_reported = False
        # Bluetooth radios: whether Home Assistant stopped hearing the radio's advertisements,
        # and whether the repair issue says so.
        self._unheard = False
        self._unheard_reported = False
        super().__init__(hass, entry, LinkKind.RADIO, link)

    @property
    def bluetooth_address(self) -> str | None:
        """Return the radio's Bluetooth address, for a Bluetooth radio."""
        return self.link.settings.address

    def _reauthenticates(self) -> bool:
        # A Bluetooth radio that refuses the pairing will refuse it again: a random PIN changed
        # with a reboot, or the node wants one now. Only the user can give the new one.
        return self.link.settings.address is not None

    def _link_modules(self) -> tuple[str, ...]:
        modules = super()._link_modules()
        return modules + BLE_CLIENT if self.bluetooth_address else modules

    async def _async_before_connecting(self) -> None:
        if (address := self.bluetooth_address) is None:
            return
        # Only an entry with a Bluetooth radio sets up (and imports) Home Assistant's Bluetooth.
        await async_setup_bluetooth(self.hass)
        if BLUETOOTH not in self.hass.config.components:
            return
        from homeassistant.components import bluetooth  # noqa: PLC0415

        entry = self.entry
        entry.async_on_unload(
            bluetooth.async_track_unavailable(
                self.hass, self._async_unheard, address, connectable=True
            )
        )
        entry.async_on_unload(
            bluetooth.async_register_callback(
                self.hass,
                self._async_heard,
                bluetooth.BluetoothCallbackMatcher(address=address, connectable=True),
                bluetooth.BluetoothScanningMode.PASSIVE,
            )
        )

    @callback
    def _async_unheard(self, _service_info: Any) -> None:
        self._unheard = True
        self._async_report_range()

    @callback
    def _async_heard(self, _service_info: Any, _change: Any) -> None:
        if self._unheard:
            self._unheard = False
            self._async_report_range()

    @callback
    def _async_report_range(self) -> None:
        # A connected node stops advertising: silence then is no absence.
        away = self._unheard and not self.supervisor.state.connected
        if away == self._unheard_reported:
            return
        self._unheard_reported = away
        self._async_radio_issue("radio_out_of_range", away)

    @callback
    def _async_status_changed(self) -> None:
        state = self.supervisor.state
        if state.connected:
            self._async_describe_radio()
        if state.contended != self._contention_reported:
            self._contention_reported = state.contended
            self._async_radio_issue("radio_contended", state.contended)
        if self.bluetooth_address:
            self._async_report_range()
        super()._async_status_changed()

    async def async_send_text(
        self, text: str, destination: int, channel: int, want_ack: bool
    ) -> SendResult:
        """Send a text through the radio; raise HomeAssistantError with a translated reason."""
        try:
            return await self.link.send_text(text, destination, channel, want_ack)
        except (TextTooLongError, LinkError) as err:
            raise send_error(err, self.link.connected) from err

    async def async_request(
        self, kind: RequestKind, node: int, port: int, payload: bytes, answer_timeout: float
    ) -> mesh_pb2.MeshPacket:
        """Ask `node` through the radio, within the airtime rules; return its answer.

        Raise ServiceValidationError when the airtime rules hold the request back, and
        HomeAssistantError with a translated reason when no answer comes.
        """
        name = node_id(node)
        pacer = self.pacer
        if pacer.waiting(node):
            raise request_paced(name, None)
        # Monotonic, so that a change of the wall clock neither blocks nor frees requests.
        started = time.monotonic()
        if delay := pacer.delay(node, kind, started):
            raise request_paced(name, delay)
        pacer.begin(node)
        sent = False
        try:
            answer = await self.link.request(node, port, payload, answer_timeout)
        except (RequestTimeout, RequestRefused) as err:
            # It went out (or the radio's own rate limit holds it back): it counts.
            sent = True
            raise request_error(err, name, self.link.connected) from err
        except LinkError as err:
            raise request_error(err, name, self.link.connected) from err
        else:
            sent = True
            return answer
        finally:
            pacer.end(node, kind, started, sent)

    @callback
    def _async_describe_radio(self) -> None:
        entry = self.entry
        info = self.link.info
        device = async_entry_device(self.hass, entry.entry_id, f"{entry.entry_id}_radio")
        if device is None or info.node_num is None:
            return
        node = self.mesh.state.nodes.get(info.node_num) if self.mesh else None
        dr.async_get(self.hass).async_update_device(
            device.id,
            name=node.long_name if node and node.long_name else device.name,
            model=info.hw_model,
            sw_version=info.firmware_version,
            serial_number=node_id(info.node_num),
        )

    @callback
    def _async_radio_issue(self, key: str, raised: bool) -> None:
        """Raise or clear this entry's radio repair `key` (its translation key too)."""
        issue_id = f"{key}_{self.entry.entry_id}"
        if not raised:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=key,
            translation_placeholders={"radio": self.link.describe()},
        )


async def async_no_radio(text: str, destination: int, channel: int, want_ack: bool) -> SendResult:
    """Stand in for the radio's sender in an entry without a radio: always refuse."""
    raise no_radio()
