"""Notify entities: a text to each radio channel and a direct message to each tracked node."""

from __future__ import annotations

from typing import Any

from homeassistant.components.notify import DOMAIN as NOTIFY_DOMAIN, SERVICE_SEND_MESSAGE
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from meshtastic.protobuf import channel_pb2, mesh_pb2
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meshbot.compat import async_entry_device
from custom_components.meshbot.const import DOMAIN, EVENT_MESSAGE_DELIVERY
from meshbot_dev.fake_node import FakeNode

from .support.waiting import until
from .test_node_entities import GREENHOUSE, RADIO_LINK, flush_until, tracking_all

DIRECT = "notify.node_10000000_direct_message"


@pytest.fixture
async def radio_entry(hass: HomeAssistant, fake_node: FakeNode) -> MockConfigEntry:
    fake_node.channels += [
        channel_pb2.Channel(
            index=1,
            role=channel_pb2.Channel.Role.SECONDARY,
            settings=channel_pb2.ChannelSettings(name="Garden", psk=b"\x02" * 16),
        ),
        channel_pb2.Channel(index=2, role=channel_pb2.Channel.Role.DISABLED),
    ]
    entry = tracking_all(fake_node.port)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: (state := hass.states.get(RADIO_LINK)) and state.state == "on")
    await flush_until(hass, lambda: hass.states.get(DIRECT))
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)


def channel_entity(hass: HomeAssistant, entry: MockConfigEntry, index: int) -> str | None:
    """Return the entity id of the notify entity of channel `index`."""
    return er.async_get(hass).async_get_entity_id(
        NOTIFY_DOMAIN, DOMAIN, f"{entry.entry_id}_channel_{index}"
    )


async def notify(hass: HomeAssistant, entity_id: str, message: str) -> None:
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        SERVICE_SEND_MESSAGE,
        {"entity_id": entity_id, "message": message},
        blocking=True,
    )


@pytest.fixture
def deliveries(hass: HomeAssistant) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    @callback
    def record(event: Event) -> None:
        seen.append(dict(event.data))

    hass.bus.async_listen(EVENT_MESSAGE_DELIVERY, record)
    return seen


async def test_one_notify_entity_per_enabled_channel_sends_on_that_channel(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    primary, garden = channel_entity(hass, radio_entry, 0), channel_entity(hass, radio_entry, 1)
    assert channel_entity(hass, radio_entry, 2) is None, "a disabled channel sends nothing"
    assert hass.states.get(garden).name.endswith("Channel Garden")
    assert hass.states.get(primary).attributes["primary"] is True
    registry = er.async_get(hass)
    device = async_entry_device(hass, radio_entry.entry_id, f"{radio_entry.entry_id}_radio")
    assert registry.async_get(garden).device_id == device.id
    assert device.name == "Fake Base", "the entities added after the handshake keep its name"

    await notify(hass, garden, "Frost tonight: cover the seedlings")
    await notify(hass, primary, "hello mesh")
    first, second = fake_node.sent_packets
    assert (first.to, first.channel, first.want_ack) == (0xFFFFFFFF, 1, False)
    assert first.decoded.payload == b"Frost tonight: cover the seedlings"
    assert (second.to, second.channel) == (0xFFFFFFFF, 0)
    # The notify entity's state is when it last sent.
    assert hass.states.get(garden).state not in ("unknown", STATE_UNAVAILABLE)


async def test_a_direct_message_asks_for_an_ack_and_reports_it(
    hass: HomeAssistant,
    radio_entry: MockConfigEntry,
    fake_node: FakeNode,
    deliveries: list[dict[str, Any]],
) -> None:
    await notify(hass, DIRECT, "Door open")
    await until(lambda: deliveries)
    (packet,) = fake_node.sent_packets
    assert (packet.to, packet.want_ack, packet.decoded.payload) == (GREENHOUSE, True, b"Door open")
    assert deliveries[0] | {"time": None} == {
        "config_entry_id": radio_entry.entry_id,
        "entity_id": DIRECT,
        "destination": f"!{GREENHOUSE:08x}",
        "packet_id": packet.id,
        "acknowledged": True,
        "error": None,
        "time": None,
    }
    await until(lambda: hass.states.get(DIRECT).attributes.get("last_delivery") == "acknowledged")

    # The node never answers: the radio gives up and says why.
    fake_node.behaviour.ack_reason = mesh_pb2.Routing.Error.MAX_RETRANSMIT
    await notify(hass, DIRECT, "Door still open")
    await until(lambda: len(deliveries) == 2)
    assert (deliveries[1]["acknowledged"], deliveries[1]["error"]) == (False, "MAX_RETRANSMIT")
    state = hass.states.get(DIRECT)
    assert (state.attributes["last_delivery"], state.attributes["last_error"]) == (
        "failed",
        "MAX_RETRANSMIT",
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [("channel", "x" * 234), ("direct", "é" * 101)],
    ids=["channel-over-233-bytes", "direct-over-200-bytes-in-utf8"],
)
async def test_a_text_too_long_is_refused_before_anything_is_sent(
    hass: HomeAssistant,
    radio_entry: MockConfigEntry,
    fake_node: FakeNode,
    deliveries: list[dict[str, Any]],
    target: str,
    message: str,
) -> None:
    entity_id = channel_entity(hass, radio_entry, 0) if target == "channel" else DIRECT
    with pytest.raises(ServiceValidationError) as error:
        await notify(hass, entity_id, message)
    assert error.value.translation_key == "text_too_long"
    await hass.async_block_till_done()
    assert fake_node.sent_packets == []
    assert deliveries == []


async def test_notify_entities_are_unavailable_while_the_radio_is_down(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    primary = channel_entity(hass, radio_entry, 0)
    port = fake_node.port
    await fake_node.stop()
    await until(lambda: hass.states.get(RADIO_LINK).state == "off")
    assert hass.states.get(primary).state == STATE_UNAVAILABLE
    assert hass.states.get(DIRECT).state == STATE_UNAVAILABLE
    # Home Assistant skips an unavailable entity: nothing is queued for later.
    await notify(hass, primary, "anyone?")
    assert fake_node.sent_packets == []

    await fake_node.start_tcp(port)
    await until(lambda: hass.states.get(RADIO_LINK).state == "on", timeout=30)
    assert hass.states.get(primary).state != STATE_UNAVAILABLE
    assert hass.states.get(DIRECT).state != STATE_UNAVAILABLE
    await notify(hass, DIRECT, "back")
    await until(lambda: fake_node.sent_packets)


async def test_a_full_radio_queue_is_an_error_on_a_channel_and_a_failed_delivery_in_a_dm(
    hass: HomeAssistant,
    radio_entry: MockConfigEntry,
    fake_node: FakeNode,
    deliveries: list[dict[str, Any]],
) -> None:
    fake_node.behaviour.queue_full = True
    with pytest.raises(HomeAssistantError) as error:
        await notify(hass, channel_entity(hass, radio_entry, 0), "busy?")
    assert error.value.translation_key == "radio_refused"

    await notify(hass, DIRECT, "busy?")
    await until(lambda: deliveries)
    assert deliveries[0]["acknowledged"] is False
    assert (deliveries[0]["packet_id"], deliveries[0]["error"]) == (None, "radio_refused")
    assert hass.states.get(DIRECT).attributes["last_delivery"] == "failed"
