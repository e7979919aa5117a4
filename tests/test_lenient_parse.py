"""A broken text in a radio's record costs that text only, at any depth, on both paths."""

from __future__ import annotations

import contextlib

from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings, strategies as st
from meshtastic.protobuf import mesh_pb2, mqtt_pb2
import pytest

from custom_components.meshbot.mesh.lenient import parse_lenient
from meshbot_dev.fake_node import raw_node_record

# Seen in the wild: a short name cut inside its fourth character.
CUT_SHORT_NAME = bytes.fromhex("524650e0")


def record(short_name: bytes = CUT_SHORT_NAME, long_name: bytes = b"Ridge Fire Post") -> bytes:
    return raw_node_record(0x12345678, long_name, short_name)


def test_the_record_that_broke_parsing_keeps_everything_but_the_cut_character() -> None:
    with pytest.raises(DecodeError):
        mesh_pb2.FromRadio().ParseFromString(record())
    message = mesh_pb2.FromRadio()
    parse_lenient(message, record())
    info = message.node_info
    assert info.user.short_name == "RFP"
    assert info.user.long_name == "Ridge Fire Post"
    assert info.user.hw_model == mesh_pb2.HardwareModel.RAK4631
    assert (info.position.latitude_i, info.position.longitude_i) == (458_000_000, 48_000_000)
    assert info.device_metrics.battery_level == 77
    assert message.id == 5


def test_an_envelope_with_a_cut_gateway_id_keeps_its_packet() -> None:
    envelope = mqtt_pb2.ServiceEnvelope(
        packet=mesh_pb2.MeshPacket(id=99, encrypted=b"\x01\x02"),
        channel_id="LongFast",
        gateway_id="!0a0a0a0X",
    ).SerializeToString()
    broken = envelope.replace(b"X", b"\xe2", 1)
    parsed = mqtt_pb2.ServiceEnvelope()
    parse_lenient(parsed, broken)
    assert parsed.packet.id == 99
    assert parsed.channel_id == "LongFast"
    assert parsed.gateway_id == "!0a0a0a0"


def test_bytes_that_are_no_message_still_fail() -> None:
    with pytest.raises(DecodeError):
        parse_lenient(mesh_pb2.FromRadio(), b"\x0a\xff\xff\xff\xff\x0f")


valid_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    long_name=valid_text,
    short_name=valid_text,
    cut=st.sampled_from([b"\xe0", b"\xe2\x82", b"\xf0\x9f\x98", b"\xff", b"\xc3"]),
    where=st.sampled_from(["long", "short"]),
)
def test_any_cut_name_costs_only_its_broken_bytes(
    long_name: str, short_name: str, cut: bytes, where: str
) -> None:
    long_bytes, short_bytes = long_name.encode(), short_name.encode()
    if where == "long":
        long_bytes += cut
    else:
        short_bytes += cut
    message = mesh_pb2.FromRadio()
    parse_lenient(message, record(short_bytes, long_bytes))
    user = message.node_info.user
    assert (user.long_name, user.short_name) == (long_name, short_name)
    assert message.node_info.position.latitude_i == 458_000_000
    assert message.node_info.device_metrics.battery_level == 77


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_fail_cleanly(payload: bytes) -> None:
    # Anything but DecodeError (a crash of the repair) fails the test.
    message = mesh_pb2.FromRadio()
    with contextlib.suppress(DecodeError):
        parse_lenient(message, record() + payload)
        # Later fields may replace the record (a oneof): what parsed is a whole message.
        assert mesh_pb2.FromRadio.FromString(message.SerializeToString()) == message
