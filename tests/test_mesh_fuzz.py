"""Property-based fuzzing of the mesh decoder and state: whatever a broker hands over.

Properties, for every envelope: `MeshDecoder.decode` never raises and never falls into its own
`internal_error` net; it returns None exactly when it counted one rejection (so envelopes ==
decoded + duplicates + rejections); what it returns names only real node ids and sane values;
and `MeshState.apply` takes every result without raising and within its caps.

Hypothesis generates bytes; `ByteSource` (tests/support/mesh_traffic.py) reads field values
from them, biased towards edge values, so a case costs few hypothesis draws and the 107,000
cases of `EXAMPLES` run in under a minute.
"""

from __future__ import annotations

import base64
import json
import math
import random

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.meshbot.mesh.decode import DEVICE_METRICS, LOCAL_STATS, MeshDecoder
from custom_components.meshbot.mesh.models import (
    ENVIRONMENT_METRICS,
    POWER_METRICS,
    DecodedPacket,
    MapReportObs,
    NeighborsObs,
    NodeInfoObs,
    PositionObs,
    TelemetryObs,
    TextObs,
    TracerouteObs,
)
from custom_components.meshbot.mesh.state import MeshState
from meshbot_dev.mesh_traffic import (
    FUZZ_CHANNEL_KEYS,
    FUZZ_CHANNELS,
    FUZZ_ROOT,
    ByteSource,
    Envelope,
    MeshTraffic,
    fuzz_envelope,
    fuzz_mutate,
    fuzz_topic,
)

NOW = 1_700_000_100.0
# The bounded key set of each kind of telemetry.
TELEMETRY_KEYS = {
    "device": DEVICE_METRICS,
    "environment": ENVIRONMENT_METRICS,
    "power": POWER_METRICS,
    "local": LOCAL_STATS,
}
MAX_NODES, MAX_LINKS = 12, 16

EXAMPLES = {
    "random_bytes": 32_000,
    "mutated": 25_000,
    "topics": 17_000,
    "fields": 20_000,
    "wrong_keys": 10_000,
    "feeds": 3_000,
}


def fuzz(name: str) -> settings:
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def real_node(num: int) -> bool:
    """0 is nobody, 1 is the "MQTT and apps" pseudo-address, 0xFFFFFFFF is broadcast."""
    return 1 < num < 0xFFFFFFFF


# Checks


def decode_checked(decoder: MeshDecoder, topic: str, payload: bytes) -> DecodedPacket | None:
    """Decode one envelope and check the counters moved by exactly one outcome."""
    counters = decoder.counters
    before = (counters.envelopes, counters.decoded, counters.duplicates, counters.rejected_total)

    packet = decoder.decode(topic, payload, NOW)

    after = (counters.envelopes, counters.decoded, counters.duplicates, counters.rejected_total)
    if packet is None:
        expected = (before[0] + 1, before[1], before[2], before[3] + 1)
    elif packet.duplicate:
        expected = (before[0] + 1, before[1], before[2] + 1, before[3])
    else:
        expected = (before[0] + 1, before[1] + 1, before[2], before[3])
    assert after == expected
    assert counters.envelopes == counters.decoded + counters.duplicates + counters.rejected_total
    assert "internal_error" not in counters.rejected
    if packet is not None:
        check_packet(packet)
    return packet


def check_name(name: str, limit: int) -> None:
    assert len(name) <= limit
    assert all(ch.isprintable() for ch in name)
    assert name == name.strip()


def check_position(position: PositionObs, node: int) -> None:
    assert position.node == node
    assert -90 <= position.latitude <= 90
    assert -180 <= position.longitude <= 180
    assert (position.latitude, position.longitude) != (0, 0)
    assert position.time is None or 0 < position.time <= NOW + 600


def check_packet(packet: DecodedPacket) -> None:
    assert real_node(packet.sender)
    reception = packet.reception
    if reception is not None:
        assert real_node(reception.gateway)
        assert reception.gateway != packet.sender
        assert reception.hops is None or 0 <= reception.hops <= 7
        assert reception.snr is None or math.isfinite(reception.snr)
    assert packet.direct == (reception is not None and reception.hops == 0)
    if packet.pki or packet.duplicate:
        assert packet.observation is None
    observation = packet.observation
    if isinstance(observation, PositionObs):
        check_position(observation, packet.sender)
    elif isinstance(observation, NodeInfoObs | MapReportObs):
        assert observation.node == packet.sender
        check_name(observation.long_name, 39)
        check_name(observation.short_name, 4)
        if isinstance(observation, MapReportObs):
            assert packet.channel == "map"
            if observation.position is not None:
                check_position(observation.position, packet.sender)
    elif isinstance(observation, TelemetryObs):
        assert observation.values
        assert all(math.isfinite(value) for value in observation.values.values())
        assert observation.values.keys() <= TELEMETRY_KEYS[observation.kind]
    elif isinstance(observation, NeighborsObs):
        assert real_node(observation.reporter)
        assert len(observation.neighbors) <= 10
        for neighbor, snr in observation.neighbors:
            assert real_node(neighbor)
            assert neighbor != observation.reporter
            assert math.isfinite(snr)
    elif isinstance(observation, TracerouteObs):
        for hop_from, hop_to, snr in observation.hops:
            assert real_node(hop_from)
            assert real_node(hop_to)
            assert hop_from != hop_to
            assert snr is None or math.isfinite(snr)
    elif isinstance(observation, TextObs):
        assert len(observation.text) <= 500
    else:
        assert observation is None


def check_state(state: MeshState) -> None:
    assert len(state.nodes) <= state.max_nodes
    assert len(state.links) <= state.max_links
    for source_node, target_node, _ in state.links:
        assert source_node in state.nodes
        assert target_node in state.nodes
    json.dumps(state.topology(NOW), allow_nan=False)
    stored = json.loads(json.dumps(state.to_storage()))
    assert MeshState.from_storage(stored).to_storage() == stored


def feed(envelopes: list[Envelope]) -> tuple[MeshState, list[DecodedPacket | None]]:
    """Decode envelopes into one small capped state, checking both after every step."""
    decoder = MeshDecoder(FUZZ_CHANNEL_KEYS)
    state = MeshState(max_nodes=MAX_NODES, max_links=MAX_LINKS)
    packets = []
    for envelope in envelopes:
        packet = decode_checked(decoder, envelope.topic, envelope.payload)
        if packet is not None:
            state.apply(packet, NOW)
        assert len(state.nodes) <= MAX_NODES
        assert len(state.links) <= MAX_LINKS
        packets.append(packet)
    check_state(state)
    return state, packets


# A pool of real envelopes of every shape and channel, built once


def envelope_pool() -> list[Envelope]:
    mesh = MeshTraffic(root=FUZZ_ROOT, rng=random.Random(2024))
    pool = mesh.regional_mix(150, nodes=40, garbage=0.0)
    sender, gateway = 0x1A2B3C4D, 0x0BADCAFE
    for channel, key in FUZZ_CHANNELS.items():
        kw = {"gateway": gateway, "channel": channel, "key": key}
        pool += [
            mesh.position(sender, 48.85, 2.35, precision=13, **kw),
            mesh.node_info(sender, "Base\x00Camp", "BC", **kw),
            mesh.environment(sender, 21.5, 40.0, **kw),
            mesh.neighbors(sender, [(0x11, 1.0), (0, 0.0)], **kw),
            mesh.traceroute_reply(sender, 0x22, [0x33], [1.0, -32.0], [0x33], [2.0], **kw),
        ]
    pool += [
        mesh.text(sender, "clear", gateway=gateway, encrypted=False),
        mesh.pki(sender, 0x0A0A0A0A, gateway=gateway),
        mesh.map_report(sender, "Hilltop", 45.76, 4.83),
        mesh.map_report(sender + 1, "Nowhere", 0.0, 0.0),
    ]
    return pool


POOL = envelope_pool()
VALID_TOPICS = [
    f"{FUZZ_ROOT}/2/e/LongFast/!0badcafe",
    f"{FUZZ_ROOT}/2/e/Ops/!0badcafe",
    f"{FUZZ_ROOT}/2/e/PKI/!0badcafe",
    f"{FUZZ_ROOT}/2/map/",
    "msh/US/CA/Bay/2/e/LongFast/!12345678",
    "msh/2/e",
]
pool_envelopes = st.sampled_from(POOL)


@fuzz("random_bytes")
@given(topic=st.sampled_from(VALID_TOPICS), payload=st.binary(max_size=600))
def test_random_bytes_on_valid_topics(topic: str, payload: bytes) -> None:
    decode_checked(MeshDecoder(FUZZ_CHANNEL_KEYS), topic, payload)


@fuzz("mutated")
@given(envelope=pool_envelopes, mutations=st.binary(min_size=1, max_size=64))
def test_mutated_real_envelopes(envelope: Envelope, mutations: bytes) -> None:
    mutated = fuzz_mutate(envelope.payload, ByteSource(mutations))

    feed([envelope, Envelope(envelope.topic, mutated), envelope])


@fuzz("topics")
@given(topic_bytes=st.binary(min_size=8, max_size=96), envelope=pool_envelopes)
def test_random_topics(topic_bytes: bytes, envelope: Envelope) -> None:
    topic = fuzz_topic(ByteSource(topic_bytes))

    packet = decode_checked(MeshDecoder(FUZZ_CHANNEL_KEYS), topic, envelope.payload)

    levels = topic.split("/")
    parsed = any(levels[i] == "2" and levels[i + 1] in ("e", "map") for i in range(len(levels) - 1))
    assert packet is None or parsed


@fuzz("fields")
@given(data=st.binary(min_size=96, max_size=512))
def test_random_field_values_in_real_protobufs(data: bytes) -> None:
    envelope = fuzz_envelope(ByteSource(data), NOW)

    _, (first, second) = feed([envelope, envelope])

    # A second copy is a duplicate exactly when the first decoded (map reports are not deduped).
    is_map = envelope.topic.endswith("/2/map/")
    assert (second is not None and second.duplicate) == (first is not None and not is_map)


@fuzz("wrong_keys")
@given(envelope=pool_envelopes, key=st.binary(min_size=1, max_size=32))
def test_wrong_keys(envelope: Envelope, key: bytes) -> None:
    decoder = MeshDecoder({"LongFast": base64.b64encode(key).decode(), "Ops": "Ag=="})

    decode_checked(decoder, envelope.topic, envelope.payload)

    # Mostly decrypt or no_key; once in thousands, a wrong key's garbage parses and fails later.
    assert set(decoder.counters.rejected) <= {
        "decrypt",
        "no_key",
        "payload",
        "position_range",
        "node_id",
    }


@fuzz("feeds")
@given(data=st.binary(min_size=600, max_size=2000))
def test_any_feed_keeps_the_state_within_caps_and_serializable(data: bytes) -> None:
    source = ByteSource(data)
    envelopes = []
    for _ in range(1 + source.below(16)):
        kind = source.below(4)
        if kind == 0:
            envelopes.append(source.choice(POOL))
        elif kind == 1:
            envelopes.append(fuzz_envelope(source, NOW))
        elif kind == 2:
            envelope = source.choice(POOL)
            envelopes.append(Envelope(envelope.topic, fuzz_mutate(envelope.payload, source)))
        else:
            envelopes.append(Envelope(source.choice(VALID_TOPICS), source.take(source.below(200))))

    state, _ = feed(envelopes)

    state.prune(NOW + 3600, node_max_age=1800, link_max_age=1800)
    assert (state.nodes, state.links) == ({}, {})
