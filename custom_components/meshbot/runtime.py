"""The hub of a config entry: builds the links, supervises them and tells entities about them.

This is the only module that knows both Home Assistant and the links. Nothing here awaits the
network: the supervisors run as background tasks of the entry and connect on their own time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval

from .collector import MeshCollector
from .compat import async_entry_device
from .const import (
    ACTIVITY_REFRESH_SECONDS,
    BACKOFF,
    CONF_LIGHTNING,
    CONF_MESH,
    CONF_MESH_TOPICS,
    CONF_RADIO,
    DEFAULT_MESH_TOPICS,
    DOMAIN,
    LOGGER,
    LinkKind,
)
from .data import MeshbotConfigEntry
from .errors import no_radio, send_error
from .lightning_monitor import LightningMonitor
from .links.backoff import Backoff
from .links.errors import LinkError
from .links.mqtt import MqttLink
from .links.stream import RadioLink, SendResult, TextTooLongError
from .links.supervisor import Supervisor
from .mesh.models import node_id
from .settings import lightning_location, mesh_filters, mqtt_settings, radio_settings

LINK_TITLES = {
    LinkKind.RADIO: "Radio link",
    LinkKind.MESH: "Mesh collector",
    LinkKind.LIGHTNING: "Lightning monitor",
}

type AnyLink = MqttLink | RadioLink


class MeshbotHub:
    """Own the links of one entry and publish their state to entities."""

    def __init__(self, hass: HomeAssistant, entry: MeshbotConfigEntry) -> None:
        """Build every configured link; connect nothing yet."""
        self.hass = hass
        self.entry = entry
        self.links: dict[LinkKind, AnyLink] = {}
        self.supervisors: dict[LinkKind, Supervisor] = {}
        self._listeners: dict[LinkKind, list[CALLBACK_TYPE]] = {}
        self._published_activity: dict[LinkKind, float | None] = {}
        self._contention_reported: dict[LinkKind, bool] = {}
        self.message_counts: dict[LinkKind, int] = dict.fromkeys(LinkKind, 0)
        client_prefix = f"meshbot-{entry.entry_id[:12]}"
        data, options = entry.data, entry.options
        # The radio and the mesh broker feed one shared picture of the mesh.
        self.mesh: MeshCollector | None = None
        self.lightning: LightningMonitor | None = None
        if CONF_RADIO in data or CONF_MESH in data:
            self.mesh = MeshCollector(hass, entry.entry_id, dict(options))

        if radio := data.get(CONF_RADIO):
            self._add(LinkKind.RADIO, RadioLink(radio_settings(radio), self._on_radio_frame))
        if mesh := data.get(CONF_MESH):
            link = MqttLink(mqtt_settings(mesh, f"{client_prefix}-mesh"), self._on_mesh_message)
            link.set_filters(mesh_filters(options.get(CONF_MESH_TOPICS, DEFAULT_MESH_TOPICS)))
            self._add(LinkKind.MESH, link)
        if lightning := data.get(CONF_LIGHTNING):
            link = MqttLink(
                mqtt_settings(lightning, f"{client_prefix}-lightning"),
                self._on_strike_message,
            )
            self.lightning = LightningMonitor(
                hass,
                entry,
                link,
                dict(lightning),
                dict(options),
                lightning_location(hass, lightning),
                self.async_send_text,
            )
            self._add(LinkKind.LIGHTNING, link)

    def _add(self, kind: LinkKind, link: AnyLink) -> None:
        initial, maximum = BACKOFF[kind]
        self.links[kind] = link
        self.supervisors[kind] = Supervisor(
            LINK_TITLES[kind],
            link,
            Backoff(initial, maximum),
            LOGGER,
            on_change=lambda: self._async_notify(kind),
            # Only the mesh broker has credentials a user can fix through reauthentication.
            on_auth_failed=(lambda: self._async_auth_failed(kind))
            if kind is LinkKind.MESH
            else None,
            detect_contention=kind is LinkKind.RADIO,
        )
        self._listeners[kind] = []

    @callback
    def async_start(self) -> None:
        """Start every supervisor as a background task of the entry; return at once."""
        for kind, supervisor in self.supervisors.items():
            self.entry.async_create_background_task(
                self.hass,
                supervisor.run(),
                f"meshbot {kind} link {self.entry.entry_id}",
            )
        if self.supervisors:
            self.entry.async_on_unload(
                async_track_time_interval(
                    self.hass,
                    self._async_refresh_activity,
                    timedelta(seconds=ACTIVITY_REFRESH_SECONDS),
                    name="meshbot link activity",
                )
            )

    @callback
    def async_add_listener(self, kind: LinkKind, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` when the state of link `kind` changes; return the remover."""
        listeners = self._listeners[kind]
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    @callback
    def _async_notify(self, kind: LinkKind) -> None:
        self._published_activity[kind] = self.links[kind].last_message_at
        link = self.links[kind]
        if isinstance(link, RadioLink) and self.supervisors[kind].state.connected:
            self._async_describe_radio(link)
        contended = self.supervisors[kind].state.contended
        if contended != self._contention_reported.get(kind, False):
            self._contention_reported[kind] = contended
            self._async_report_contention(kind, contended)
        for listener in list(self._listeners[kind]):
            listener()

    @callback
    def _async_refresh_activity(self, _now: Any = None) -> None:
        # The last-message time changes with every message; publishing it once a minute keeps
        # a message storm from turning into a storm of state writes.
        for kind, link in self.links.items():
            if link.last_message_at != self._published_activity.get(kind):
                self._async_notify(kind)

    async def async_send_text(
        self, text: str, destination: int, channel: int, want_ack: bool
    ) -> SendResult:
        """Send a text through the radio; raise HomeAssistantError with a translated reason."""
        radio = self.links.get(LinkKind.RADIO)
        if not isinstance(radio, RadioLink):
            raise no_radio()
        try:
            return await radio.send_text(text, destination, channel, want_ack)
        except (TextTooLongError, LinkError) as err:
            raise send_error(err, radio.connected) from err

    @callback
    def _async_describe_radio(self, radio: RadioLink) -> None:
        registry = dr.async_get(self.hass)
        device = async_entry_device(self.hass, self.entry.entry_id, f"{self.entry.entry_id}_radio")
        if device is None or radio.info.node_num is None:
            return
        node = self.mesh.state.nodes.get(radio.info.node_num) if self.mesh else None
        registry.async_update_device(
            device.id,
            name=node.long_name if node and node.long_name else device.name,
            model=radio.info.hw_model,
            sw_version=radio.info.firmware_version,
            serial_number=node_id(radio.info.node_num),
        )

    @callback
    def _async_report_contention(self, kind: LinkKind, contended: bool) -> None:
        issue_id = f"radio_contended_{self.entry.entry_id}"
        if not contended:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="radio_contended",
            translation_placeholders={"radio": self.links[kind].describe()},
        )

    @callback
    def _async_auth_failed(self, kind: LinkKind) -> None:
        self.entry.async_start_reauth(self.hass, data={"link": str(kind)})

    @callback
    def _on_radio_frame(self, frame: Any) -> None:
        self.message_counts[LinkKind.RADIO] += 1
        if self.mesh is None:
            return
        variant = frame.WhichOneof("payload_variant")
        if variant == "packet":
            radio = self.links[LinkKind.RADIO]
            self.mesh.on_radio_packet(frame.packet, radio.info.node_num)  # type: ignore[union-attr]
        elif variant == "node_info":
            self.mesh.on_radio_node_record(frame.node_info)

    @callback
    def _on_mesh_message(self, topic: str, payload: bytes) -> None:
        self.message_counts[LinkKind.MESH] += 1
        self.mesh.on_envelope(topic, payload)  # type: ignore[union-attr]

    @callback
    def _on_strike_message(self, topic: str, payload: bytes) -> None:
        self.message_counts[LinkKind.LIGHTNING] += 1
        self.lightning.on_message(topic, payload)  # type: ignore[union-attr]
