"""Requests to one node through the radio: position, telemetry and traceroute actions.

Each runs end to end against the fake node over TCP, which answers as firmware does: from the
node asked, with the request's packet id as `request_id`, or with a routing error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
import math
import random
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from hypothesis import HealthCheck, given, settings, strategies as st
from meshtastic.protobuf import mesh_pb2, portnums_pb2
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.meshbot.const import (
    CONF_NODE_POLICY,
    CONF_TRACK_POSITIONS,
    DOMAIN,
    POLICY_ALL,
)
from custom_components.meshbot.links.radio_transport import RadioSettings
from custom_components.meshbot.links.stream import RadioLink, encode_frame
from custom_components.meshbot.mesh.airtime import RequestKind, RequestPacer
from custom_components.meshbot.mesh.requests import request_payload, traceroute_answer
from meshbot_dev.entries import broker_section, entry_for, radio_section
from meshbot_dev.fake_node import FakeNode, heard

from .support.seen import flush, topology
from .support.waiting import eventually, until
from .test_translations import load

RADIO_LINK = "binary_sensor.meshbot_test_radio_link"
NODE, RELAY, OTHER = 0x10000000, 0x10000001, 0x10000002
# A node the mesh has heard but the fake radio cannot reach: nobody acknowledges it.
UNREACHABLE = 0x0000BEEF
EXCEPTIONS = load("translations/en.json")["exceptions"]


def node_id(num: int) -> str:
    return f"!{num:08x}"


def radio_connected(hass: HomeAssistant) -> bool:
    state = hass.states.get(RADIO_LINK)
    return state is not None and state.state == "on"


@pytest.fixture
async def radio_entry(hass: HomeAssistant, fake_node: FakeNode) -> AsyncGenerator[MockConfigEntry]:
    """Set up a radio-only entry whose nodes all become devices, with trackers."""
    # Not the firmware's default of 3: the requests must take the radio's own setting.
    fake_node.hop_limit = 5
    entry = entry_for(radio=radio_section(fake_node.port))
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry,
        options={**entry.options, CONF_NODE_POLICY: POLICY_ALL, CONF_TRACK_POSITIONS: True},
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(lambda: radio_connected(hass))
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)


async def ask(hass: HomeAssistant, service: str, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


def entity_state(hass: HomeAssistant, platform: str, unique_id: str) -> Any:
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    return hass.states.get(entity_id)


async def known(hass: HomeAssistant, num: int) -> bool:
    """Return whether the mesh knows the node, as get_topology shows it."""
    return any(node["id"] == node_id(num) for node in (await topology(hass))["nodes"])


def last_request(fake_node: FakeNode) -> mesh_pb2.MeshPacket:
    return fake_node.sent_packets[-1]


async def test_request_position_answers_and_moves_the_node_on_the_map(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    tracker_id = f"{radio_entry.entry_id}_{node_id(NODE)}_position"
    await flush(hass)
    assert entity_state(hass, "device_tracker", tracker_id).attributes.get("latitude") is None

    answer = await ask(hass, "request_position", node=node_id(NODE))

    assert answer == {
        "node": node_id(NODE),
        "name": f"Node {NODE:08x}",
        "latitude": pytest.approx(45.8),
        "longitude": pytest.approx(4.8),
        "altitude": 400,
        "precision_bits": 32,
        "time": "2023-11-14T22:13:20+00:00",
    }
    request = last_request(fake_node)
    assert (request.to, request.decoded.portnum) == (NODE, portnums_pb2.POSITION_APP)
    assert request.decoded.want_response and request.want_ack
    assert request.hop_limit == 5, "the radio's LoRa setting"
    await flush(hass)
    tracker = entity_state(hass, "device_tracker", tracker_id)
    assert tracker.attributes["latitude"] == pytest.approx(45.8)
    assert tracker.attributes["longitude"] == pytest.approx(4.8)


async def test_a_node_without_a_fix_answers_with_no_coordinates(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    fake_node.behaviour.position = mesh_pb2.Position(precision_bits=0)

    answer = await ask(hass, "request_position", node=node_id(NODE))

    assert answer["latitude"] is None and answer["longitude"] is None


@pytest.mark.parametrize(
    ("telemetry_type", "metrics"),
    [
        (
            "device",
            {
                "battery_level": 64.0,
                "voltage": 3.81,
                "channel_utilization": 12.5,
                "air_util_tx": 1.5,
            },
        ),
        (
            "environment",
            {"temperature": 1.5, "relative_humidity": 88.0, "barometric_pressure": 1003.25},
        ),
    ],
)
async def test_request_telemetry_answers_with_the_metrics_the_sensors_name(
    hass: HomeAssistant,
    radio_entry: MockConfigEntry,
    fake_node: FakeNode,
    telemetry_type: str,
    metrics: dict[str, float],
) -> None:
    answer = await ask(hass, "request_telemetry", node=node_id(NODE), type=telemetry_type)

    assert answer == {
        "node": node_id(NODE),
        "name": f"Node {NODE:08x}",
        "type": telemetry_type,
        "metrics": metrics,
    }
    request = last_request(fake_node)
    assert request.decoded.portnum == portnums_pb2.TELEMETRY_APP
    assert request.decoded.payload == request_payload(RequestKind.TELEMETRY, telemetry_type)


async def test_a_telemetry_answer_updates_the_node_sensors(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    battery = f"{radio_entry.entry_id}_{node_id(NODE)}_battery"
    await flush(hass)
    before = entity_state(hass, "sensor", battery).state

    await ask(hass, "request_telemetry", node=node_id(NODE))
    await flush(hass)

    assert before != "64"
    assert entity_state(hass, "sensor", battery).state == "64"


async def test_traceroute_returns_both_ways_and_joins_the_topology(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    behaviour = fake_node.behaviour
    behaviour.route, behaviour.snr_towards = [RELAY], [24, 18]
    behaviour.route_back, behaviour.snr_back = [RELAY], [20, 26]
    local = fake_node.node_num

    answer = await ask(hass, "traceroute", node=node_id(OTHER))

    def hop(num: int, snr: float | None) -> dict[str, Any]:
        name = "Fake Base" if num == local else f"Node {num:08x}"
        return {"node": node_id(num), "name": name, "snr": snr}

    assert answer == {
        "node": node_id(OTHER),
        "name": f"Node {OTHER:08x}",
        "towards": [hop(local, None), hop(RELAY, 6.0), hop(OTHER, 4.5)],
        "back": [hop(OTHER, None), hop(RELAY, 5.0), hop(local, 6.5)],
    }
    assert last_request(fake_node).decoded.portnum == portnums_pb2.TRACEROUTE_APP
    links = {
        (link["from"], link["to"]): link["snr"]
        for link in (await topology(hass, sources=["traceroute"]))["links"]
    }
    assert links == {
        (node_id(local), node_id(RELAY)): 6.0,
        (node_id(RELAY), node_id(OTHER)): 4.5,
        (node_id(OTHER), node_id(RELAY)): 5.0,
        (node_id(RELAY), node_id(local)): 6.5,
    }


async def test_an_answer_that_does_not_parse_gives_an_empty_answer_or_an_error(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    fake_node.behaviour.answer_payload = b"\xff\xff\xff"

    position = await ask(hass, "request_position", node=node_id(NODE))
    telemetry = await ask(hass, "request_telemetry", node=node_id(NODE))
    with pytest.raises(HomeAssistantError) as error:
        await ask(hass, "traceroute", node=node_id(NODE))

    assert position["latitude"] is None and position["time"] is None
    assert (telemetry["type"], telemetry["metrics"]) == (None, {})
    assert error.value.translation_key == "invalid_answer"
    assert radio_connected(hass)
    assert await known(hass, NODE)


async def test_a_request_nobody_answers_times_out(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    fake_node.behaviour.answer_requests = False

    with pytest.raises(HomeAssistantError) as error:
        await ask(hass, "request_position", node=node_id(NODE), timeout=5)

    assert error.value.translation_key == "request_timeout"
    assert error.value.translation_placeholders == {"node": node_id(NODE), "seconds": "5"}


@pytest.mark.parametrize(
    ("behaviour", "node", "reason"),
    [
        ({"request_nak": mesh_pb2.Routing.Error.NO_RESPONSE}, NODE, "NO_RESPONSE"),
        ({}, UNREACHABLE, "MAX_RETRANSMIT"),
        (
            {"traceroute_rate_limited": True},
            NODE,
            "TraceRoute can only be sent once every 30 seconds",
        ),
    ],
    ids=["node-has-no-answer", "nobody-acknowledges", "radio-rate-limit"],
)
async def test_a_refused_request_fails_with_the_reason(
    hass: HomeAssistant,
    radio_entry: MockConfigEntry,
    fake_node: FakeNode,
    behaviour: dict[str, Any],
    node: int,
    reason: str,
) -> None:
    for name, value in behaviour.items():
        setattr(fake_node.behaviour, name, value)
    fake_node.broadcast(heard(UNREACHABLE, 1, portnums_pb2.NODEINFO_APP, mesh_pb2.User()))
    await eventually(lambda: known(hass, UNREACHABLE))

    with pytest.raises(HomeAssistantError) as error:
        await ask(hass, "traceroute", node=node_id(node))

    assert error.value.translation_key == "request_refused"
    assert error.value.translation_placeholders == {"node": node_id(node), "reason": reason}


async def test_one_request_per_node_at_a_time(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    fake_node.behaviour.answer_delay = 0.3
    first = hass.async_create_task(ask(hass, "request_position", node=node_id(NODE)))
    await until(lambda: fake_node.sent_packets)

    with pytest.raises(ServiceValidationError) as error:
        await ask(hass, "traceroute", node=node_id(NODE))
    assert error.value.translation_key == "request_pending"
    # Another node is not held back by the one waiting.
    other = await ask(hass, "traceroute", node=node_id(OTHER))

    assert (await first)["node"] == node_id(NODE)
    assert other["node"] == node_id(OTHER)
    assert len(fake_node.sent_packets) == 2
    # The answer came: the node may be asked again (for what its interval allows).
    assert (await ask(hass, "request_telemetry", node=node_id(NODE)))["type"] == "device"


async def test_requests_keep_the_firmware_intervals(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    radio_entry: MockConfigEntry,
    fake_node: FakeNode,
) -> None:
    async def refused_for(service: str, node: int) -> str | None:
        try:
            await ask(hass, service, node=node_id(node))
        except ServiceValidationError as error:
            assert error.translation_key == "request_too_soon"
            return error.translation_placeholders["seconds"]
        return None

    assert await refused_for("traceroute", NODE) is None
    frozen.tick(10)
    # The radio traces one route every 30 s, whichever node.
    assert await refused_for("traceroute", OTHER) == "20"
    frozen.tick(20)
    assert await refused_for("traceroute", OTHER) is None

    assert await refused_for("request_position", NODE) is None
    frozen.tick(10)
    # A node answers one position request every 3 minutes; the radio sends one every 10 s.
    assert await refused_for("request_position", NODE) == "170"
    assert await refused_for("request_position", OTHER) is None
    frozen.tick(170)
    assert await refused_for("request_position", NODE) is None

    assert await refused_for("request_telemetry", NODE) is None
    frozen.tick(30)
    assert await refused_for("request_telemetry", NODE) == "30"
    frozen.tick(30)
    assert await refused_for("request_telemetry", NODE) is None
    assert len(fake_node.sent_packets) == 7


async def test_a_request_the_radio_never_sent_does_not_hold_the_next_back(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    fake_node.behaviour.queue_full = True
    with pytest.raises(HomeAssistantError) as error:
        await ask(hass, "traceroute", node=node_id(NODE))
    assert error.value.translation_key == "radio_refused"

    fake_node.behaviour.queue_full = False
    assert (await ask(hass, "traceroute", node=node_id(NODE)))["node"] == node_id(NODE)


async def test_a_request_needs_a_connected_radio(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    await fake_node.stop()
    await until(lambda: not radio_connected(hass))

    with pytest.raises(HomeAssistantError) as error:
        await ask(hass, "request_position", node=node_id(NODE))

    assert error.value.translation_key == "radio_not_connected"
    # The reason the radio's connectivity sensor shows.
    last_error = hass.states.get(RADIO_LINK).attributes["last_error"]
    assert last_error
    assert error.value.translation_placeholders["reason"] == last_error


async def test_a_request_fails_when_the_link_drops_while_it_waits(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    fake_node.behaviour.answer_requests = False
    waiting = hass.async_create_task(ask(hass, "request_position", node=node_id(NODE)))
    await until(lambda: fake_node.sent_packets)

    fake_node.close_clients()

    with pytest.raises(HomeAssistantError) as error:
        await waiting
    assert error.value.translation_key == "radio_not_connected"


async def test_requests_need_an_entry_with_a_radio(hass: HomeAssistant, broker: Any) -> None:
    entry = entry_for(mesh=broker_section(broker.port))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)

    for service in ("request_position", "request_telemetry", "traceroute"):
        with pytest.raises(ServiceValidationError) as error:
            await ask(hass, service, node=node_id(NODE))
        assert error.value.translation_key == "no_radio"
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("node", "translation_key"),
    [
        ("!0badc0de", "unknown_node"),
        ("bob", "invalid_node_id"),
        ("!ffffffff", "invalid_node_id"),
        ("!00000000", "invalid_node_id"),
        ("!1A2B3C4D", "request_to_radio"),
    ],
)
async def test_a_request_names_a_node_the_mesh_knows(
    hass: HomeAssistant,
    radio_entry: MockConfigEntry,
    fake_node: FakeNode,
    node: str,
    translation_key: str,
) -> None:
    with pytest.raises(ServiceValidationError) as error:
        await ask(hass, "traceroute", node=node)

    assert error.value.translation_key == translation_key
    assert fake_node.sent_packets == []


HOSTILE = st.one_of(
    st.text(max_size=40),
    st.sampled_from([node_id(NODE), f" {node_id(OTHER).upper()} ", "!", "!1000000g", "\x00"]),
    st.integers(),
    st.floats(),
    st.none(),
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


# Links reconnecting on the loop's thread draw jitter from `random` while Hypothesis draws an
# example on the executor's: Hypothesis reads that as a strategy using `random`.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
async def test_hostile_request_fields_get_a_clear_error(
    hass: HomeAssistant, radio_entry: MockConfigEntry, fake_node: FakeNode
) -> None:
    loop = asyncio.get_running_loop()
    outcomes: dict[str, int] = {}

    async def attempt(service: str, data: dict[str, Any]) -> None:
        try:
            await ask(hass, service, **data)
        except vol.Invalid:
            outcome = "refused by the schema"
        except HomeAssistantError as error:
            assert error.translation_key in EXCEPTIONS, error
            outcome = error.translation_key
        else:
            outcome = "answered"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        service=st.sampled_from(["request_position", "request_telemetry", "traceroute"]),
        node=HOSTILE,
        extra=st.dictionaries(st.sampled_from(["timeout", "type"]), HOSTILE, max_size=2),
    )
    def example(service: str, node: Any, extra: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(attempt(service, {"node": node, **extra}), loop).result()

    await hass.async_add_executor_job(example)

    assert radio_connected(hass), "nothing a caller sends takes the link down"
    assert {"refused by the schema", "invalid_node_id"} <= outcomes.keys(), outcomes


# The link itself: which packet is the answer, whatever else arrives meanwhile.


async def radio_session(fake_node: FakeNode) -> tuple[RadioLink, asyncio.Task[None]]:
    """Start one radio session outside Home Assistant; return the link once it is up."""
    link = RadioLink(RadioSettings(host="127.0.0.1", port=fake_node.port))
    up = asyncio.Event()
    task = asyncio.create_task(link.session(lambda restarted=False: up.set()))
    await asyncio.wait_for(up.wait(), 10)
    return link, task


def from_node(sender: int, port: int, payload: bytes, request_id: int) -> mesh_pb2.FromRadio:
    packet = mesh_pb2.MeshPacket(
        to=0x1A2B3C4D,
        id=4242,
        decoded=mesh_pb2.Data(portnum=port, payload=payload, request_id=request_id),
    )
    setattr(packet, "from", sender)
    return mesh_pb2.FromRadio(packet=packet)


async def test_only_the_node_answer_on_the_port_ends_the_wait(fake_node: FakeNode) -> None:
    fake_node.behaviour.answer_requests = False
    link, task = await radio_session(fake_node)
    position = mesh_pb2.Position(latitude_i=1, longitude_i=2).SerializeToString()
    waiting = asyncio.create_task(link.request(NODE, portnums_pb2.POSITION_APP, b""))
    await until(lambda: fake_node.sent_packets)
    request_id = last_request(fake_node).id

    not_answers = [
        # The acknowledgement of a request sent with want_ack.
        from_node(
            NODE, portnums_pb2.ROUTING_APP, mesh_pb2.Routing().SerializeToString(), request_id
        ),
        # Another node's packet, another request's answer, another port, a broken routing.
        from_node(OTHER, portnums_pb2.POSITION_APP, position, request_id),
        from_node(NODE, portnums_pb2.POSITION_APP, position, request_id ^ 1),
        from_node(NODE, portnums_pb2.TELEMETRY_APP, b"", request_id),
        from_node(NODE, portnums_pb2.ROUTING_APP, b"\xff\xff", request_id),
        # An error about the request from a node that is neither the one asked nor the radio.
        from_node(
            OTHER,
            portnums_pb2.ROUTING_APP,
            mesh_pb2.Routing(error_reason=mesh_pb2.Routing.Error.NO_ROUTE).SerializeToString(),
            request_id,
        ),
        mesh_pb2.FromRadio(clientNotification=mesh_pb2.ClientNotification(reply_id=request_id ^ 1)),
    ]
    for frame in not_answers:
        fake_node.broadcast(frame)
    answer = from_node(NODE, portnums_pb2.POSITION_APP, position, request_id)
    fake_node.broadcast(answer)

    assert await asyncio.wait_for(waiting, 5) == answer.packet
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_garbage_while_a_request_waits_costs_only_itself(fake_node: FakeNode) -> None:
    fake_node.behaviour.answer_delay = 0.2
    link, task = await radio_session(fake_node)
    rng = random.Random(20261203)
    waiting = asyncio.create_task(link.request(NODE, portnums_pb2.TRACEROUTE_APP, b""))
    await until(lambda: fake_node.sent_packets)
    request_id = last_request(fake_node).id
    for _ in range(300):
        # Frames that parse and name the request, with a random port and payload, and bytes.
        port = rng.choice(
            [portnums_pb2.ROUTING_APP, portnums_pb2.TRACEROUTE_APP, rng.randint(0, 600)]
        )
        sender = rng.choice([OTHER, 0, 0xFFFFFFFF])
        fake_node.broadcast(from_node(sender, port, rng.randbytes(rng.randint(0, 40)), request_id))
        fake_node.send_raw(encode_frame(rng.randbytes(rng.randint(0, 60))))

    answer = await asyncio.wait_for(waiting, 5)

    assert getattr(answer, "from") == NODE
    assert traceroute_answer(answer, str) is not None
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# The pure parts: the pacer and the answers, whatever a node sends.


def test_the_pacer_counts_only_requests_that_went_out() -> None:
    pacer = RequestPacer()
    pacer.begin(NODE)
    assert pacer.waiting(NODE) and not pacer.waiting(OTHER)
    pacer.end(NODE, RequestKind.POSITION, 100.0, sent=False)
    assert not pacer.waiting(NODE)
    assert pacer.delay(NODE, RequestKind.POSITION, 100.0) == 0

    pacer.begin(NODE)
    pacer.end(NODE, RequestKind.POSITION, 100.0, sent=True)
    assert pacer.delay(NODE, RequestKind.POSITION, 130.0) == 150.0
    assert pacer.delay(OTHER, RequestKind.POSITION, 105.0) == 5.0
    assert pacer.delay(NODE, RequestKind.TRACEROUTE, 101.0) == 0


def test_a_traceroute_answer_names_unknown_relays_and_snrs() -> None:
    packet = mesh_pb2.MeshPacket(
        to=0x1A2B3C4D,
        decoded=mesh_pb2.Data(
            portnum=portnums_pb2.TRACEROUTE_APP,
            payload=mesh_pb2.RouteDiscovery(
                route=[0xFFFFFFFF], snr_towards=[-128, 10], route_back=[RELAY], snr_back=[]
            ).SerializeToString(),
            request_id=5,
        ),
    )
    setattr(packet, "from", NODE)

    answer = traceroute_answer(packet, lambda num: f"N{num:x}")

    assert answer is not None
    assert answer["towards"] == [
        {"node": "!1a2b3c4d", "name": "N1a2b3c4d", "snr": None},
        {"node": None, "name": None, "snr": None},
        {"node": node_id(NODE), "name": f"N{NODE:x}", "snr": 2.5},
    ]
    assert answer["back"] is None, "no SNRs back: firmware that does not trace the way back"


@given(payload=st.binary(max_size=200), sender=st.integers(0, 2**32 - 1))
def test_any_traceroute_payload_gives_an_answer_or_none(payload: bytes, sender: int) -> None:
    packet = mesh_pb2.MeshPacket(
        to=0x1A2B3C4D,
        decoded=mesh_pb2.Data(portnum=portnums_pb2.TRACEROUTE_APP, payload=payload),
    )
    setattr(packet, "from", sender)

    answer = traceroute_answer(packet, str)

    if answer is not None:
        for hop in [*answer["towards"], *(answer["back"] or [])]:
            assert hop["snr"] is None or math.isfinite(hop["snr"])
