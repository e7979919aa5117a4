"""Notify entities: a text to each of the radio's channels, and a direct message to each node.

A channel message returns once the radio queued it (Meshtastic acknowledges no broadcast). A
direct message asks for an acknowledgement, which takes up to a minute over a few hops: the
action returns once the text is checked and handed to a background task, and what became of it
is reported when the radio knows, by a `meshbot_message_delivery` event and the entity's
`last_delivery` attributes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from homeassistant.components.notify import NotifyEntity, NotifyEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import EVENT_MESSAGE_DELIVERY
from .coordinator import RadioCoordinator
from .data import MeshbotConfigEntry
from .entity import MeshNodeEntity, async_setup_node_entities, radio_device_link
from .errors import send_error
from .links.errors import LinkError
from .links.stream import BROADCAST_ADDR, MAX_TEXT_DIRECT, RadioChannel, TextTooLongError
from .mesh.models import node_id
from .mesh.state import iso
from .mesh_coordinator import MeshCoordinator

# The radio queues what it is given and sends it in turn.
PARALLEL_UPDATES = 0

DIRECT_MESSAGE = NotifyEntityDescription(key="direct_message", translation_key="direct_message")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MeshbotConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a notify entity per radio channel as the radio tells them, and one per tracked node."""
    runtime = entry.runtime_data
    if (radio := runtime.radio) is None:
        return
    made: set[int] = set()

    @callback
    def add_channels() -> None:
        # The channels come with each handshake: a channel added on the radio appears at the next.
        fresh = [channel for channel in radio.link.info.channels if channel.index not in made]
        if fresh:
            made.update(channel.index for channel in fresh)
            async_add_entities(ChannelNotify(entry, radio, channel) for channel in fresh)

    add_channels()
    entry.async_on_unload(radio.async_add_listener(add_channels))
    if (mesh := runtime.mesh) is not None:
        async_setup_node_entities(
            entry,
            mesh,
            async_add_entities,
            lambda num: [NodeNotify(entry, mesh, radio, num, DIRECT_MESSAGE)],
        )


class ChannelNotify(CoordinatorEntity[RadioCoordinator], NotifyEntity):
    """Send a text to everyone on one of the radio's channels."""

    _attr_has_entity_name = True
    _attr_translation_key = "channel"

    def __init__(
        self, entry: MeshbotConfigEntry, radio: RadioCoordinator, channel: RadioChannel
    ) -> None:
        """Attach the entity to the radio's device."""
        super().__init__(radio)
        self.channel = channel.index
        self._attr_unique_id = f"{entry.entry_id}_channel_{channel.index}"
        self._attr_device_info = radio_device_link(entry)
        self._attr_translation_placeholders = {"channel": channel.name or str(channel.index)}
        self._attr_extra_state_attributes = {
            "channel_index": channel.index,
            "primary": channel.primary,
        }

    @property
    def available(self) -> bool:
        """Return whether the radio is connected."""
        return self.coordinator.data.connected

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Send the text on the channel; return once the radio queued it."""
        await self.coordinator.async_send_text(message, BROADCAST_ADDR, self.channel, False)


class NodeNotify(MeshNodeEntity, NotifyEntity):
    """Send a direct message to one node; its acknowledgement is reported when it comes."""

    def __init__(
        self,
        entry: MeshbotConfigEntry,
        mesh: MeshCoordinator,
        radio: RadioCoordinator,
        num: int,
        description: NotifyEntityDescription,
    ) -> None:
        """Attach the entity to the node's device."""
        super().__init__(entry, mesh, num, description)
        self.entry = entry
        self.radio = radio
        self._delivery: dict[str, Any] = {}
        self._deliveries: set[asyncio.Task[None]] = set()

    @property
    def available(self) -> bool:
        """Return whether the node is known and the radio connected."""
        return super().available and self.radio.data.connected

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return what became of the last message sent."""
        return self._delivery

    def _fingerprint(self) -> object:
        return (self.available, tuple(self._delivery.items()))

    async def async_added_to_hass(self) -> None:
        """Follow the radio's connection as well as the node."""
        await super().async_added_to_hass()
        self.async_on_remove(self.radio.async_add_listener(self._async_node_changed))

    async def async_will_remove_from_hass(self) -> None:
        """Stop waiting for acknowledgements: no one is left to report them to."""
        for task in self._deliveries:
            task.cancel()
        await super().async_will_remove_from_hass()

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Check the text and hand it to the radio; report its acknowledgement when it comes."""
        size = len(message.encode())
        # Checked here, not in the background task: a text that cannot be sent is the caller's
        # error, raised before anything goes out.
        if size > MAX_TEXT_DIRECT:
            raise send_error(TextTooLongError(size, MAX_TEXT_DIRECT), self.radio.link.connected)
        if not self.radio.link.connected:
            raise send_error(LinkError("the radio is not connected"), False)
        self._delivery = {"last_delivery": "pending", "last_error": None}
        self.async_write_ha_state()
        task = self.entry.async_create_background_task(
            self.hass, self._async_deliver(message), f"meshbot direct message to {self.num:08x}"
        )
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _async_deliver(self, message: str) -> None:
        acknowledged: bool | None
        packet_id: int | None = None
        try:
            result = await self.radio.async_send_text(message, self.num, 0, True)
        except HomeAssistantError as err:
            acknowledged, error = False, err.translation_key
        else:
            packet_id, acknowledged, error = result.packet_id, result.acknowledged, result.error
        self._delivery = {
            "last_delivery": "acknowledged" if acknowledged else "failed",
            "last_error": error,
        }
        self.hass.bus.async_fire(
            EVENT_MESSAGE_DELIVERY,
            {
                "config_entry_id": self.entry.entry_id,
                "entity_id": self.entity_id,
                "destination": node_id(self.num),
                "packet_id": packet_id,
                "acknowledged": bool(acknowledged),
                "error": error,
                "time": iso(time.time()),
            },
        )
        self.async_write_ha_state()
