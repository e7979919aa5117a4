"""The links on their own: MQTT against a real Mosquitto, the stream client against a fake node."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
import os
import signal
import ssl
from typing import Any

from meshtastic.protobuf import mesh_pb2, portnums_pb2
import paho.mqtt.client as paho
import pytest

from custom_components.meshbot.links.backoff import Backoff
from custom_components.meshbot.links.errors import (
    LinkAuthError,
    LinkClosedByPeer,
    LinkError,
    LinkTimeoutError,
    LinkTlsError,
)
from custom_components.meshbot.links.mqtt import MqttLink, MqttSettings
from custom_components.meshbot.links.paho_client import MAX_PACKET
from custom_components.meshbot.links.probe import probe
from custom_components.meshbot.links.radio_transport import RadioSettings
from custom_components.meshbot.links.stream import RadioLink, TextTooLongError
from custom_components.meshbot.links.supervisor import Supervisor
from meshbot_dev.entries import MESH_PASSWORD, MESH_USER
from meshbot_dev.fake_node import FakeNode
from meshbot_dev.mosquitto import (
    UNRESOLVABLE_HOST,
    HangingListener,
    MosquittoBroker,
    SilentListener,
    refused_port,
)

from .support.waiting import until


def publish(broker: MosquittoBroker, topic: str, payload: bytes) -> None:
    """Publish one message with paho, an MQTT implementation independent of ours."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    if broker.users:
        client.username_pw_set(*next(iter(broker.users.items())))
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


class Received:
    """Collect what a link delivers."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload))


class Up(asyncio.Event):
    """Set once a session's link is up; remembers whether the peer had restarted."""

    restarted: bool | None = None

    def __call__(self, restarted: bool = False) -> None:
        self.restarted = restarted
        self.set()


async def run_session(link: Any) -> tuple[asyncio.Task[None], Up]:
    """Start one session in a task; return it and an event set once the link is up."""
    up = Up()
    task = asyncio.create_task(link.session(up))
    await asyncio.wait_for(up.wait(), 10)
    return task, up


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# MQTT


async def test_mqtt_receives_subscribed_topics_only(broker: MosquittoBroker) -> None:
    received = Received()
    link = MqttLink(MqttSettings(broker.host, broker.port), received)
    link.set_filters({"msh/EU_868/2/e/#"})
    task, _ = await run_session(link)
    await asyncio.sleep(0.1)  # let the SUBACK arrive before publishing
    await asyncio.to_thread(publish, broker, "msh/EU_868/2/e/LongFast/!abcd0001", b"\x01\x02")
    await asyncio.to_thread(publish, broker, "msh/US/2/e/LongFast/!abcd0001", b"other region")
    await until(lambda: len(received.messages) >= 1)
    await asyncio.sleep(0.2)
    assert received.messages == [("msh/EU_868/2/e/LongFast/!abcd0001", b"\x01\x02")]
    assert link.last_message_at is not None
    await stop(task)


async def test_mqtt_changes_subscriptions_on_a_live_connection(broker: MosquittoBroker) -> None:
    received = Received()
    link = MqttLink(MqttSettings(broker.host, broker.port), received)
    link.set_filters({"a/#"})
    task, _ = await run_session(link)
    link.set_filters({"b/#"})
    await asyncio.sleep(0.2)
    await asyncio.to_thread(publish, broker, "a/1", b"old")
    await asyncio.to_thread(publish, broker, "b/1", b"new")
    await until(lambda: received.messages)
    await asyncio.sleep(0.2)
    assert received.messages == [("b/1", b"new")]
    await stop(task)


async def test_mqtt_resubscribes_after_the_broker_restarts(broker: MosquittoBroker) -> None:
    received = Received()
    link = MqttLink(MqttSettings(broker.host, broker.port), received)
    link.set_filters({"strikes/#"})
    supervisor = Supervisor("test", link, Backoff(0.05, 0.2), logging.getLogger("test"))
    task = asyncio.create_task(supervisor.run())
    await until(lambda: supervisor.state.connected)
    await asyncio.to_thread(broker.restart)
    await until(lambda: not supervisor.state.connected or supervisor.state.reconnects > 0)
    await until(lambda: supervisor.state.connected)
    await asyncio.sleep(0.2)
    await asyncio.to_thread(publish, broker, "strikes/1", b"after restart")
    await until(lambda: received.messages)
    assert received.messages == [("strikes/1", b"after restart")]
    assert supervisor.state.reconnects >= 1
    await stop(task)


async def test_mqtt_skips_oversized_messages_and_keeps_going(broker: MosquittoBroker) -> None:
    received = Received()
    link = MqttLink(MqttSettings(broker.host, broker.port), received)
    link.set_filters({"t/#"})
    task, _ = await run_session(link)
    await asyncio.to_thread(publish, broker, "t/big", b"x" * (MAX_PACKET + 10))
    await asyncio.to_thread(publish, broker, "t/small", b"fine")
    await until(lambda: received.messages)
    assert received.messages == [("t/small", b"fine")]
    assert link.counters.oversized == 1
    assert link.connected
    await stop(task)


@pytest.mark.parametrize("qos", [1, 2])
async def test_mqtt_acknowledges_what_it_receives_at_qos_1_and_2(
    broker: MosquittoBroker, qos: int
) -> None:
    received = Received()
    link = MqttLink(MqttSettings(broker.host, broker.port, subscribe_qos=qos), received)
    link.set_filters({"q/#"})
    task, _ = await run_session(link)

    def publish_many() -> None:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        client.connect(broker.host, broker.port)
        client.loop_start()
        for number in range(60):
            client.publish(f"q/{number}", b"%d" % number, qos=qos).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()

    # More than Mosquitto keeps in flight (20): unacknowledged deliveries would stall it.
    await asyncio.to_thread(publish_many)
    await until(lambda: len(received.messages) >= 60)
    await asyncio.sleep(0.2)
    assert [topic for topic, _ in received.messages] == [f"q/{n}" for n in range(60)]
    assert link.connected
    await stop(task)


async def test_mqtt_handler_errors_do_not_cost_the_connection(broker: MosquittoBroker) -> None:
    seen: list[bytes] = []

    def handler(_topic: str, payload: bytes) -> None:
        seen.append(payload)
        if payload == b"boom":
            raise ValueError("bad message")

    link = MqttLink(MqttSettings(broker.host, broker.port), handler)
    link.set_filters({"t/#"})
    task, _ = await run_session(link)
    await asyncio.sleep(0.1)
    await asyncio.to_thread(publish, broker, "t/1", b"boom")
    await asyncio.to_thread(publish, broker, "t/2", b"next")
    await until(lambda: len(seen) == 2)
    assert link.counters.handler_errors == 1
    assert link.connected
    await stop(task)


async def test_mqtt_rejected_credentials_raise_auth_error(auth_broker: MosquittoBroker) -> None:
    link = MqttLink(
        MqttSettings(auth_broker.host, auth_broker.port, username=MESH_USER, password="wrong"),
        Received(),
    )
    with pytest.raises(LinkAuthError):
        await probe(link, 5)
    good = MqttLink(
        MqttSettings(
            auth_broker.host, auth_broker.port, username=MESH_USER, password=MESH_PASSWORD
        ),
        Received(),
    )
    await probe(good, 5)


async def test_mqtt_tls_needs_a_trusted_certificate(tls_broker: MosquittoBroker) -> None:
    assert tls_broker.tls_files is not None
    ca_file = str(tls_broker.tls_files.ca_cert)

    def settings(factory: Callable[[], ssl.SSLContext]) -> MqttSettings:
        return MqttSettings(
            tls_broker.host,
            tls_broker.port,
            username=MESH_USER,
            password=MESH_PASSWORD,
            ssl_context_factory=factory,
        )

    with pytest.raises(LinkTlsError):
        await probe(MqttLink(settings(ssl.create_default_context), Received()), 5)
    trusted = MqttLink(settings(lambda: ssl.create_default_context(cafile=ca_file)), Received())
    await probe(trusted, 5)
    assert trusted.describe().startswith("mqtts://")


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("refused", LinkError),
        ("silent", LinkTimeoutError),
        ("hanging", LinkTimeoutError),
        ("unresolvable", LinkError),
    ],
)
async def test_mqtt_unreachable_brokers_fail_within_the_bound(
    name_resolution: None, target: str, error: type[Exception]
) -> None:
    listener: SilentListener | HangingListener | None = None
    host = "127.0.0.1"
    if target == "silent":
        listener = SilentListener()
        port = listener.port
    elif target == "hanging":
        listener = HangingListener()
        port = listener.port
    else:
        port = refused_port()
        host = UNRESOLVABLE_HOST if target == "unresolvable" else host
    link = MqttLink(MqttSettings(host, port, connect_timeout=0.5), Received())
    try:
        async with asyncio.timeout(3):
            with pytest.raises(error):
                await link.session(lambda: None)
    finally:
        if listener is not None:
            listener.close()
    assert not link.connected


async def test_mqtt_detects_a_frozen_broker(broker: MosquittoBroker) -> None:
    link = MqttLink(MqttSettings(broker.host, broker.port, keepalive=1), Received())
    task, _ = await run_session(link)
    assert broker.process is not None
    # SIGSTOP freezes the broker: the TCP connection stays open but nothing answers pings.
    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(LinkTimeoutError):
            await asyncio.wait_for(task, 5)
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)


async def test_mqtt_publishing_link_outlives_the_keepalive(broker: MosquittoBroker) -> None:
    # Publishing without subscriptions: nothing comes back unless the link pings.
    link = MqttLink(MqttSettings(broker.host, broker.port, keepalive=1), Received())
    task, _ = await run_session(link)
    try:
        for _ in range(30):
            link.publish("demo/out", b"x")
            await asyncio.sleep(0.1)
        assert not task.done(), task.exception() if task.done() else None
        assert link.connected
    finally:
        await stop(task)


@pytest.mark.parametrize("stuck", ["tcp_connect", "tls_handshake"])
async def test_mqtt_unload_with_a_connect_in_flight_leaves_nothing(
    socket_enabled: None, stuck: str
) -> None:
    # A full backlog never completes the TCP connect; a silent listener completes it and never
    # answers the TLS hello, where paho's handshake in the executor would wait a keepalive (60 s).
    listener = HangingListener() if stuck == "tcp_connect" else SilentListener()
    tls = ssl.create_default_context if stuck == "tls_handshake" else None
    link = MqttLink(MqttSettings("127.0.0.1", listener.port, ssl_context_factory=tls), Received())
    try:
        await asyncio.sleep(0)
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(5):
            task = asyncio.create_task(link.session(lambda restarted=False: None))
            await asyncio.sleep(0.3)
            assert not task.done()
            await stop(task)
        # Each connect ended with its session: no socket is left, none is still connecting.
        await until(lambda: len(os.listdir("/proc/self/fd")) <= before, timeout=1)
        assert not link.connected
    finally:
        listener.close()


# Radio stream


async def test_radio_handshake_records_the_node(fake_node: FakeNode) -> None:
    frames: list[mesh_pb2.FromRadio] = []
    link = RadioLink(RadioSettings(host="127.0.0.1", port=fake_node.port), frames.append)
    task, _ = await run_session(link)
    assert link.info.node_num == fake_node.node_num
    assert link.info.firmware_version == fake_node.firmware_version
    assert link.info.hw_model == "HELTEC_V3"
    assert link.info.nodes_in_db == 1 + len(fake_node.other_nodes)
    # The node database dump is handed over for the mesh picture; nothing else of the
    # handshake is.
    assert [frame.node_info.num for frame in frames] == [
        fake_node.node_num,
        *fake_node.other_nodes,
    ]
    frames.clear()
    fake_node.broadcast(mesh_pb2.FromRadio(packet=mesh_pb2.MeshPacket(id=7, to=0xFFFFFFFF)))
    await until(lambda: frames)
    assert frames[0].packet.id == 7
    await stop(task)
    await until(lambda: fake_node.client_count == 0)
    assert any(message.disconnect for message in fake_node.received)


async def test_radio_over_serial_ignores_debug_text(serial_node: FakeNode) -> None:
    frames: list[mesh_pb2.FromRadio] = []
    assert serial_node.device is not None
    link = RadioLink(RadioSettings(device=serial_node.device), frames.append)
    task, _ = await run_session(link)
    assert link.info.node_num == serial_node.node_num
    serial_node.broadcast(mesh_pb2.FromRadio(packet=mesh_pb2.MeshPacket(id=9)))
    await until(lambda: any(frame.HasField("packet") for frame in frames))
    assert [frame.packet.id for frame in frames if frame.HasField("packet")] == [9]
    assert link.bad_frames == 0
    await stop(task)


async def test_radio_serial_port_is_exclusive_and_released(serial_node: FakeNode) -> None:
    assert serial_node.device is not None
    first = RadioLink(RadioSettings(device=serial_node.device))
    task, _ = await run_session(first)
    second = RadioLink(RadioSettings(device=serial_node.device, connect_timeout=1))
    with pytest.raises(LinkError):
        await second.session(lambda: None)
    await stop(task)
    # Released on cancellation: the next session opens the port again.
    task, _ = await run_session(RadioLink(RadioSettings(device=serial_node.device)))
    await stop(task)


async def test_radio_that_never_answers_times_out(fake_node: FakeNode) -> None:
    fake_node.behaviour.answer_handshake = False
    link = RadioLink(RadioSettings(host="127.0.0.1", port=fake_node.port, handshake_timeout=0.3))
    with pytest.raises(LinkTimeoutError):
        await asyncio.wait_for(link.session(lambda: None), 5)
    assert not link.connected


async def test_radio_heartbeats_keep_a_quiet_link_alive(fake_node: FakeNode) -> None:
    settings = RadioSettings(
        host="127.0.0.1", port=fake_node.port, heartbeat_interval=0.1, liveness_timeout=0.5
    )
    link = RadioLink(settings)
    task, _ = await run_session(link)
    await asyncio.sleep(1.2)
    assert not task.done(), "heartbeat answers count as life"
    assert sum(message.HasField("heartbeat") for message in fake_node.received) >= 5
    fake_node.behaviour.answer_heartbeat = False
    with pytest.raises(LinkTimeoutError):
        await asyncio.wait_for(task, 5)


async def test_radio_tells_a_close_from_a_restart(fake_node: FakeNode) -> None:
    link = RadioLink(RadioSettings(host="127.0.0.1", port=fake_node.port))
    task, up = await run_session(link)
    assert up.restarted is False
    # Another client taking the radio: the firmware closes our connection in order.
    fake_node.close_clients()
    with pytest.raises(LinkClosedByPeer):
        await asyncio.wait_for(task, 5)
    task, up = await run_session(link)
    assert up.restarted is False, "same reboot count: the radio did not restart"

    await fake_node.reboot()
    with pytest.raises(LinkError) as ended:
        await asyncio.wait_for(task, 5)
    assert not isinstance(ended.value, LinkClosedByPeer), "a restart resets the connection"
    task, up = await run_session(link)
    assert up.restarted is True, "a new reboot count: the radio restarted"
    assert link.restarts == 1
    await stop(task)


async def test_a_serial_radio_that_restarts_keeps_its_session(serial_node: FakeNode) -> None:
    frames: list[mesh_pb2.FromRadio] = []
    assert serial_node.device is not None
    link = RadioLink(RadioSettings(device=serial_node.device), frames.append)
    task, _ = await run_session(link)
    handshakes = serial_node.handshakes

    await serial_node.reboot()
    # The node forgot the session: meshbot asks for the configuration again, on the same port.
    await until(lambda: serial_node.handshakes == handshakes + 1 and link.connected)
    assert not task.done(), "meshbot keeps a healthy session"
    assert link.restarts == 1
    assert link.info.reboot_count == serial_node.reboot_count
    serial_node.broadcast(mesh_pb2.FromRadio(packet=mesh_pb2.MeshPacket(id=12)))
    await until(lambda: any(f.HasField("packet") and f.packet.id == 12 for f in frames))
    await stop(task)


async def test_radio_survives_garbage_between_frames(fake_node: FakeNode) -> None:
    frames: list[mesh_pb2.FromRadio] = []
    link = RadioLink(RadioSettings(host="127.0.0.1", port=fake_node.port), frames.append)
    task, _ = await run_session(link)
    fake_node.send_raw(b"\x94\xc3\xff\xff" + os.urandom(64) + b"\x94\xc3\x00\x03\xff\xff\xff")
    fake_node.broadcast(mesh_pb2.FromRadio(packet=mesh_pb2.MeshPacket(id=11)))
    await until(lambda: frames and frames[-1].HasField("packet"))
    assert frames[-1].packet.id == 11
    assert link.bad_frames >= 1
    assert not task.done()
    await stop(task)


# Supervision


async def test_supervisor_logs_once_per_outage(
    fake_node: FakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test.supervisor")
    link = RadioLink(RadioSettings(host="127.0.0.1", port=fake_node.port))
    supervisor = Supervisor(
        "Radio", link, Backoff(0.02, 0.05), logging.getLogger("test.supervisor")
    )
    task = asyncio.create_task(supervisor.run())
    await until(lambda: supervisor.state.connected)
    port = fake_node.port
    await fake_node.stop()
    await until(lambda: supervisor.state.reconnects >= 5)
    assert not supervisor.state.connected
    assert supervisor.state.last_error
    await fake_node.start_tcp(port)
    await until(lambda: supervisor.state.connected)
    # Only the supervisor's own lines: the harness and Home Assistant may log at info level too.
    infos = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and r.name == "test.supervisor"
    ]
    assert len([m for m in infos if "lost its connection" in m]) == 1
    assert len([m for m in infos if "is back" in m]) == 1
    assert len(infos) == 2
    await stop(task)


async def test_supervisor_stops_on_rejected_credentials(auth_broker: MosquittoBroker) -> None:
    calls: list[bool] = []
    link = MqttLink(
        MqttSettings(auth_broker.host, auth_broker.port, username="nobody", password="x"),
        Received(),
    )
    supervisor = Supervisor(
        "Mesh",
        link,
        Backoff(0.01, 0.02),
        logging.getLogger("test"),
        on_auth_failed=lambda: calls.append(True),
    )
    await asyncio.wait_for(supervisor.run(), 5)
    assert calls == [True]
    assert supervisor.state.auth_failed
    assert supervisor.state.reconnects == 0


async def test_supervisor_retries_auth_refusals_when_nobody_can_fix_them(
    auth_broker: MosquittoBroker,
) -> None:
    link = MqttLink(MqttSettings(auth_broker.host, auth_broker.port), Received())
    supervisor = Supervisor("Lightning", link, Backoff(0.01, 0.02), logging.getLogger("test"))
    task = asyncio.create_task(supervisor.run())
    await until(lambda: supervisor.state.reconnects >= 2)
    assert not supervisor.state.auth_failed
    await stop(task)


async def test_failed_attempts_leave_no_socket_open(socket_enabled: None) -> None:
    listener = SilentListener()
    try:
        link = MqttLink(MqttSettings("127.0.0.1", listener.port, connect_timeout=0.05), Received())
        radio = RadioLink(
            RadioSettings(host="127.0.0.1", port=listener.port, handshake_timeout=0.05)
        )
        await asyncio.sleep(0)
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(20):
            with pytest.raises(LinkTimeoutError):
                await link.session(lambda: None)
            with pytest.raises(LinkTimeoutError):
                await radio.session(lambda: None)
        await asyncio.sleep(0.05)
        assert len(os.listdir("/proc/self/fd")) <= before + 1
    finally:
        listener.close()


# Sending text


async def test_send_text_returns_once_the_radio_queued_it(fake_node: FakeNode) -> None:
    link = RadioLink(RadioSettings(host="127.0.0.1", port=fake_node.port))
    task, _ = await run_session(link)
    result = await link.send_text("héllo mesh", destination=0x0000BEEF, channel=1)
    (packet,) = fake_node.sent_packets
    assert packet.id == result.packet_id
    assert packet.to == 0x0000BEEF and packet.channel == 1
    assert packet.decoded.payload.decode() == "héllo mesh"
    assert packet.decoded.portnum == portnums_pb2.TEXT_MESSAGE_APP
    assert result.acknowledged is None
    await stop(task)


@pytest.mark.parametrize(
    ("ack_reason", "acknowledged", "error"),
    [
        (0, True, None),
        (mesh_pb2.Routing.Error.MAX_RETRANSMIT, False, "MAX_RETRANSMIT"),
        (None, False, "TIMEOUT"),
    ],
    ids=["acked", "nak", "no-answer"],
)
async def test_send_text_reports_the_acknowledgement(
    fake_node: FakeNode, ack_reason: int | None, acknowledged: bool, error: str | None
) -> None:
    fake_node.behaviour.ack_reason = ack_reason
    link = RadioLink(RadioSettings(host="127.0.0.1", port=fake_node.port))
    task, _ = await run_session(link)
    result = await link.send_text("ack me", destination=0x0000BEEF, want_ack=True, ack_timeout=0.5)
    assert (result.acknowledged, result.error) == (acknowledged, error)
    await stop(task)


@pytest.mark.parametrize(
    ("text", "destination", "fits"),
    [
        ("x" * 200, 0x0000BEEF, True),
        ("x" * 201, 0x0000BEEF, False),
        ("x" * 233, 0xFFFFFFFF, True),
        ("é" * 117, 0xFFFFFFFF, False),
    ],
    ids=["dm-limit", "dm-over", "broadcast-limit", "broadcast-over-in-utf8"],
)
async def test_send_text_refuses_what_one_packet_cannot_carry(
    fake_node: FakeNode, text: str, destination: int, fits: bool
) -> None:
    link = RadioLink(RadioSettings(host="127.0.0.1", port=fake_node.port))
    task, _ = await run_session(link)
    if fits:
        await link.send_text(text, destination=destination)
        assert len(fake_node.sent_packets) == 1
    else:
        with pytest.raises(TextTooLongError):
            await link.send_text(text, destination=destination)
        assert fake_node.sent_packets == []
    await stop(task)


async def test_send_text_fails_fast_when_queue_full_silent_or_disconnected(
    fake_node: FakeNode,
) -> None:
    link = RadioLink(RadioSettings(host="127.0.0.1", port=fake_node.port))
    with pytest.raises(LinkError, match="not connected"):
        await link.send_text("nobody home")
    task, _ = await run_session(link)
    fake_node.behaviour.queue_full = True
    with pytest.raises(LinkError, match="queue is full"):
        await asyncio.wait_for(link.send_text("too busy"), 5)
    fake_node.behaviour.queue_full = False
    fake_node.behaviour.answer_queue = False
    with pytest.raises(LinkTimeoutError):
        await link.send_text("into the void", queue_timeout=0.3)
    pending = asyncio.create_task(link.send_text("cut off", queue_timeout=30))
    await until(lambda: len(fake_node.sent_packets) == 3)
    fake_node.close_clients()
    with pytest.raises(LinkError):
        await asyncio.wait_for(pending, 5)
    await stop(task)
