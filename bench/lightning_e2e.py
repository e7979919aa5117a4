"""Part C of the lightning benchmark: a strike burst through a real Mosquitto into a running Home
Assistant with the recorder on, measured from inside Home Assistant's event loop.

`bench/lightning.py` runs it (`--only end_to_end`), publishes the burst from a separate process
(`python -m bench.lightning --publisher-child SPEC`) and turns the figures into table rows; this
module only measures. Home Assistant, the recorder and every probe are bench/end_to_end.py's
(the lag probe, the state-write log, the garbage-collection timer, the stack sampler): here they
watch meshbot's lightning monitor instead of its mesh collector.

Inside Home Assistant, besides those probes: a listener on `meshbot_lightning_strike` keeps each
event and its `summarised` count, one on `meshbot_lightning_alert` the alert's transitions, and a
listener of the monitor itself marks each flush that published (its listeners run after the
entities' writes and after that flush's strike events), so events and writes can be counted per
flush as well as per second.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
from collections import Counter
from collections.abc import Iterator
import contextlib
import gc
from itertools import pairwise
import json
import logging
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

from homeassistant import loader
from homeassistant.components import recorder
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_test_home_assistant,
)

from custom_components.meshbot.const import (
    CONF_ALERT_DISTANCE_KM,
    CONF_ALERT_MINUTES,
    CONF_ALERT_STRIKES,
    CONF_MAP_STRIKES,
    CONF_RADIUS_KM,
    DOMAIN,
    EVENT_LIGHTNING_ALERT,
    EVENT_LIGHTNING_STRIKE,
    FLUSH_SECONDS,
    LinkKind,
)
from custom_components.meshbot.lightning.geohash import Circle, covering_topics
from custom_components.meshbot.lightning_coordinator import LightningCoordinator
from meshbot_dev.entries import broker_section, entry_for
from meshbot_dev.mosquitto import MosquittoBroker

from .end_to_end import (
    PUBLISHER_READY_TIMEOUT_S,
    RECORDER_SYNC_TIMEOUT_S,
    SAMPLE_SECONDS,
    SLOW_CALLBACK_S,
    EndToEndError,
    GcTimer,
    LagProbe,
    Publisher,
    SlowCallbacks,
    StackSampler,
    WriteLog,
    cpu_window_figures,
    database_rows,
    lag_figures,
    lag_per_second,
    process_cpu,
    rates,
    recorder_figures,
    stall_figures,
    start_recorder,
    stop_measuring,
    thread_cpu,
    wait_drained,
    write_figures,
)
from .report import percentile
from .startup import LogCollector, wait_links

REPO = Path(__file__).resolve().parent.parent
# The write interval under which write_figures lists an entity as written too often.
MIN_WRITE_INTERVAL_S = 1.0
SUBSCRIBE_TIMEOUT_S = 10.0


class StrikeEvents:
    """The monitor's strike and alert events from the bus, and when each flush published."""

    def __init__(self) -> None:
        """Start empty; `listen` attaches to a bus and a monitor."""
        # (wall time, summarised or None for a single strike's event)
        self.strikes: list[tuple[float, int | None]] = []
        self.alerts: list[tuple[float, dict[str, Any]]] = []
        # Wall time of each flush that published (after its events and entity writes).
        self.flushes: list[float] = []

    def listen(self, hass: HomeAssistant, monitor: Any) -> list[Any]:
        """Listen to the bus and the monitor; return the removers."""
        return [
            hass.bus.async_listen(EVENT_LIGHTNING_STRIKE, self._on_strike),
            hass.bus.async_listen(EVENT_LIGHTNING_ALERT, self._on_alert),
            monitor.async_add_listener(self._on_flush),
        ]

    @callback
    def _on_strike(self, event: Event[Any]) -> None:
        self.strikes.append((event.time_fired_timestamp, event.data.get("summarised")))

    @callback
    def _on_alert(self, event: Event[Any]) -> None:
        self.alerts.append((event.time_fired_timestamp, dict(event.data)))

    @callback
    def _on_flush(self) -> None:
        self.flushes.append(time.time())


class FlushTimer:
    """Time every run of the monitor's flush, on the event loop.

    The monitor hands its bound `_async_flush` to a time-interval tracker when it starts, so
    the method is wrapped on the class before the entry sets up, and restored afterwards. The
    wrapper stays a Home Assistant callback, so it runs the same way; it adds two clock reads
    a second.
    """

    def __init__(self) -> None:
        """Start with no runs."""
        # (monotonic start, seconds)
        self.runs: list[tuple[float, float]] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap LightningCoordinator._async_flush while the block runs."""
        original = LightningCoordinator._async_flush
        runs = self.runs
        clock = time.monotonic

        @callback
        def timed_flush(monitor: LightningCoordinator, now: Any = None) -> None:
            start = clock()
            try:
                original(monitor, now)
            finally:
                runs.append((start, clock() - start))

        LightningCoordinator._async_flush = timed_flush  # type: ignore[method-assign]
        try:
            yield
        finally:
            LightningCoordinator._async_flush = original  # type: ignore[method-assign]

    def containing(self, when: float) -> tuple[float, float] | None:
        """Return the run during which monotonic time `when` fell, if any."""
        for start, took in self.runs:
            if start <= when <= start + took:
                return start, took
        return None


def flush_figures(
    timer: FlushTimer,
    collections: GcTimer,
    log: WriteLog,
    entity_ids: set[str],
    go: float,
    go_wall: float,
    end_wall: float,
) -> dict[str, Any]:
    """Return how long the flushes ran, which garbage collections ran inside them, and, for
    every two writes of one entity less than a second apart, the flushes they came from."""
    wall_to_mono = go - go_wall
    end = end_wall + wall_to_mono
    runs = [(start, took) for start, took in timer.runs if go <= start <= end]
    durations = [took * 1000 for _, took in runs]
    inside = []
    for begin, took, generation, thread, _ in collections.collections:
        found = timer.containing(begin)
        if found is not None and go <= begin <= end:
            inside.append(
                {
                    "at_s": round(begin - go, 3),
                    "ms": round(took * 1000, 1),
                    "generation": generation,
                    "thread": thread,
                    "flush_at_s": round(found[0] - go, 3),
                    "flush_ms": round(found[1] * 1000, 1),
                    "into_flush_ms": round((begin - found[0]) * 1000, 1),
                }
            )
    # Writes of one flush land within a few ms of each other: pairs are grouped by flush.
    pairs: dict[tuple[int, int], list[tuple[float, float, str]]] = {}
    for entity_id in sorted(entity_ids):
        times = sorted(
            t
            for t in log.changed.get(entity_id, []) + log.reported.get(entity_id, [])
            if go_wall <= t <= end_wall
        )
        for first, second in pairwise(times):
            if second - first < MIN_WRITE_INTERVAL_S:
                key = (
                    flush_index(timer, first + wall_to_mono),
                    flush_index(timer, second + wall_to_mono),
                )
                pairs.setdefault(key, []).append((first, second, entity_id))
    close = []
    for group in pairs.values():
        # The closest pair of the group: the event entity is written before the summary, the
        # sensors after it, so their gaps differ within one pair of flushes.
        first, second, _ = min(group, key=lambda pair: pair[1] - pair[0])
        entities = [pair[2] for pair in group]
        rows = []
        for when in (first, second):
            found = timer.containing(when + wall_to_mono)
            rows.append(
                None
                if found is None
                else {
                    "flush_at_s": round(found[0] - go, 3),
                    "flush_ms": round(found[1] * 1000, 1),
                    "write_into_flush_ms": round((when + wall_to_mono - found[0]) * 1000, 1),
                }
            )
        close.append(
            {
                "first_at_s": round(first - go_wall, 3),
                "gap_s": round(second - first, 4),
                "entities": len(entities),
                "first_flush": rows[0],
                "second_flush": rows[1],
                "gc_in_first_flush": [
                    row
                    for row in inside
                    if rows[0] is not None and row["flush_at_s"] == rows[0]["flush_at_s"]
                ],
            }
        )
    gaps = [b[0] - a[0] for a, b in pairwise(runs)]
    return {
        "runs": len(runs),
        "p50_ms": percentile(durations, 50) if durations else None,
        "p99_ms": percentile(durations, 99) if durations else None,
        "max_ms": max(durations, default=None),
        "max_at_s": round(max(runs, key=lambda run: run[1])[0] - go, 3) if runs else None,
        "start_gap_min_s": min(gaps, default=None),
        "start_gap_max_s": max(gaps, default=None),
        "ms_each": [round(took, 2) for took in durations],
        "collections_inside": inside,
        "close_writes": sorted(close, key=lambda row: row["gap_s"]),
    }


def flush_index(timer: FlushTimer, when: float) -> int:
    """Return the index of the flush run during which monotonic `when` fell, or -1."""
    for index, (start, took) in enumerate(timer.runs):
        if start <= when <= start + took:
            return index
    return -1


def per_flush(flushes: list[float], times: list[float]) -> Counter[int]:
    """Count `times` by the flush they belong to: the first flush mark at or after each."""
    return Counter(bisect.bisect_left(flushes, when) for when in times)


def spawn_command(
    port: int,
    args: argparse.Namespace,
    home: tuple[float, float],
    filters: list[str],
) -> list[str]:
    """Return the command line of the publisher process."""
    spec = {
        "port": port,
        "filters": filters,
        "home": list(home),
        "radius_km": args.monitor_radius,
        "rate": args.rate,
        "seconds": args.seconds,
        "seed": args.seed,
        "qos": args.qos,
    }
    return [sys.executable, "-m", "bench.lightning", "--publisher-child", json.dumps(spec)]


async def spawn_publisher(command: list[str], directory: Path) -> Publisher:
    """Start the publisher process; it plans the burst, connects and waits for `go`."""
    stderr_path = directory / "publisher.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    return Publisher(process, stderr_path)


async def start_lightning(
    hass: HomeAssistant, port: int, args: argparse.Namespace, alert: dict[str, float]
) -> ConfigEntry:
    """Set up a meshbot entry with a lightning monitor at home; return once it subscribed."""
    base = entry_for(lightning=broker_section(port))
    options = {
        **base.options,
        CONF_RADIUS_KM: args.monitor_radius,
        CONF_ALERT_DISTANCE_KM: alert["distance_km"],
        CONF_ALERT_STRIKES: int(alert["strikes"]),
        CONF_ALERT_MINUTES: alert["minutes"],
        CONF_MAP_STRIKES: 0,
    }
    entry = MockConfigEntry(domain=DOMAIN, title=base.title, data=dict(base.data), options=options)
    entry.add_to_hass(hass)
    if not await hass.config_entries.async_setup(entry.entry_id):
        raise EndToEndError(f"meshbot did not set up ({entry.state}, {entry.reason})")
    await hass.async_block_till_done()
    if entry.state is not ConfigEntryState.LOADED:
        raise EndToEndError(f"meshbot is {entry.state}, not loaded")
    if await wait_links(entry, 1, SUBSCRIBE_TIMEOUT_S) < 1:
        raise EndToEndError("the lightning link did not connect to the broker within 10 s")
    link = entry.runtime_data.links[LinkKind.LIGHTNING].link
    deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
    # Every SUBSCRIBE acknowledged (the tests wait the same way).
    while link._protocol is None or link._protocol.acks:
        if time.monotonic() > deadline:
            raise EndToEndError("the broker did not acknowledge the tile subscriptions")
        await asyncio.sleep(0.01)
    if link.rejected_filters:
        raise EndToEndError(f"the broker refused {sorted(link.rejected_filters)}")
    return entry


async def sample_timeline(
    monitor: Any,
    link: Any,
    instance: recorder.Recorder,
    log: WriteLog,
    strikes: StrikeEvents,
    start: float,
    timeline: list[dict[str, Any]],
) -> None:
    """Record, once a second, what meshbot took in and what waits in the recorder's queue."""
    loop = asyncio.get_running_loop()
    window = monitor.window
    while True:
        changed, reported = log.totals()
        timeline.append(
            {
                "t": round(loop.time() - start, 3),
                "link_messages": link.counters.messages,
                "payloads": window.parse_counters.payloads,
                "added": window.counters.added,
                "window": len(window),
                "strike_events": len(strikes.strikes),
                "recorder_backlog": instance.backlog,
                "state_changed": changed,
                "state_reported": reported,
            }
        )
        await asyncio.sleep(SAMPLE_SECONDS)


async def measure_in_hass(
    args: argparse.Namespace,
    broker: MosquittoBroker,
    home: tuple[float, float],
    alert: dict[str, float],
    directory: Path,
    profile: bool,
) -> dict[str, Any]:
    """Run the burst into Home Assistant and measure it from its event loop."""
    config_dir = directory / "config"
    config_dir.mkdir()
    database = directory / "home-assistant_v2.db"
    figures: dict[str, Any] = {}
    timer = FlushTimer()
    with timer.installed():
        async with async_test_home_assistant(config_dir=str(config_dir)) as hass:
            # What the harness's enable_custom_integrations fixture does.
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            try:
                await feed_hass(
                    hass, args, broker, home, alert, directory, database, profile, timer, figures
                )
            finally:
                await hass.async_stop(force=True)
    figures["database_rows"] = await asyncio.to_thread(database_rows, database)
    figures["database_mb"] = database.stat().st_size / 1e6
    return figures


async def feed_hass(
    hass: HomeAssistant,
    args: argparse.Namespace,
    broker: MosquittoBroker,
    home: tuple[float, float],
    alert: dict[str, float],
    directory: Path,
    database: Path,
    profile: bool,
    timer: FlushTimer,
    figures: dict[str, Any],
) -> None:
    """Set up the recorder and meshbot at home, start the publisher on meshbot's tiles, let it
    go, then drain and collect."""
    began = time.perf_counter()
    # The monitor watches Home Assistant's home location.
    hass.config.latitude, hass.config.longitude = home
    instance = await start_recorder(hass, database)
    entry = await start_lightning(hass, broker.port, args, alert)
    figures["setup_s"] = time.perf_counter() - began
    hub = entry.runtime_data
    link = hub.links[LinkKind.LIGHTNING].link
    filters = sorted(link.filters)
    figures["filters"] = filters
    figures["filters_as_computed"] = set(filters) == covering_topics(
        Circle(home[0], home[1], args.monitor_radius)
    )
    publisher = await spawn_publisher(spawn_command(broker.port, args, home, filters), directory)
    try:
        figures["feed"] = await publisher.read(PUBLISHER_READY_TIMEOUT_S)
        # How many objects a full garbage collection walks (counted before the burst).
        figures["gc_tracked_objects_before"] = len(gc.get_objects())
        await run_burst(hass, args, broker, entry, instance, publisher, profile, timer, figures)
    finally:
        await publisher.close()


async def run_burst(
    hass: HomeAssistant,
    args: argparse.Namespace,
    broker: MosquittoBroker,
    entry: ConfigEntry,
    instance: recorder.Recorder,
    publisher: Publisher,
    profile: bool,
    timer: FlushTimer,
    figures: dict[str, Any],
) -> None:
    """Measure idle, let the publisher go, wait for it, drain meshbot and the recorder."""
    loop = asyncio.get_running_loop()
    hub = entry.runtime_data
    monitor = hub.lightning
    link = hub.links[LinkKind.LIGHTNING].link
    window = monitor.window
    log = WriteLog()
    strikes = StrikeEvents()
    removers = log.listen(hass) + strikes.listen(hass, monitor)
    probe = LagProbe(args.lag_interval_ms / 1000)
    probe.start()
    sampler = StackSampler(probe, args.lag_interval_ms / 1000 * 2) if profile else None
    slow = SlowCallbacks(SLOW_CALLBACK_S) if profile else None
    collections = GcTimer()
    timeline: list[dict[str, Any]] = []
    timeline_task: asyncio.Task[None] | None = None
    broker_pid = broker.process.pid if broker.process else None
    try:
        idle_start = loop.time()
        await asyncio.sleep(args.idle_seconds)
        if (before := link.counters.messages) != 0:
            raise EndToEndError(f"meshbot received {before} messages before the burst started")

        cpu_before = thread_cpu()
        mosquitto_before = process_cpu(broker_pid)
        log.counting = True
        collections.install()
        go_wall, go = time.time(), loop.time()
        timeline_task = loop.create_task(
            sample_timeline(monitor, link, instance, log, strikes, go, timeline),
            name="bench timeline",
        )
        if sampler is not None and slow is not None:
            slow.install()
            sampler.start()
        await publisher.go()
        result = await publisher.read(args.seconds * 2 + 60)
        window_end, window_end_wall = loop.time(), time.time()
        cpu_after = thread_cpu()
        mosquitto_after = process_cpu(broker_pid)
        backlog_at_end = instance.backlog
        published = result["published"]
        # What the recorder still had to do when the burst ended: it commits every 5 s, and a
        # sync commits at once, after everything queued before it.
        async with asyncio.timeout(RECORDER_SYNC_TIMEOUT_S):
            await instance.async_block_till_done()
        recorder_caught_up = loop.time()

        # Drain: meshbot takes what is still in flight...
        counters = window.parse_counters
        taken_at = await wait_drained(
            lambda: counters.payloads, published, window_end + args.drain_seconds
        )
        # ... then one flush after the last message turns the rest into events and states.
        last_message = link.last_message_at or 0.0
        flush_deadline = loop.time() + FLUSH_SECONDS * 3
        while not (strikes.flushes and strikes.flushes[-1] > last_message):
            if loop.time() > flush_deadline:
                break
            await asyncio.sleep(0.01)
        backlog_after_drain = instance.backlog
        async with asyncio.timeout(RECORDER_SYNC_TIMEOUT_S):
            await instance.async_block_till_done()
        settle_until = window_end + args.settle_seconds
        if (rest := settle_until - loop.time()) > 0:
            await asyncio.sleep(rest)
        end, end_wall = loop.time(), time.time()
    finally:
        await stop_measuring(collections, sampler, slow, timeline_task, probe, removers)

    registry = er.async_get(hass)
    entities = er.async_entries_for_config_entry(registry, entry.entry_id)
    entity_ids = {e.entity_id for e in entities}
    writes = write_figures(log, entity_ids, go_wall, end_wall, MIN_WRITE_INTERVAL_S)
    flushes = [mark for mark in strikes.flushes if mark >= go_wall]
    writes_per_flush = {}
    for entity_id in sorted(entity_ids):
        times = [
            t
            for t in log.changed.get(entity_id, []) + log.reported.get(entity_id, [])
            if go_wall <= t <= end_wall
        ]
        if times:
            writes_per_flush[entity_id] = max(per_flush(flushes, times).values())
    strike_times = [when for when, _ in strikes.strikes]
    event_flushes = per_flush(flushes, strike_times)
    per_second = [0] * max(1, int(end_wall - go_wall + 0.999))
    for when in strike_times:
        if go_wall <= when < end_wall:
            per_second[int(when - go_wall)] += 1
    burst_seconds = window_end_wall - go_wall
    started = [when for when, data in strikes.alerts if data.get("state") == "started"]
    nearby = hass.states.get(
        next((e for e in entity_ids if e.endswith("lightning_nearby")), "binary_sensor.none")
    )
    full_at = next((s["t"] for s in timeline if s["window"] >= window.max_strikes), None)
    summary = monitor.data.summary
    figures.update(
        {
            "published": published,
            "publisher": result,
            "link": {
                "messages": link.counters.messages,
                "oversized": link.counters.oversized,
                "bad_topics": link.counters.bad_topics,
                "handler_errors": link.counters.handler_errors,
                "reconnects": hub.links[LinkKind.LIGHTNING].supervisor.state.reconnects,
                "message_counts": hub.links[LinkKind.LIGHTNING].messages,
            },
            "parse_counters": {
                "payloads": counters.payloads,
                "accepted": counters.accepted,
                "rejected": dict(sorted(counters.rejected.items())),
                "rejected_total": counters.rejected_total,
            },
            "window": {
                "added": window.counters.added,
                "expired": window.counters.expired,
                "dropped": dict(sorted(window.counters.dropped.items())),
                "kept": len(window),
                "max_strikes": window.max_strikes,
                "window_s": window.window_s,
                "radius_km": window.radius_km,
            },
            "window_full_at_s": full_at,
            "summary": {
                "count": summary.count,
                "nearest_km": None if summary.nearest is None else summary.nearest.distance_km,
                "rate_per_10min": summary.rate_per_10min,
                "trend": None if summary.trend is None else str(summary.trend.direction),
            },
            "strike_events": {
                "individual": sum(1 for _, summarised in strikes.strikes if summarised is None),
                "summary_events": sum(1 for _, s in strikes.strikes if s is not None),
                "summarised": sum(s for _, s in strikes.strikes if s is not None),
                "monitor_fired": monitor.events_fired,
                "monitor_summarised": monitor.events_summarised,
                "flushes": len(event_flushes),
                "max_per_flush": max(event_flushes.values(), default=0),
                "after_last_flush": event_flushes.get(len(flushes), 0),
                "per_second": per_second,
                "per_s_burst": sum(1 for when in strike_times if go_wall <= when < window_end_wall)
                / burst_seconds,
            },
            "alert": {
                "events": [
                    {"at_s": round(when - go_wall, 3), **data} for when, data in strikes.alerts
                ],
                "started_at_s": (started[0] - go_wall) if started else None,
                "sensor_state": None if nearby is None else nearby.state,
            },
            "window_s": burst_seconds,
            "meshbot_drain_s": max(0.0, taken_at - window_end),
            "lag": {
                "interval_ms": args.lag_interval_ms,
                "idle": lag_figures(probe.samples, idle_start, go),
                "window": lag_figures(probe.samples, go, window_end),
                "after": lag_figures(probe.samples, window_end, end),
                "per_second_max_ms": lag_per_second(probe.samples, go, end),
            },
            "writes": writes,
            "flush": flush_figures(timer, collections, log, entity_ids, go, go_wall, end_wall),
            "writes_per_flush": writes_per_flush,
            "writes_per_flush_max": max(writes_per_flush.values(), default=0),
            "flush_gaps_s": {
                "min": min((b - a for a, b in pairwise(flushes)), default=None),
                "max": max((b - a for a, b in pairwise(flushes)), default=None),
                "count": len(flushes),
            },
            "writes_per_second": rates(timeline, "state_changed"),
            "reported_per_second": rates(timeline, "state_reported"),
            "payloads_per_second": rates(timeline, "payloads"),
            "events": dict(log.events.most_common()),
            "entity_states": {
                entity_id: state.state
                for entity_id in sorted(entity_ids)
                if (state := hass.states.get(entity_id)) is not None
            },
            "recorder": recorder_figures(
                instance,
                timeline,
                backlog_at_end,
                backlog_after_drain,
                recorder_caught_up - window_end,
            ),
            "cpu_window": cpu_window_figures(
                window_end - go,
                cpu_before,
                cpu_after,
                result["cpu_s"],
                mosquitto_before,
                mosquitto_after,
            ),
            "timeline": timeline,
            **stall_figures(probe, collections, sampler, slow, go, end),
        }
    )


async def measure(
    args: argparse.Namespace, home: tuple[float, float], alert: dict[str, float], profile: bool
) -> dict[str, Any]:
    """Start the broker, run the burst into Home Assistant, return the figures."""
    collector = LogCollector()
    logging.getLogger().addHandler(collector)
    broker = MosquittoBroker().start()
    try:
        with tempfile.TemporaryDirectory(prefix="meshbot-bench-lightning-") as tmp:
            figures = await measure_in_hass(args, broker, home, alert, Path(tmp), profile)
    finally:
        broker.close()
        logging.getLogger().removeHandler(collector)
    figures["meshbot_log"] = collector.meshbot
    figures["other_errors"] = sorted(set(collector.other_errors))
    return figures


def run(
    args: argparse.Namespace,
    home: tuple[float, float],
    alert: dict[str, float],
    profile: bool = False,
) -> dict[str, Any]:
    """Run one end-to-end measurement in a fresh event loop."""
    return asyncio.run(measure(args, home, alert, profile))
