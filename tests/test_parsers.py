"""Every parser survives garbage: stream frames, config input, geohash tiles (MQTT: test_mqtt_wire.py)."""

from __future__ import annotations

import base64
from collections.abc import Callable
import itertools
import math
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.meshbot.flows import (
    fields,
    lightning as lightning_flow,
    mesh as mesh_flow,
)
from custom_components.meshbot.flows.mesh import parse_topics
from custom_components.meshbot.lightning.geohash import covering_tiles, encode, tiles_at
from custom_components.meshbot.links.backoff import Backoff
from custom_components.meshbot.links.stream import MAX_FRAME, FrameDecoder, encode_frame
from custom_components.meshbot.mesh.channels import (
    DEFAULT_KEY,
    ChannelKeyError,
    channel_hash,
    decode_psk,
    expand_psk,
    parse_channel_keys,
)

FUZZ = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# Stream frames

frame_payloads = st.lists(st.binary(max_size=MAX_FRAME), max_size=8)
# Noise without the start byte 0x94 cannot fake a header, so every frame must survive it.
noise = st.binary(max_size=64).map(lambda b: b.replace(b"\x94", b""))


@FUZZ
@given(
    payloads=frame_payloads,
    noises=st.lists(noise, min_size=9, max_size=9),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_frames_survive_noise_and_any_chunking(
    payloads: list[bytes], noises: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(noises[i] + encode_frame(p) for i, p in enumerate(payloads)) + noises[-1]
    decoder = FrameDecoder()
    frames = [frame for chunk in chunked(stream, cuts) for frame in decoder.feed(chunk)]
    assert frames == payloads


@FUZZ
@given(chunks=st.lists(st.binary(max_size=2048), max_size=20))
def test_frame_decoder_never_raises_and_stays_bounded(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    for chunk in chunks:
        for frame in decoder.feed(chunk):
            assert len(frame) <= MAX_FRAME
        assert len(decoder._buffer) <= MAX_FRAME + 4


def test_frame_decoder_resyncs_after_an_oversized_header() -> None:
    decoder = FrameDecoder()
    good = encode_frame(b"\x08\x01")
    assert decoder.feed(b"\x94\xc3\x7f\xff" + good) == [b"\x08\x01"]
    assert decoder.oversized == 1


def test_frame_header_split_across_reads() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"abc")
    assert decoder.feed(frame[:1]) == []
    assert decoder.feed(frame[1:3]) == []
    assert decoder.feed(frame[3:]) == [b"abc"]


def test_encode_frame_refuses_what_the_radio_would_drop() -> None:
    with pytest.raises(ValueError):
        encode_frame(b"x" * (MAX_FRAME + 1))


# Config input


@FUZZ
@given(st.text(max_size=300))
def test_channel_key_parser_accepts_or_explains(text: str) -> None:
    try:
        keys = parse_channel_keys(text)
    except ChannelKeyError as err:
        assert str(err)
    else:
        assert all(name and key for name, key in keys.items())


@pytest.mark.parametrize(
    ("psk", "expected_hash"),
    [("LongFast", 8), ("MediumFast", 31), ("LongSlow", 15), ("ShortFast", 112)],
)
def test_channel_hash_of_the_default_key(psk: str, expected_hash: int) -> None:
    assert channel_hash(psk, expand_psk(b"\x01")) == expected_hash


def test_psk_expansion() -> None:
    assert expand_psk(b"") is None
    assert expand_psk(b"\x00") is None
    assert expand_psk(b"\x01") == DEFAULT_KEY
    assert expand_psk(b"\x02")[-1] == DEFAULT_KEY[-1] + 1
    assert len(expand_psk(b"k" * 20)) == 32
    with pytest.raises(ChannelKeyError):
        expand_psk(b"k" * 33)


@FUZZ
@given(st.text(max_size=200))
def test_topic_parser_accepts_or_refuses_cleanly(text: str) -> None:
    try:
        topics = parse_topics(text)
    except ValueError:
        return
    assert topics
    for topic in topics:
        assert "#" not in topic and "+" not in topic and topic.isprintable()
        assert topic == topic.strip(" /")


# Lightning tiles and back-off


@settings(max_examples=500, deadline=None)
@given(
    latitude=st.floats(-89.9, 89.9),
    longitude=st.floats(-179.9, 179.9),
    radius=st.floats(1, 2000),
)
def test_covering_tiles_contain_the_centre_and_stay_few(
    latitude: float, longitude: float, radius: float
) -> None:
    tiles = covering_tiles(latitude, longitude, radius)
    precision = len(next(iter(tiles)))
    assert encode(latitude, longitude, precision) in tiles
    assert len(tiles) <= 9 or precision == 1
    # Every point of the circle's bounding box falls in a subscribed tile.
    dlat = radius / 111.2
    for corner_lat in (latitude - dlat, latitude + dlat):
        if -90 < corner_lat < 90 and math.cos(math.radians(latitude)) > 0.05:
            assert encode(corner_lat, longitude, precision) in tiles


def test_tile_counts_match_the_protocol_notes() -> None:
    assert len(tiles_at(48.8566, 2.3522, 100, 3)) == 6
    assert covering_tiles(48.85, 2.35, 10) == {"u09t", "u09v", "u09w", "u09y"}


@given(st.floats(0.01, 120), st.floats(1, 1000), st.integers(1, 60))
def test_backoff_never_goes_under_its_floor_or_far_over_its_cap(
    initial: float, extra: float, attempts: int
) -> None:
    backoff = Backoff(initial, initial + extra)
    delays = [backoff.next_delay() for _ in range(attempts)]
    assert all(initial <= delay <= (initial + extra) * 1.5 for delay in delays)
    backoff.reset()
    assert backoff.next_delay() <= initial * 1.5


def test_lightning_backoff_respects_the_relay_policy() -> None:
    from custom_components.meshbot.const import BACKOFF, LinkKind

    backoff = Backoff(*BACKOFF[LinkKind.LIGHTNING])
    assert min(backoff.next_delay() for _ in range(200)) >= 60


@pytest.mark.parametrize(
    ("check", "value", "error"),
    [
        (fields.host, None, "invalid_host"),
        (fields.host, "a" * 64 + ".lan", "invalid_host"),
        (fields.host, "-node.lan", "invalid_host"),
        (fields.host, "\ud800", "invalid_host"),
        (fields.port, "4403", "invalid_port"),
        (fields.port, True, "invalid_port"),
        (fields.port, 0, "invalid_port"),
        (fields.number_checks({"n": (1, 5, None)}, frozenset())["n"], 5.5, "invalid_number"),
        (mesh_flow.username, 7, "invalid_username"),
        (mesh_flow.username, "\ud800", "invalid_username"),
        (mesh_flow.password, "x" * 65_536, "invalid_password"),
        (mesh_flow.ca_cert, None, "invalid_ca_cert"),
        (mesh_flow.ca_cert, "/" + "a" * 4096, "invalid_ca_cert"),
        (mesh_flow.channel_keys, None, "invalid_channel_key"),
        (mesh_flow.node_policy, "everyone", "invalid_node_policy"),
        (mesh_flow.tracked_nodes, "!a1b2c3d4", "invalid_list"),
        (lightning_flow.location, [48.8, 2.3], "invalid_location"),
        (lightning_flow.location, {"latitude": 48.8}, "invalid_location"),
        (lightning_flow.followed_entity, "light.kitchen", "invalid_entity"),
        (lightning_flow.followed_entity, "not an entity", "invalid_entity"),
        (lightning_flow.location_mode, "moon", "invalid_location_mode"),
        (fields.boolean, "yes", "invalid_boolean"),
    ],
)
def test_form_checks_refuse_what_the_selectors_let_through(
    check: Callable[[Any], Any], value: Any, error: str
) -> None:
    with pytest.raises(fields.FieldError) as raised:
        check(value)
    assert raised.value.key == error


@pytest.mark.parametrize(
    ("check", "value", "stored"),
    [
        (fields.host, " Node.LAN ", "Node.LAN"),
        (fields.host, "[fe80::1]", "fe80::1"),
        (fields.host, "bücher.example", "bücher.example"),
        (fields.port, 4403.0, 4403),
        (fields.number_checks({"n": (0, 5, None)}, frozenset())["n"], -0.0, 0.0),
        (mesh_flow.password, "", ""),
        (lightning_flow.followed_entity, "person.alice", "person.alice"),
    ],
)
def test_form_checks_store_what_they_take(
    check: Callable[[Any], Any], value: Any, stored: Any
) -> None:
    result = check(value)
    assert result == stored
    assert type(result) is type(stored)


@FUZZ
@given(st.sampled_from([1, 16, 32]).flatmap(lambda size: st.binary(min_size=size, max_size=size)))
def test_a_key_reads_the_same_in_base64_and_in_hex(psk: bytes) -> None:
    assert decode_psk(base64.b64encode(psk).decode()) == psk
    assert decode_psk(psk.hex()) == psk
    assert decode_psk("0x" + psk.hex().upper()) == psk


@FUZZ
@given(st.binary(max_size=40).filter(lambda psk: len(psk) not in (1, 16, 32)))
def test_keys_of_other_lengths_are_refused_in_both_encodings(psk: bytes) -> None:
    for text in (base64.b64encode(psk).decode(), psk.hex()):
        try:
            decoded = decode_psk(text)
        except ChannelKeyError:
            continue
        # Some hex texts are valid base64 of another length, or the other way round: then
        # they must decode to a key length, never to these bytes.
        assert len(decoded) in (1, 16, 32) and decoded != psk
