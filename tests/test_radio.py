"""The radio as Home Assistant sees it: sending text through the action."""

from __future__ import annotations

import asyncio
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meshbot.compat import async_entry_device
from custom_components.meshbot.const import DOMAIN
from meshbot_dev.entries import entry_for, radio_section
from meshbot_dev.fake_node import FakeNode, heard

from .support.waiting import until

RADIO_LINK = "binary_sensor.meshbot_test_radio_link"


def radio_connected(hass: HomeAssistant) -> bool:
    """Return whether the radio's connectivity sensor says connected."""
    state = hass.states.get(RADIO_LINK)
    return state is not None and state.state == "on"


async def topology(hass: HomeAssistant) -> dict[str, Any]:
    """Return the mesh as the get_topology action answers it."""
    return await hass.services.async_call(
        DOMAIN, "get_topology", {}, blocking=True, return_response=True
    )


def node_ids(num: int) -> str:
    return f"!{num:08x}"


@pytest.fixture
async def radio_entry(hass: HomeAssistant, fake_node: FakeNode) -> MockConfigEntry:
    entry = entry_for(radio=radio_section(fake_node.port))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: radio_connected(hass))
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)


async def send(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    return await hass.services.async_call(
        DOMAIN, "send_text", data, blocking=True, return_response=True
    )


async def test_send_text_to_a_channel_and_to_a_node(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    broadcast = await send(hass, message="Storm coming", channel=2)
    direct = await send(hass, message="hi", destination="!0000BEEF", want_ack=True)
    first, second = fake_node.sent_packets
    assert (first.to, first.channel, first.decoded.payload) == (0xFFFFFFFF, 2, b"Storm coming")
    assert (second.to, second.want_ack) == (0x0000BEEF, True)
    assert broadcast == {"packet_id": first.id, "acknowledged": None, "error": None}
    assert direct == {"packet_id": second.id, "acknowledged": True, "error": None}


@pytest.mark.parametrize(
    ("data", "translation_key"),
    [
        ({"message": "x" * 234}, "text_too_long"),
        ({"message": "é" * 101, "destination": "!0000beef"}, "text_too_long"),
        ({"message": "hi", "destination": "bob"}, "invalid_node_id"),
    ],
    ids=["broadcast-too-long", "dm-too-long-in-utf8", "bad-destination"],
)
async def test_send_text_refuses_bad_input_before_sending(
    hass: HomeAssistant,
    radio_entry: MockConfigEntry,
    fake_node: FakeNode,
    data: dict[str, Any],
    translation_key: str,
) -> None:
    with pytest.raises(ServiceValidationError) as error:
        await send(hass, **data)
    assert error.value.translation_key == translation_key
    assert fake_node.sent_packets == []


async def test_send_text_fails_at_once_without_a_radio_or_with_a_full_queue(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    fake_node.behaviour.queue_full = True
    with pytest.raises(HomeAssistantError) as error:
        await send(hass, message="busy")
    assert error.value.translation_key == "radio_refused"
    await fake_node.stop()
    await until(lambda: not radio_connected(hass))
    with pytest.raises(HomeAssistantError) as error:
        await send(hass, message="anyone?")
    assert error.value.translation_key == "radio_not_connected"


async def test_send_text_needs_a_radio(hass: HomeAssistant, broker: Any) -> None:
    from meshbot_dev.entries import broker_section

    entry = entry_for(mesh=broker_section(broker.port))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    with pytest.raises(ServiceValidationError) as error:
        await send(hass, message="hello")
    assert error.value.translation_key == "no_radio"
    await hass.config_entries.async_unload(entry.entry_id)


def text_frame(
    sender: int, packet_id: int, text: str, to: int = 0xFFFFFFFF, channel: int = 0
) -> Any:
    from meshtastic.protobuf import mesh_pb2, portnums_pb2

    packet = mesh_pb2.MeshPacket(
        to=to,
        id=packet_id,
        channel=channel,
        hop_start=3,
        hop_limit=2,
        rx_snr=4.5,
        rx_rssi=-99,
        decoded=mesh_pb2.Data(portnum=portnums_pb2.TEXT_MESSAGE_APP, payload=text.encode()),
    )
    setattr(packet, "from", sender)
    return mesh_pb2.FromRadio(packet=packet)


async def test_messages_fire_events_once_even_after_reconnects_and_restarts(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    from homeassistant.core import callback

    from custom_components.meshbot.const import EVENT_MESSAGE

    events: list[Any] = []
    # A callback runs in order on the loop; a plain function would go to the executor.
    hass.bus.async_listen(EVENT_MESSAGE, callback(lambda event: events.append(event)))
    fake_node.broadcast(text_frame(0x0000CAFE, 11, "hello all", channel=1))
    fake_node.broadcast(text_frame(0x0000CAFE, 12, "psst", to=fake_node.node_num))
    await until(lambda: len(events) == 2)
    channel, direct = (event.data for event in events)
    assert channel == {
        **channel,
        "type": "channel_message",
        "sender": "!0000cafe",
        "destination": "broadcast",
        "channel": 1,
        "text": "hello all",
        "snr": 4.5,
        "rssi": -99,
        "hops": 1,
    }
    assert (
        direct["type"] == "direct_message" and direct["destination"] == f"!{fake_node.node_num:08x}"
    )
    state = hass.states.get("event.meshbot_test_radio_messages")
    assert state.attributes["event_type"] == "direct_message"
    assert state.attributes["text"] == "psst"

    # The node replays its queue to a reconnecting client: nothing fires twice.
    fake_node.close_clients()
    await until(lambda: not radio_connected(hass))
    await until(lambda: radio_connected(hass))
    fake_node.broadcast(text_frame(0x0000CAFE, 11, "hello all", channel=1))
    fake_node.broadcast(text_frame(0x0000CAFE, 13, "new one"))
    await until(lambda: len(events) == 3)
    assert events[-1].data["text"] == "new one"

    assert await hass.config_entries.async_reload(radio_entry.entry_id)
    await until(lambda: radio_connected(hass))
    fake_node.broadcast(text_frame(0x0000CAFE, 13, "new one"))
    fake_node.broadcast(text_frame(0x0000CAFE, 14, "after restart"))
    await until(lambda: len(events) == 4)
    assert [event.data["text"] for event in events] == [
        "hello all",
        "psst",
        "new one",
        "after restart",
    ]


async def test_a_rival_client_raises_a_repair_issue_and_meshbot_backs_off(
    hass: HomeAssistant, fake_node: FakeNode
) -> None:
    from unittest.mock import patch

    from homeassistant.helpers import issue_registry as ir

    entry = entry_for(radio=radio_section(fake_node.port))
    entry.add_to_hass(hass)
    issue_id = f"radio_contended_{entry.entry_id}"
    registry = ir.async_get(hass)

    async def rival() -> None:
        # Like a phone app reconnecting over Wi-Fi: each connection kicks meshbot off.
        while True:
            _, writer = await asyncio.open_connection("127.0.0.1", fake_node.port)
            await asyncio.sleep(0.3)
            writer.close()

    with (
        patch("custom_components.meshbot.links.supervisor.KICK_WINDOW", 5.0),
        patch("custom_components.meshbot.links.supervisor.CONTENDED_DELAY", 0.5),
        patch("custom_components.meshbot.links.supervisor.CONTENTION_CLEARS_AFTER", 1.0),
    ):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await until(lambda: radio_connected(hass))
        fighting = asyncio.create_task(rival())
        try:
            await until(lambda: registry.async_get_issue("meshbot", issue_id), timeout=15)
            issue = registry.async_get_issue("meshbot", issue_id)
            assert issue.translation_key == "radio_contended"
            assert issue.translation_placeholders == {"radio": f"tcp://127.0.0.1:{fake_node.port}"}
            attempts = hass.states.get(RADIO_LINK).attributes["reconnects"]
            await asyncio.sleep(1.0)
            reconnects = hass.states.get(RADIO_LINK).attributes["reconnects"]
            assert reconnects <= attempts + 2, "backing off, not fighting"
        finally:
            fighting.cancel()
            await asyncio.gather(fighting, return_exceptions=True)
        await until(lambda: registry.async_get_issue("meshbot", issue_id) is None, timeout=15)
        assert radio_connected(hass)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_handshake_fills_the_mesh_and_the_radio_describes_itself(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    from datetime import timedelta

    from homeassistant.helpers import entity_registry as er
    from homeassistant.util import dt as dt_util
    from meshtastic.protobuf import mesh_pb2, portnums_pb2, telemetry_pb2
    from pytest_homeassistant_custom_component.common import async_fire_time_changed

    nodes = {node["id"]: node for node in (await topology(hass))["nodes"]}
    for num in fake_node.other_nodes:
        assert nodes[node_ids(num)]["long_name"] == f"Node {num:08x}"
        assert nodes[node_ids(num)]["hw_model"] == "HELTEC_V3"
    device = async_entry_device(hass, radio_entry.entry_id, f"{radio_entry.entry_id}_radio")
    assert device.name == "Fake Base"
    assert device.sw_version == fake_node.firmware_version
    assert device.serial_number == f"!{fake_node.node_num:08x}"

    stats = telemetry_pb2.Telemetry(
        local_stats=telemetry_pb2.LocalStats(
            num_packets_rx=1234,
            num_packets_tx=56,
            num_online_nodes=17,
            num_total_nodes=40,
            uptime_seconds=7200,
        )
    )
    device_metrics = telemetry_pb2.Telemetry(
        device_metrics=telemetry_pb2.DeviceMetrics(
            battery_level=101, voltage=4.2, channel_utilization=9.5
        )
    )
    for index, telemetry in enumerate((stats, device_metrics)):
        packet = mesh_pb2.MeshPacket(
            to=0xFFFFFFFF,
            id=900 + index,
            decoded=mesh_pb2.Data(
                portnum=portnums_pb2.TELEMETRY_APP, payload=telemetry.SerializeToString()
            ),
        )
        setattr(packet, "from", fake_node.node_num)
        fake_node.broadcast(mesh_pb2.FromRadio(packet=packet))
    registry = er.async_get(hass)

    def radio_value(key: str) -> str:
        entity_id = registry.async_get_entity_id("sensor", DOMAIN, f"{radio_entry.entry_id}_{key}")
        return hass.states.get(entity_id).state

    # The figures reach the sensors at the next flush after the frames arrived.
    async with asyncio.timeout(10):
        while radio_value("radio_online_nodes") != "17" or radio_value("radio_battery") != "100":
            async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=1.1))
            await hass.async_block_till_done()
            await asyncio.sleep(0.01)

    assert radio_value("radio_battery") == "100", "101 means on external power"
    assert radio_value("radio_online_nodes") == "17"
    assert radio_value("radio_channel_utilization") == "9.5"
    packets = registry.async_get(
        registry.async_get_entity_id("sensor", DOMAIN, f"{radio_entry.entry_id}_radio_packets_rx")
    )
    assert packets.disabled_by is er.RegistryEntryDisabler.INTEGRATION, "most are opt-in"


async def test_every_kind_of_radio_packet_reaches_the_mesh(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    from meshtastic.protobuf import mesh_pb2, portnums_pb2

    reporter, neighbor, relay = 0x00000A01, 0x00000A02, 0x00000A03
    fake_node.broadcast(
        heard(
            reporter,
            1,
            portnums_pb2.POSITION_APP,
            mesh_pb2.Position(latitude_i=488566000, longitude_i=23522000, precision_bits=16),
        )
    )
    fake_node.broadcast(
        heard(
            reporter,
            2,
            portnums_pb2.NEIGHBORINFO_APP,
            mesh_pb2.NeighborInfo(
                node_id=reporter, neighbors=[mesh_pb2.Neighbor(node_id=neighbor, snr=3.5)]
            ),
        )
    )
    fake_node.broadcast(
        heard(
            neighbor,
            3,
            portnums_pb2.TRACEROUTE_APP,
            mesh_pb2.RouteDiscovery(route=[relay], snr_towards=[8, 12], route_back=[], snr_back=[]),
            to=fake_node.node_num,
            request_id=77,
        )
    )
    # The radio hands frames over in order: once the traceroute shows, so does the rest.
    async with asyncio.timeout(10):
        mesh = await topology(hass)
        while not any(link["source"] == "traceroute" for link in mesh["links"]):
            await asyncio.sleep(0.01)
            mesh = await topology(hass)
    nodes = {node["id"]: node for node in mesh["nodes"]}
    links = {(link["from"], link["to"], link["source"]): link for link in mesh["links"]}
    assert nodes[node_ids(reporter)]["latitude"] == pytest.approx(48.8566)
    assert nodes[node_ids(reporter)]["precision_bits"] == 16
    local, reporter_id = node_ids(fake_node.node_num), node_ids(reporter)
    assert links[node_ids(neighbor), reporter_id, "neighbor"]["snr"] == 3.5
    assert links[reporter_id, local, "radio"]["rssi"] == -80, "heard directly by our radio"
    # A traceroute reply from `neighbor` to the radio: local -> relay -> neighbor.
    assert links[local, node_ids(relay), "traceroute"]["snr"] == 2.0
    assert links[node_ids(relay), node_ids(neighbor), "traceroute"]["snr"] == 3.0


async def test_a_radio_that_restarts_is_not_taken_for_a_rival_client(
    hass: HomeAssistant,
    hass_client: Any,
    fake_node: FakeNode,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from unittest.mock import patch

    from homeassistant.helpers import issue_registry as ir
    from pytest_homeassistant_custom_component.components.diagnostics import (
        get_diagnostics_for_config_entry,
    )

    entry = entry_for(radio=radio_section(fake_node.port))
    entry.add_to_hass(hass)
    registry = ir.async_get(hass)

    def reconnects() -> int:
        return hass.states.get(RADIO_LINK).attributes["reconnects"]

    async def back_after(drop: Any) -> None:
        before = reconnects()
        await drop()
        await until(lambda: reconnects() > before and radio_connected(hass))

    async def kick() -> None:
        # A phone app connecting takes the radio; then it goes away again.
        _, writer = await asyncio.open_connection("127.0.0.1", fake_node.port)
        await until(lambda: not radio_connected(hass))
        writer.close()

    # Two kicks and a restart within the window: three short sessions, one of them a restart.
    with patch("custom_components.meshbot.links.supervisor.KICK_WINDOW", 30.0):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await until(lambda: radio_connected(hass))
        await back_after(kick)
        await back_after(fake_node.reboot)
        await back_after(kick)
        for _ in range(3):
            await back_after(fake_node.reboot)
        assert registry.async_get_issue("meshbot", f"radio_contended_{entry.entry_id}") is None
        assert "to another client" not in caplog.text
        assert caplog.text.count(f"tcp://127.0.0.1:{fake_node.port} restarted") == 4
        diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        assert diagnostics["links"]["radio"]["restarts"] == 4
        assert diagnostics["links"]["radio"]["state"]["contended"] is False
        # A third kick, though, is contention: restarts neither count nor break the streak.
        await kick()
        await until(
            lambda: registry.async_get_issue("meshbot", f"radio_contended_{entry.entry_id}")
        )
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_sloppy_node_record_and_garbage_frames_cost_only_themselves(
    hass: HomeAssistant, hass_client: Any, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    from pytest_homeassistant_custom_component.components.diagnostics import (
        get_diagnostics_for_config_entry,
    )

    from meshbot_dev.fake_node import HEADER, raw_node_record

    def framed(payload: bytes) -> bytes:
        return HEADER + len(payload).to_bytes(2, "big") + payload

    sloppy = 0x0BADC0DE
    # Seen in the wild: a short name cut inside its fourth character (52 46 50 e0).
    fake_node.send_raw(framed(raw_node_record(sloppy, b"Ridge Fire Post", b"RFP\xe0")))
    # Frames no radio means: bytes that are no protobuf, and a message of unknown fields only.
    fake_node.send_raw(framed(b"\x0a\xff\xff\xff\xff\x0f") + framed(b"\xf8\x07\x01"))

    async def sloppy_node() -> dict[str, Any] | None:
        nodes = {node["id"]: node for node in (await topology(hass))["nodes"]}
        return nodes.get(node_ids(sloppy))

    for _ in range(100):
        if (node := await sloppy_node()) is not None:
            break
        await asyncio.sleep(0.05)
    assert node is not None, "the record is not lost for one broken character"
    assert (node["long_name"], node["short_name"]) == ("Ridge Fire Post", "RFP")
    assert (node["latitude"], node["longitude"]) == (45.8, 4.8)
    assert node["hw_model"] == "RAK4631"

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, radio_entry)
    assert diagnostics["links"]["radio"]["bad_frames"] == 2
    assert radio_connected(hass)
