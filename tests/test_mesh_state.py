"""MeshState: the node database and neighbor graph built from decoded packets."""

from __future__ import annotations

import copy
import json
import math
import sys
import threading

import pytest

from custom_components.meshbot.mesh.decode import MeshDecoder
from custom_components.meshbot.mesh.models import (
    DecodedPacket,
    MapReportObs,
    NeighborsObs,
    NodeInfoObs,
    PositionObs,
    Reception,
    TelemetryObs,
    TracerouteObs,
)
from custom_components.meshbot.mesh.state import MAX_GATEWAYS_PER_NODE, MeshState
from meshbot_dev.mesh_traffic import MeshTraffic

T0 = 1_700_000_000.0
ALICE, BOB, CAROL, DAVE, GW1, GW2 = (
    0xA11CE001,
    0xB0B00002,
    0xCA201003,
    0xDA7E0004,
    0x6A7E0001,
    0x6A7E0002,
)
PARIS = (48.8566, 2.3522)
VERSAILLES = (48.8049, 2.1204)  # about 18 km from Paris
LYON = (45.764, 4.8357)  # about 392 km from Paris


def packet(
    sender: int,
    observation: object = None,
    *,
    gateway: int | None = None,
    hops: int | None = None,
    snr: float | None = None,
    rssi: int | None = None,
    packet_id: int = 1,
    duplicate: bool = False,
    now: float = T0,
) -> DecodedPacket:
    reception = None if gateway is None else Reception(gateway, snr, rssi, hops, now)
    return DecodedPacket(
        sender=sender,
        destination=0xFFFFFFFF,
        packet_id=packet_id,
        channel="LongFast",
        reception=reception,
        direct=hops == 0 and reception is not None,
        duplicate=duplicate,
        observation=observation,  # type: ignore[arg-type]
    )


def position(node: int, where: tuple[float, float]) -> PositionObs:
    return PositionObs(node, where[0], where[1], 35, 32, None)


def links(state: MeshState) -> dict[tuple[str, str, str], tuple]:
    """Return the links as {(from, to, source): (snr, rssi, count)}."""
    return {
        (f"!{link.source_node:08x}", f"!{link.target_node:08x}", link.source): (
            link.snr,
            link.rssi,
            link.times_heard,
        )
        for link in state.iter_links()
    }


def assert_consistent(state: MeshState) -> None:
    """Every link joins two known nodes and the adjacency index agrees with the links."""
    assert len(state.nodes) <= state.max_nodes
    assert len(state.links) <= state.max_links
    for source_node, target_node, _ in state.links:
        assert source_node in state.nodes
        assert target_node in state.nodes
    for num in state.nodes:
        assert set(state.links_of(num)) == {
            link for link in state.iter_links() if num in (link.source_node, link.target_node)
        }


def use(state: MeshState, now: float) -> None:
    """Exercise everything a user-facing caller does with a state: nothing may raise."""
    state.apply(packet(ALICE, position(ALICE, PARIS), gateway=GW1, hops=0, snr=1.0), now)
    state.apply(packet(BOB, NeighborsObs(BOB, ((ALICE, 2.0),), None), now=now), now)
    assert state.neighbor_summary(ALICE) == (2, 2.0)  # GW1 heard ALICE, ALICE was heard by BOB
    nearby = json.dumps(state.topology(now, within=(*PARIS, 100.0), max_age=3600), allow_nan=False)
    assert '"!a11ce001"' in nearby
    json.dumps(state.topology(now), allow_nan=False)
    json.dumps(state.to_storage(), allow_nan=False)
    for num in list(state.nodes):
        state.neighbor_summary(num)
        MeshState.node_json(state.nodes[num])
        _ = state.nodes[num].name
    state.count_links_by_source()
    state.prune(now, 86_400, 3_600)
    assert_consistent(state)


# Sources of links


def test_neighbor_info_links_each_neighbor_to_the_reporter() -> None:
    state = MeshState()
    observation = NeighborsObs(ALICE, ((BOB, 6.25), (CAROL, -3.5)), 21600)

    state.apply(packet(ALICE, observation), T0)

    assert links(state) == {
        ("!b0b00002", "!a11ce001", "neighbor"): (6.25, None, 1),
        ("!ca201003", "!a11ce001", "neighbor"): (-3.5, None, 1),
    }
    assert set(state.nodes) == {ALICE, BOB, CAROL}
    # Only ALICE was heard; the neighbors are known, not heard.
    assert state.nodes[ALICE].last_heard == T0
    assert state.nodes[BOB].last_heard is None


def test_direct_reception_links_sender_to_gateway_with_snr_and_rssi() -> None:
    state = MeshState()

    state.apply(packet(ALICE, gateway=GW1, hops=0, snr=7.5, rssi=-64), T0)

    assert links(state) == {("!a11ce001", "!6a7e0001", "direct"): (7.5, -64, 1)}
    alice = state.nodes[ALICE]
    assert (alice.snr, alice.rssi, alice.hops_away) == (7.5, -64, 0)
    assert alice.gateways == {GW1: T0}
    assert state.nodes[GW1].last_heard == T0


def test_relayed_reception_gives_hops_but_no_link() -> None:
    state = MeshState()

    state.apply(packet(ALICE, gateway=GW1, hops=2, snr=-9.0, rssi=-120), T0)

    assert state.links == {}
    assert (state.nodes[ALICE].hops_away, state.nodes[ALICE].snr) == (2, None)
    assert set(state.nodes) == {ALICE, GW1}


def test_traceroute_links_every_hop() -> None:
    state = MeshState()
    hops = ((DAVE, ALICE, 6.0), (ALICE, BOB, None), (BOB, ALICE, -1.5), (ALICE, DAVE, 3.0))

    state.apply(packet(BOB, TracerouteObs(DAVE, BOB, hops)), T0)

    assert links(state) == {
        ("!da7e0004", "!a11ce001", "traceroute"): (6.0, None, 1),
        ("!a11ce001", "!b0b00002", "traceroute"): (None, None, 1),
        ("!b0b00002", "!a11ce001", "traceroute"): (-1.5, None, 1),
        ("!a11ce001", "!da7e0004", "traceroute"): (3.0, None, 1),
    }


def test_links_from_a_real_decoded_feed() -> None:
    mesh = MeshTraffic()
    decoder = MeshDecoder({"LongFast": "AQ=="})
    state = MeshState()
    envelopes = [
        mesh.neighbors(ALICE, [(BOB, 4.5)], gateway=GW1),
        mesh.telemetry(CAROL, 80, 3.9, gateway=GW2, hop_start=3, hop_limit=3, snr=-2.5, rssi=-99),
        mesh.traceroute_reply(DAVE, ALICE, [BOB], [1.0, 2.0], [BOB], [3.0, 4.0], gateway=GW1),
    ]

    for envelope in envelopes:
        decoded = decoder.decode(envelope.topic, envelope.payload, T0)
        state.apply(decoded, T0)

    assert state.count_links_by_source() == {
        "neighbor": 1,
        "direct": 3,  # every envelope was heard directly by its gateway
        "traceroute": 4,
        "radio": 0,
    }
    assert links(state)[("!ca201003", "!6a7e0002", "direct")] == (-2.5, -99, 1)
    assert links(state)[("!b0b00002", "!a11ce001", "neighbor")] == (4.5, None, 1)
    assert links(state)[("!a11ce001", "!b0b00002", "traceroute")] == (1.0, None, 1)
    assert_consistent(state)


def test_link_keeps_first_seen_and_updates_last_seen_count_and_snr() -> None:
    state = MeshState()
    for minute, snr in enumerate((5.0, None, -2.0)):
        now = T0 + 60 * minute
        state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, snr),), None)), now)

    link = next(state.iter_links())
    assert (link.first_seen, link.last_seen, link.times_heard, link.snr) == (T0, T0 + 120, 3, -2.0)
    # A link heard again is news of both its ends.
    assert state.nodes[BOB].last_seen == T0 + 120


def test_neighbor_only_node_survives_pruning_while_it_is_still_reported() -> None:
    state = MeshState()
    for hour in range(0, 30, 6):
        state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 1.0),), None)), T0 + hour * 3600)

    state.prune(T0 + 25 * 3600, node_max_age=8 * 3600, link_max_age=8 * 3600)

    assert set(state.nodes) == {ALICE, BOB}
    assert len(state.links) == 1


# Nodes


def test_node_fields_from_each_observation() -> None:
    state = MeshState()
    state.apply(packet(ALICE, NodeInfoObs(ALICE, "Alice Base", "AB", "HELTEC_V3", "ROUTER")), T0)
    state.apply(packet(ALICE, position(ALICE, PARIS)), T0 + 1)
    state.apply(packet(ALICE, TelemetryObs(ALICE, "device", {"battery_level": 80.0})), T0 + 2)
    state.apply(packet(ALICE, TelemetryObs(ALICE, "environment", {"temperature": 21.5})), T0 + 3)
    report = MapReportObs(ALICE, "", "", None, None, "2.7.11", "EU_868", "LONG_FAST", None, 4)
    state.apply(packet(ALICE, report), T0 + 4)

    alice = state.nodes[ALICE]
    assert (alice.name, alice.short_name, alice.hw_model, alice.role) == (
        "Alice Base",
        "AB",
        "HELTEC_V3",
        "ROUTER",
    )
    assert (alice.latitude, alice.longitude, alice.altitude, alice.position_at) == (
        *PARIS,
        35,
        T0 + 1,
    )
    assert alice.telemetry == {"battery_level": 80.0, "temperature": 21.5}
    assert (alice.firmware_version, alice.region, alice.modem_preset) == (
        "2.7.11",
        "EU_868",
        "LONG_FAST",
    )
    assert (alice.first_seen, alice.last_seen, alice.last_heard) == (T0, T0 + 4, T0 + 4)
    assert alice.id == "!a11ce001"


def test_unnamed_node_has_the_firmware_default_name() -> None:
    state = MeshState()
    state.apply(packet(ALICE), T0)

    # What the node's own firmware calls it until its owner names it: the id's last 4 digits.
    assert state.nodes[ALICE].name == "Meshtastic e001"
    assert state.nodes[ALICE].id == "!a11ce001"


@pytest.mark.parametrize(
    ("copies", "expected"),
    [
        pytest.param([0, 2], 0, id="direct-then-relayed"),
        pytest.param([2, 0], 0, id="relayed-then-direct"),
        pytest.param([3, 1, 2], 1, id="fewest-of-three"),
        pytest.param([None, 2], 2, id="unknown-then-known"),
    ],
)
def test_hops_away_is_the_fewest_over_the_copies_of_one_packet(
    copies: list[int | None], expected: int
) -> None:
    state = MeshState()
    for index, hops in enumerate(copies):
        decoded = packet(
            ALICE, gateway=GW1 + index, hops=hops, packet_id=77, duplicate=index > 0, snr=1.0
        )
        state.apply(decoded, T0 + index)

    assert state.nodes[ALICE].hops_away == expected


def test_hops_away_follows_the_latest_packet() -> None:
    state = MeshState()
    state.apply(packet(ALICE, gateway=GW1, hops=0, packet_id=1), T0)
    state.apply(packet(ALICE, gateway=GW1, hops=3, packet_id=2), T0 + 60)

    assert state.nodes[ALICE].hops_away == 3


def test_best_direct_snr_among_copies_is_kept() -> None:
    state = MeshState()
    state.apply(packet(ALICE, gateway=GW1, hops=0, snr=-5.0, rssi=-110, packet_id=9), T0)
    state.apply(
        packet(ALICE, gateway=GW2, hops=0, snr=4.0, rssi=-80, packet_id=9, duplicate=True), T0
    )
    state.apply(
        packet(ALICE, gateway=GW2 + 1, hops=0, snr=1.0, rssi=-90, packet_id=9, duplicate=True), T0
    )

    assert (state.nodes[ALICE].snr, state.nodes[ALICE].rssi) == (4.0, -80)
    assert len(state.links) == 3


def test_gateways_per_node_are_bounded_to_the_most_recent() -> None:
    state = MeshState()
    gateways = [0x6A000000 + index for index in range(MAX_GATEWAYS_PER_NODE + 9)]
    for index, gateway in enumerate(gateways):
        state.apply(packet(ALICE, gateway=gateway, hops=1, packet_id=index), T0 + index)

    assert set(state.nodes[ALICE].gateways) == set(gateways[-MAX_GATEWAYS_PER_NODE:])


# Caps


def test_flood_of_invented_ids_stays_within_caps_and_keeps_active_nodes() -> None:
    state = MeshState(max_nodes=50, max_links=80)
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 1.0),), None)), T0)
    for index in range(2000):
        now = T0 + 1 + index
        invented = [0x10000000 + 3 * index + k for k in range(3)]
        state.apply(
            packet(
                invented[0],
                NeighborsObs(invented[0], ((invented[1], 1.0), (invented[2], 2.0)), None),
            ),
            now,
        )
        if index % 10 == 0:
            state.apply(packet(ALICE, gateway=GW1, hops=0, packet_id=index), now)
        assert len(state.nodes) <= 50
        assert len(state.links) <= 80

    assert_consistent(state)
    # ALICE keeps being heard; BOB was heard once, at the start, and went with his link.
    assert ALICE in state.nodes
    assert BOB not in state.nodes
    assert not [key for key in state.links if BOB in key[:2]]
    assert state.evicted_nodes > 5000
    assert state.neighbor_summary(BOB) == (0, None)


def test_evicting_a_node_drops_its_links() -> None:
    state = MeshState(max_nodes=3)
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 1.0),), None)), T0)
    state.apply(packet(CAROL), T0 + 1)

    state.apply(packet(DAVE), T0 + 2)

    assert set(state.nodes) == {ALICE, CAROL, DAVE}
    assert state.links == {}
    assert_consistent(state)


def test_link_cap_drops_the_least_recently_heard_link() -> None:
    state = MeshState(max_links=2)
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 1.0), (CAROL, 2.0)), None)), T0)
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 1.5),), None)), T0 + 1)

    state.apply(packet(ALICE, NeighborsObs(ALICE, ((DAVE, 3.0),), None)), T0 + 2)

    assert set(links(state)) == {
        ("!b0b00002", "!a11ce001", "neighbor"),
        ("!da7e0004", "!a11ce001", "neighbor"),
    }
    assert state.evicted_links == 1


# Housekeeping


def test_prune_forgets_old_links_and_nodes() -> None:
    state = MeshState()
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 1.0),), None)), T0)
    state.apply(packet(CAROL, gateway=GW1, hops=0), T0 + 5 * 3600)
    state.apply(packet(DAVE), T0 + 9 * 3600)

    removed = state.prune(T0 + 10 * 3600, node_max_age=8 * 3600, link_max_age=2 * 3600)

    # The ALICE<-BOB link (10 h), the CAROL->GW1 link (5 h), and ALICE and BOB (10 h).
    assert removed == 4
    assert set(state.nodes) == {CAROL, GW1, DAVE}
    assert state.links == {}
    assert_consistent(state)


def test_prune_keeps_everything_fresh() -> None:
    state = MeshState()
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 1.0),), None)), T0)

    assert state.prune(T0 + 60, node_max_age=3600, link_max_age=3600) == 0
    assert len(state.nodes) == 2
    assert len(state.links) == 1


def test_forget_removes_the_node_and_its_links_only() -> None:
    state = MeshState()
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 1.0), (CAROL, 2.0)), None)), T0)
    state.apply(packet(DAVE, NeighborsObs(DAVE, ((CAROL, 3.0),), None)), T0)

    state.forget(BOB)
    state.forget(0x12345678)  # unknown: nothing happens

    assert set(state.nodes) == {ALICE, CAROL, DAVE}
    assert set(links(state)) == {
        ("!ca201003", "!a11ce001", "neighbor"),
        ("!ca201003", "!da7e0004", "neighbor"),
    }
    assert "!b0b00002" not in json.dumps(state.topology(T0))
    assert_consistent(state)


def test_drain_reports_changes_once() -> None:
    state = MeshState()
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 1.0),), None)), T0)

    changed, discovered, links_changed = state.drain()

    assert (changed, sorted(discovered), links_changed) == (
        {ALICE, BOB},
        sorted([ALICE, BOB]),
        True,
    )
    assert state.drain() == (set(), [], False)

    state.apply(packet(ALICE, TelemetryObs(ALICE, "device", {"voltage": 3.9})), T0 + 1)
    assert state.drain() == ({ALICE}, [], False)


def test_neighbor_summary_counts_distinct_peers_and_best_snr() -> None:
    state = MeshState()
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, -4.0), (CAROL, 2.5)), None)), T0)
    state.apply(packet(BOB, NeighborsObs(BOB, ((ALICE, 6.0),), None)), T0)
    state.apply(packet(ALICE, gateway=GW1, hops=0, snr=None), T0)

    assert state.neighbor_summary(ALICE) == (3, 6.0)  # BOB (both ways), CAROL, GW1
    assert state.neighbor_summary(CAROL) == (1, 2.5)
    assert state.neighbor_summary(DAVE) == (0, None)


def test_count_links_by_source_names_every_source() -> None:
    state = MeshState()
    assert state.count_links_by_source() == {
        "neighbor": 0,
        "direct": 0,
        "traceroute": 0,
        "radio": 0,
    }
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 1.0), (CAROL, 1.0)), None)), T0)
    state.apply(packet(ALICE, gateway=GW1, hops=0), T0)

    assert state.count_links_by_source() == {
        "neighbor": 2,
        "direct": 1,
        "traceroute": 0,
        "radio": 0,
    }


# Topology


@pytest.fixture
def city_mesh() -> MeshState:
    """ALICE in Paris hears BOB in Versailles (neighbor, 3 h ago); CAROL in Lyon is heard by GW1
    directly (now); DAVE (no position) traceroutes through ALICE (30 min ago)."""
    state = MeshState()
    for node, where in ((ALICE, PARIS), (BOB, VERSAILLES), (CAROL, LYON)):
        state.apply(packet(node, position(node, where)), T0)
    state.apply(packet(ALICE, NeighborsObs(ALICE, ((BOB, 4.0),), None)), T0)
    state.apply(packet(DAVE, TracerouteObs(DAVE, ALICE, ((DAVE, ALICE, 1.0),))), T0 + 9000)
    state.apply(packet(CAROL, gateway=GW1, hops=0, snr=-3.0, rssi=-101), T0 + 10800)
    return state


NOW = T0 + 10800


def ids(result: dict) -> tuple[list[str], list[tuple[str, str, str]]]:
    return (
        [node["id"] for node in result["nodes"]],
        sorted((link["from"], link["to"], link["source"]) for link in result["links"]),
    )


def test_topology_unfiltered_is_json_with_node_ids_and_iso_times(city_mesh: MeshState) -> None:
    result = json.loads(json.dumps(city_mesh.topology(NOW)))

    assert ids(result) == (
        ["!6a7e0001", "!a11ce001", "!b0b00002", "!ca201003", "!da7e0004"],
        [
            ("!b0b00002", "!a11ce001", "neighbor"),
            ("!ca201003", "!6a7e0001", "direct"),
            ("!da7e0004", "!a11ce001", "traceroute"),
        ],
    )
    carol_link = next(link for link in result["links"] if link["source"] == "direct")
    assert carol_link == {
        "from": "!ca201003",
        "to": "!6a7e0001",
        "source": "direct",
        "snr": -3.0,
        "rssi": -101,
        "first_seen": "2023-11-15T01:13:20+00:00",
        "last_seen": "2023-11-15T01:13:20+00:00",
        "count": 1,
    }
    alice = next(node for node in result["nodes"] if node["id"] == "!a11ce001")
    assert (alice["latitude"], alice["longitude"], alice["last_seen"]) == (
        *PARIS,
        "2023-11-15T00:43:20+00:00",  # named in the traceroute
    )


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(
            {"sources": ["neighbor"]},
            (["!a11ce001", "!b0b00002"], [("!b0b00002", "!a11ce001", "neighbor")]),
            id="one-source",
        ),
        pytest.param(
            {"sources": ["direct", "traceroute"]},
            (
                ["!6a7e0001", "!a11ce001", "!ca201003", "!da7e0004"],
                [("!ca201003", "!6a7e0001", "direct"), ("!da7e0004", "!a11ce001", "traceroute")],
            ),
            id="two-sources",
        ),
        pytest.param(
            {"max_age": 3600},
            (
                ["!6a7e0001", "!a11ce001", "!ca201003", "!da7e0004"],
                [("!ca201003", "!6a7e0001", "direct"), ("!da7e0004", "!a11ce001", "traceroute")],
            ),
            id="last-hour",
        ),
        pytest.param(
            {"around": ALICE},
            (
                ["!a11ce001", "!b0b00002", "!da7e0004"],
                [("!b0b00002", "!a11ce001", "neighbor"), ("!da7e0004", "!a11ce001", "traceroute")],
            ),
            id="around-alice",
        ),
        pytest.param(
            {"around": BOB, "sources": ["traceroute"]},
            (["!b0b00002"], []),
            id="around-bob-traceroute",
        ),
        pytest.param(
            {"within": (*PARIS, 25.0)},
            (["!a11ce001", "!b0b00002"], [("!b0b00002", "!a11ce001", "neighbor")]),
            id="25km-of-paris",
        ),
        pytest.param({"within": (*PARIS, 10.0)}, (["!a11ce001"], []), id="10km-of-paris"),
        pytest.param(
            {"within": (*PARIS, 500.0)},
            (["!a11ce001", "!b0b00002", "!ca201003"], [("!b0b00002", "!a11ce001", "neighbor")]),
            id="500km-of-paris",
        ),
        pytest.param({"around": 0x12345678}, ([], []), id="around-unknown"),
    ],
)
def test_topology_filters(city_mesh: MeshState, filters: dict, expected: tuple) -> None:
    result = city_mesh.topology(NOW, **filters)

    assert ids(json.loads(json.dumps(result))) == expected


# Storage


def test_storage_round_trip_through_json(city_mesh: MeshState) -> None:
    city_mesh.apply(packet(ALICE, TelemetryObs(ALICE, "device", {"battery_level": 101.0})), NOW)
    city_mesh.apply(packet(ALICE, NodeInfoObs(ALICE, "Alice ☕", "A☕", "RAK4631", "CLIENT")), NOW)
    stored = city_mesh.to_storage()

    restored = MeshState.from_storage(json.loads(json.dumps(stored)))

    assert restored.to_storage() == stored
    assert restored.topology(NOW) == city_mesh.topology(NOW)
    assert restored.count_links_by_source() == city_mesh.count_links_by_source()
    assert restored.nodes[ALICE].telemetry == {"battery_level": 101.0}
    assert restored.nodes[ALICE].name == "Alice ☕"
    assert restored.drain() == (set(), [], False)
    assert_consistent(restored)


def test_storage_keeps_the_eviction_order() -> None:
    state = MeshState(max_nodes=4)
    for index, node in enumerate((ALICE, BOB, CAROL, DAVE)):
        state.apply(packet(node), T0 + index)
    state.apply(packet(ALICE), T0 + 10)  # ALICE is now the most recent; BOB the oldest

    restored = MeshState.from_storage(json.loads(json.dumps(state.to_storage())), max_nodes=4)
    restored.apply(packet(GW1), T0 + 20)

    assert list(restored.nodes) == [CAROL, DAVE, ALICE, GW1]


def test_storage_larger_than_the_caps_keeps_the_most_recent() -> None:
    state = MeshState()
    for index in range(30):
        state.apply(
            packet(0x100 + index, NeighborsObs(0x100 + index, ((0x200 + index, 1.0),), None)),
            T0 + index,
        )

    restored = MeshState.from_storage(state.to_storage(), max_nodes=10, max_links=3)

    assert sorted(restored.nodes) == sorted(
        [0x100 + i for i in range(25, 30)] + [0x200 + i for i in range(25, 30)]
    )
    assert len(restored.links) == 3
    assert_consistent(restored)


def stored_sample() -> dict:
    state = MeshState()
    state.apply(packet(ALICE, position(ALICE, PARIS), gateway=GW1, hops=0, snr=2.0, rssi=-70), T0)
    state.apply(packet(BOB, NeighborsObs(BOB, ((ALICE, 3.0),), None)), T0)
    state.apply(packet(BOB, TelemetryObs(BOB, "device", {"voltage": 3.7})), T0)
    return state.to_storage()


def corrupt(change) -> dict:
    data = copy.deepcopy(stored_sample())
    change(data)
    return data


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(None, id="none"),
        pytest.param([], id="list"),
        pytest.param("state", id="string"),
        pytest.param({}, id="empty"),
        pytest.param({"format": 2, "nodes": [], "links": []}, id="future-format"),
        pytest.param({"format": "1"}, id="format-as-text"),
        pytest.param({"format": 1, "nodes": 5, "links": 7}, id="numbers-for-lists"),
        pytest.param({"format": 1, "nodes": None, "links": None}, id="nulls-for-lists"),
        pytest.param({"format": 1, "nodes": {"a": 1}, "links": "abc"}, id="dict-and-text"),
        pytest.param({"format": 1, "nodes": [None, 1, "x", [], {}]}, id="junk-nodes"),
        pytest.param(
            {"format": 1, "nodes": [{"id": "!00000000", "first_seen": 1, "last_seen": 1}]},
            id="node-zero",
        ),
        pytest.param(
            {"format": 1, "nodes": [{"id": 12, "first_seen": 1, "last_seen": 1}]}, id="id-number"
        ),
        pytest.param(
            {"format": 1, "nodes": [{"id": "!0000000a", "first_seen": "x", "last_seen": 1}]},
            id="first-seen-text",
        ),
        pytest.param(
            {
                "format": 1,
                "nodes": [{"id": "!0000000a", "first_seen": 1, "last_seen": float("inf")}],
            },
            id="last-seen-inf",
        ),
        pytest.param(
            {"format": 1, "nodes": [{"id": "!0000000a", "first_seen": 1, "last_seen": 1e300}]},
            id="last-seen-far-future",
        ),
        pytest.param(corrupt(lambda d: d["nodes"].pop()), id="truncated-nodes"),
        pytest.param(corrupt(lambda d: d["links"][0].pop()), id="truncated-link"),
        pytest.param(corrupt(lambda d: d["nodes"][0].pop("last_seen")), id="node-missing-key"),
        pytest.param(
            corrupt(
                lambda d: d["nodes"][0].update(
                    latitude="north",
                    longitude=[2],
                    last_heard="yesterday",
                    hops_away="two",
                    snr="good",
                    rssi=1.5,
                    altitude=None,
                    long_name=42,
                    telemetry=[1, 2],
                    position_at=float("nan"),
                )
            ),
            id="wrong-typed-fields",
        ),
        pytest.param(
            corrupt(lambda d: d["nodes"][0].update(latitude=123.0, longitude=500.0)),
            id="impossible-position",
        ),
        pytest.param(
            corrupt(lambda d: d["nodes"][1].update(telemetry={"voltage": "3.7", "x": None})),
            id="telemetry-values-wrong",
        ),
        pytest.param(
            corrupt(
                lambda d: d["links"][0].__setitem__(slice(None), ["a", "b", "c", 1, 2, 3, 4, 5])
            ),
            id="link-wrong-types",
        ),
        pytest.param(
            corrupt(lambda d: d["links"][0].__setitem__(2, "carrier-pigeon")), id="link-source"
        ),
        pytest.param(
            corrupt(lambda d: d["links"][0].__setitem__(3, float("inf"))), id="link-first-inf"
        ),
        pytest.param(corrupt(lambda d: d["links"][0].__setitem__(5, "loud")), id="link-snr-text"),
        pytest.param(corrupt(lambda d: d["links"].append({"a": 1})), id="link-as-dict"),
        pytest.param(corrupt(lambda d: d["links"].append("abcdefgh")), id="link-as-8-chars"),
        pytest.param(
            corrupt(lambda d: d["links"].append([1, 2, "direct", 1, 2, None, None, 1])),
            id="link-to-unknown-nodes",
        ),
        pytest.param(
            corrupt(lambda d: d["links"].append([float("inf"), 2, "direct", 1, 2, None, None, 1])),
            id="link-endpoint-inf",
        ),
    ],
)
def test_from_storage_on_damaged_data_gives_a_usable_state(data: object) -> None:
    state = MeshState.from_storage(data)

    assert_consistent(state)
    use(state, T0 + 60)


def test_from_storage_keeps_what_is_valid_and_drops_wrong_typed_fields() -> None:
    data = stored_sample()
    alice = next(node for node in data["nodes"] if node["id"] == "!a11ce001")
    alice.update(hops_away="zero", long_name=["A"], latitude="north")

    state = MeshState.from_storage(data)

    restored = state.nodes[ALICE]
    assert (restored.hops_away, restored.long_name) == (None, None)
    # Half a position is no position.
    assert (restored.latitude, restored.longitude) == (None, None)
    assert (restored.snr, restored.rssi) == (2.0, -70)
    assert state.nodes[BOB].telemetry == {"voltage": pytest.approx(3.7)}
    assert len(state.links) == 2


def test_from_storage_after_a_save_cut_short() -> None:
    text = json.dumps(stored_sample())
    # The collector treats unreadable JSON as no data; a file cut at a JSON boundary still loads.
    cut = json.loads(text[: text.index('"links"')].rstrip(", ") + "}")

    state = MeshState.from_storage(cut)

    assert set(state.nodes) == {ALICE, BOB, GW1}
    assert state.links == {}
    use(state, T0 + 60)


def test_nan_in_storage_does_not_reach_the_json_output() -> None:
    data = stored_sample()
    data["links"][0][5] = float("nan")
    data["nodes"][0]["snr"] = float("nan")

    state = MeshState.from_storage(json.loads(json.dumps(data)))

    text = json.dumps(state.topology(T0), allow_nan=False)
    assert "NaN" not in text
    assert math.isfinite(state.neighbor_summary(ALICE)[1])


def test_a_save_off_the_event_loop_survives_a_mesh_that_keeps_changing() -> None:
    # The mesh is encoded in the executor while the event loop keeps applying packets: the
    # snapshot must never fail half-way ("dictionary changed size during iteration").
    state = MeshState(max_nodes=400, max_links=800)
    failures: list[BaseException] = []
    stop = threading.Event()

    def save_repeatedly() -> None:
        while not stop.is_set():
            try:
                json.dumps(state.to_storage())
            except BaseException as err:
                failures.append(err)
                return

    interval = sys.getswitchinterval()
    # Switch threads as often as the interpreter allows: a race shows within milliseconds.
    sys.setswitchinterval(1e-6)
    saver = threading.Thread(target=save_repeatedly)
    saver.start()
    try:
        for index in range(20_000):
            sender, heard = 0x10000000 + index % 1000, 0x20000000 + index % 997
            state.apply(packet(sender, NeighborsObs(sender, ((heard, 1.0),), None)), T0 + index)
    finally:
        stop.set()
        saver.join()
        sys.setswitchinterval(interval)
    assert failures == []
