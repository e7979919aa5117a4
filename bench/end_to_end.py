"""Part C of the ingest benchmark: a regional feed through a real Mosquitto into a running Home
Assistant with the recorder on, measured from inside Home Assistant's event loop.

`bench/ingest.py` runs it (`--only end_to_end`) and turns the figures into table rows; this module
only measures. Home Assistant is the in-process one of bench/startup.py (the harness's
`async_test_home_assistant`), with the recorder set up on an sqlite file in a temp dir and its
default commit interval, as users run it. The feed comes from `python -m bench.ingest
--publisher-child`, a separate process with paho's own network thread, so the publisher shares
neither the event loop nor the GIL with Home Assistant.

Inside Home Assistant: a task sleeps `--lag-interval-ms` in a loop and records how late each
wake-up is; `state_changed` and `state_reported` listeners log every entity state write; a 1 s
sampler records the decoder's counters and the recorder's queue; gc.callbacks time every garbage
collection (a full one stops the loop whichever thread runs it), and each late wake-up is listed
with the collections that overlapped it. With `--profile`, or when a lag target is missed, a
second run samples the loop thread's stack and times every loop callback: that run is slowed by
its instruments and only explains, its lag is not the benchmark's.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import gc
from itertools import pairwise
import json
import logging
import os
from pathlib import Path
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Any

from homeassistant import loader
from homeassistant.components import recorder
from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.config_entries import ConfigEntry, ConfigEntryState, ConfigFlow
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED, MATCH_ALL, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, recorder as recorder_helper
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    MockPlatform,
    async_test_home_assistant,
    mock_config_flow,
    mock_integration,
    mock_platform,
)

from custom_components.meshbot.const import (
    CONF_MAX_TRACKED_NODES,
    CONF_NODE_POLICY,
    CONF_TRACK_POSITIONS,
    DOMAIN,
    EVENT_NODE_DISCOVERED,
    FLUSH_SECONDS,
    POLICY_ALL,
    LinkKind,
)
from meshbot_dev.entries import broker_section, entry_for
from meshbot_dev.mosquitto import MosquittoBroker

from .report import percentile
from .startup import MESHBOT_DIR, LogCollector, wait_links

REPO = Path(__file__).resolve().parent.parent
# Building 2,000/s x 60 s of encrypted envelopes takes the publisher a few seconds.
PUBLISHER_READY_TIMEOUT_S = 300.0
RECORDER_READY_TIMEOUT_S = 60.0
RECORDER_SYNC_TIMEOUT_S = 300.0
SAMPLE_SECONDS = 1.0
# Decoder counters unchanged this long after the last publish: nothing more is coming.
QUIET_SECONDS = 0.5
TOP_STACKS = 12
# Callbacks longer than this are listed by the profiled run.
SLOW_CALLBACK_S = 0.010
# Wake-ups later than this are listed with what overlapped them.
STALL_THRESHOLD_S = 0.020
STACK_DEPTH = 14
# Of the other threads in a stall: how many innermost frames, and where a thread only waits
# (an idle executor worker's innermost Python frame is its loop, blocked in the queue's C get).
OTHER_STACK_DEPTH = 2
PARKED_IN = ("/threading.py", "/queue.py", "/concurrent/futures/thread.py")


class EndToEndError(Exception):
    """Raise when the end-to-end run cannot measure (not when a target is missed)."""


# Measuring inside the loop


class LagProbe:
    """Sleep a fixed interval on the event loop, over and over, and record each wake-up's delay."""

    def __init__(self, interval: float) -> None:
        """Sleep `interval` seconds between wake-ups."""
        self.interval = interval
        # (loop time of the wake-up, seconds late)
        self.samples: list[tuple[float, float]] = []
        self.last_wake = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sleeping on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bench lag probe")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval
        samples = self.samples
        while True:
            expected = loop.time() + interval
            await asyncio.sleep(interval)
            now = loop.time()
            self.last_wake = now
            samples.append((now, now - expected))

    async def stop(self) -> None:
        """Stop the probe."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def lag_figures(samples: list[tuple[float, float]], start: float, end: float) -> dict[str, Any]:
    """Return the delay percentiles, in ms, of the wake-ups between `start` and `end`."""
    picked = [(when, late * 1000) for when, late in samples if start <= when < end]
    if not picked:
        return {"wakeups": 0}
    values = [late for _, late in picked]
    worst_at, worst = max(picked, key=lambda pair: pair[1])
    return {
        "wakeups": len(values),
        "seconds": end - start,
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": worst,
        "max_at_s": worst_at - start,
        "over_20ms": sum(value > 20 for value in values),
        "over_100ms": sum(value > 100 for value in values),
    }


def lag_outside(
    samples: list[tuple[float, float]],
    intervals: list[tuple[float, float]],
    start: float,
    end: float,
) -> dict[str, Any]:
    """Return the lag figures of the wake-ups whose wait overlapped none of `intervals`.

    Given the full collections, what is left is every stall that is not the process-wide
    collector walking Home Assistant's whole heap: the loop's own work, meshbot's included.
    """
    clear = [
        (when, late)
        for when, late in samples
        if not any(begin < when and when - late < begin + took for begin, took in intervals)
    ]
    return lag_figures(clear, start, end)


def full_collection_ms(rounds: int = 5) -> float:
    """Return the quickest of `rounds` forced full collections, in ms (a floor: no garbage)."""
    gc.collect()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - began) * 1000)
    return min(times)


def tracked_by_type() -> Counter[str]:
    """Count the objects the garbage collector tracks, by type: what a full collection walks."""
    return Counter(type(obj).__qualname__ for obj in gc.get_objects())


def grown_types(before: Counter[str], after: Counter[str], top: int = 15) -> dict[str, int]:
    """Return the `top` types whose tracked count grew most from `before` to `after`."""
    growth = after.copy()
    growth.subtract(before)
    return dict(growth.most_common(top))


def lag_per_second(samples: list[tuple[float, float]], start: float, end: float) -> list[float]:
    """Return the worst delay (ms) of each second between `start` and `end`."""
    worst = [0.0] * max(1, int(end - start + 0.999))
    for when, late in samples:
        if start <= when < end:
            slot = int(when - start)
            worst[slot] = max(worst[slot], late * 1000)
    return [round(value, 2) for value in worst]


@callback
def _every_report(_data: Any) -> bool:
    return True


class WriteLog:
    """Every entity state write, and a count of every bus event, from Home Assistant's bus."""

    def __init__(self) -> None:
        """Start empty; `listen` attaches to a bus."""
        self.changed: defaultdict[str, list[float]] = defaultdict(list)
        self.reported: defaultdict[str, list[float]] = defaultdict(list)
        self.events: Counter[str] = Counter()
        self.counting = False

    def listen(self, hass: HomeAssistant) -> list[Any]:
        """Listen to the bus; return the removers."""
        return [
            hass.bus.async_listen(EVENT_STATE_CHANGED, self._on_changed),
            # A write that changes neither state nor attributes fires state_reported instead:
            # the recorder skips it, but it is still a write.
            hass.bus.async_listen(
                EVENT_STATE_REPORTED, self._on_reported, event_filter=_every_report
            ),
            hass.bus.async_listen(MATCH_ALL, self._on_event),
        ]

    @callback
    def _on_changed(self, event: Event[Any]) -> None:
        self.changed[event.data["entity_id"]].append(event.time_fired_timestamp)

    @callback
    def _on_reported(self, event: Event[Any]) -> None:
        self.reported[event.data["entity_id"]].append(event.time_fired_timestamp)

    @callback
    def _on_event(self, event: Event[Any]) -> None:
        if self.counting:
            self.events[event.event_type] += 1

    def totals(self) -> tuple[int, int]:
        """Return the state_changed and state_reported writes so far."""
        return (
            sum(len(times) for times in self.changed.values()),
            sum(len(times) for times in self.reported.values()),
        )


def most_in_one_second(times: list[float]) -> int:
    """Return the most writes in any window (t - 1 s, t] of sorted `times`."""
    best = first = 0
    for index, when in enumerate(times):
        while times[first] <= when - 1.0:
            first += 1
        best = max(best, index - first + 1)
    return best


def write_figures(
    log: WriteLog, entity_ids: set[str], start: float, end: float, min_interval: float
) -> dict[str, Any]:
    """Return per-entity write intervals between wall times `start` and `end`."""
    per_entity: dict[str, dict[str, Any]] = {}
    for entity_id in sorted(entity_ids):
        changed = [t for t in log.changed.get(entity_id, ()) if start <= t <= end]
        reported = [t for t in log.reported.get(entity_id, ()) if start <= t <= end]
        times = sorted(changed + reported)
        if not times:
            continue
        gaps = [later - earlier for earlier, later in pairwise(times)]
        per_entity[entity_id] = {
            "writes": len(times),
            "changed": len(changed),
            "reported": len(reported),
            "min_interval_s": min(gaps) if gaps else None,
            # Without the entity's first write (its creation, if it was created in the run).
            "min_interval_after_first_s": min(gaps[1:]) if len(gaps) > 1 else None,
            "max_in_1s": most_in_one_second(times),
            "max_in_1s_after_first": most_in_one_second(times[1:]) if len(times) > 1 else 0,
        }
    with_gaps = {e: f for e, f in per_entity.items() if f["min_interval_s"] is not None}
    worst = min(with_gaps, key=lambda e: with_gaps[e]["min_interval_s"], default=None)
    too_close = sorted(
        (e for e, f in with_gaps.items() if f["min_interval_s"] < min_interval),
        key=lambda e: with_gaps[e]["min_interval_s"],
    )
    busiest = max(per_entity, key=lambda e: per_entity[e]["max_in_1s"], default=None)
    later = {
        e: f["min_interval_after_first_s"]
        for e, f in per_entity.items()
        if f["min_interval_after_first_s"] is not None
    }
    worst_later = min(later, key=lambda e: later[e], default=None)
    changed_total = sum(f["changed"] for f in per_entity.values())
    reported_total = sum(f["reported"] for f in per_entity.values())
    return {
        "entities_written": len(per_entity),
        "writes": changed_total + reported_total,
        "state_changed": changed_total,
        "state_reported": reported_total,
        "seconds": end - start,
        "worst_entity": worst,
        "worst_min_interval_s": with_gaps[worst]["min_interval_s"] if worst else None,
        "worst_writes": per_entity[worst]["writes"] if worst else None,
        "max_in_1s": per_entity[busiest]["max_in_1s"] if busiest else 0,
        "max_in_1s_entity": busiest,
        "worst_entity_after_first": worst_later,
        "worst_min_interval_after_first_s": later[worst_later] if worst_later else None,
        "max_in_1s_after_first": max(
            (f["max_in_1s_after_first"] for f in per_entity.values()), default=0
        ),
        "entities_under_min_interval_after_first": sum(
            interval < min_interval for interval in later.values()
        ),
        "entities_under_min_interval": len(too_close),
        "under_min_interval_examples": {e: with_gaps[e] for e in too_close[:10]},
        "per_entity": per_entity,
    }


# CPU of threads and processes


def _stat_cpu(path: str) -> tuple[str, float] | None:
    """Return the name and user+system CPU seconds in a /proc stat file."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """Return CPU seconds per kind of thread of this process (numbered pool threads summed)."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    main = threading.main_thread().native_id
    cpu: Counter[str] = Counter()
    for tid in os.listdir("/proc/self/task"):
        found = _stat_cpu(f"/proc/self/task/{tid}/stat")
        if found is None:
            continue
        name = names.get(int(tid)) or found[0]
        kind = "event loop" if int(tid) == main else re.sub(r"[_-]?\d+$", "", name) or name
        cpu[kind] += found[1]
    return dict(cpu)


def recorder_figures(
    instance: recorder.Recorder,
    timeline: list[dict[str, Any]],
    backlog_at_end: int,
    backlog_after_drain: int,
    caught_up_s: float,
) -> dict[str, Any]:
    """Return the recorder's queue over the run, from the timeline's per-second samples."""
    return {
        "commit_interval_s": instance.commit_interval,
        "backlog_at_window_end": backlog_at_end,
        "backlog_after_meshbot_drain": backlog_after_drain,
        "max_backlog": max((s["recorder_backlog"] for s in timeline), default=0),
        "backlog_per_second": [s["recorder_backlog"] for s in timeline],
        "caught_up_s": caught_up_s,
    }


def cpu_window_figures(
    seconds: float,
    threads_before: dict[str, float],
    threads_after: dict[str, float],
    publisher_cpu_s: float,
    mosquitto_before: float | None,
    mosquitto_after: float | None,
) -> dict[str, Any]:
    """Return the CPU that Home Assistant's threads, the publisher and Mosquitto used."""
    return {
        "seconds": seconds,
        "threads": {
            kind: threads_after.get(kind, 0.0) - threads_before.get(kind, 0.0)
            for kind in sorted(set(threads_after) | set(threads_before))
        },
        "processes": {
            # The publisher times its own CPU (all its threads) while it publishes.
            "publisher": publisher_cpu_s,
            "mosquitto": (
                None
                if mosquitto_after is None or mosquitto_before is None
                else mosquitto_after - mosquitto_before
            ),
        },
    }


def process_cpu(pid: int | None) -> float | None:
    """Return the CPU seconds of a process and all its threads."""
    if pid is None:
        return None
    found = _stat_cpu(f"/proc/{pid}/stat")
    return None if found is None else found[1]


# Profiling the loop (a separate, perturbed run)


class StackSampler(threading.Thread):
    """Sample the event loop thread's stack every few ms, flagging samples taken in a stall.

    cProfile cannot do this here: on Python 3.12+ it profiles every thread at once, so the
    recorder thread's work would land in the loop's profile. A sample is taken only when this
    thread gets the GIL, so it slows the loop a little: the lag figures of this run are not the
    benchmark's.
    """

    def __init__(self, probe: LagProbe, threshold: float, period: float = 0.002) -> None:
        """Sample every `period` s; a stall is a probe wake-up overdue by `threshold` s."""
        super().__init__(name="bench stack sampler", daemon=True)
        self.probe = probe
        self.threshold = threshold
        self.period = period
        self.target = threading.main_thread().ident
        self.all: Counter[tuple[str, ...]] = Counter()
        self.stalled: Counter[tuple[str, ...]] = Counter()
        # What every other thread was running in those stalled samples: the one holding the
        # GIL, or making the loop wait for it, is among them.
        self.others_stalled: Counter[str] = Counter()
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Sample until stopped."""
        while not self._stop_event.wait(self.period):
            frames = sys._current_frames()
            frame = frames.get(self.target)
            if frame is None:
                continue
            overdue = time.monotonic() - self.probe.last_wake - self.probe.interval
            stack = tuple(
                f"{shorten(entry.filename)}:{entry.lineno} {entry.name}"
                for entry in traceback.extract_stack(frame)[-STACK_DEPTH:]
            )
            self.samples += 1
            self.all[stack] += 1
            if overdue > self.threshold:
                self.stalled[stack] += 1
                self.others_stalled.update(self._others(frames))

    def _others(self, frames: dict[int, Any]) -> list[str]:
        """Return the innermost frames of every busy thread but the loop's and this one's."""
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        found = []
        for ident, frame in frames.items():
            if ident in (self.target, self.ident):
                continue
            if frame.f_code.co_filename.endswith(PARKED_IN):
                # Waiting on a lock or a queue: not what holds the loop up.
                continue
            kind = re.sub(r"[_-]?\d+$", "", names.get(ident, "?"))
            where = [
                f"{shorten(entry.filename)}:{entry.lineno} {entry.name}"
                for entry in traceback.extract_stack(frame)[-OTHER_STACK_DEPTH:]
            ]
            found.append(f"{kind}: {' < '.join(reversed(where))}")
        return found

    def stop(self) -> None:
        """Stop sampling."""
        self._stop_event.set()
        self.join(timeout=5)

    def report(self) -> dict[str, Any]:
        """Return the leaf functions and the most frequent stacks, overall and in stalls."""

        def leaves(counter: Counter[tuple[str, ...]]) -> list[tuple[str, int]]:
            by_leaf: Counter[str] = Counter()
            for stack, count in counter.items():
                by_leaf[stack[-1].split(":", 1)[0] + " " + stack[-1].rsplit(" ", 1)[1]] += count
            return by_leaf.most_common(TOP_STACKS)

        def owners(counter: Counter[tuple[str, ...]]) -> list[tuple[str, int]]:
            # The innermost frame of meshbot's own code, the part of a stack meshbot can change.
            by_owner: Counter[str] = Counter()
            for stack, count in counter.items():
                mine = [entry for entry in stack if entry.startswith("meshbot/")]
                by_owner[mine[-1] if mine else "(no meshbot frame)"] += count
            return by_owner.most_common(TOP_STACKS)

        return {
            "samples": self.samples,
            "stalled_samples": sum(self.stalled.values()),
            "threshold_ms": self.threshold * 1000,
            "leaves_all": leaves(self.all),
            "leaves_stalled": leaves(self.stalled),
            "meshbot_frames_all": owners(self.all),
            "meshbot_frames_stalled": owners(self.stalled),
            "other_threads_stalled": self.others_stalled.most_common(TOP_STACKS),
            "stacks_stalled": [
                {"count": count, "stack": list(stack)}
                for stack, count in self.stalled.most_common(TOP_STACKS)
            ],
        }


class SlowCallbacks:
    """Time every callback the event loop runs; keep those over a threshold.

    Each callback (a task step, a timer, an I/O handler) runs through `Handle._run`; wrapping it
    tells a loop that is late because one callback ran long from a loop that waited for a CPU or
    the GIL. The wrapper costs every callback a little: only the profiled run installs it.
    """

    def __init__(self, threshold: float) -> None:
        """Keep callbacks that run longer than `threshold` seconds."""
        self.threshold = threshold
        # (loop time at the start, seconds, what ran)
        self.slow: list[tuple[float, float, str]] = []
        self.callbacks = 0
        self.busy = 0.0
        self._original: Any = None

    def install(self) -> None:
        """Wrap Handle._run."""
        original = self._original = asyncio.events.Handle._run
        slow, threshold = self.slow, self.threshold
        clock = time.monotonic

        def timed_run(handle: asyncio.events.Handle) -> None:
            start = clock()
            try:
                original(handle)
            finally:
                took = clock() - start
                self.callbacks += 1
                self.busy += took
                if took > threshold:
                    slow.append((start, took, describe_handle(handle)))

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]

    def uninstall(self) -> None:
        """Restore Handle._run."""
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
            self._original = None


class GcTimer:
    """Time every garbage collection, in whichever thread it runs.

    A collection holds the GIL from start to end, so one in any thread stops the event loop
    for its whole length. gc.callbacks cost nothing between collections: the measured run
    keeps this on.
    """

    def __init__(self) -> None:
        """Start with no collections."""
        # (monotonic start, seconds, generation, thread name, objects collected)
        self.collections: list[tuple[float, float, int, str, int]] = []
        self._start = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.monotonic()
            return
        self.collections.append(
            (
                self._start,
                time.monotonic() - self._start,
                info["generation"],
                threading.current_thread().name,
                info["collected"],
            )
        )

    def install(self) -> None:
        """Listen to the collector."""
        gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        """Stop listening."""
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def figures(self, start: float, end: float) -> dict[str, Any]:
        """Return counts and durations of the collections between `start` and `end`."""
        picked = [c for c in self.collections if start <= c[0] < end]
        by_generation: dict[str, dict[str, Any]] = {}
        for generation in (0, 1, 2):
            times = [c[1] * 1000 for c in picked if c[2] == generation]
            by_generation[f"gen{generation}"] = {
                "count": len(times),
                "total_ms": sum(times),
                "max_ms": max(times, default=0.0),
            }
        return {
            "by_generation": by_generation,
            "full_collections": [
                {
                    "at_s": round(begin - start, 3),
                    "ms": round(took * 1000, 1),
                    "thread": thread,
                    "collected": collected,
                }
                for begin, took, generation, thread, collected in picked
                if generation == 2
            ],
        }

    def full(self) -> list[tuple[float, float]]:
        """Return each full collection as (start, seconds)."""
        return [
            (begin, took) for begin, took, generation, *_ in self.collections if generation == 2
        ]

    def intervals(self) -> list[tuple[float, float, str]]:
        """Return each collection as (start, seconds, label)."""
        return [
            (
                begin,
                took,
                f"gc gen{generation} in {'event loop' if thread == 'MainThread' else thread}",
            )
            for begin, took, generation, thread, _ in self.collections
        ]


def stall_figures(
    probe: LagProbe,
    collections: GcTimer,
    sampler: StackSampler | None,
    slow: SlowCallbacks | None,
    start: float,
    end: float,
) -> dict[str, Any]:
    """Return the collections from `start` to `end`, the late wake-ups they explain, and in a
    profiled run (`sampler` and `slow` given) the stacks, slow callbacks and what those explain.
    """
    profile = None
    if sampler is not None and slow is not None:
        profile = (
            sampler.report()
            | slow_callback_figures(slow, start, end)
            | {
                "stalls": explain_stalls(
                    probe.samples,
                    collections.intervals() + slow.slow,
                    start,
                    end,
                    STALL_THRESHOLD_S,
                )
            }
        )
    return {
        "gc": collections.figures(start, end),
        "stalls": explain_stalls(
            probe.samples, collections.intervals(), start, end, STALL_THRESHOLD_S
        ),
        "profile": profile,
    }


def union_length(segments: list[tuple[float, float]]) -> float:
    """Return the total length covered by (start, end) segments."""
    total, reach = 0.0, float("-inf")
    for begin, finish in sorted(segments):
        if finish > reach:
            total += finish - max(begin, reach)
            reach = finish
    return total


def explain_stalls(
    samples: list[tuple[float, float]],
    intervals: list[tuple[float, float, str]],
    start: float,
    end: float,
    threshold: float,
) -> list[dict[str, Any]]:
    """Return each wake-up over `threshold` late, with what overlapped the time it waited.

    A wake-up `late` seconds late at `when` means the loop could not run the probe during
    (when - late, when]. What the given intervals (collections, slow callbacks) do not cover of
    that, the loop spent waiting for the GIL or a CPU, or running many short callbacks.
    """
    stalls = []
    for when, late in samples:
        if not start <= when < end or late <= threshold:
            continue
        covered: Counter[str] = Counter()
        segments = []
        for begin, took, what in intervals:
            low, high = max(when - late, begin), min(when, begin + took)
            if high > low:
                covered[what] += high - low
                segments.append((low, high))
        stalls.append(
            {
                "at_s": round(when - start, 3),
                "late_ms": round(late * 1000, 1),
                "covered_ms": round(1000 * union_length(segments), 1),
                "by": {what: round(1000 * seconds, 1) for what, seconds in covered.items()},
            }
        )
    return sorted(stalls, key=lambda row: -row["late_ms"])


def slow_callback_figures(slow: SlowCallbacks, start: float, end: float) -> dict[str, Any]:
    """Return the slow callbacks between `start` and `end`, grouped by what ran."""
    by_callback: defaultdict[str, list[float]] = defaultdict(list)
    for begin, took, what in slow.slow:
        if start <= begin < end:
            by_callback[what].append(took * 1000)
    return {
        "callbacks": slow.callbacks,
        "callback_busy_s": slow.busy,
        "slow_callbacks": sorted(
            (
                {"what": what, "count": len(times), "max_ms": max(times), "total_ms": sum(times)}
                for what, times in by_callback.items()
            ),
            key=lambda row: -row["total_ms"],
        ),
    }


def describe_handle(handle: asyncio.events.Handle) -> str:
    """Name what a loop callback runs: a task's coroutine, or the callback's function."""
    callback_ = handle._callback
    owner = getattr(callback_, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        code = getattr(coro, "cr_code", None)
        where = f" ({shorten(code.co_filename)}:{code.co_firstlineno})" if code else ""
        return f"task {owner.get_name()}: {getattr(coro, '__qualname__', coro)}{where}"
    target = getattr(callback_, "__func__", callback_)
    code = getattr(target, "__code__", None)
    where = f" ({shorten(code.co_filename)}:{code.co_firstlineno})" if code else ""
    name = getattr(target, "__qualname__", repr(target))
    args = ""
    if handle._args:
        first = handle._args[0]
        inner = getattr(first, "target", None) or getattr(first, "job", None)
        args = f" [{getattr(first, 'name', None) or inner or type(first).__name__}]"
    return f"{name}{where}{args}"


def shorten(filename: str) -> str:
    """Return a file name relative to meshbot, Home Assistant or the standard library."""
    if filename.startswith(MESHBOT_DIR):
        return "meshbot" + filename[len(MESHBOT_DIR) :]
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# The publisher process


@dataclass
class Publisher:
    """The publisher process, driven by one JSON line each way."""

    process: asyncio.subprocess.Process
    stderr_path: Path
    lines: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def spawn(
        cls, port: int, args: argparse.Namespace, directory: Path, seconds: float
    ) -> Publisher:
        """Start building the feed in a fresh process; it connects and waits for `go`."""
        stderr_path = directory / "publisher.stderr"
        with stderr_path.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.ingest",
                "--publisher-child",
                str(port),
                "--rate",
                str(args.rate),
                "--seconds",
                str(seconds),
                "--nodes",
                str(args.nodes),
                "--garbage",
                str(args.garbage),
                "--seed",
                str(args.seed),
                "--batch-ms",
                str(args.batch_ms),
                cwd=REPO,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        return cls(process, stderr_path)

    async def read(self, limit: float) -> dict[str, Any]:
        """Return the next JSON line the publisher prints, waiting at most `limit` seconds."""
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(limit):
                line = await self.process.stdout.readline()
        except TimeoutError as err:
            raise EndToEndError(f"the publisher said nothing for {limit:g} s") from err
        if not line:
            await self.process.wait()
            tail = self.stderr_path.read_text(errors="replace")[-3000:]
            raise EndToEndError(f"the publisher exited ({self.process.returncode}):\n{tail}")
        record = json.loads(line)
        self.lines.append(record)
        return record

    async def go(self) -> None:
        """Tell the publisher to start publishing."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()

    async def close(self) -> None:
        """Wait for the publisher to exit; kill it if it does not."""
        if self.process.returncode is None:
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


# Home Assistant


async def wait_drained(count: Callable[[], int], expected: int, deadline: float) -> float:
    """Wait until `count()` reaches `expected` or stops moving; return when it last moved."""
    loop = asyncio.get_running_loop()
    last_count, last_change = count(), loop.time()
    while loop.time() < deadline:
        if (current := count()) != last_count:
            last_count, last_change = current, loop.time()
        elif current >= expected or loop.time() - last_change > QUIET_SECONDS * 4:
            break
        await asyncio.sleep(0.01)
    return last_change


async def stop_measuring(
    collections: Any,
    sampler: Any,
    slow: Any,
    timeline_task: asyncio.Task[Any] | None,
    probe: Any,
    removers: list[Callable[[], None]],
) -> None:
    """Stop every probe and listener a run installed."""
    collections.uninstall()
    if sampler is not None and slow is not None:
        sampler.stop()
        slow.uninstall()
    if timeline_task is not None:
        timeline_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timeline_task
    await probe.stop()
    for remove in removers:
        remove()


async def start_recorder(hass: HomeAssistant, database: Path) -> recorder.Recorder:
    """Set up the recorder on an sqlite file with its defaults; return once it records."""
    recorder_helper.async_initialize_recorder(hass)
    config = {recorder.DOMAIN: {recorder.CONF_DB_URL: f"sqlite:///{database}"}}
    if not await async_setup_component(hass, recorder.DOMAIN, config):
        raise EndToEndError("the recorder did not set up")
    instance = recorder.get_instance(hass)
    try:
        async with asyncio.timeout(RECORDER_READY_TIMEOUT_S):
            await instance.async_recorder_ready.wait()
    except TimeoutError as err:
        raise EndToEndError("the recorder was not ready within a minute") from err
    if not instance.recording:
        raise EndToEndError("the recorder set up but does not record")
    return instance


async def start_meshbot(hass: HomeAssistant, port: int, max_devices: int) -> ConfigEntry:
    """Set up a meshbot entry with a mesh collector on the broker; return once it subscribed."""
    base = entry_for(mesh=broker_section(port))
    options = {
        **base.options,
        CONF_NODE_POLICY: POLICY_ALL,
        CONF_MAX_TRACKED_NODES: max_devices,
        CONF_TRACK_POSITIONS: True,
    }
    entry = MockConfigEntry(domain=DOMAIN, title=base.title, data=dict(base.data), options=options)
    entry.add_to_hass(hass)
    if not await hass.config_entries.async_setup(entry.entry_id):
        raise EndToEndError(f"meshbot did not set up ({entry.state}, {entry.reason})")
    await hass.async_block_till_done()
    if entry.state is not ConfigEntryState.LOADED:
        raise EndToEndError(f"meshbot is {entry.state}, not loaded")
    if await wait_links(entry, 1, 10.0) < 1:
        raise EndToEndError("the mesh collector did not connect to the broker within 10 s")
    return entry


def database_rows(database: Path) -> dict[str, int]:
    """Count the rows the recorder wrote (read-only, beside the recorder's connection)."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("states", "events", "state_attributes")
        }


async def sample_timeline(
    hass: HomeAssistant,
    entry: ConfigEntry,
    instance: recorder.Recorder,
    log: WriteLog,
    start: float,
    timeline: list[dict[str, Any]],
) -> None:
    """Record, once a second, what meshbot decoded and what waits in the recorder's queue.

    Only in-memory reads: file reads on the loop release and retake the GIL, and while the
    recorder is busy each retake waits up to the switch interval (5 ms).
    """
    hub = entry.runtime_data
    link = hub.links[LinkKind.MESH].link
    loop = asyncio.get_running_loop()
    while True:
        changed, reported = log.totals()
        timeline.append(
            {
                "t": round(loop.time() - start, 3),
                "link_messages": link.counters.messages,
                "decoder_envelopes": hub.mesh.decoder.counters.envelopes,
                "recorder_backlog": instance.backlog,
                "state_changed": changed,
                "state_reported": reported,
                "nodes_discovered": log.events[EVENT_NODE_DISCOVERED],
                "tracked": len(hub.mesh.tracked),
            }
        )
        await asyncio.sleep(SAMPLE_SECONDS)


def saved_at(path: Path, since: float) -> float | None:
    """Return when a file was last written, in seconds after `since`, or None if it is not."""
    try:
        return path.stat().st_mtime - since
    except FileNotFoundError:
        return None


def rates(timeline: list[dict[str, Any]], key: str) -> list[int]:
    """Return the per-second increase of a cumulative timeline counter."""
    return [later[key] - earlier[key] for earlier, later in pairwise(timeline)]


async def measure_in_hass(
    args: argparse.Namespace,
    broker: MosquittoBroker,
    publisher: Publisher,
    directory: Path,
    min_interval: float,
    profile: bool,
) -> dict[str, Any]:
    """Run the feed into Home Assistant and measure it from its event loop."""
    config_dir = directory / "config"
    config_dir.mkdir()
    database = directory / "home-assistant_v2.db"
    figures: dict[str, Any] = {}
    async with async_test_home_assistant(config_dir=str(config_dir)) as hass:
        # What the harness's enable_custom_integrations fixture does.
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
        try:
            await feed_hass(hass, args, broker, publisher, database, min_interval, profile, figures)
        finally:
            await hass.async_stop(force=True)
    figures["database_rows"] = await asyncio.to_thread(database_rows, database)
    figures["database_mb"] = database.stat().st_size / 1e6
    return figures


async def feed_hass(
    hass: HomeAssistant,
    args: argparse.Namespace,
    broker: MosquittoBroker,
    publisher: Publisher,
    database: Path,
    min_interval: float,
    profile: bool,
    figures: dict[str, Any],
) -> None:
    """Set up the recorder and meshbot, let the publisher go, then drain and collect."""
    loop = asyncio.get_running_loop()
    instance = await start_recorder(hass, database)
    # The price of one full collection before meshbot exists, to set against the one after the
    # feed: the difference is what meshbot's state and entities add to every full collection.
    figures["full_collection_without_meshbot_ms"] = full_collection_ms()
    figures["tracked_without_meshbot"] = len(gc.get_objects())
    without_meshbot = tracked_by_type()
    began = time.perf_counter()
    entry = await start_meshbot(hass, broker.port, args.max_devices)
    hub = entry.runtime_data
    mesh = hub.mesh
    link = hub.links[LinkKind.MESH].link
    store_file = Path(hass.config.path(".storage", f"{DOMAIN}.{entry.entry_id}.mesh"))
    figures["setup_s"] = time.perf_counter() - began
    ready = await publisher.read(PUBLISHER_READY_TIMEOUT_S)
    figures["feed"] = ready

    log = WriteLog()
    removers = log.listen(hass)
    probe = LagProbe(args.lag_interval_ms / 1000)
    probe.start()
    sampler = StackSampler(probe, args.lag_interval_ms / 1000 * 2) if profile else None
    slow = SlowCallbacks(SLOW_CALLBACK_S) if profile else None
    collections = GcTimer()
    timeline: list[dict[str, Any]] = []
    timeline_task: asyncio.Task[None] | None = None
    try:
        # Idle first: the loop's delays without traffic (this also lets the SUBACK land).
        idle_start = loop.time()
        await asyncio.sleep(args.idle_seconds)
        if (before := link.counters.messages) != 0:
            raise EndToEndError(f"meshbot received {before} messages before the feed started")

        cpu_before = thread_cpu()
        mosquitto_before = process_cpu(broker.process.pid if broker.process else None)
        log.counting = True
        collections.install()
        go_wall, go = time.time(), loop.time()
        timeline_task = loop.create_task(
            sample_timeline(hass, entry, instance, log, go, timeline), name="bench timeline"
        )
        if sampler is not None and slow is not None:
            slow.install()
            sampler.start()
        await publisher.go()
        result = await publisher.read(args.seconds * 2 + 60)
        window_end = loop.time()
        cpu_after = thread_cpu()
        mosquitto_after = process_cpu(broker.process.pid if broker.process else None)
        backlog_at_end = instance.backlog
        published = result["published"]
        # What the recorder still had to do when the feed ended: it commits every 5 s, and a
        # sync commits at once, after everything queued before it.
        async with asyncio.timeout(RECORDER_SYNC_TIMEOUT_S):
            await instance.async_block_till_done()
        recorder_caught_up = loop.time()
        saved_during_feed = saved_at(store_file, go_wall)

        # Drain: meshbot decodes what is still in flight, then flushes once more.
        counters = mesh.decoder.counters
        decoded_at = await wait_drained(
            lambda: counters.envelopes, published, window_end + args.drain_seconds
        )
        await asyncio.sleep(FLUSH_SECONDS * 1.2)
        backlog_after_drain = instance.backlog
        async with asyncio.timeout(RECORDER_SYNC_TIMEOUT_S):
            await instance.async_block_till_done()
        # Keep measuring the loop a few seconds after the feed: the drain, meshbot's last flush
        # and the recorder's commit happen there.
        settle_until = window_end + args.settle_seconds
        if (rest := settle_until - loop.time()) > 0:
            await asyncio.sleep(rest)
        end, end_wall = loop.time(), time.time()
    finally:
        await stop_measuring(collections, sampler, slow, timeline_task, probe, removers)
    figures["full_collection_with_meshbot_ms"] = full_collection_ms()
    figures["tracked_with_meshbot"] = len(gc.get_objects())
    figures["grown_with_meshbot"] = grown_types(without_meshbot, tracked_by_type())

    registry = er.async_get(hass)
    entities = er.async_entries_for_config_entry(registry, entry.entry_id)
    entity_ids = {e.entity_id for e in entities}
    figures.update(
        {
            "published": published,
            "publisher": result,
            "link": {
                "messages": link.counters.messages,
                "oversized": link.counters.oversized,
                "bad_topics": link.counters.bad_topics,
                "handler_errors": link.counters.handler_errors,
            },
            "counters": {
                "envelopes": counters.envelopes,
                "decoded": counters.decoded,
                "duplicates": counters.duplicates,
                "rejected": dict(sorted(counters.rejected.items())),
                "rejected_total": counters.rejected_total,
            },
            "window_s": window_end - go,
            "meshbot_drain_s": max(0.0, decoded_at - window_end),
            "lag": {
                "interval_ms": args.lag_interval_ms,
                "idle": lag_figures(probe.samples, idle_start, go),
                "window": lag_figures(probe.samples, go, window_end),
                "after": lag_figures(probe.samples, window_end, end),
                "window_outside_full_collections": lag_outside(
                    probe.samples, collections.full(), go, window_end
                ),
                "per_second_max_ms": lag_per_second(probe.samples, go, end),
            },
            "writes": write_figures(log, entity_ids, go_wall, end_wall, min_interval),
            "writes_per_second": rates(timeline, "state_changed"),
            "reported_per_second": rates(timeline, "state_reported"),
            "events": dict(log.events.most_common()),
            "recorder": recorder_figures(
                instance,
                timeline,
                backlog_at_end,
                backlog_after_drain,
                recorder_caught_up - window_end,
            ),
            "mesh_saved": {
                "file": store_file.name,
                "during_feed_at_s": saved_during_feed,
                "by_end_at_s": saved_at(store_file, go_wall),
                "end_s": end_wall - go_wall,
            },
            "cpu_window": cpu_window_figures(
                window_end - go,
                cpu_before,
                cpu_after,
                result["cpu_s"],
                mosquitto_before,
                mosquitto_after,
            ),
            "received_per_second": rates(timeline, "decoder_envelopes"),
            "discovered_per_second": rates(timeline, "nodes_discovered"),
            # Node devices that existed at the end of each second.
            "devices_per_second": [sample["tracked"] for sample in timeline[1:]],
            "meshbot": {
                "nodes": len(mesh.state.nodes),
                "links": len(mesh.state.links),
                "tracked": len(mesh.tracked),
                "entities": len(entities),
                "entities_enabled": sum(e.disabled_by is None for e in entities),
                "entities_by_platform": dict(Counter(e.domain for e in entities)),
            },
            **stall_figures(probe, collections, sampler, slow, go, end),
        }
    )
    # Without meshbot again: what the entry's state, devices and entities cost each collection.
    await hass.config_entries.async_unload(entry.entry_id)
    del hub, mesh, link
    figures["full_collection_after_unload_ms"] = full_collection_ms()
    figures["tracked_after_unload"] = len(gc.get_objects())
    figures["grown_after_unload"] = grown_types(without_meshbot, tracked_by_type())


async def measure(
    args: argparse.Namespace, seconds: float, min_interval: float, profile: bool
) -> dict[str, Any]:
    """Start the broker and publisher, run the feed into Home Assistant, return the figures."""
    collector = LogCollector()
    logging.getLogger().addHandler(collector)
    broker = MosquittoBroker().start()
    try:
        with tempfile.TemporaryDirectory(prefix="meshbot-bench-e2e-") as tmp:
            directory = Path(tmp)
            # Started first: it builds and encrypts the feed while Home Assistant sets up.
            publisher = await Publisher.spawn(broker.port, args, directory, seconds)
            try:
                figures = await measure_in_hass(
                    args, broker, publisher, directory, min_interval, profile
                )
            finally:
                await publisher.close()
    finally:
        broker.close()
        logging.getLogger().removeHandler(collector)
    figures["meshbot_log"] = collector.meshbot
    figures["other_errors"] = sorted(set(collector.other_errors))
    return figures


# The stand-in: Home Assistant's share of the same output, without meshbot

STANDIN_DOMAIN = "bench_standin"
STANDIN_EVENT = "bench_standin_discovered"


class StandInFlow(ConfigFlow):
    """Config entries need a flow handler; the stand-in's entry is made directly."""

    VERSION = 1


class StandInSensor(SensorEntity):
    """A plain sensor shaped like meshbot's node sensors: on a device, with a unit and a class."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    _attr_device_class = SensorDeviceClass.SIGNAL_STRENGTH
    _attr_native_unit_of_measurement = "dB"
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, device: int, index: int) -> None:
        """Be sensor `index` of stand-in device `device`."""
        self._attr_unique_id = f"{device}_{index}"
        self._attr_name = f"Value {index}"
        self._attr_device_info = DeviceInfo(
            identifiers={(STANDIN_DOMAIN, str(device))}, name=f"Stand-in {device}"
        )
        self._attr_native_value = 0.0

    @callback
    def show(self, value: float) -> None:
        """Write a value to the state machine (the same value again is a state_reported)."""
        self._attr_native_value = value
        self.async_write_ha_state()


class StandIn:
    """A config entry whose sensor platform adds sensors when told, device by device."""

    def __init__(self, hass: HomeAssistant, entities: int, devices: int) -> None:
        """Plan `entities` sensors: an even share on each of `devices` devices, the rest on a
        hub device added at setup, as meshbot's hub sensors are.
        """
        self.hass = hass
        per_device = max(1, entities // max(1, devices) - 1)
        hub = max(0, entities - per_device * devices)
        self._hub = [StandInSensor(0, index) for index in range(hub)]
        self._devices = [
            [StandInSensor(device, index) for index in range(per_device)]
            for device in range(1, devices + 1)
        ]
        self.added: list[StandInSensor] = []
        self.devices_added = 0
        self._add_entities: Callable[[list[StandInSensor]], None] | None = None

    async def setup(self) -> None:
        """Set up the entry with the hub's sensors."""

        async def setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
            await hass.config_entries.async_forward_entry_setups(entry, [Platform.SENSOR])
            return True

        async def setup_sensors(
            hass: HomeAssistant, entry: ConfigEntry, add_entities: Callable[..., None]
        ) -> None:
            self._add_entities = add_entities

        hass = self.hass
        mock_integration(hass, MockModule(STANDIN_DOMAIN, async_setup_entry=setup_entry))
        # A config flow module, even one that does nothing: the flow itself is StandInFlow.
        mock_platform(hass, f"{STANDIN_DOMAIN}.config_flow", None)
        mock_platform(
            hass,
            f"{STANDIN_DOMAIN}.{Platform.SENSOR}",
            MockPlatform(async_setup_entry=setup_sensors),
        )
        entry = MockConfigEntry(domain=STANDIN_DOMAIN, title="stand-in")
        entry.add_to_hass(hass)
        if not await hass.config_entries.async_setup(entry.entry_id):
            raise EndToEndError(f"the stand-in did not set up ({entry.state})")
        self.add(self._hub)
        await hass.async_block_till_done()

    def add(self, sensors: list[StandInSensor]) -> None:
        """Add sensors as meshbot adds a node's: Home Assistant registers them in a task."""
        if self._add_entities is None:
            raise EndToEndError("the stand-in's sensor platform did not set up")
        self._add_entities(sensors)
        self.added += sensors

    def add_devices(self, total: int) -> None:
        """Add devices, with their sensors, until `total` of them exist."""
        for sensors in self._devices[self.devices_added : total]:
            self.add(sensors)
        self.devices_added = max(self.devices_added, min(total, len(self._devices)))


async def replay_output(stand_in: StandIn, replay: dict[str, Any]) -> None:
    """Each second, add the devices, make the state writes and fire the events meshbot did,
    in one burst as meshbot's flush does; the writes go round robin over the sensors added.
    """
    loop = asyncio.get_running_loop()
    hass = stand_in.hass
    start = loop.time()
    cursor = 0
    seconds = zip(
        replay["devices_per_second"],
        replay["changed_per_second"],
        replay["reported_per_second"],
        replay["events_per_second"],
        strict=True,
    )
    for second, (devices, changed, reported, events) in enumerate(seconds):
        if (rest := start + second + 1 - loop.time()) > 0:
            await asyncio.sleep(rest)
        before = len(stand_in.added)
        stand_in.add_devices(devices)
        # A sensor's first state is written by its being added: meshbot's counts include those.
        changed = max(0, changed - (len(stand_in.added) - before))
        sensors = [sensor for sensor in stand_in.added if sensor.hass is not None]
        if sensors:
            for number in range(changed + reported):
                sensor = sensors[cursor % len(sensors)]
                cursor += 1
                # Past the changed writes, the same value again: a state_reported.
                value = sensor.native_value if number >= changed else float(cursor)
                sensor.show(float(value or 0.0))
        for number in range(events):
            hass.bus.async_fire(STANDIN_EVENT, {"node_id": f"!{second:04x}{number:04x}"})


async def measure_standin_in(
    hass: HomeAssistant, replay: dict[str, Any], database: Path, figures: dict[str, Any]
) -> None:
    """Set up the recorder and the stand-in, replay meshbot's output, fill `figures`."""
    loop = asyncio.get_running_loop()
    await start_recorder(hass, database)
    figures["full_collection_before_ms"] = full_collection_ms()
    stand_in = StandIn(hass, replay["entities"], replay["devices"])
    await stand_in.setup()
    # The same instruments as meshbot's run, so both carry the same measuring cost.
    log = WriteLog()
    removers = log.listen(hass)
    probe = LagProbe(replay["lag_interval_ms"] / 1000)
    probe.start()
    collections = GcTimer()
    try:
        await asyncio.sleep(replay["idle_seconds"])
        log.counting = True
        collections.install()
        go = loop.time()
        await replay_output(stand_in, replay)
        end = loop.time()
    finally:
        collections.uninstall()
        await probe.stop()
        for remove in removers:
            remove()
    window_end = go + replay["window_s"]
    figures["full_collection_after_ms"] = full_collection_ms()
    figures["tracked_after"] = len(gc.get_objects())
    changed, reported = log.totals()
    figures.update(
        {
            "entities": len(stand_in.added),
            "devices": stand_in.devices_added,
            "state_changed": changed,
            "state_reported": reported,
            "events": log.events[STANDIN_EVENT],
            "lag": {
                "window": lag_figures(probe.samples, go, window_end),
                "window_outside_full_collections": lag_outside(
                    probe.samples, collections.full(), go, window_end
                ),
                "after": lag_figures(probe.samples, window_end, end),
            },
            "gc": collections.figures(go, window_end),
        }
    )


async def standin_in_hass(replay: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Measure Home Assistant, recorder on, making meshbot's output without meshbot."""
    config_dir = directory / "config"
    config_dir.mkdir()
    figures: dict[str, Any] = {}
    with mock_config_flow(STANDIN_DOMAIN, StandInFlow):
        async with async_test_home_assistant(config_dir=str(config_dir)) as hass:
            try:
                await measure_standin_in(hass, replay, directory / "home-assistant_v2.db", figures)
            finally:
                await hass.async_stop(force=True)
    return figures


def standin_replay(args: argparse.Namespace, facts: dict[str, Any]) -> dict[str, Any]:
    """Return what the stand-in replays of a measured run (`facts`): its output per second."""
    return {
        "entities": facts["meshbot"]["entities_enabled"],
        "devices": facts["meshbot"]["tracked"],
        "devices_per_second": facts["devices_per_second"],
        "changed_per_second": facts["writes_per_second"],
        "reported_per_second": facts["reported_per_second"],
        "events_per_second": facts["discovered_per_second"],
        "window_s": facts["window_s"],
        "lag_interval_ms": args.lag_interval_ms,
        "idle_seconds": args.idle_seconds,
    }


def run_standin(args: argparse.Namespace, facts: dict[str, Any]) -> dict[str, Any]:
    """Replay a measured run's output from a stand-in, in a fresh process.

    Same sensors and devices, added as fast, and the same state writes and bus events second by
    second, without meshbot: what Home Assistant itself pays for what meshbot asked of it, the
    yardstick for meshbot's own share of the loop lag. A fresh process (`bench.ingest
    --standin-child`), so that the stand-in's collections do not walk what meshbot's run left
    behind.
    """
    with tempfile.TemporaryDirectory(prefix="meshbot-bench-standin-") as tmp:
        replay_path = Path(tmp) / "replay.json"
        replay_path.write_text(json.dumps(standin_replay(args, facts)))
        child = subprocess.run(
            [sys.executable, "-m", "bench.ingest", "--standin-child", str(replay_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
    if child.returncode != 0:
        raise EndToEndError(f"the stand-in process failed ({child.returncode}):\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def standin_child(replay_path: Path) -> dict[str, Any]:
    """The stand-in's process: replay what `replay_path` describes, return the figures."""
    replay = json.loads(replay_path.read_text())

    async def measure_standin() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="meshbot-bench-standin-hass-") as tmp:
            return await standin_in_hass(replay, Path(tmp))

    return asyncio.run(measure_standin())


def run(
    args: argparse.Namespace, seconds: float, min_interval: float, profile: bool = False
) -> dict[str, Any]:
    """Run one end-to-end measurement in a fresh event loop.

    `min_interval` is the write interval under which an entity counts as written too often.
    """
    return asyncio.run(measure(args, seconds, min_interval, profile))
