"""The radio session over Bluetooth: the same handshake and sending, through GATT."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import patch

from bleak.backends.device import BLEDevice
from hypothesis import HealthCheck, given, settings, strategies as st
from meshtastic.protobuf import mesh_pb2
import pytest

from custom_components.meshbot.links.errors import (
    LinkError,
    LinkPairingError,
    LinkPairingRequired,
)
from custom_components.meshbot.links.radio_transport import RadioSettings
from custom_components.meshbot.links.stream import RadioLink
from meshbot_dev.fake_node import FakeNode

from .support.waiting import until
from .test_links import run_session, stop

ADDRESS = "AA:BB:CC:DD:EE:01"


def device() -> BLEDevice:
    return BLEDevice(ADDRESS, "Meshtastic_ee01", details={})


def ble_link(on_frame: Any = None, lookup: Any = device, **settings: Any) -> RadioLink:
    return RadioLink(RadioSettings(address=ADDRESS, **settings), on_frame, ble_device=lookup)


async def test_handshake_node_database_and_live_packets_over_gatt(ble_node: FakeNode) -> None:
    frames: list[mesh_pb2.FromRadio] = []
    link = ble_link(frames.append)
    task, _ = await run_session(link)
    assert link.describe() == f"bluetooth {ADDRESS}"
    assert link.info.node_num == ble_node.node_num
    assert link.info.nodes_in_db == 1 + len(ble_node.other_nodes)
    assert [frame.node_info.num for frame in frames] == [ble_node.node_num, *ble_node.other_nodes]
    frames.clear()
    ble_node.broadcast(mesh_pb2.FromRadio(packet=mesh_pb2.MeshPacket(id=7, to=0xFFFFFFFF)))
    await until(lambda: frames)
    assert frames[0].packet.id == 7
    result = await link.send_text("over the air", want_ack=True)
    assert result.acknowledged is True
    assert ble_node.sent_packets[-1].decoded.payload == b"over the air"
    # No stream header and no wake bytes over GATT: every write parsed as one ToRadio.
    assert ble_node.received[0].want_config_id
    await stop(task)
    assert ble_node.gatt_connected == 0, "nothing stays connected after the session"
    assert any(message.disconnect for message in ble_node.received)


async def test_garbage_reads_are_counted_not_fatal(ble_node: FakeNode) -> None:
    frames: list[mesh_pb2.FromRadio] = []
    link = ble_link(frames.append)
    task, _ = await run_session(link)
    frames.clear()
    ble_node.send_raw(b"\xff\xff\xff\x00garbage")
    ble_node.broadcast(mesh_pb2.FromRadio(packet=mesh_pb2.MeshPacket(id=8)))
    await until(lambda: frames)
    assert link.bad_frames == 1
    assert not task.done()
    await stop(task)


async def test_a_dropped_connection_ends_the_session(ble_node: FakeNode) -> None:
    link = ble_link()
    task, _ = await run_session(link)
    ble_node.gatt_clients[-1].drop()
    with pytest.raises(LinkError, match="disconnected"):
        await asyncio.wait_for(task, 5)
    assert not link.connected


async def test_a_radio_out_of_range_is_a_clear_error(ble_node: FakeNode) -> None:
    with pytest.raises(LinkError, match="not in range"):
        await ble_link(lookup=lambda: None).session(lambda restarted=False: None)
    ble_node.behaviour.in_range = False
    with pytest.raises(LinkError, match="not found"):
        await ble_link().session(lambda restarted=False: None)
    assert ble_node.gatt_connected == 0


@pytest.mark.parametrize(
    ("pin", "error"),
    [(None, LinkPairingRequired), ("654321", LinkPairingError), ("12x456", LinkPairingError)],
    ids=["no-pin", "wrong-pin", "not-a-number"],
)
async def test_pairing_refused(ble_node: FakeNode, pin: str | None, error: type) -> None:
    ble_node.behaviour.pin = "123456"
    with pytest.raises(error):
        await ble_link(pin=pin).session(lambda restarted=False: None)
    assert ble_node.gatt_connected == 0, "a refused pairing leaves nothing connected"


async def test_pairing_with_the_right_pin(ble_node: FakeNode) -> None:
    ble_node.behaviour.pin = "123456"
    link = ble_link(pin="123456")
    assert "123456" not in repr(link.settings)
    task, _ = await run_session(link)
    assert link.info.node_num == ble_node.node_num
    await stop(task)


async def _read_garbage_then_a_packet(payloads: list[bytes]) -> None:
    node = FakeNode(other_nodes=1)
    frames: list[mesh_pb2.FromRadio] = []
    with patch(
        "custom_components.meshbot.links.ble.establish_connection", node.establish_connection
    ):
        link = ble_link(frames.append)
        task, _ = await run_session(link)
        for payload in payloads:
            node.send_raw(payload)
        # Garbage can parse as a `rebooted` frame, which starts a new handshake that swallows
        # what arrives meanwhile: offer the live packet until one gets through.
        async with asyncio.timeout(10):
            while not any(frame.packet.id == 4242 for frame in frames):
                node.broadcast(mesh_pb2.FromRadio(packet=mesh_pb2.MeshPacket(id=4242)))
                await asyncio.sleep(0.005)
        assert not task.done(), "garbage never ends the session"
        await stop(task)
    assert node.gatt_connected == 0


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.binary(min_size=1, max_size=512), min_size=1, max_size=20))
def test_any_bytes_read_from_the_radio_leave_the_session_alive(payloads: list[bytes]) -> None:
    asyncio.run(_read_garbage_then_a_packet(payloads))
