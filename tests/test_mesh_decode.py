"""The mesh decoder against real envelopes, encrypted like firmware by tests/support/mesh_traffic.

Expected values are written out or computed here from the wire facts (PROTOCOLS.md section 1),
never with the decoder's own helpers.
"""

from __future__ import annotations

import base64
from functools import reduce
from operator import xor
import random

from hypothesis import given, settings, strategies as st
from meshtastic.protobuf import mesh_pb2, mqtt_pb2, portnums_pb2, telemetry_pb2
import pytest

from custom_components.meshbot.mesh.channels import FAST_BLOCKS, ChannelCipher
from custom_components.meshbot.mesh.decode import DEDUP_WINDOW, MeshDecoder, RecentPackets
from custom_components.meshbot.mesh.models import (
    DecodedPacket,
    MapReportObs,
    NeighborsObs,
    NodeInfoObs,
    PositionObs,
    Reception,
    TelemetryObs,
    TextObs,
    TracerouteObs,
)
from meshbot_dev.mesh_traffic import (
    DEFAULT_PSK,
    Envelope,
    MeshTraffic,
    encrypt,
    hash_of,
    wire_bytes,
    wire_varint,
)

NOW = 1_700_000_100.0
ROOT = "msh/EU_868"
SENDER = 0x1A2B3C4D
GATEWAY = 0x0BADCAFE
DEFAULT_KEYS = {"LongFast": "AQ=="}
KEY_128 = bytes.fromhex("00112233445566778899aabbccddeeff")
KEY_256 = bytes(range(0x40, 0x60))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def xor_all(data: bytes) -> int:
    return reduce(xor, data, 0)


def decode(decoder: MeshDecoder, envelope: Envelope) -> DecodedPacket | None:
    return decoder.decode(envelope.topic, envelope.payload, NOW)


def decode_one(envelope: Envelope, keys: dict[str, str] | None = None) -> DecodedPacket:
    """Decode one envelope that must decode, and check the counters agree."""
    decoder = MeshDecoder(DEFAULT_KEYS if keys is None else keys)
    packet = decode(decoder, envelope)
    assert packet is not None, decoder.counters.rejected
    assert decoder.counters.decoded == 1
    assert decoder.counters.rejected == {}
    return packet


def rejection(envelope: Envelope, keys: dict[str, str] | None = None) -> dict[str, int]:
    """Decode one envelope that must be rejected; return the rejection counters."""
    decoder = MeshDecoder(DEFAULT_KEYS if keys is None else keys)
    assert decode(decoder, envelope) is None
    assert decoder.counters.envelopes == 1
    assert decoder.counters.decoded == 0
    return decoder.counters.rejected


@pytest.fixture
def mesh() -> MeshTraffic:
    return MeshTraffic(root=ROOT)


def with_envelope_fields(envelope: Envelope, **fields: str) -> Envelope:
    """Return a copy of an envelope with ServiceEnvelope fields replaced."""
    message = mqtt_pb2.ServiceEnvelope()
    message.ParseFromString(envelope.payload)
    for name, value in fields.items():
        setattr(message, name, value)
    return Envelope(envelope.topic, message.SerializeToString())


# Keys and channels


def test_builder_channel_hashes_match_the_documented_ones() -> None:
    # PROTOCOLS.md: with the default key LongFast = 8, MediumFast = 31, LongSlow = 15.
    assert [hash_of(name, DEFAULT_PSK) for name in ("LongFast", "MediumFast", "LongSlow")] == [
        8,
        31,
        15,
    ]


@pytest.mark.parametrize(
    ("channel", "wire_key", "keys"),
    [
        pytest.param("LongFast", DEFAULT_PSK, DEFAULT_KEYS, id="default-AQ"),
        pytest.param(
            "LongFast",
            DEFAULT_PSK[:-1] + bytes((DEFAULT_PSK[-1] + 1,)),
            {"LongFast": "Ag=="},
            id="one-byte-psk-2",
        ),
        pytest.param("Ops", KEY_128, {**DEFAULT_KEYS, "Ops": b64(KEY_128)}, id="aes128"),
        pytest.param("Secret", KEY_256, {**DEFAULT_KEYS, "Secret": b64(KEY_256)}, id="aes256"),
        pytest.param("Short", b"abc" + bytes(13), {"Short": b64(b"abc")}, id="short-psk-padded"),
        pytest.param("Odd", KEY_128 + b"xyz" + bytes(13), {"Odd": b64(KEY_128 + b"xyz")}, id="19B"),
    ],
)
def test_decrypts_with_the_key_configured_for_the_channel(
    mesh: MeshTraffic, channel: str, wire_key: bytes, keys: dict[str, str]
) -> None:
    envelope = mesh.text(SENDER, "rendezvous at 6", gateway=GATEWAY, channel=channel, key=wire_key)

    packet = decode_one(envelope, keys)

    assert packet.channel == channel
    assert packet.observation == TextObs(SENDER, 0xFFFFFFFF, channel, "rendezvous at 6")


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from([16, 32]).flatmap(lambda size: st.binary(min_size=size, max_size=size)),
    packet_id=st.integers(0, 2**32 - 1),
    sender=st.integers(0, 2**32 - 1),
    # Past the reusable-context path's limit too, where it falls back to a CTR context.
    data=st.binary(max_size=FAST_BLOCKS * 16 + 40),
)
def test_channel_cipher_decrypts_what_the_firmware_encrypts(
    key: bytes, packet_id: int, sender: int, data: bytes
) -> None:
    cipher = ChannelCipher(key)

    # Twice: one context serves packet after packet.
    for _ in range(2):
        assert cipher.decrypt(packet_id, sender, encrypt(key, packet_id, sender, data)) == data


@pytest.mark.parametrize("order", [("Alpha", "Bravo"), ("Bravo", "Alpha")], ids="-then-".join)
def test_channels_sharing_a_hash_each_decode_with_their_own_key(
    mesh: MeshTraffic, order: tuple[str, str]
) -> None:
    # Same channel hash: the name XORs differ by d, so flip the key's last byte by d too.
    difference = xor_all(b"Alpha") ^ xor_all(b"Bravo")
    keys = {"Alpha": KEY_128, "Bravo": KEY_128[:-1] + bytes((KEY_128[-1] ^ difference,))}
    assert keys["Alpha"] != keys["Bravo"]
    assert hash_of("Alpha", keys["Alpha"]) == hash_of("Bravo", keys["Bravo"])
    decoder = MeshDecoder({name: b64(keys[name]) for name in order})
    channels = ["Alpha", "Bravo"] * 10

    packets = [
        decode(
            decoder,
            mesh.text(SENDER + index, f"#{index}", gateway=GATEWAY, channel=name, key=keys[name]),
        )
        for index, name in enumerate(channels)
    ]

    assert [(packet.channel, packet.observation.text) for packet in packets] == [
        (name, f"#{index}") for index, name in enumerate(channels)
    ]
    assert decoder.counters.rejected == {}


def wrong_default_key() -> bytes:
    """A key that is not the default one but has the same XOR, hence the same channel hash."""
    key = bytearray(DEFAULT_PSK)
    key[0] ^= 0x5A
    key[1] ^= 0x5A
    assert xor_all(bytes(key)) == xor_all(DEFAULT_PSK)
    return bytes(key)


ENVELOPE_KINDS = {
    "position": lambda m, **kw: m.position(SENDER, 48.8566, 2.3522, **kw),
    "node_info": lambda m, **kw: m.node_info(SENDER, "Base Camp", "BC", **kw),
    "telemetry": lambda m, **kw: m.telemetry(SENDER, 87, 3.91, **kw),
    "neighbors": lambda m, **kw: m.neighbors(SENDER, [(0x11, 5.0), (0x22, -3.0)], **kw),
    "traceroute": lambda m, **kw: m.traceroute_reply(
        SENDER, 0x33, [0x44], [1, 2], [0x44], [3], **kw
    ),
    "text": lambda m, **kw: m.text(SENDER, "hello mesh", **kw),
}


@pytest.mark.parametrize("kind", sorted(ENVELOPE_KINDS))
def test_wrong_key_is_rejected_as_decrypt_and_observes_nothing(
    mesh: MeshTraffic, kind: str
) -> None:
    envelope = ENVELOPE_KINDS[kind](mesh, gateway=GATEWAY)

    assert rejection(envelope, {"LongFast": b64(wrong_default_key())}) == {"decrypt": 1}


def test_wrong_key_garbage_almost_never_passes_as_a_packet() -> None:
    mesh = MeshTraffic(root=ROOT, rng=random.Random(11))
    decoder = MeshDecoder({"LongFast": b64(wrong_default_key())})
    envelopes = mesh.regional_mix(2000, garbage=0.0)

    accepted = sum(decode(decoder, envelope) is not None for envelope in envelopes)

    # A wrong key gives random bytes; like the firmware, only a parse failure or port 0 gives it
    # away, which catches all but a tiny fraction.
    assert decoder.counters.rejected.get("decrypt", 0) >= 0.995 * len(envelopes)
    assert accepted <= 0.005 * len(envelopes)


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        pytest.param({"LongFast": b64(wrong_default_key())}, "decrypt", id="wrong-key"),
        pytest.param({}, "no_key", id="no-key"),
    ],
)
def test_copies_of_an_undecryptable_packet_are_each_rejected(
    mesh: MeshTraffic, keys: dict[str, str], reason: str
) -> None:
    decoder = MeshDecoder(keys)
    copies = [
        mesh.position(SENDER, 48.85, 2.35, gateway=gateway, packet_id=0x5151)
        for gateway in (0xA1, 0xA2, 0xA3)
    ]

    results = [decode(decoder, envelope) for envelope in copies]

    assert results == [None, None, None]
    assert (decoder.counters.duplicates, decoder.counters.rejected) == (0, {reason: 3})


@pytest.mark.parametrize(
    ("keys", "channel", "key"),
    [
        pytest.param(DEFAULT_KEYS, "Ops", KEY_128, id="other-channel"),
        pytest.param({}, "LongFast", DEFAULT_PSK, id="no-keys-at-all"),
        pytest.param({"LongFast": "AA=="}, "LongFast", DEFAULT_PSK, id="configured-unencrypted"),
    ],
)
def test_no_key_for_the_channel_hash(
    mesh: MeshTraffic, keys: dict[str, str], channel: str, key: bytes
) -> None:
    assert hash_of("Ops", KEY_128) != hash_of("LongFast", DEFAULT_PSK)
    envelope = mesh.text(SENDER, "hi", gateway=GATEWAY, channel=channel, key=key)

    assert rejection(envelope, keys) == {"no_key": 1}


def test_unencrypted_packet_decodes_without_any_key(mesh: MeshTraffic) -> None:
    envelope = mesh.text(SENDER, "in the clear", gateway=GATEWAY, encrypted=False)

    packet = decode_one(envelope, {})

    assert packet.observation == TextObs(SENDER, 0xFFFFFFFF, "LongFast", "in the clear")


# Ports


def firmware_truncated(degrees: float, precision: int) -> int:
    """Return a coordinate as firmware sends it at a precision: the centre of its cell."""
    value = round(degrees * 1e7)
    if precision >= 32:
        return value
    mask = (0xFFFFFFFF << (32 - precision)) & 0xFFFFFFFF
    return (value & mask) + (1 << (31 - precision))


@pytest.mark.parametrize("precision", [32, 16, 13])
def test_position_keeps_coordinates_altitude_time_and_precision(
    mesh: MeshTraffic, precision: int
) -> None:
    lat_i, lon_i = firmware_truncated(48.8566, precision), firmware_truncated(2.3522, precision)
    envelope = mesh.position(
        SENDER,
        lat_i / 1e7,
        lon_i / 1e7,
        precision=precision,
        altitude=35,
        time=1_699_999_000,
        gateway=GATEWAY,
    )

    observation = decode_one(envelope).observation

    assert isinstance(observation, PositionObs)
    assert observation.node == SENDER
    assert observation.latitude == pytest.approx(lat_i / 1e7, abs=1e-9)
    assert observation.longitude == pytest.approx(lon_i / 1e7, abs=1e-9)
    # A 2^(32-p) x 1e-7 degree cell: p16 is about 0.0066 degrees (730 m) of latitude.
    assert abs(observation.latitude - 48.8566) <= 2 ** (32 - precision) * 1e-7
    assert (observation.altitude, observation.precision_bits, observation.time) == (
        35,
        precision,
        1_699_999_000,
    )


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(90.0, 180.0), (-90.0, -180.0), (-33.8688, 151.2093), (0.0, 0.5)],
)
def test_position_at_the_edges_of_the_map_is_kept(
    mesh: MeshTraffic, lat: float, lon: float
) -> None:
    observation = decode_one(mesh.position(SENDER, lat, lon, gateway=GATEWAY)).observation

    assert (observation.latitude, observation.longitude) == pytest.approx((lat, lon), abs=1e-7)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(90.01, 0.0), (-91.0, 10.0), (45.0, 180.01), (45.0, -200.0), (214.7, 214.7), (0.0, 0.0)],
)
def test_position_out_of_range_is_rejected_and_counted(
    mesh: MeshTraffic, lat: float, lon: float
) -> None:
    envelope = mesh.position(SENDER, lat, lon, gateway=GATEWAY)

    assert rejection(envelope) == {"position_range": 1}


@pytest.mark.parametrize(
    ("reported", "kept"),
    [
        pytest.param(NOW - 86_400, True, id="a-day-old"),
        pytest.param(NOW + 120, True, id="clock-slightly-ahead"),
        pytest.param(NOW + 86_400, False, id="a-day-ahead"),
        pytest.param(0xFFFFFFFF, False, id="year-2106"),
    ],
)
def test_position_time_far_in_the_future_is_dropped_but_position_kept(
    mesh: MeshTraffic, reported: float, kept: bool
) -> None:
    envelope = mesh.position(SENDER, 51.5, -0.12, time=int(reported), gateway=GATEWAY)

    observation = decode_one(envelope).observation

    assert observation.latitude == pytest.approx(51.5)
    assert observation.time == (int(reported) if kept else None)


def test_node_info_names_lose_control_characters_and_are_bounded(mesh: MeshTraffic) -> None:
    long_name = "Base\x00 Camp\x07\n" + "x" * 60
    envelope = mesh.node_info(SENDER, long_name, "B\tC\x1b", gateway=GATEWAY)

    observation = decode_one(envelope).observation

    assert observation == NodeInfoObs(
        node=SENDER,
        long_name=("Base Camp" + "x" * 60)[:39],
        short_name="BC",
        hw_model="HELTEC_V3",
        role="CLIENT",
    )


def test_node_info_with_names_cut_inside_a_character_is_kept(mesh: MeshTraffic) -> None:
    # Firmware cuts names at a byte limit: "Lunar Tower 🌙" loses the emoji's last byte and
    # "T01é" its second byte (seen in the wild: meshtastic/python#808).
    user = (
        wire_bytes(1, b"!1a2b3c4d")
        + wire_bytes(2, "Lunar Tower 🌙".encode()[:-1])
        + wire_bytes(3, b"T01\xc3")
        + wire_varint(5, 43)
        + wire_varint(7, 2)
    )
    envelope = mesh.envelope(SENDER, portnums_pb2.NODEINFO_APP, user, gateway=GATEWAY)

    observation = decode_one(envelope).observation

    assert observation == NodeInfoObs(SENDER, "Lunar Tower", "T01", "HELTEC_V3", "ROUTER")


def test_node_info_with_unknown_enums_keeps_the_names(mesh: MeshTraffic) -> None:
    user = wire_bytes(2, b"Future Box") + wire_varint(5, 9999) + wire_varint(7, 77)
    envelope = mesh.envelope(SENDER, portnums_pb2.NODEINFO_APP, user, gateway=GATEWAY)

    assert decode_one(envelope).observation == NodeInfoObs(SENDER, "Future Box", "", None, None)


def test_device_telemetry_values(mesh: MeshTraffic) -> None:
    observation = decode_one(mesh.telemetry(SENDER, 87, 3.91, gateway=GATEWAY)).observation

    assert isinstance(observation, TelemetryObs)
    assert (observation.node, observation.kind) == (SENDER, "device")
    assert observation.values == {
        "battery_level": 87.0,
        "voltage": pytest.approx(3.91, rel=1e-6),  # a float32 on the wire
        "channel_utilization": 12.5,
        "air_util_tx": 3.25,
        "uptime_seconds": 3600.0,
    }


def test_environment_telemetry_reports_only_the_fields_sent(mesh: MeshTraffic) -> None:
    observation = decode_one(mesh.environment(SENDER, 21.5, 40.25, gateway=GATEWAY)).observation

    assert observation == TelemetryObs(
        SENDER, "environment", {"temperature": 21.5, "relative_humidity": 40.25}
    )


def test_telemetry_with_nan_values_keeps_the_finite_ones(mesh: MeshTraffic) -> None:
    message = telemetry_pb2.Telemetry(
        environment_metrics=telemetry_pb2.EnvironmentMetrics(
            temperature=float("nan"), relative_humidity=float("inf"), lux=120.5
        )
    )
    envelope = mesh.envelope(
        SENDER, portnums_pb2.TELEMETRY_APP, message.SerializeToString(), gateway=GATEWAY
    )

    assert decode_one(envelope).observation == TelemetryObs(SENDER, "environment", {"lux": 120.5})


def test_power_telemetry_keeps_each_channel_and_env_voltage_stays_out(mesh: MeshTraffic) -> None:
    power = telemetry_pb2.Telemetry(
        power_metrics=telemetry_pb2.PowerMetrics(
            ch1_voltage=12.5, ch1_current=310.0, ch8_voltage=float("-inf")
        )
    )
    environment = telemetry_pb2.Telemetry(
        # Voltage and current in the environment message would overwrite the battery voltage.
        environment_metrics=telemetry_pb2.EnvironmentMetrics(
            voltage=5.0, current=20.0, wind_gust=7.5, soil_moisture=33
        )
    )
    observations = [
        decode_one(
            mesh.envelope(
                SENDER, portnums_pb2.TELEMETRY_APP, message.SerializeToString(), gateway=GATEWAY
            )
        ).observation
        for message in (power, environment)
    ]

    assert observations == [
        TelemetryObs(SENDER, "power", {"ch1_voltage": 12.5, "ch1_current": 310.0}),
        TelemetryObs(SENDER, "environment", {"wind_gust": 7.5, "soil_moisture": 33.0}),
    ]


@pytest.mark.parametrize(
    ("neighbors", "expected"),
    [
        pytest.param([(0x11, 6.25), (0x22, -3.5)], ((0x11, 6.25), (0x22, -3.5)), id="two"),
        pytest.param([(0, 0.0)], (), id="dummy-only"),
        pytest.param([(0x11, 6.25), (0, 0.0)], ((0x11, 6.25),), id="dummy-among-real"),
        pytest.param(
            [(SENDER, 1.0), (0xFFFFFFFF, 2.0), (0x33, float("nan")), (0x44, 0.0)],
            ((0x44, 0.0),),
            id="self-broadcast-nan",
        ),
    ],
)
def test_neighbor_info(
    mesh: MeshTraffic, neighbors: list[tuple[int, float]], expected: tuple[tuple[int, float], ...]
) -> None:
    envelope = mesh.neighbors(SENDER, neighbors, gateway=GATEWAY)

    packet = decode_one(envelope)

    assert packet.destination == 1  # "broadcast to MQTT and apps only"
    assert packet.observation == NeighborsObs(reporter=SENDER, neighbors=expected, interval=21600)


def test_traceroute_reply_gives_every_hop_both_ways_with_snr_in_quarter_db(
    mesh: MeshTraffic,
) -> None:
    requester, relay_a, relay_b = 0x0A0A0A0A, 0x0B0B0B0B, 0x0C0C0C0C
    envelope = mesh.traceroute_reply(
        SENDER,
        requester,
        route=[relay_a, relay_b],
        snr_towards=[6.25, -32.0, -7.5],  # -32 dB x 4 = -128: unknown
        route_back=[relay_b, relay_a],
        snr_back=[2.0, 0.25],  # the packet is still on its way home
        gateway=GATEWAY,
    )

    observation = decode_one(envelope).observation

    assert observation == TracerouteObs(
        origin=requester,
        destination=SENDER,
        hops=(
            (requester, relay_a, 6.25),
            (relay_a, relay_b, None),
            (relay_b, SENDER, -7.5),
            (SENDER, relay_b, 2.0),
            (relay_b, relay_a, 0.25),
            # relay_a -> requester has not happened yet: no SNR was appended for it.
        ),
    )


def test_traceroute_unknown_hops_are_left_out(mesh: MeshTraffic) -> None:
    requester, relay = 0x0A0A0A0A, 0x0B0B0B0B
    envelope = mesh.traceroute_reply(
        SENDER,
        requester,
        route=[relay, 0xFFFFFFFF],
        snr_towards=[1.0, 2.0, 3.0],
        route_back=[],
        snr_back=[4.0],
        gateway=GATEWAY,
    )

    observation = decode_one(envelope).observation

    assert observation.hops == ((requester, relay, 1.0), (SENDER, requester, 4.0))


def test_text_message_direct_and_with_broken_utf8(mesh: MeshTraffic) -> None:
    envelope = mesh.envelope(
        SENDER,
        portnums_pb2.TEXT_MESSAGE_APP,
        "Café at 9? ☕".encode() + b"\xff",
        to=0x0A0A0A0A,
        gateway=GATEWAY,
    )

    assert decode_one(envelope).observation == TextObs(
        SENDER, 0x0A0A0A0A, "LongFast", "Café at 9? ☕\ufffd"
    )


def test_map_report(mesh: MeshTraffic) -> None:
    envelope = mesh.map_report(SENDER, "Hilltop Relay", 45.764, 4.8357, precision=14)
    assert envelope.topic == f"{ROOT}/2/map/"

    packet = decode_one(envelope, {})

    assert (packet.sender, packet.channel, packet.reception, packet.direct) == (
        SENDER,
        "map",
        None,
        False,
    )
    observation = packet.observation
    assert isinstance(observation, MapReportObs)
    assert observation.position is not None
    assert (observation.position.latitude, observation.position.longitude) == pytest.approx(
        (45.764, 4.8357), abs=1e-7
    )
    assert observation.position.precision_bits == 14
    assert observation == MapReportObs(
        node=SENDER,
        long_name="Hilltop Relay",
        short_name="Hill",
        hw_model="RAK4631",
        role="CLIENT",
        firmware_version="2.7.11.ee68575",
        region="EU_868",
        modem_preset="LONG_FAST",
        position=observation.position,
        online_local_nodes=12,
    )


def test_map_report_with_impossible_position_keeps_the_rest(mesh: MeshTraffic) -> None:
    decoder = MeshDecoder({})
    envelope = mesh.map_report(SENDER, "Lost Node", 123.0, 4.0)

    packet = decode(decoder, envelope)

    assert packet is not None
    assert packet.observation.long_name == "Lost Node"
    assert packet.observation.position is None
    # One envelope, one outcome: decoded, not also counted as rejected.
    assert (decoder.counters.decoded, decoder.counters.rejected) == (1, {})


def test_map_report_with_broken_names_is_cleaned(mesh: MeshTraffic) -> None:
    report = (
        wire_bytes(1, b"Relay\x00 \xf0\x9f\x93")
        + wire_bytes(2, b"R\x07\xe2")
        + wire_bytes(5, b"2.7.\xff11")
        + wire_varint(13, 3)
    )

    observation = decode_one(mesh.map_envelope(SENDER, report), {}).observation

    assert (observation.long_name, observation.short_name, observation.firmware_version) == (
        "Relay",
        "R",
        "2.7.11",
    )
    assert (observation.position, observation.online_local_nodes) == (None, 3)


def map_packet(**fields: object) -> bytes:
    packet = mesh_pb2.MeshPacket(**fields)
    return mqtt_pb2.ServiceEnvelope(packet=packet).SerializeToString()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"", "map_report", id="empty"),
        pytest.param(b"\xff\xff\xff", "envelope", id="garbage"),
        pytest.param(map_packet(id=5), "map_report", id="no-sender"),
        pytest.param(
            map_packet(id=5, encrypted=b"secret", **{"from": SENDER}), "map_report", id="encrypted"
        ),
        pytest.param(
            map_packet(
                id=5, decoded=mesh_pb2.Data(portnum=73, payload=b"\xff"), **{"from": SENDER}
            ),
            "map_report",
            id="bad-report",
        ),
    ],
)
def test_map_report_garbage_is_rejected(payload: bytes, reason: str) -> None:
    assert rejection(Envelope(f"{ROOT}/2/map/", payload), {}) == {reason: 1}


def test_pki_direct_message_is_metadata_only(mesh: MeshTraffic) -> None:
    envelope = mesh.pki(SENDER, 0x0A0A0A0A, gateway=GATEWAY)
    assert envelope.topic == f"{ROOT}/2/e/PKI/!0badcafe"

    packet = decode_one(envelope)

    assert packet.pki is True
    assert packet.observation is None
    assert (packet.sender, packet.destination, packet.channel) == (SENDER, 0x0A0A0A0A, "PKI")
    assert packet.reception == Reception(GATEWAY, None, None, 0, NOW)


# Receptions


def test_copies_from_several_gateways_collapse_but_each_reception_is_kept(
    mesh: MeshTraffic,
) -> None:
    decoder = MeshDecoder(DEFAULT_KEYS)
    heard = [(0x0000AA01, 3, 6.5, -71), (0x0000AA02, 1, -4.25, -118), (0x0000AA03, 2, 0.5, -101)]
    packets = [
        decode(
            decoder,
            mesh.telemetry(
                SENDER,
                55,
                3.7,
                gateway=gateway,
                packet_id=0x7777,
                hop_start=3,
                hop_limit=hop_limit,
                snr=snr,
                rssi=rssi,
            ),
        )
        for gateway, hop_limit, snr, rssi in heard
    ]

    assert [packet.duplicate for packet in packets] == [False, True, True]
    assert packets[0].observation.values["battery_level"] == 55.0
    assert [packet.observation for packet in packets[1:]] == [None, None]
    assert [packet.reception for packet in packets] == [
        Reception(0x0000AA01, 6.5, -71, 0, NOW),
        Reception(0x0000AA02, -4.25, -118, 2, NOW),
        Reception(0x0000AA03, 0.5, -101, 1, NOW),
    ]
    assert [packet.direct for packet in packets] == [True, False, False]
    counters = decoder.counters
    assert (counters.envelopes, counters.decoded, counters.duplicates) == (3, 1, 2)


def test_same_packet_id_from_another_sender_is_not_a_duplicate(mesh: MeshTraffic) -> None:
    decoder = MeshDecoder(DEFAULT_KEYS)
    first = decode(decoder, mesh.text(SENDER, "a", gateway=GATEWAY, packet_id=42))
    second = decode(decoder, mesh.text(SENDER + 1, "b", gateway=GATEWAY, packet_id=42))

    assert (first.duplicate, second.duplicate) == (False, False)
    assert second.observation.text == "b"


def test_a_late_copy_is_a_duplicate_within_the_window_and_news_after_it(
    mesh: MeshTraffic,
) -> None:
    decoder = MeshDecoder(DEFAULT_KEYS)

    def copy_of_the_first() -> DecodedPacket:
        return decode(decoder, mesh.text(SENDER, "hello", gateway=GATEWAY, packet_id=1))

    assert not copy_of_the_first().duplicate

    # A window's worth of other packets later, a gateway uploads its copy: still a copy.
    def news(packet_ids: range) -> None:
        for packet_id in packet_ids:
            envelope = mesh.text(SENDER, "news", gateway=GATEWAY, packet_id=packet_id)
            assert not decode(decoder, envelope).duplicate

    news(range(2, DEDUP_WINDOW + 1))
    assert copy_of_the_first().duplicate
    # Memory is bounded: two windows later, the packet is forgotten and decoded again.
    news(range(DEDUP_WINDOW + 1, 2 * DEDUP_WINDOW + 1))
    again = copy_of_the_first()
    assert not again.duplicate
    assert again.observation.text == "hello"


def test_recent_packets_keep_between_one_and_two_windows() -> None:
    recent = RecentPackets(100)
    for key in range(250):
        recent.add(key)
    remembered = [key for key in range(250) if key in recent]
    assert 100 <= len(remembered) <= 200
    # Always the most recent ones.
    assert remembered == list(range(250 - len(remembered), 250))


@pytest.mark.parametrize(
    ("hop_start", "hop_limit", "hops", "direct"),
    [
        pytest.param(3, 3, 0, True, id="heard-directly"),
        pytest.param(7, 7, 0, True, id="heard-directly-hop-start-7"),
        pytest.param(3, 1, 2, False, id="two-hops"),
        pytest.param(7, 0, 7, False, id="seven-hops"),
        pytest.param(0, 0, None, False, id="old-firmware-unknown"),
        pytest.param(0, 3, None, False, id="old-firmware-with-limit"),
        pytest.param(2, 5, None, False, id="limit-above-start"),
        pytest.param(200, 200, None, False, id="impossible-hop-start"),
        pytest.param(0xFFFFFFFF, 3, None, False, id="huge-hop-start"),
    ],
)
def test_hops_and_direct_reception(
    mesh: MeshTraffic, hop_start: int, hop_limit: int, hops: int | None, direct: bool
) -> None:
    envelope = mesh.text(SENDER, "x", gateway=GATEWAY, hop_start=hop_start, hop_limit=hop_limit)

    packet = decode_one(envelope)

    assert (packet.reception.hops, packet.direct) == (hops, direct)


@pytest.mark.parametrize(
    "gateway_id",
    ["!1a2b3c4d", "!ffffffff", "!00000000", "gateway", "", "!12345"],
    ids=["the-sender-itself", "broadcast", "zero", "not-an-id", "empty", "short"],
)
def test_no_reception_without_a_real_other_gateway(mesh: MeshTraffic, gateway_id: str) -> None:
    envelope = with_envelope_fields(mesh.text(SENDER, "x", gateway=GATEWAY), gateway_id=gateway_id)

    packet = decode_one(envelope)

    assert (packet.reception, packet.direct) == (None, False)
    assert packet.observation.text == "x"


def test_zero_snr_and_rssi_mean_not_measured(mesh: MeshTraffic) -> None:
    envelope = mesh.text(SENDER, "x", gateway=GATEWAY, snr=0.0, rssi=0)

    assert decode_one(envelope).reception == Reception(GATEWAY, None, None, 0, NOW)


# Topics, ids, sizes


@pytest.mark.parametrize(
    "topic",
    [
        "msh/US/CA/Bay/2/e/LongFast/!0badcafe",
        "msh/2/e/LongFast/!0badcafe",
        "msh/EU_868/2/e/LongFast",
        "a/b/c/d/e/f/g/2/e/LongFast/!0badcafe",
        "msh/2/2/e/LongFast/!0badcafe",
        "2/e/LongFast/!0badcafe",
    ],
)
def test_topics_are_parsed_by_the_2_e_segment(mesh: MeshTraffic, topic: str) -> None:
    envelope = mesh.text(SENDER, "where am I", gateway=GATEWAY)

    packet = decode_one(Envelope(topic, envelope.payload))

    assert (packet.channel, packet.observation.text) == ("LongFast", "where am I")


def test_topic_channel_is_used_when_the_envelope_has_none(mesh: MeshTraffic) -> None:
    envelope = with_envelope_fields(
        mesh.text(SENDER, "x", gateway=GATEWAY, channel="Ops", key=KEY_128), channel_id=""
    )

    packet = decode_one(envelope, {"Ops": b64(KEY_128)})

    assert envelope.topic == f"{ROOT}/2/e/Ops/!0badcafe"
    assert packet.channel == "Ops"


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "msh",
        "/",
        "msh/EU_868/2/json/LongFast/!0badcafe",
        "msh/EU_868/2/c/LongFast/!0badcafe",
        "msh/EU_868/2/E/LongFast/!0badcafe",
        "msh/EU_868/22/e/LongFast/!0badcafe",
        "msh/EU_868/e/LongFast/!0badcafe",
        "msh/EU_868/2",
        "msh/EU_868/2e/LongFast",
        "msh/EU_868//e/LongFast",
        "\x00\ufffd/2\u200b/e",
    ],
)
def test_garbage_topics_are_rejected(mesh: MeshTraffic, topic: str) -> None:
    envelope = mesh.text(SENDER, "x", gateway=GATEWAY)

    assert rejection(Envelope(topic, envelope.payload)) == {"topic": 1}


@pytest.mark.parametrize("sender", [0, 1, 0xFFFFFFFF])
def test_impossible_senders_are_rejected(mesh: MeshTraffic, sender: int) -> None:
    envelope = mesh.text(sender, "spoof", gateway=GATEWAY)

    assert rejection(envelope) == {"node_id": 1}


@pytest.mark.parametrize("reporter", [0xFFFFFFFF, 1])
def test_neighbor_info_for_an_impossible_reporter_is_rejected(
    mesh: MeshTraffic, reporter: int
) -> None:
    message = mesh_pb2.NeighborInfo(node_id=reporter, neighbors=[mesh_pb2.Neighbor(node_id=5)])
    envelope = mesh.envelope(
        SENDER, portnums_pb2.NEIGHBORINFO_APP, message.SerializeToString(), gateway=GATEWAY
    )

    assert rejection(envelope) == {"node_id": 1}


def test_oversized_envelope_is_rejected_before_parsing(mesh: MeshTraffic) -> None:
    envelope = mesh.text(SENDER, "y" * 5000, gateway=GATEWAY)
    assert len(envelope.payload) > 4096

    assert rejection(envelope) == {"oversized": 1}
    assert rejection(Envelope(envelope.topic, bytes(4097))) == {"oversized": 1}


def test_largest_real_envelope_still_decodes(mesh: MeshTraffic) -> None:
    envelope = mesh.text(SENDER, "z" * 3900, gateway=GATEWAY)
    assert 3900 < len(envelope.payload) <= 4096

    assert decode_one(envelope).observation.text == "z" * 500


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"", "envelope", id="empty"),
        pytest.param(b"\xff\xff\xff\xff", "envelope", id="garbage"),
        pytest.param(
            mqtt_pb2.ServiceEnvelope(channel_id="LongFast").SerializeToString(),
            "envelope",
            id="no-packet",
        ),
        pytest.param(
            mqtt_pb2.ServiceEnvelope(
                packet=mesh_pb2.MeshPacket(id=1, **{"from": 0x1234})
            ).SerializeToString(),
            "no_payload",
            id="packet-without-payload",
        ),
    ],
)
def test_malformed_envelopes_are_rejected(payload: bytes, reason: str) -> None:
    assert rejection(Envelope(f"{ROOT}/2/e/LongFast/!0badcafe", payload)) == {reason: 1}


@pytest.mark.parametrize("cut", [1, 10, 30, -1])
def test_truncated_envelope_is_rejected(mesh: MeshTraffic, cut: int) -> None:
    envelope = mesh.node_info(SENDER, "Truncated", "TR", gateway=GATEWAY)

    rejected = rejection(Envelope(envelope.topic, envelope.payload[:cut]))

    assert sum(rejected.values()) == 1
    assert set(rejected) <= {"envelope", "decrypt", "node_id", "no_key", "no_payload"}


def test_counters_balance_over_a_regional_feed() -> None:
    mesh = MeshTraffic(root=ROOT, rng=random.Random(3))
    decoder = MeshDecoder(DEFAULT_KEYS)
    envelopes = mesh.regional_mix(3000, garbage=0.05)

    results = [decode(decoder, envelope) for envelope in envelopes]

    counters = decoder.counters
    assert counters.envelopes == 3000
    assert counters.envelopes == counters.decoded + counters.duplicates + counters.rejected_total
    assert results.count(None) == counters.rejected_total
    assert "internal_error" not in counters.rejected
    # The generator's own packets all decode; only its garbage is rejected.
    garbage = sum(1 for envelope in envelopes if envelope.topic.endswith("!deadbeef"))
    assert counters.rejected_total <= garbage
    assert counters.decoded > 1000


def test_traceroute_request_caught_mid_route_shows_only_travelled_hops(mesh: MeshTraffic) -> None:
    requester, relay = 0x0A0A0A0A, 0x0B0B0B0B
    request = mesh_pb2.RouteDiscovery(route=[relay], snr_towards=[round(5.5 * 4)])
    envelope = mesh.envelope(
        requester,
        portnums_pb2.TRACEROUTE_APP,
        request.SerializeToString(),
        to=SENDER,
        gateway=GATEWAY,
    )
    observation = decode_one(envelope).observation
    # The relay heard the requester; nobody has heard the relay towards SENDER yet.
    assert observation.hops == ((requester, relay, 5.5),)
