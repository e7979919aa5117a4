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
from types import MappingProxyType
from typing import Any

from homeassistant.components.onboarding import STORAGE_VERSION as ONBOARDING_STORAGE_VERSION
from homeassistant.config_entries import (
    SOURCE_USER,
    STORAGE_KEY,
    STORAGE_VERSION,
    STORAGE_VERSION_MINOR,
    ConfigEntry,
)

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
from meshbot_dev.fake_node import FakeNode
from meshbot_dev.mosquitto import MosquittoBroker, free_port

from .simulation import MeshSimulation, StormSimulation, publisher

try:
    # From 2026.10 Home Assistant keeps its HTTP settings in storage: YAML is imported once, as a
    # trial that asks to be confirmed and reverts after 5 minutes, and ignored afterwards.
    from homeassistant.components.http import config as http_storage
except ImportError:
    http_storage = None

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
{http}frontend:
config:
history:
logbook:
automation:
script:
person:
zone:
map:
lovelace:
  dashboards:
    {dashboard_url}:
      mode: yaml
      filename: {dashboard_file}
      title: meshbot
      icon: mdi:radio-tower
      show_in_sidebar: true
logger:
  default: warning
  logs:
    custom_components.meshbot: info
"""


USERNAME = "demo"
PASSWORD = "meshbot-demo"
DASHBOARD = ROOT / "dashboards" / "meshbot.yaml"
DASHBOARD_URL = "meshbot-demo"
ONBOARDING_KEY = "onboarding"
# Every onboarding step but the user: the demo creates its user over HTTP, and the other steps
# would set up integrations (met, radio_browser, google_translate) whose packages are missing.
ONBOARDING_STEPS_SKIPPED = ("core_config", "analytics", "integration")


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
        # The other steps are marked done in the storage (skip_onboarding_steps), so creating the
        # user completes onboarding.
        async with session.post(f"{base}/api/onboarding/users", json=user) as response:
            response.raise_for_status()


def skip_onboarding_steps(storage: Path) -> None:
    """Mark every onboarding step but the user's as done, before Home Assistant starts."""
    path = storage / ONBOARDING_KEY
    done: list[str] = []
    if path.exists():
        done = json.loads(path.read_text())["data"]["done"]
    done += [step for step in ONBOARDING_STEPS_SKIPPED if step not in done]
    path.write_text(
        json.dumps(
            {
                "version": ONBOARDING_STORAGE_VERSION,
                "minor_version": 1,
                "key": ONBOARDING_KEY,
                "data": {"done": done},
            }
        )
    )


def write_http_settings(storage: Path, port: int) -> None:
    """Store this run's address as the confirmed HTTP settings (Home Assistant 2026.10 on)."""
    assert http_storage is not None
    settings = http_storage.HTTP_STORAGE_SCHEMA({"server_host": ["127.0.0.1"], "server_port": port})
    (storage / http_storage.STORAGE_KEY).write_text(
        json.dumps(
            {
                "version": http_storage.STORAGE_VERSION,
                "minor_version": http_storage.STORAGE_MINOR_VERSION,
                "key": http_storage.STORAGE_KEY,
                "data": {
                    "stable": {
                        **settings,
                        "created_at": None,
                        "error": None,
                        "error_message": None,
                    },
                    "pending": None,
                    "yaml_migration_done": True,
                },
            }
        )
    )


def stored_entries(storage: Path) -> list[dict[str, Any]]:
    """Return the config entries of an earlier run, if any."""
    path = storage / STORAGE_KEY
    return json.loads(path.read_text())["data"]["entries"] if path.exists() else []


def prepare(directory: Path, port: int, broker: MosquittoBroker, radio: FakeNode) -> None:
    """Write a Home Assistant config with a meshbot entry pointing at the simulators."""
    (directory / "custom_components").mkdir(parents=True, exist_ok=True)
    link = directory / "custom_components" / DOMAIN
    if not link.exists():
        link.symlink_to(ROOT / "custom_components" / DOMAIN, target_is_directory=True)
    (directory / "configuration.yaml").write_text(
        CONFIGURATION.format(
            latitude=HOME[0],
            longitude=HOME[1],
            http=""
            if http_storage
            else f"http:\n  server_host: 127.0.0.1\n  server_port: {port}\n",
            dashboard_url=DASHBOARD_URL,
            # A JSON string is a YAML string, quoted whatever the path holds.
            dashboard_file=json.dumps(str(DASHBOARD)),
        )
    )
    storage = directory / ".storage"
    storage.mkdir(exist_ok=True)
    broker_section = {"host": "127.0.0.1", "port": broker.port, "tls": False, "verify_tls": True}
    # Entries Home Assistant made itself (backup) stay; meshbot's is rewritten for this run's
    # ports under the same id, which keeps the entity ids (the dashboard's) and the stored mesh:
    # a new id would register every entity again with a `_2` suffix.
    stored = stored_entries(storage)
    others = [entry for entry in stored if entry["domain"] != DOMAIN]
    earlier = [entry["entry_id"] for entry in stored if entry["domain"] == DOMAIN]
    # A plain ConfigEntry, not the test harness's: the demo runs on a Home Assistant newer than
    # the newest one the harness pins (script/demo --ha newest).
    entry = ConfigEntry(
        domain=DOMAIN,
        entry_id=earlier[0] if earlier else None,
        title="meshbot demo",
        source=SOURCE_USER,
        version=1,
        minor_version=1,
        unique_id=None,
        discovery_keys=MappingProxyType({}),
        subentries_data=None,
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
    skip_onboarding_steps(storage)
    if http_storage is not None:
        write_http_settings(storage, port)
    (storage / STORAGE_KEY).write_text(
        json.dumps(
            {
                "version": STORAGE_VERSION,
                "minor_version": STORAGE_VERSION_MINOR,
                "key": STORAGE_KEY,
                "data": {"entries": [*others, entry.as_dict()]},
            },
            default=str,
        )
    )


async def wait_until_serving(port: int) -> None:
    """Wait until something accepts connections on the port; cancellable, unlike a thread."""
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def start_home_assistant(directory: Path) -> asyncio.subprocess.Process:
    """Start Home Assistant on the prepared config dir."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "homeassistant", "--config", str(directory), "--skip-pip", env=env
    )


async def stop_home_assistant(hass: asyncio.subprocess.Process) -> None:
    """Stop Home Assistant, the hard way if it takes more than 30 s."""
    if hass.returncode is None:
        hass.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hass.wait(), 30)
    if hass.returncode is None:
        hass.kill()
        await hass.wait()


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the simulation tasks and wait for them."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def main(args: argparse.Namespace, directory: Path) -> int:
    """Start everything, wait for Ctrl-C (or SIGTERM), stop everything."""
    # Installed first, so that a stop during the start still cleans up what was started.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as cleanup:
        broker = MosquittoBroker().start()
        cleanup.callback(broker.close)
        radio = FakeNode(node_num=0x4D42BA5E, other_nodes=0)
        await radio.start_tcp()
        cleanup.push_async_callback(radio.stop)
        mesh = MeshSimulation(HOME, radio)
        storm = StormSimulation(HOME, args.storm_km)
        tasks: list[asyncio.Task[None]] = []
        cleanup.push_async_callback(cancel_all, tasks)
        mesh_link, mesh_session = await publisher(broker.port, "demo-mesh")
        storm_link, storm_session = await publisher(broker.port, "demo-storm")
        tasks += [
            asyncio.create_task(mesh.run(mesh_link)),
            asyncio.create_task(storm.run(storm_link)),
            mesh_session,
            storm_session,
        ]
        await asyncio.to_thread(prepare, directory, args.port, broker, radio)
        hass = await start_home_assistant(directory)
        cleanup.push_async_callback(stop_home_assistant, hass)
        stopping = asyncio.create_task(stop.wait())
        exited = asyncio.create_task(hass.wait())
        cleanup.push_async_callback(cancel_all, [stopping, exited])

        async def start_up() -> None:
            async with asyncio.timeout(180):
                await wait_until_serving(args.port)
            await onboard(f"http://127.0.0.1:{args.port}")

        ready = asyncio.create_task(start_up())
        cleanup.push_async_callback(cancel_all, [ready])
        await asyncio.wait((ready, stopping, exited), return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            ready.result()
            announce(args.port, broker, radio, args.storm_km)
            await asyncio.wait((stopping, exited), return_when=asyncio.FIRST_COMPLETED)
    # Home Assistant ending on its own is a failure; being told to stop is not.
    return 0 if stopping.done() else 1


def announce(port: int, broker: MosquittoBroker, radio: FakeNode, storm_km: float) -> None:
    """Tell how to use the demo."""
    print(
        f"\nmeshbot demo: open http://127.0.0.1:{port}\n"
        f"  Log in as {USERNAME} with the password {PASSWORD}.\n"
        "  meshbot is already set up: Settings > Devices & services > meshbot.\n"
        f"  The example dashboard ({DASHBOARD.relative_to(ROOT)}) is 'meshbot' in the"
        f" sidebar: http://127.0.0.1:{port}/{DASHBOARD_URL}\n"
        f"  Simulated: 50 mesh nodes on MQTT (broker 127.0.0.1:{broker.port}), a radio at"
        f" 127.0.0.1:{radio.port}, a storm walking in from {storm_km:g} km west.\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--config", default=str(ROOT / "demo-config"), help="Home Assistant config dir"
    )
    parser.add_argument(
        "--port", type=int, default=8123, help="Home Assistant's HTTP port; 0 picks a free one"
    )
    parser.add_argument("--fresh", action="store_true", help="start from an empty config dir")
    parser.add_argument(
        "--storm-km",
        type=float,
        default=70.0,
        help="how far west the storm starts; it walks in at 1 km/min",
    )
    return parser.parse_args()


def run() -> int:
    """Prepare the config dir, then run the demo."""
    args = parse_args()
    directory = Path(args.config).resolve()
    if args.fresh and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if args.port == 0:
        # The URL printed once the demo is ready tells which (the browser test reads it).
        args.port = free_port()
    return asyncio.run(main(args, directory))


if __name__ == "__main__":
    sys.exit(run())
