"""Startup benchmark: how long meshbot holds Home Assistant, whatever its peers are doing.

Run with `script/bench-startup`. Every figure is measured in this run, against real Mosquitto
brokers, fake Meshtastic nodes over TCP and misbehaving TCP peers:

A. `hass.config_entries.async_setup` of a meshbot entry inside an in-process Home Assistant,
   p50 and p95 over `--runs` runs per scenario, each run unloaded and checked for leftovers;
   beside it, in the silent and hanging scenarios, a naive blocking paho-mqtt setup as a
   reference for what an integration that waits on the network costs.
B. Home Assistant booted with meshbot and an entry, against the same Home Assistant without any
   custom integration (no custom_components dir at all), alternating in the same run: the
   ratio of medians of Home Assistant's own "initialized in" time, and of the time from launch
   to `started`.
C. The import time of the integration (`python -X importtime`) after the modules a baseline
   Home Assistant has loaded: meshbot's own modules, its dependencies, and the Home Assistant
   modules it makes load.
D. The baseline against itself plus a custom integration that does nothing (one entry, no
   platforms), alternating: Home Assistant's own charge for any custom integration, and
   meshbot's "initialized in" against that, the part meshbot's own code is answerable for.

Targets: setup p95 <= 50 ms, both startup ratios <= 1.05, and the reference must show a delay of
at least 1 s in the silent and hanging scenarios (proof that those scenarios really hold a naive
integration). A missed target is printed and recorded; only a crash exits non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
import contextlib
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
import hashlib
from importlib import metadata
import json
import logging
import os
from pathlib import Path
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from homeassistant import loader
from homeassistant.config_entries import (
    STORAGE_KEY,
    STORAGE_VERSION,
    STORAGE_VERSION_MINOR,
    ConfigEntry,
    ConfigEntryState,
)
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from pytest_homeassistant_custom_component.common import async_test_home_assistant

# Imported before Home Assistant looks for custom integrations, so it finds this repository's
# custom_components and not one on a config dir put first on sys.path (as tests/conftest.py).
import custom_components.meshbot
from custom_components.meshbot.const import DEFAULT_MQTT_PORT, DEFAULT_RADIO_PORT, DOMAIN
from meshbot_dev.entries import broker_section, entry_for, radio_section
from meshbot_dev.fake_node import FakeNode
from meshbot_dev.mosquitto import (
    UNRESOLVABLE_HOST,
    HangingListener,
    MosquittoBroker,
    SilentListener,
    environment_ready,
    free_port,
    refused_port,
)

from .boot_hook import MODULES_ENV, OUTPUT_ENV
from .report import BenchError, git, percentile, write_json

REPO = Path(__file__).resolve().parent.parent
BOOT_HOOK = Path(__file__).resolve().parent / "boot_hook.py"
RESULTS = REPO / "bench" / "results" / "startup.json"
MESHBOT_DIR = str(Path(custom_components.meshbot.__file__).resolve().parent)

SCENARIOS = (
    "all_up",
    "broker_refusing",
    "broker_silent",
    "connect_hanging",
    "unresolvable_host",
    "radio_absent",
    "radio_silent",
)
# Links expected up once setup has settled: the sanity check that a scenario is what it says.
EXPECTED_UP = {
    "all_up": 3,
    "broker_refusing": 0,
    "broker_silent": 0,
    "connect_hanging": 0,
    "unresolvable_host": 0,
    "radio_absent": 2,
    "radio_silent": 2,
}
REFERENCE_SCENARIOS = ("broker_silent", "connect_hanging")

SETUP_P95_TARGET_MS = 50.0
IMPORT_TARGET_MS = 40.0
STARTUP_RATIO_TARGET = 1.05
# D's custom integration: one entry, no entity platforms, nothing imported.
IDLE_DOMAIN = "bench_idle"
IDLE_INTEGRATION = """\
async def async_setup_entry(hass, entry):
    return True


async def async_unload_entry(hass, entry):
    return True
"""
# Home Assistant sets up an entry only through its integration's config flow module.
IDLE_CONFIG_FLOW = f"""\
from homeassistant.config_entries import ConfigFlow


class IdleFlow(ConfigFlow, domain={IDLE_DOMAIN!r}):
    VERSION = 1
"""
IDLE_MANIFEST = {
    "domain": IDLE_DOMAIN,
    "name": "bench idle",
    "codeowners": [],
    "config_flow": True,
    "dependencies": [],
    "documentation": "https://example.invalid",
    "iot_class": "local_push",
    "requirements": [],
    "version": "0.1.0",
}
REFERENCE_MIN_S = 1.0
# The Blitzortung integration bounds its connect to 5 s; the reference does the same.
REFERENCE_BOUND_S = 5.0
BOOT_TIMEOUT_S = 120.0

CONFIGURATION_YAML = """\
homeassistant:
  name: meshbot bench
  latitude: 52.3731
  longitude: 4.8922
  elevation: 0
  unit_system: metric
  time_zone: Europe/Amsterdam
  country: NL
  currency: EUR
http:
  server_host: 127.0.0.1
  server_port: {http_port}
logger:
  default: warning
  logs:
    # For the "Home Assistant initialized in" line users compare.
    homeassistant.bootstrap: info
"""


# Peers


class NodeHost:
    """Fake Meshtastic nodes served from their own thread and loop, like radios on the LAN.

    Serving them from the measured loop would put their handshake work inside the timings.
    """

    def __init__(self) -> None:
        """Start the thread that runs the nodes' loop."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="bench fake nodes", daemon=True
        )
        self.thread.start()
        self.nodes: list[FakeNode] = []

    def start_node(self, answer_handshake: bool) -> FakeNode:
        """Start a node listening on 127.0.0.1; a silent one never answers want_config."""
        node = FakeNode()
        node.behaviour.answer_handshake = answer_handshake
        asyncio.run_coroutine_threadsafe(node.start_tcp(), self.loop).result(timeout=10)
        self.nodes.append(node)
        return node

    def close(self) -> None:
        """Stop every node and the thread."""
        for node in self.nodes:
            asyncio.run_coroutine_threadsafe(node.stop(), self.loop).result(timeout=10)
        self.nodes.clear()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Peers:
    """The live peers shared by every run: two brokers, an answering node and a silent one."""

    mesh_broker: MosquittoBroker
    lightning_broker: MosquittoBroker
    live_node: FakeNode
    silent_node: FakeNode


@contextlib.contextmanager
def running_peers() -> Iterator[Peers]:
    """Start the brokers and fake nodes; stop them all on the way out."""
    with ExitStack() as stack:
        mesh = MosquittoBroker().start()
        stack.callback(mesh.close)
        lightning = MosquittoBroker().start()
        stack.callback(lightning.close)
        nodes = NodeHost()
        stack.callback(nodes.close)
        yield Peers(
            mesh_broker=mesh,
            lightning_broker=lightning,
            live_node=nodes.start_node(answer_handshake=True),
            silent_node=nodes.start_node(answer_handshake=False),
        )


@dataclass
class Targets:
    """Where one run points its links, and where the blocking reference connects."""

    sections: dict[str, dict[str, Any]]
    reference: tuple[str, int] | None = None
    ports: set[int] = field(default_factory=set)


@contextlib.contextmanager
def scenario_targets(scenario: str, peers: Peers) -> Iterator[Targets]:
    """Yield fresh targets for one run of `scenario`.

    Fault listeners are made per run: connections a silent listener never accepts stay in its
    queue, and once the queue is full it would turn into a hanging listener unnoticed.
    """
    live_brokers = {
        "mesh": broker_section(peers.mesh_broker.port),
        "lightning": broker_section(peers.lightning_broker.port),
    }
    with ExitStack() as stack:
        if scenario == "all_up":
            targets = Targets({"radio": radio_section(peers.live_node.port), **live_brokers})
        elif scenario in ("broker_refusing", "radio_absent"):
            port = refused_port()
            radio = radio_section(port)
            brokers = (
                live_brokers
                if scenario == "radio_absent"
                else {"mesh": broker_section(port), "lightning": broker_section(port)}
            )
            targets = Targets({"radio": radio, **brokers}, ports={port})
        elif scenario in ("broker_silent", "connect_hanging"):
            listener = SilentListener() if scenario == "broker_silent" else HangingListener()
            stack.callback(listener.close)
            port = listener.port
            targets = Targets(
                {
                    "radio": radio_section(port),
                    "mesh": broker_section(port),
                    "lightning": broker_section(port),
                },
                reference=("127.0.0.1", port),
                ports={port},
            )
        elif scenario == "unresolvable_host":
            targets = Targets(
                {
                    "radio": radio_section(DEFAULT_RADIO_PORT, host=UNRESOLVABLE_HOST),
                    "mesh": broker_section(DEFAULT_MQTT_PORT, host=UNRESOLVABLE_HOST),
                    "lightning": broker_section(DEFAULT_MQTT_PORT, host=UNRESOLVABLE_HOST),
                }
            )
        elif scenario == "radio_silent":
            targets = Targets({"radio": radio_section(peers.silent_node.port), **live_brokers})
        else:
            raise BenchError(f"unknown scenario {scenario}")
        targets.ports |= {
            peers.mesh_broker.port,
            peers.lightning_broker.port,
            peers.live_node.port or 0,
            peers.silent_node.port or 0,
        }
        yield targets


# A. async_setup in an in-process Home Assistant


def meshbot_leftovers(hass: HomeAssistant, entry: ConfigEntry) -> list[str]:
    """Return what an unloaded entry left running: tasks, timers, entry tasks."""
    found: list[str] = []
    for task in asyncio.all_tasks(hass.loop):
        if task.done():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if task.get_name().startswith("meshbot") or filename.startswith(MESHBOT_DIR):
            found.append(f"task {task.get_name()}")
    # A timer names meshbot through its callback's owner (the activity refresh is a tracker
    # dataclass holding name="meshbot link activity") or through its arguments.
    for handle in getattr(hass.loop, "_scheduled", ()):
        callback = getattr(handle, "_callback", None)
        owner = getattr(callback, "__self__", None)
        text = f"{handle!r} {owner!r} {getattr(handle, '_args', ())!r}"
        if not handle.cancelled() and DOMAIN in text:
            found.append(f"timer {handle!r}")
    found += [f"entry task {task.get_name()}" for task in entry._tasks if not task.done()]
    found += [
        f"entry background task {task.get_name()}"
        for task in entry._background_tasks
        if not task.done()
    ]
    return found


def own_tcp_sockets() -> dict[int, int]:
    """Return the inode and remote port of every TCP socket this process holds open."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(int(link[8:-1]))
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as rows:
            next(rows)
            for line in rows:
                fields = line.split()
                if (inode := int(fields[9])) in inodes:
                    sockets[inode] = int(fields[2].rsplit(":", 1)[1], 16)
    return sockets


def links_up(entry: ConfigEntry) -> int:
    """Return how many of the entry's links are connected right now."""
    hub = entry.runtime_data
    return sum(link.supervisor.state.connected for link in hub.links.values())


async def wait_links(entry: ConfigEntry, expected: int, settle: float) -> int:
    """Let the links work for up to `settle` seconds; return early once `expected` are up."""
    deadline = time.monotonic() + settle
    while True:
        up = links_up(entry)
        if (expected and up >= expected) or time.monotonic() >= deadline:
            return up
        await asyncio.sleep(0.01)


def blocking_reference_setup(host: str, port: int) -> dict[str, Any]:
    """Set up the way naive integrations do: paho connect and CONNACK wait on the event loop.

    Called from a coroutine on Home Assistant's loop, so the loop is blocked for all of it.
    """
    client = paho.Client(CallbackAPIVersion.VERSION2)
    connected = False

    def on_connect(*_args: Any) -> None:
        nonlocal connected
        connected = True

    client.on_connect = on_connect
    start = time.perf_counter()
    outcome = "no CONNACK"
    try:
        client.connect(host, port)
        deadline = time.monotonic() + REFERENCE_BOUND_S
        while not connected and (remaining := deadline - time.monotonic()) > 0:
            client.loop(timeout=min(1.0, remaining))
        if connected:
            outcome = "connected"
    except OSError as err:
        outcome = f"{type(err).__name__}: {err}"
    finally:
        duration = time.perf_counter() - start
        if (sock := client.socket()) is not None:
            sock.close()
    return {"duration_s": duration, "outcome": outcome}


async def reference_setup_on_loop(host: str, port: int) -> dict[str, Any]:
    """Run the blocking reference as a setup coroutine would: on the event loop itself."""
    return blocking_reference_setup(host, port)


class LogCollector(logging.Handler):
    """Keep the in-process warnings and errors: meshbot's, and other errors."""

    def __init__(self) -> None:
        """Collect from WARNING up."""
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(levelname)s [%(name)s] %(message)s"))
        self.meshbot: list[str] = []
        self.other_errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Sort one record."""
        text = self.format(record)
        if "we found a custom integration" in text.lower():
            # Home Assistant warns of every custom integration it loads.
            return
        if DOMAIN in text:
            self.meshbot.append(text)
        elif record.levelno >= logging.ERROR:
            self.other_errors.append(text)


@dataclass
class SetupResult:
    """Setup timings of one scenario."""

    setup_ms: list[float]
    unload_ms: list[float]
    links_up: list[int]
    leftovers: list[str]
    reference: list[dict[str, Any]]
    meshbot_log: list[str] = field(default_factory=list)
    other_errors: list[str] = field(default_factory=list)


async def measure_setup(
    scenario: str, peers: Peers, runs: int, reference_runs: int, settle: float
) -> SetupResult:
    """Time meshbot's entry setup `runs` times in a fresh Home Assistant, unloading each time."""
    result = SetupResult([], [], [], [], [])
    collector = LogCollector()
    logging.getLogger().addHandler(collector)
    try:
        await setup_runs(scenario, peers, runs, reference_runs, settle, result)
    finally:
        logging.getLogger().removeHandler(collector)
    result.meshbot_log = collector.meshbot
    result.other_errors = collector.other_errors
    return result


async def setup_runs(
    scenario: str,
    peers: Peers,
    runs: int,
    reference_runs: int,
    settle: float,
    result: SetupResult,
) -> None:
    """Run the timed setups, then the blocking reference where the scenario has one."""
    with tempfile.TemporaryDirectory(prefix="meshbot-bench-hass-") as config_dir:
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            # What the harness's enable_custom_integrations fixture does.
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            try:
                for _ in range(runs):
                    with scenario_targets(scenario, peers) as targets:
                        await one_setup(hass, scenario, targets, settle, result)
                if scenario in REFERENCE_SCENARIOS:
                    for _ in range(reference_runs):
                        with scenario_targets(scenario, peers) as targets:
                            assert targets.reference is not None
                            result.reference.append(
                                await hass.async_create_task(
                                    reference_setup_on_loop(*targets.reference)
                                )
                            )
            finally:
                await hass.async_stop(force=True)


async def one_setup(
    hass: HomeAssistant, scenario: str, targets: Targets, settle: float, result: SetupResult
) -> None:
    """Add an entry, time its setup, let the links work, then unload and check leftovers."""
    entry = entry_for(**targets.sections)
    entry.add_to_hass(hass)
    sockets_before = set(own_tcp_sockets())
    start = time.perf_counter()
    ok = await hass.config_entries.async_setup(entry.entry_id)
    result.setup_ms.append((time.perf_counter() - start) * 1000)
    if not ok or entry.state is not ConfigEntryState.LOADED:
        raise BenchError(f"{scenario}: meshbot did not load ({entry.state}, {entry.reason})")
    result.links_up.append(await wait_links(entry, EXPECTED_UP[scenario], settle))
    start = time.perf_counter()
    unloaded = await hass.config_entries.async_unload(entry.entry_id)
    result.unload_ms.append((time.perf_counter() - start) * 1000)
    if not unloaded:
        raise BenchError(f"{scenario}: meshbot did not unload ({entry.state})")
    result.leftovers += meshbot_leftovers(hass, entry)
    result.leftovers += [
        f"socket to port {port}"
        for inode, port in own_tcp_sockets().items()
        if inode not in sockets_before and port in targets.ports
    ]
    await hass.config_entries.async_remove(entry.entry_id)


# B. Home Assistant boots, with and without meshbot


def child_env(root: Path) -> dict[str, str]:
    """Return the environment of a measured Python: bytecode cached, as on a user's restart.

    Without this, PYTHONDONTWRITEBYTECODE (set in some dev shells) has meshbot compiled from
    source at every boot while Home Assistant's own modules come precompiled. The cache lives
    under `root`, so that the repository stays clean.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    return env


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ ([A-Z]+) \(([^)]*)\) \[([^\]]+)\] ")
PROBLEM_LEVELS = {"WARNING", "ERROR", "CRITICAL"}


@dataclass
class LogProblems:
    """Log records of one boot: those about meshbot, and other errors."""

    meshbot: list[str] = field(default_factory=list)
    other_errors: list[str] = field(default_factory=list)


def log_problems(log: str) -> LogProblems:
    """Sort a Home Assistant log's warnings and errors into meshbot's and the others."""
    records: list[tuple[str, str, list[str]]] = []
    for line in log.splitlines():
        if match := LOG_RECORD.match(line):
            records.append((match[1], match[3], [line]))
        elif records:
            records[-1][2].append(line)
    problems = LogProblems()
    for level, logger, lines in records:
        text = "\n".join(lines)
        if level not in PROBLEM_LEVELS or "we found a custom integration" in text.lower():
            # Home Assistant warns of every custom integration it loads, the probe's included.
            continue
        if DOMAIN in logger or DOMAIN in text:
            problems.meshbot.append(text)
        elif level != "WARNING":
            problems.other_errors.append(lines[0])
    return problems


class BootDirs:
    """Home Assistant config dirs: one with meshbot and its entry, one without any custom
    integration, reused so each measured boot is a restart (as users live it) rather than a
    first boot with onboarding.
    """

    def __init__(self, root: Path) -> None:
        """Lay out the dirs under `root`."""
        self.root = root
        self.dirs = {True: root / "with", False: root / "without"}
        for with_meshbot, directory in self.dirs.items():
            directory.mkdir(parents=True)
            if with_meshbot:
                # The baseline has no custom_components dir: with one, even empty of entries,
                # Home Assistant pays for scanning and loading custom integrations.
                components = directory / "custom_components"
                components.mkdir()
                (components / DOMAIN).symlink_to(MESHBOT_DIR, target_is_directory=True)
            storage = directory / ".storage"
            storage.mkdir()
            document = {
                "version": STORAGE_VERSION,
                "minor_version": STORAGE_VERSION_MINOR,
                "key": STORAGE_KEY,
                "data": {"entries": []},
            }
            if with_meshbot:
                # The entry as Home Assistant stores it; later boots only swap its targets.
                document["data"]["entries"].append(entry_for().as_dict())
            (storage / STORAGE_KEY).write_text(json.dumps(document, indent=2))
        # The baseline plus a custom integration that does nothing, with one entry: what Home
        # Assistant itself charges for any custom integration (D).
        self.idle = root / "idle"
        shutil.copytree(self.dirs[False], self.idle)
        component = self.idle / "custom_components" / IDLE_DOMAIN
        component.mkdir(parents=True)
        (component / "__init__.py").write_text(IDLE_INTEGRATION)
        (component / "config_flow.py").write_text(IDLE_CONFIG_FLOW)
        (component / "manifest.json").write_text(json.dumps(IDLE_MANIFEST))
        idle_entry = entry_for().as_dict() | {"domain": IDLE_DOMAIN, "data": {}, "options": {}}
        path = self.idle / ".storage" / STORAGE_KEY
        document = json.loads(path.read_text())
        document["data"]["entries"].append(idle_entry)
        path.write_text(json.dumps(document, indent=2))

    def prepare(
        self, with_meshbot: bool, http_port: int, targets: Targets, idle: bool = False
    ) -> Path:
        """Point the dir's meshbot entry at `targets` and its HTTP server at `http_port`.

        `idle` picks the baseline with the custom integration that does nothing instead.
        """
        directory = self.idle if idle else self.dirs[with_meshbot]
        (directory / "configuration.yaml").write_text(
            CONFIGURATION_YAML.format(http_port=http_port)
        )
        if with_meshbot and not idle:
            path = directory / ".storage" / STORAGE_KEY
            document = json.loads(path.read_text())
            entries = [e for e in document["data"]["entries"] if e["domain"] == DOMAIN]
            if len(entries) != 1:
                raise BenchError(f"{path} holds {len(entries)} meshbot entries, not 1")
            # JSON round trip: the data as Home Assistant would store it.
            entries[0]["data"] = json.loads(
                json.dumps(entry_for(**targets.sections).as_dict()["data"])
            )
            path.write_text(json.dumps(document, indent=2))
        return directory


@dataclass
class Boot:
    """One Home Assistant boot."""

    with_meshbot: bool
    started_s: float | None
    initialized_s: float | None
    initialized_log: str | None
    cpu_s: float | None
    wall_s: float
    returncode: int | None
    killed: bool
    meshbot_state: str | None
    entry_states: dict[str, str]
    meshbot_log: list[str]
    other_errors: list[str]
    failure: str | None


INITIALIZED_LINE = re.compile(r"Home Assistant initialized in (\d+\.\d+)s")


async def boot(
    dirs: BootDirs,
    peers: Peers,
    scenario: str,
    with_meshbot: bool,
    limit: float,
    modules: list[str] | None = None,
    idle: bool = False,
) -> Boot:
    """Boot Home Assistant in a subprocess until the hook sees `started`; return the timing.

    With `modules`, the hook's list of the modules loaded at started is put into it; `idle`
    boots the baseline with the custom integration that does nothing.
    """
    with scenario_targets(scenario, peers) as targets:
        http_port = free_port()
        while http_port in targets.ports:
            http_port = free_port()
        config_dir = dirs.prepare(with_meshbot, http_port, targets, idle)
        probe_out = dirs.root / "probe.json"
        probe_out.unlink(missing_ok=True)
        log_path = dirs.root / "hass.log"
        env = child_env(dirs.root) | {OUTPUT_ENV: str(probe_out)}
        if modules is not None:
            env[MODULES_ENV] = "1"
        env.pop("SUPERVISOR", None)
        with log_path.open("wb") as log:
            launched = time.time()
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                # `python -m homeassistant` with the hook: sys.path starts with the config dir.
                f"import runpy; runpy.run_path({str(BOOT_HOOK)!r}, run_name='__main__')",
                "--config",
                str(config_dir),
                "--skip-pip",
                "--log-no-color",
                # The config dir, not the repository, must be first on sys.path.
                cwd=config_dir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
            killed = False
            try:
                await asyncio.wait_for(process.wait(), limit)
            except TimeoutError:
                killed = True
                process.kill()
                await process.wait()
            wall = time.time() - launched
    text = log_path.read_text(errors="replace")
    started_s = cpu_s = initialized_s = None
    meshbot_state = None
    entry_states: dict[str, str] = {}
    logged = INITIALIZED_LINE.search(text)
    if probe_out.exists():
        record = json.loads(probe_out.read_text())
        started_s = record["started"] - launched
        initialized_s = record["initialized_s"]
        cpu_s = record["cpu_s"]
        if modules is not None:
            modules[:] = record.get("modules", [])
        states = [e["state"] for e in record["entries"] if e["domain"] == DOMAIN]
        meshbot_state = states[0] if states else None
        entry_states = {e["domain"]: e["state"] for e in record["entries"]}
    failure = None
    if started_s is None:
        failure = "Home Assistant never reached started; log tail:\n" + "\n".join(
            text.splitlines()[-20:]
        )
    elif killed:
        failure = f"Home Assistant did not exit within {limit:g} s and was killed"
    problems = log_problems(text)
    return Boot(
        with_meshbot=with_meshbot,
        started_s=started_s,
        initialized_s=initialized_s,
        initialized_log=logged[1] if logged else None,
        cpu_s=cpu_s,
        wall_s=wall,
        returncode=process.returncode,
        killed=killed,
        meshbot_state=meshbot_state,
        entry_states=entry_states,
        meshbot_log=problems.meshbot,
        other_errors=problems.other_errors,
        failure=failure,
    )


@dataclass
class BootResult:
    """Startup times of one scenario."""

    boots: list[Boot]

    def started(self, with_meshbot: bool) -> list[float | None]:
        """Return the started times of the boots with or without meshbot."""
        return [b.started_s for b in self.boots if b.with_meshbot is with_meshbot]

    def initialized(self, with_meshbot: bool) -> list[float | None]:
        """Return Home Assistant's "initialized in" times of the boots with or without meshbot."""
        return [b.initialized_s for b in self.boots if b.with_meshbot is with_meshbot]

    def cpu(self, with_meshbot: bool) -> list[float | None]:
        """Return the CPU seconds to started of the boots with or without meshbot."""
        return [b.cpu_s for b in self.boots if b.with_meshbot is with_meshbot]


async def measure_boots(
    dirs: BootDirs, peers: Peers, scenario: str, pairs: int, limit: float
) -> BootResult:
    """Boot with and without meshbot `pairs` times each, alternating which goes first."""
    boots = []
    for index in range(pairs):
        order = (False, True) if index % 2 == 0 else (True, False)
        for with_meshbot in order:
            boots.append(await boot(dirs, peers, scenario, with_meshbot, limit))
    return BootResult(boots)


async def measure_idle_reference(
    dirs: BootDirs, peers: Peers, pairs: int, limit: float
) -> dict[str, Any]:
    """Boot the baseline with and without the custom integration that does nothing, alternating.

    Their ratio is Home Assistant's own charge for loading any custom integration (the loader's
    custom path, the manifest, the entry): the part of meshbot's ratio no integration avoids.
    """
    # The idle dir's first boot onboards, as the others' warm-ups do: not counted.
    await boot(dirs, peers, "all_up", False, limit, idle=True)
    boots: dict[bool, list[Boot]] = {False: [], True: []}
    initialized: dict[bool, list[float]] = {False: [], True: []}
    for index in range(pairs):
        for idle in (False, True) if index % 2 == 0 else (True, False):
            result = await boot(dirs, peers, "all_up", False, limit, idle=idle)
            if result.failure or result.initialized_s is None:
                raise BenchError(f"the reference boot (idle={idle}) failed: {result.failure}")
            if idle and result.entry_states.get(IDLE_DOMAIN) != ConfigEntryState.LOADED.value:
                raise BenchError(
                    f"the idle integration's entry was {result.entry_states.get(IDLE_DOMAIN)} "
                    "at started, not loaded"
                )
            boots[idle].append(result)
            initialized[idle].append(result.initialized_s)
    bare = statistics.median(initialized[False])
    idle_s = statistics.median(initialized[True])
    return {
        "initialized_bare_s": bare,
        "initialized_idle_s": idle_s,
        "initialized_ratio": idle_s / bare,
        "boots": {
            "bare": [asdict(b) for b in boots[False]],
            "idle": [asdict(b) for b in boots[True]],
        },
    }


# C. Import time


IMPORT_STAGES = (
    ("module", ("custom_components.meshbot",)),
    # Home Assistant imports these with the integration when they exist (BASE_PRELOAD_PLATFORMS).
    (
        "preloaded",
        ("custom_components.meshbot.config_flow", "custom_components.meshbot.diagnostics"),
    ),
)
IMPORT_MARK = "bench import stage "
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \| (\s*)(\S+)$")
# __import__, not importlib.import_module: -X importtime reports only the modules an import
# statement's machinery loads, and import_module would hide the named module's own time.
IMPORT_SCRIPT = """\
import json, sys
for name in json.load(open(sys.argv[1])):
    try:
        __import__(name)
    except Exception:
        pass
for stage, modules in json.loads(sys.argv[2]):
    print({mark!r} + stage, file=sys.stderr, flush=True)
    for name in modules:
        __import__(name)
"""


def entry_platforms() -> list[str]:
    """Return the platform modules Home Assistant loads for the entry the boots use.

    Every scenario's entry holds all three links; only their targets differ.
    """
    entry = entry_for(
        radio=radio_section(DEFAULT_RADIO_PORT),
        mesh=broker_section(DEFAULT_MQTT_PORT),
        lightning=broker_section(DEFAULT_MQTT_PORT),
    )
    return [
        f"custom_components.meshbot.{platform}"
        for platform in getattr(
            custom_components.meshbot,
            "entry_platforms",
            lambda *_: custom_components.meshbot.PLATFORMS,
        )(entry.data, entry.options)
    ]


def import_sample(
    baseline: Path, stages: list[tuple[str, list[str]]], root: Path
) -> dict[str, dict[str, float]]:
    """Import meshbot once after `baseline`'s modules; return ms by stage and by whose module."""
    process = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            IMPORT_SCRIPT.format(mark=IMPORT_MARK),
            str(baseline),
            json.dumps(stages),
        ],
        cwd=REPO,
        env=child_env(root),
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode:
        raise BenchError(f"the import time run failed:\n{process.stderr[-2000:]}")
    figures: dict[str, dict[str, float]] = {}
    stage = None
    for line in process.stderr.splitlines():
        if line.startswith(IMPORT_MARK):
            stage = figures.setdefault(line.removeprefix(IMPORT_MARK), {})
        elif stage is not None and (match := IMPORT_LINE.match(line)):
            name = match[3]
            if name.startswith("custom_components"):
                kind = "meshbot"
            elif name.startswith("homeassistant"):
                kind = "home_assistant"
            else:
                kind = name.partition(".")[0]
            stage[kind] = stage.get(kind, 0.0) + int(match[1]) / 1000
    return figures


def measure_imports(modules: list[str], samples: int, root: Path) -> dict[str, Any]:
    """Import meshbot `samples` times in fresh interpreters; return the medians."""
    baseline_modules = [
        name
        for name in modules or ["homeassistant.bootstrap"]
        if not name.startswith(("__main__", "custom_components", "bench", "runpy"))
    ]
    stages = [(name, list(mods)) for name, mods in IMPORT_STAGES]
    stages.append(("platforms", entry_platforms()))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(baseline_modules, file)
    try:
        # The first run writes the bytecode cache; the counted ones read it, as a restart does.
        import_sample(Path(file.name), stages, root)
        runs = [import_sample(Path(file.name), stages, root) for _ in range(samples)]
    finally:
        os.unlink(file.name)
    result: dict[str, Any] = {"baseline_modules": len(baseline_modules), "stages": {}}
    for name, mods in stages:
        kinds = sorted({kind for run in runs for kind in run.get(name, {})})
        result["stages"][name] = {
            "modules": mods,
            "ms": {
                kind: statistics.median(run[name].get(kind, 0.0) for run in runs) for kind in kinds
            },
            "total_ms": statistics.median(sum(run[name].values()) for run in runs),
        }
    result["total_ms"] = statistics.median(
        sum(sum(stage.values()) for stage in run.values()) for run in runs
    )
    result["meshbot_ms"] = statistics.median(
        sum(stage.get("meshbot", 0.0) for stage in run.values()) for run in runs
    )
    result["dependencies_ms"] = result["total_ms"] - result["meshbot_ms"]
    return result


def print_imports(imports: dict[str, Any]) -> None:
    """Print the import time by stage: meshbot's modules, then the heaviest others."""
    print(
        f"C import time after a baseline Home Assistant's {imports['baseline_modules']} modules "
        f"(python -X importtime, median self times): {imports['total_ms']:.1f} ms, meshbot's "
        f"own {imports['meshbot_ms']:.1f} ms, dependencies {imports['dependencies_ms']:.1f} ms"
        f" (target <= {IMPORT_TARGET_MS:g} ms)"
    )
    for name, stage in imports["stages"].items():
        others = sorted(
            ((ms, kind) for kind, ms in stage["ms"].items() if kind != "meshbot"), reverse=True
        )
        detail = ", ".join(f"{kind} {ms:.1f}" for ms, kind in others if ms >= 0.5)
        print(
            f"  {name:<10} {stage['total_ms']:6.1f} ms: meshbot {stage['ms'].get('meshbot', 0):.1f}"
            + (f", {detail}" if detail else "")
        )


def print_reference(reference: dict[str, Any], rows: list[Row]) -> None:
    """Print what any custom integration costs, and meshbot's ratios against that."""
    idle_s = reference["initialized_idle_s"]
    print(
        f"D a custom integration that does nothing, one entry: initialized in "
        f"{idle_s:.3f} s against {reference['initialized_bare_s']:.3f} s without, ratio "
        f"{reference['initialized_ratio']:.3f} (Home Assistant's own charge for any custom "
        "integration)"
    )
    for row in rows:
        if row.initialized_with_s is not None:
            print(
                f"  {row.scenario}: meshbot against it {row.initialized_with_s / idle_s:.3f} "
                f"(+{1000 * (row.initialized_with_s - idle_s):.0f} ms)"
            )


# Report


def fmt(value: float | None, spec: str) -> str:
    """Format a figure, or a dash when it was not measured."""
    return "-" if value is None else format(value, spec)


@dataclass
class Row:
    """One scenario's figures and verdicts."""

    scenario: str
    setup_first_ms: float | None = None
    setup_p50_ms: float | None = None
    setup_p95_ms: float | None = None
    setup_max_ms: float | None = None
    unload_p95_ms: float | None = None
    links_up: str | None = None
    started_without_s: float | None = None
    started_with_s: float | None = None
    ratio: float | None = None
    initialized_without_s: float | None = None
    initialized_with_s: float | None = None
    initialized_ratio: float | None = None
    cpu_ratio: float | None = None
    reference_s: float | None = None
    reference_outcomes: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meshbot_log: list[str] = field(default_factory=list)
    other_errors: list[str] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """Return PASS or FAIL."""
        return "FAIL" if self.misses else "PASS"


def setup_row(row: Row, result: SetupResult) -> None:
    """Fill the setup columns and check the setup and reference targets."""
    if result.setup_ms:
        row.setup_first_ms = result.setup_ms[0]
        row.setup_p50_ms = percentile(result.setup_ms, 50)
        row.setup_p95_ms = percentile(result.setup_ms, 95)
        row.setup_max_ms = max(result.setup_ms)
        row.unload_p95_ms = percentile(result.unload_ms, 95)
        expected = EXPECTED_UP[row.scenario]
        low, high = min(result.links_up), max(result.links_up)
        row.links_up = f"{low}/3" if low == high else f"{low}-{high}/3"
        if row.setup_p95_ms > SETUP_P95_TARGET_MS:
            row.misses.append(f"setup p95 {row.setup_p95_ms:.1f} ms > {SETUP_P95_TARGET_MS:g} ms")
        if low != expected or high != expected:
            row.notes.append(
                f"links up after setup settled: {row.links_up}, the scenario expects {expected}/3"
            )
        if result.leftovers:
            row.misses.append(f"unload left {len(result.leftovers)} things running")
            row.notes += sorted(set(result.leftovers))[:5]
    if result.reference:
        durations = [ref["duration_s"] for ref in result.reference]
        row.reference_s = statistics.median(durations)
        row.reference_outcomes = sorted({ref["outcome"] for ref in result.reference})
        if min(durations) < REFERENCE_MIN_S:
            row.misses.append(
                f"blocking reference took {min(durations):.2f} s < {REFERENCE_MIN_S:g} s: "
                "the scenario does not hold a naive integration"
            )
    row.meshbot_log += [f"[in-process setup] {text}" for text in result.meshbot_log]
    row.other_errors += sorted({f"[in-process setup] {text}" for text in result.other_errors})
    row.samples |= {
        "setup_ms": result.setup_ms,
        "unload_ms": result.unload_ms,
        "links_up": result.links_up,
        "reference": result.reference,
    }


def boot_row(row: Row, result: BootResult) -> None:
    """Fill the startup columns and check the ratio target."""
    without = result.started(False)
    with_ = result.started(True)
    for b in result.boots:
        if b.failure and not b.with_meshbot:
            raise BenchError(f"{row.scenario}: the boot without meshbot failed: {b.failure}")
    row.started_without_s = statistics.median(without)  # type: ignore[arg-type]
    cpu_without, cpu_with = result.cpu(False), result.cpu(True)
    if None not in cpu_with:
        row.cpu_ratio = statistics.median(cpu_with) / statistics.median(cpu_without)  # type: ignore[arg-type]
    row.initialized_without_s = statistics.median(result.initialized(False))  # type: ignore[arg-type]
    if None in with_:
        row.misses.append("Home Assistant with meshbot did not reach started")
    else:
        row.started_with_s = statistics.median(with_)  # type: ignore[arg-type]
        row.ratio = row.started_with_s / row.started_without_s
        if row.ratio > STARTUP_RATIO_TARGET:
            row.misses.append(f"startup ratio {row.ratio:.3f} > {STARTUP_RATIO_TARGET:.2f}")
        row.initialized_with_s = statistics.median(result.initialized(True))  # type: ignore[arg-type]
        row.initialized_ratio = row.initialized_with_s / row.initialized_without_s
        if row.initialized_ratio > STARTUP_RATIO_TARGET:
            row.misses.append(
                f"initialized ratio {row.initialized_ratio:.3f} > {STARTUP_RATIO_TARGET:.2f}"
            )
    for b in result.boots:
        if b.with_meshbot and b.failure:
            row.misses.append(f"boot with meshbot: {b.failure}")
        if b.with_meshbot and b.meshbot_state != ConfigEntryState.LOADED.value:
            row.misses.append(f"meshbot entry was {b.meshbot_state} at started, not loaded")
        for text in b.meshbot_log:
            if text not in row.meshbot_log:
                row.meshbot_log.append(text)
        variant = "with" if b.with_meshbot else "without"
        for line in b.other_errors:
            # The timestamp makes every line unique; keep the message once per variant.
            message = f"[{variant} meshbot] " + LOG_RECORD.sub("", line, count=1)
            if message not in row.other_errors:
                row.other_errors.append(message)
    row.samples["boots"] = [asdict(b) for b in result.boots]


COLUMNS = (
    ("scenario", 17, lambda r: r.scenario),
    ("setup p50 ms", 12, lambda r: fmt(r.setup_p50_ms, ".2f")),
    ("setup p95 ms", 12, lambda r: fmt(r.setup_p95_ms, ".2f")),
    ("first ms", 8, lambda r: fmt(r.setup_first_ms, ".1f")),
    ("links", 5, lambda r: r.links_up or "-"),
    ("init without s", 14, lambda r: fmt(r.initialized_without_s, ".3f")),
    ("init with s", 11, lambda r: fmt(r.initialized_with_s, ".3f")),
    ("init ratio", 10, lambda r: fmt(r.initialized_ratio, ".3f")),
    ("without s", 9, lambda r: fmt(r.started_without_s, ".2f")),
    ("with s", 7, lambda r: fmt(r.started_with_s, ".2f")),
    ("ratio", 6, lambda r: fmt(r.ratio, ".3f")),
    ("cpu ratio", 9, lambda r: fmt(r.cpu_ratio, ".3f")),
    ("blocking ref s", 14, lambda r: fmt(r.reference_s, ".2f")),
    ("verdict", 7, lambda r: r.verdict),
)


LEGEND = f"""\
setup p50/p95 ms: hass.config_entries.async_setup of the meshbot entry, in-process Home Assistant
first ms: the first of those setups in a fresh Home Assistant (integration and platform loading)
links: links connected {{settle}} s after setup (the check that the scenario is what it says)
init without/with s: median of Home Assistant's "Home Assistant initialized in" time, without any
  custom integration / with meshbot and its entry; init ratio = with / without
without/with s: median time from launching Home Assistant to started; ratio = with / without
cpu ratio: the same ratio for the CPU seconds Home Assistant used until started (informative: it
  shows whether a wall-time ratio comes from work meshbot does or from other load on the machine)
blocking ref s: median duration of a naive paho connect + CONNACK wait on the event loop
  (bound {REFERENCE_BOUND_S:g} s, like the Blitzortung integration)"""


def print_table(rows: list[Row], settle: float) -> None:
    """Print one line per scenario, then the misses and notes."""
    header = "  ".join(f"{name:>{width}}" for name, width, _ in COLUMNS)
    print(header)
    print("-" * len(header))
    for row in rows:
        print("  ".join(f"{get(row):>{width}}" for _, width, get in COLUMNS))
    print()
    for row in rows:
        for miss in row.misses:
            print(f"MISS {row.scenario}: {miss}")
    for row in rows:
        for text in row.meshbot_log:
            print(f"MESHBOT LOG {row.scenario}: {text}")
    others: dict[str, list[str]] = {}
    for row in rows:
        for note in row.notes:
            print(f"note {row.scenario}: {note}")
        if row.reference_outcomes:
            print(f"note {row.scenario}: blocking reference ended with {row.reference_outcomes}")
        for message in row.other_errors:
            others.setdefault(message, []).append(row.scenario)
    for message, scenarios in others.items():
        print(f"note: error not from meshbot {message} (in {', '.join(scenarios)})")
    print()
    print(LEGEND.format(settle=settle))


# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="script/bench-startup", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=30, help="setups per scenario (A)")
    parser.add_argument(
        "--reference-runs", type=int, default=3, help="blocking reference runs (A, silent/hanging)"
    )
    # Five pairs, not three: with other processes on a 2-core machine, single boots stretch by
    # up to a second while their CPU time does not move, and a median of three can catch two.
    parser.add_argument(
        "--boots", type=int, default=5, help="with/without boot pairs per scenario (B); 0 skips"
    )
    parser.add_argument("--imports", type=int, default=5, help="import time samples (C); 0 skips")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.25,
        help="seconds the links may work between setup and unload",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.runs < 0 or args.boots < 0 or args.reference_runs < 0 or args.imports < 0:
        parser.error("counts cannot be negative")
    return args


async def run(
    args: argparse.Namespace,
    warmups: list[dict[str, Any]],
    imports: dict[str, Any],
    reference: dict[str, Any],
) -> list[Row]:
    """Measure every scenario and return its row; record the uncounted boots in `warmups`, the
    import times in `imports` and the custom integration that does nothing in `reference`.
    """
    rows = [Row(scenario) for scenario in args.scenarios]
    with running_peers() as peers:
        if args.runs:
            for row in rows:
                print(f"A {row.scenario}: {args.runs} setups", flush=True)
                result = await measure_setup(
                    row.scenario, peers, args.runs, args.reference_runs, args.settle
                )
                setup_row(row, result)
        if args.boots or args.imports:
            with tempfile.TemporaryDirectory(prefix="meshbot-bench-boot-") as tmp:
                dirs = BootDirs(Path(tmp))
                modules: list[str] = []
                for with_meshbot in (False, True) if args.boots else (False,):
                    # A config dir's first boot onboards and creates entries; later ones restart.
                    warm = await boot(
                        dirs,
                        peers,
                        "all_up",
                        with_meshbot,
                        BOOT_TIMEOUT_S,
                        None if with_meshbot else modules,
                    )
                    if warm.failure:
                        raise BenchError(f"the warm-up boot failed: {warm.failure}")
                    warmups.append(asdict(warm))
                    print(
                        f"B first boot {'with' if with_meshbot else 'without'} meshbot "
                        f"(warm-up, not counted): started in {warm.started_s:.2f} s",
                        flush=True,
                    )
                if args.imports:
                    print(f"C {args.imports} imports of meshbot", flush=True)
                    imports |= measure_imports(modules, args.imports, dirs.root)
                for row in rows if args.boots else ():
                    print(f"B {row.scenario}: {args.boots} boot pairs", flush=True)
                    result = await measure_boots(
                        dirs, peers, row.scenario, args.boots, BOOT_TIMEOUT_S
                    )
                    boot_row(row, result)
                if args.boots:
                    print(
                        f"D {args.boots} boot pairs with and without a custom integration "
                        "that does nothing",
                        flush=True,
                    )
                    reference |= await measure_idle_reference(
                        dirs, peers, args.boots, BOOT_TIMEOUT_S
                    )
    return rows


def meshbot_digest() -> str:
    """Return a hash of meshbot's source files, to tell whether they changed during the run."""
    digest = hashlib.sha256()
    for path in sorted(Path(MESHBOT_DIR).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(MESHBOT_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def environment() -> dict[str, Any]:
    """Describe where the figures come from."""
    return {
        "home_assistant": HA_VERSION,
        "python": platform.python_version(),
        "paho_mqtt": metadata.version("paho-mqtt"),
        "meshbot_commit": git("rev-parse", "HEAD"),
        # Uncommitted changes are measured too; say so.
        "meshbot_uncommitted_files": git("status", "--porcelain", "--", "custom_components"),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "mosquitto": shutil.which("mosquitto") or "/usr/sbin/mosquitto",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON; exit 1 only on a crash."""
    args = parse_args(argv)
    if problem := environment_ready():
        print(problem, file=sys.stderr)
        return 1
    began = time.perf_counter()
    source_before = meshbot_digest()
    warmups: list[dict[str, Any]] = []
    imports: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    rows = asyncio.run(run(args, warmups, imports, reference))
    elapsed = time.perf_counter() - began
    source_after = meshbot_digest()
    print()
    print_table(rows, args.settle)
    if imports:
        print()
        print_imports(imports)
    if reference:
        print()
        print_reference(reference, rows)
    if source_after != source_before:
        print(
            f"WARNING: meshbot's source changed during the run ({source_before} -> "
            f"{source_after}); the figures mix versions"
        )
    misses = sum(len(row.misses) for row in rows)
    print()
    print(
        f"{len(rows) - sum(bool(r.misses) for r in rows)}/{len(rows)} scenarios PASS, "
        f"{misses} target misses; targets: setup p95 <= {SETUP_P95_TARGET_MS:g} ms, "
        f"startup ratios <= {STARTUP_RATIO_TARGET:.2f}, blocking reference >= "
        f"{REFERENCE_MIN_S:g} s in {', '.join(REFERENCE_SCENARIOS)}"
    )
    print(f"total runtime {elapsed:.1f} s")
    document = {
        "benchmark": "startup",
        "environment": environment(),
        "parameters": {
            "runs": args.runs,
            "reference_runs": args.reference_runs,
            "boot_pairs": args.boots,
            "import_samples": args.imports,
            "settle_s": args.settle,
            "reference_bound_s": REFERENCE_BOUND_S,
        },
        "targets": {
            "setup_p95_ms": SETUP_P95_TARGET_MS,
            "startup_ratio": STARTUP_RATIO_TARGET,
            "import_ms": IMPORT_TARGET_MS,
            "reference_min_s": REFERENCE_MIN_S,
        },
        "total_runtime_s": elapsed,
        "meshbot_source_digest": {"before": source_before, "after": source_after},
        "warmup_boots": warmups,
        "imports": imports,
        "idle_reference": reference,
        "rows": [asdict(row) | {"verdict": row.verdict} for row in rows],
    }
    write_json(args.output, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
