"""Simulated traffic: a mesh of nodes around home (radio and MQTT) and a storm walking in."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import json
import math
import random
import time

from meshtastic.protobuf import mesh_pb2, portnums_pb2, telemetry_pb2

from custom_components.meshbot.geo.sphere import EARTH_RADIUS_KM
from custom_components.meshbot.lightning.geohash import encode
from custom_components.meshbot.links.mqtt import MqttLink, MqttSettings
from meshbot_dev.fake_node import FakeNode
from meshbot_dev.mesh_traffic import MeshTraffic

NAMES = (
    "Harbour",
    "Hilltop",
    "Lighthouse",
    "Bakery",
    "Church Tower",
    "Water Tower",
    "Old Mill",
    "Station",
    "Library",
    "Ridge",
    "Orchard",
    "Bridge",
    "Quarry",
    "Campsite",
    "Marina",
    "School",
    "Windmill",
    "Farm",
    "Vineyard",
    "Castle",
    "Harvest",
    "Beacon",
    "Summit",
    "Valley",
    "Forest",
    "Meadow",
    "Pier",
    "Dockside",
    "Garden",
    "Fire Hall",
    "Clinic",
    "Museum",
    "Depot",
    "Cabin",
    "Chapel",
    "Tunnel",
    "Pass",
    "Crossing",
    "Lake",
    "Spring",
    "Barn",
    "Lodge",
    "Outpost",
    "Canal",
    "Ferry",
    "Stadium",
    "Market",
    "Square",
    "Abbey",
    "Observatory",
)


def offset(lat: float, lon: float, distance_km: float, bearing: float) -> tuple[float, float]:
    """Return the point at a distance and bearing from another."""
    delta = distance_km / EARTH_RADIUS_KM
    theta, phi1, lambda1 = map(math.radians, (bearing, lat, lon))
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    return math.degrees(phi2), (math.degrees(lambda2) + 540) % 360 - 180


@dataclass
class SimNode:
    """One simulated node: where it is, whether it moves, who it hears."""

    num: int
    name: str
    latitude: float
    longitude: float
    moving: bool
    heading: float


class MeshSimulation:
    """About 50 nodes around home, some moving, reporting over MQTT and over the fake radio."""

    def __init__(self, home: tuple[float, float], radio: FakeNode, count: int = 50) -> None:
        """Place the nodes."""
        self.rng = random.Random(7)
        self.radio = radio
        self.traffic = MeshTraffic(root="msh/EU_868")
        self.nodes = [
            SimNode(
                0x4D420000 + index,
                NAMES[index % len(NAMES)],
                *offset(*home, self.rng.uniform(0.5, 15.0), self.rng.uniform(0, 360)),
                moving=index % 6 == 0,
                heading=self.rng.uniform(0, 360),
            )
            for index in range(count)
        ]
        self.gateways = [node.num for node in self.nodes[:5]]
        self.neighbors = {
            node.num: self.rng.sample([other.num for other in self.nodes if other is not node], 3)
            for node in self.nodes
        }
        radio.other_nodes = [node.num for node in self.nodes[:20]]

    def _envelopes(self, node: SimNode) -> list[tuple[str, bytes]]:
        traffic, rng = self.traffic, self.rng
        gateway = rng.choice([gw for gw in self.gateways if gw != node.num])
        kw = {
            "gateway": gateway,
            "hop_limit": rng.choice((3, 3, 2)),
            "snr": round(rng.uniform(-12, 9), 2),
        }
        roll = rng.random()
        if roll < 0.35:
            envelope = traffic.position(node.num, node.latitude, node.longitude, precision=32, **kw)
        elif roll < 0.6:
            envelope = traffic.telemetry(
                node.num, rng.randint(20, 100), 3.6 + rng.random() / 2, **kw
            )
        elif roll < 0.75:
            envelope = traffic.node_info(node.num, node.name, node.name[:4].upper(), **kw)
        elif roll < 0.9:
            envelope = traffic.neighbors(
                node.num,
                [(num, round(rng.uniform(-8, 10), 2)) for num in self.neighbors[node.num]],
                **kw,
            )
        else:
            relays = rng.sample(self.gateways, 2)
            envelope = traffic.traceroute_reply(
                node.num, relays[0], [relays[1]], [4.0, 6.5], [relays[1]], [5.0, 3.5], **kw
            )
        return [(envelope.topic, envelope.payload)]

    def _radio_packet(self, node: SimNode) -> mesh_pb2.FromRadio:
        rng = self.rng
        if rng.random() < 0.1:
            port, payload = (
                portnums_pb2.TEXT_MESSAGE_APP,
                rng.choice(
                    ("Anyone on?", "Storm coming from the west", "Battery swap done", "73!")
                ).encode(),
            )
        elif rng.random() < 0.5:
            position = mesh_pb2.Position(
                latitude_i=round(node.latitude * 1e7), longitude_i=round(node.longitude * 1e7)
            )
            port, payload = portnums_pb2.POSITION_APP, position.SerializeToString()
        else:
            metrics = telemetry_pb2.Telemetry(
                device_metrics=telemetry_pb2.DeviceMetrics(
                    battery_level=rng.randint(30, 100), voltage=3.9, channel_utilization=8.5
                )
            )
            port, payload = portnums_pb2.TELEMETRY_APP, metrics.SerializeToString()
        packet = mesh_pb2.MeshPacket(
            to=0xFFFFFFFF,
            id=rng.randint(1, 0xFFFFFFFF),
            hop_start=3,
            hop_limit=3,
            rx_snr=round(rng.uniform(-5, 9), 2),
            rx_rssi=rng.randint(-110, -60),
            decoded=mesh_pb2.Data(portnum=port, payload=payload),
        )
        setattr(packet, "from", node.num)
        return mesh_pb2.FromRadio(packet=packet)

    async def run(self, link: MqttLink) -> None:
        """Publish a few messages a second, forever; move the moving nodes."""
        while True:
            node = self.rng.choice(self.nodes)
            if node.moving:
                node.latitude, node.longitude = offset(
                    node.latitude, node.longitude, 0.05, node.heading
                )
            if link.connected:
                for topic, payload in self._envelopes(node):
                    link.publish(topic, payload)
            if node.num in self.radio.other_nodes and self.radio.client_count:
                self.radio.broadcast(self._radio_packet(node))
            await asyncio.sleep(0.25)


class StormSimulation:
    """A storm cell walking towards home at 1 km/min, a few strikes a second."""

    def __init__(self, home: tuple[float, float], start_km: float = 70.0) -> None:
        """Start the cell `start_km` west of home."""
        self.home = home
        self.start_km = start_km
        self.rng = random.Random(11)
        self.started = time.time()

    async def run(self, link: MqttLink) -> None:
        """Publish strikes on the relay's topic shape, forever."""
        while True:
            minutes = (time.time() - self.started) / 60
            distance = max(2.0, self.start_km - minutes)
            centre = offset(*self.home, distance, 270.0)
            for _ in range(self.rng.randint(1, 4)):
                lat, lon = offset(*centre, self.rng.uniform(0, 6), self.rng.uniform(0, 360))
                payload = {"lat": lat, "lon": lon, "time": time.time_ns(), "status": 0, "region": 1}
                if link.connected:
                    link.publish(
                        "blitzortung/1.1/" + "/".join(encode(lat, lon, 12)),
                        json.dumps(payload).encode(),
                    )
            await asyncio.sleep(1.0)


async def publisher(port: int, client_id: str) -> tuple[MqttLink, asyncio.Task[None]]:
    """Return a connected publishing link to the demo broker and the task serving it."""
    link = MqttLink(MqttSettings("127.0.0.1", port, client_id=client_id), lambda _t, _p: None)
    ready = asyncio.Event()
    session = asyncio.get_running_loop().create_task(link.session(ready.set))
    await asyncio.wait_for(ready.wait(), 10)
    return link, session
