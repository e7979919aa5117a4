"""Run the demo: Mosquitto, a fake radio, a simulated mesh and storm, and Home Assistant.

Everything runs on this machine, without internet. Ctrl-C stops all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import sys

from homeassistant.config_entries import STORAGE_KEY, STORAGE_VERSION, STORAGE_VERSION_MINOR
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meshbot.const import (
    CONF_CHANNEL_KEYS,
    CONF_MAP_STRIKES,
    CONF_MESH_TOPICS,
    CONF_NODE_POLICY,
    CONF_RADIUS_KM,
    CONF_TRACK_POSITIONS,
    DOMAIN,
    POLICY_ALL,
)
from tests.support.fake_node import FakeNode
from tests.support.mosquitto import MosquittoBroker, wait_for_port

from .simulation import MeshSimulation, StormSimulation, publisher

ROOT = Path(__file__).resolve().parent.parent
HOME = (46.5197, 6.6323)
CONFIGURATION = """\
homeassistant:
  name: meshbot demo
  latitude: {latitude}
  longitude: {longitude}
  elevation: 400
  unit_system: metric
  time_zone: Europe/Zurich
  country: CH
http:
  server_host: 127.0.0.1
  server_port: {port}
frontend:
config:
history:
logbook:
automation:
script:
person:
zone:
map:
logger:
  default: warning
  logs:
    custom_components.meshbot: info
"""


USERNAME = "demo"
PASSWORD = "meshbot-demo"


async def onboard(base: str) -> None:
    """Finish Home Assistant's onboarding with the demo user, unless it is done already."""
    import aiohttp  # noqa: PLC0415

    client_id = f"{base}/"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/api/onboarding") as response:
            # Once onboarding is over, Home Assistant no longer serves this view.
            if response.status != 200:
                return
            steps = {step["step"]: step["done"] for step in await response.json()}
        if steps.get("user", True):
            return
        user = {
            "client_id": client_id,
            "name": "Demo",
            "username": USERNAME,
            "password": PASSWORD,
            "language": "en",
        }
        async with session.post(f"{base}/api/onboarding/users", json=user) as response:
            code = (await response.json())["auth_code"]
        token_request = {"grant_type": "authorization_code", "code": code, "client_id": client_id}
        async with session.post(f"{base}/auth/token", data=token_request) as response:
            token = (await response.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for step, body in (
            ("core_config", {}),
            ("analytics", {}),
            ("integration", {"client_id": client_id, "redirect_uri": f"{base}/?auth_callback=1"}),
        ):
            async with session.post(
                f"{base}/api/onboarding/{step}", json=body, headers=headers
            ) as response:
                response.raise_for_status()


def prepare(directory: Path, port: int, broker: MosquittoBroker, radio: FakeNode) -> None:
    """Write a Home Assistant config with a meshbot entry pointing at the simulators."""
    (directory / "custom_components").mkdir(parents=True, exist_ok=True)
    link = directory / "custom_components" / DOMAIN
    if not link.exists():
        link.symlink_to(ROOT / "custom_components" / DOMAIN, target_is_directory=True)
    (directory / "configuration.yaml").write_text(
        CONFIGURATION.format(latitude=HOME[0], longitude=HOME[1], port=port)
    )
    broker_section = {"host": "127.0.0.1", "port": broker.port, "tls": False, "verify_tls": True}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="meshbot demo",
        data={
            "radio": {"connection": "tcp", "host": "127.0.0.1", "port": radio.port},
            "mesh": broker_section,
            "lightning": {**broker_section, "location_mode": "home"},
        },
        options={
            CONF_MESH_TOPICS: ["msh/EU_868"],
            CONF_CHANNEL_KEYS: {"LongFast": "AQ=="},
            CONF_RADIUS_KM: 100.0,
            CONF_NODE_POLICY: POLICY_ALL,
            CONF_TRACK_POSITIONS: True,
            CONF_MAP_STRIKES: 30,
        },
    )
    storage = directory / ".storage"
    storage.mkdir(exist_ok=True)
    (storage / STORAGE_KEY).write_text(
        json.dumps(
            {
                "version": STORAGE_VERSION,
                "minor_version": STORAGE_VERSION_MINOR,
                "key": STORAGE_KEY,
                "data": {"entries": [entry.as_dict()]},
            },
            default=str,
        )
    )


async def main(args: argparse.Namespace, directory: Path) -> int:
    """Start everything, wait for Ctrl-C, stop everything."""
    broker = MosquittoBroker().start()
    radio = FakeNode(node_num=0x4D42BA5E, other_nodes=0)
    await radio.start_tcp()
    mesh = MeshSimulation(HOME, radio)
    storm = StormSimulation(HOME)
    mesh_link, mesh_session = await publisher(broker.port, "demo-mesh")
    storm_link, storm_session = await publisher(broker.port, "demo-storm")
    tasks = [
        asyncio.create_task(mesh.run(mesh_link)),
        asyncio.create_task(storm.run(storm_link)),
        mesh_session,
        storm_session,
    ]
    await asyncio.to_thread(prepare, directory, args.port, broker, radio)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    hass = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "homeassistant", "--config", str(directory), "--skip-pip", env=env
    )
    try:
        await asyncio.to_thread(wait_for_port, args.port, 180)
        await onboard(f"http://127.0.0.1:{args.port}")
        print(
            f"\nmeshbot demo: open http://127.0.0.1:{args.port}\n"
            f"  Log in as {USERNAME} with the password {PASSWORD}.\n"
            "  meshbot is already set up: Settings > Devices & services > meshbot.\n"
            f"  Simulated: 50 mesh nodes on MQTT (broker 127.0.0.1:{broker.port}), a radio at"
            f" 127.0.0.1:{radio.port}, a storm walking in from 70 km west.\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait(
            (waiter, asyncio.create_task(hass.wait())), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        if hass.returncode is None:
            hass.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hass.wait(), 30)
            if hass.returncode is None:
                hass.kill()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await radio.stop()
        broker.close()
    return 0


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--config", default=str(ROOT / "demo-config"), help="Home Assistant config dir"
    )
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant's HTTP port")
    parser.add_argument("--fresh", action="store_true", help="start from an empty config dir")
    return parser.parse_args()


def run() -> int:
    """Prepare the config dir, then run the demo."""
    args = parse_args()
    directory = Path(args.config).resolve()
    if args.fresh and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return asyncio.run(main(args, directory))


if __name__ == "__main__":
    sys.exit(run())
