"""Lightning benchmark: how fast meshbot's lightning package takes a strike feed, and its tiles.

Run with `script/bench-lightning`. Every figure is measured in this run:

A. `strike_path`: strikes/s on one core of `StrikeWindow.ingest` (parse_strike: UTF-8 and JSON
   decoding, validation, haversine distance and initial bearing; then the window insert with
   expiry, the nearest strike and the 10,000-strike cap) over `--strikes` relay payloads, beside
   a baseline in the same process on the same payloads: bare `json.loads`. The feed is a storm
   burst as the relay delivers it for the tiles covering `--radius` km around Paris: storm cells
   drifting at 20-60 km/h with strikes scattered around them, only points inside the subscribed
   tiles, strike times at `--rate`/s, each delivered 0.5-3 s late (so slightly out of order).
   Baseline and pipeline passes alternate, each round then adds a parse-only pass that splits
   the cost into parse and insert; figures are medians. The counters must account for every
   payload, and the window must keep exactly the strikes within the radius (checked against a
   haversine computed here). The cost of `summary()` (count, nearest, rate, trend) is timed on a
   full window whose 10,000 strikes span its 30 minutes (the burst's own window holds its last
   20 s only, too short for a trend): the integration calls it on the event loop each refresh.
B. `tiles`: for places from the equator to near the poles and across the antimeridian, and
   radii from 10 to 2000 km, the precision and number of tiles `covering_tiles` subscribes to,
   how much area they cover beyond the circle, and whether they really cover it (points sampled
   on and inside the circle must fall in a subscribed tile).

C. `end_to_end`: a burst of `--rate` strikes/s for `--seconds` through a real Mosquitto into an
   in-process Home Assistant with the recorder on (sqlite, default commit interval) and a meshbot
   lightning monitor watching home (Paris) within `--monitor-radius` km, its nearby alert set to
   start during the burst, no strikes on the map. A separate process (paho, `--qos`) publishes
   on the relay's topic shapes (`blitzortung/1.1/` + one level per geohash character) for the
   tiles read from meshbot's link: a few storm cells drifting inside the radius (one of them
   forms near home a third of the way in), cells outside the radius but inside the tiles (meshbot
   must drop them), 1% strikes replayed 35-50 minutes late (too old) and 0.2% broken payloads; a
   second subscriber there counts what Mosquitto delivers. Measured inside Home Assistant
   (bench/lightning_e2e.py, on bench/end_to_end.py's probes): event-loop lag, every payload
   accounted for by meshbot's counters and each outcome equal to what was sent, strike bus
   events + `summarised` = strikes added to the window, state writes per entity, strike
   events per flush and per second, the recorder's backlog and drain.

Targets: strike path >= 50,000 strikes/s, strike path / json.loads >= 0.25, summary of a full
window <= 20 ms; tiles: every circle covered, at most 9 tiles (unless precision 1 already needs
more); end to end: the feed at >= 98% of its rate, everything delivered and accounted for, loop
lag p99 <= 20 ms during the burst, at most 11 strike events per flush, no entity written twice
within 1 s, the alert started during the burst. A missed target is printed and recorded (with a
cProfile of the strike path when A misses, and a sampled profile of the event loop from a
second, perturbed run when C's lag misses); only a crash exits non-zero.

Parts are functions `part_<name>(args) -> Part` registered in PARTS; `--only NAME` runs one.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
import cProfile
from dataclasses import asdict, dataclass
import gc
import json
import math
import os
from pathlib import Path
import random
import statistics
import sys
import threading
import time
from typing import Any

from custom_components.meshbot.geo.sphere import EARTH_RADIUS_KM, haversine_km
from custom_components.meshbot.lightning.geohash import BASE32, covering_tiles, encode
from custom_components.meshbot.lightning.strikes import StrikeCounters, parse_strike
from custom_components.meshbot.lightning.window import (
    DEFAULT_MAX_STRIKES,
    DEFAULT_WINDOW_S,
    StrikeWindow,
)

from .report import (
    BenchError,
    Part,
    add_loop_arguments,
    add_only,
    add_seed_output,
    cpu_shares,
    emit,
    gc_lines,
    lag_lines,
    loop_parameters,
    note_busy,
    profile_text,
    profiled_run,
    run_and_report,
    source_details,
)

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "lightning.json"

STRIKE_PATH_TARGET = 50_000.0  # strikes/s
RATIO_TARGET = 0.25  # strike path / json.loads
SUMMARY_TARGET_MS = 20.0
MAX_TILES = 9

HOME = (48.8566, 2.3522)  # Paris
ALERT_KM = 15.0
CLOCK_START = 1_700_000_000.0
CELLS = 12
CELL_SCATTER_KM = 6.0
SUMMARY_REPEATS = 20

PLACES = {
    "Paris": (48.8566, 2.3522),
    "New York": (40.7128, -74.0060),
    "Sydney": (-33.8688, 151.2093),
    "Singapore": (1.3521, 103.8198),
    "Reykjavik": (64.1466, -21.9426),
    "Suva (antimeridian)": (-18.1248, 178.4501),
    "Alert (82.5 N)": (82.5018, -62.3481),
    "McMurdo (77.8 S)": (-77.8460, 166.6760),
}
RADII = (10.0, 50.0, 100.0, 500.0, 2000.0)
RING_SAMPLES = 720

# C. End to end
E2E_LAG_P99_TARGET_MS = 20.0
# The feed must really run at the rate asked, or the other end-to-end figures mean little.
FEED_RATE_TARGET = 0.98
# A flush fires one event per strike up to MAX_STRIKE_EVENTS_PER_SECOND, then one summary.
EVENTS_PER_FLUSH_TARGET = 11
WRITES_PER_SECOND_TARGET = 1
# The alert the monitor is configured with: this many strikes within this distance.
E2E_ALERT_KM = 20.0
E2E_ALERT_STRIKES = 5
E2E_ALERT_MINUTES = 10.0
INSIDE_CELLS = 4
OUTSIDE_CELLS = 2
NEAR_CELL_KM = 6.0
# Strikes replayed this late (minutes) are past the 30-minute window: meshbot drops them as too old.
OLD_SHARE = 0.01
OLD_MINUTES = (35.0, 50.0)
# Broken payloads, one of each kind in turn, with the rejection meshbot must count for each.
GARBAGE_SHARE = 0.002
GARBAGE_KINDS = ("invalid_json", "missing_field", "bad_latitude")
# Detection to delivery delay of a live strike, seconds: relays deliver slightly out of order.
LIVE_DELAY_S = (0.5, 3.0)
# Points this close to the radius could land on either side of it: they are drawn again.
BOUNDARY_MARGIN_KM = 0.5
TOPIC_PREFIX = "blitzortung/1.1/"


# Geometry helpers of the bench itself


def tile_bounds(tile: str) -> tuple[float, float, float, float]:
    """Return (south, north, west, east) of a geohash cell."""
    south, north, west, east = -90.0, 90.0, -180.0, 180.0
    even = True
    for char in tile:
        bits = BASE32.index(char)
        for shift in range(4, -1, -1):
            bit = (bits >> shift) & 1
            if even:
                middle = (west + east) / 2
                west, east = (middle, east) if bit else (west, middle)
            else:
                middle = (south + north) / 2
                south, north = (middle, north) if bit else (south, middle)
            even = not even
    return south, north, west, east


def destination(
    latitude: float, longitude: float, distance_km: float, bearing: float
) -> tuple[float, float]:
    """Return the point at a distance and initial bearing on the sphere."""
    delta = distance_km / EARTH_RADIUS_KM
    theta, phi1, lambda1 = math.radians(bearing), math.radians(latitude), math.radians(longitude)
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    return math.degrees(phi2), (math.degrees(lambda2) + 540.0) % 360.0 - 180.0


# A. Strike path


@dataclass
class Feed:
    """Relay payloads in delivery order, when each arrives, and which fall within the radius."""

    payloads: list[bytes]
    arrivals: list[float]
    inside: int
    facts: dict[str, Any]


def build_feed(count: int, radius_km: float, rate: float, seed: int) -> Feed:
    """Return a storm burst over the tiles covering the radius, as the relay would deliver it."""
    rng = random.Random(seed)
    tiles = covering_tiles(*HOME, radius_km)
    precision = len(next(iter(tiles)))
    bounds = [tile_bounds(tile) for tile in tiles]
    south, north = min(b[0] for b in bounds), max(b[1] for b in bounds)
    west, east = min(b[2] for b in bounds), max(b[3] for b in bounds)
    cells = []
    for _ in range(CELLS):
        speed_km_s = rng.uniform(20, 60) / 3600
        cells.append(
            (
                rng.uniform(south, north),
                rng.uniform(west, east),
                rng.uniform(0, 360),
                speed_km_s,
                rng.uniform(0.2, 1.0),
            )
        )
    weights = [cell[4] for cell in cells]
    records: list[tuple[float, bytes, bool]] = []
    while len(records) < count:
        strike_time = CLOCK_START + len(records) / rate
        latitude0, longitude0, heading, speed, _ = rng.choices(cells, weights)[0]
        centre = destination(latitude0, longitude0, speed * (strike_time - CLOCK_START), heading)
        latitude, longitude = destination(
            *centre, abs(rng.gauss(0, CELL_SCATTER_KM)), rng.uniform(0, 360)
        )
        # The relay sends only what falls in a subscribed tile.
        if encode(latitude, longitude, precision) not in tiles:
            continue
        stamp = int(strike_time * 1e9) + rng.randrange(1_000_000)
        payload = json.dumps(
            {
                "time": stamp,
                "lat": round(latitude, 6),
                "lon": round(longitude, 6),
                "status": rng.choice((0, 0, 1, 2)),
                "region": 1,
            },
            separators=(",", ":"),
        ).encode()
        arrival = strike_time + rng.uniform(0.5, 3.0)
        inside = haversine_km(*HOME, round(latitude, 6), round(longitude, 6)) <= radius_km
        records.append((arrival, payload, inside))
    records.sort(key=lambda record: record[0])
    inside = sum(record[2] for record in records)
    sizes = [len(record[1]) for record in records]
    return Feed(
        payloads=[record[1] for record in records],
        arrivals=[record[0] for record in records],
        inside=inside,
        facts={
            "strikes": count,
            "inside_radius": inside,
            "inside_share": inside / count,
            "tiles": sorted(tiles),
            "precision": precision,
            "rate_per_s": rate,
            "simulated_seconds": count / rate,
            "payload_bytes": {"min": min(sizes), "median": statistics.median(sizes)},
            "example": records[0][1].decode(),
        },
    )


def baseline_pass(payloads: list[bytes]) -> tuple[float, float]:
    """Decode every payload with bare json.loads, nothing else; return wall and CPU time."""
    loads = json.loads
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for payload in payloads:
        loads(payload)
    return time.perf_counter() - wall, time.process_time() - cpu


def parse_pass(feed: Feed) -> tuple[float, float, StrikeCounters]:
    """Parse every payload into a located strike, inserting nothing; return wall, CPU, counters."""
    counters = StrikeCounters()
    latitude, longitude = HOME
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for payload, now in zip(feed.payloads, feed.arrivals, strict=True):
        parse_strike(payload, now, latitude, longitude, counters)
    return time.perf_counter() - wall, time.process_time() - cpu, counters


def strike_path_pass(feed: Feed, radius_km: float) -> tuple[float, float, StrikeWindow]:
    """Ingest every payload into a fresh window; return wall and CPU time and the window."""
    window = StrikeWindow(*HOME, radius_km=radius_km)
    ingest = window.ingest
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for payload, now in zip(feed.payloads, feed.arrivals, strict=True):
        ingest(payload, now)
    return time.perf_counter() - wall, time.process_time() - cpu, window


def profile_strike_path(feed: Feed, radius_km: float) -> str:
    """Return cProfile's top costs of one strike-path pass, by own time and cumulative."""
    profiler = cProfile.Profile()
    profiler.runcall(strike_path_pass, feed, radius_km)
    return profile_text(profiler)


def window_facts(window: StrikeWindow) -> dict[str, Any]:
    """Return the window's counters as plain data."""
    parsed, counters = window.parse_counters, window.counters
    return {
        "payloads": parsed.payloads,
        "accepted": parsed.accepted,
        "rejected": dict(sorted(parsed.rejected.items())),
        "added": counters.added,
        "expired": counters.expired,
        "dropped": dict(sorted(counters.dropped.items())),
        "kept": len(window),
    }


def part_strike_path(args: argparse.Namespace) -> Part:
    """A: strike path throughput against bare json.loads, on the same payloads."""
    part = Part("strike_path")
    began = time.perf_counter()
    feed = build_feed(args.strikes, args.radius, args.rate, args.seed)
    print(
        f"A built {len(feed.payloads):,} payloads ({feed.inside:,} within {args.radius:g} km) "
        f"in {time.perf_counter() - began:.1f} s",
        flush=True,
    )
    warm = Feed(feed.payloads[:10_000], feed.arrivals[:10_000], 0, {})
    baseline_pass(warm.payloads)
    strike_path_pass(warm, args.radius)

    baseline_runs: list[dict[str, float]] = []
    path_runs: list[dict[str, float]] = []
    parse_runs: list[dict[str, float]] = []
    facts: list[dict[str, Any]] = []
    window: StrikeWindow | None = None
    count = len(feed.payloads)
    for index in range(args.rounds):
        order = ("baseline", "path") if index % 2 == 0 else ("path", "baseline")
        for which in order:
            if which == "baseline":
                wall, cpu = baseline_pass(feed.payloads)
                baseline_runs.append({"wall_s": wall, "cpu_s": cpu, "rate": count / wall})
            else:
                wall, cpu, window = strike_path_pass(feed, args.radius)
                path_runs.append({"wall_s": wall, "cpu_s": cpu, "rate": count / wall})
                facts.append(window_facts(window))
        wall, cpu, _ = parse_pass(feed)
        parse_runs.append({"wall_s": wall, "cpu_s": cpu, "rate": count / wall})
        print(
            f"A round {index + 1}/{args.rounds}: json.loads {baseline_runs[-1]['rate']:,.0f}/s, "
            f"strike path {path_runs[-1]['rate']:,.0f}/s, parse only {parse_runs[-1]['rate']:,.0f}/s",
            flush=True,
        )
    if window is None:
        raise BenchError("no strike path pass ran")

    baseline_rate = statistics.median(run["rate"] for run in baseline_runs)
    path_rate = statistics.median(run["rate"] for run in path_runs)
    parse_rate = statistics.median(run["rate"] for run in parse_runs)
    ratio = path_rate / baseline_rate
    insert_us = 1e6 / path_rate - 1e6 / parse_rate

    last = facts[-1]
    outside = last["dropped"].get("outside_radius", 0)
    accounted = (
        last["payloads"] == count
        and last["accepted"] == count
        and last["added"] == feed.inside
        and outside == count - feed.inside
        and all(fact == last for fact in facts)
    )

    burst_summary = window.summary(feed.arrivals[-1], target_km=ALERT_KM)
    # The same storm at the rate that just fills the window over its 30 minutes.
    steady = build_feed(
        int(DEFAULT_MAX_STRIKES * 1.1 / feed.facts["inside_share"]),
        args.radius,
        DEFAULT_MAX_STRIKES * 1.1 / feed.facts["inside_share"] / DEFAULT_WINDOW_S,
        args.seed,
    )
    _, _, full = strike_path_pass(steady, args.radius)
    now = steady.arrivals[-1]
    summaries = []
    for _ in range(SUMMARY_REPEATS):
        began = time.perf_counter()
        summary = full.summary(now, target_km=ALERT_KM)
        summaries.append((time.perf_counter() - began) * 1000)
    summary_ms = statistics.median(summaries)
    span_min = (full.last_time - next(iter(full)).time) / 60 if len(full) else 0.0

    part.check(
        "strike path (parse+locate+insert)",
        f"{path_rate:,.0f} strikes/s",
        f">= {STRIKE_PATH_TARGET:,.0f} strikes/s",
        path_rate >= STRIKE_PATH_TARGET,
    )
    part.check("baseline json.loads", f"{baseline_rate:,.0f} payloads/s")
    part.check(
        "strike path / json.loads", f"{ratio:.3f}", f">= {RATIO_TARGET}", ratio >= RATIO_TARGET
    )
    part.check("strike path per strike", f"{1e6 / path_rate:.2f} µs")
    part.check("json.loads per payload", f"{1e6 / baseline_rate:.2f} µs")
    part.check("parse+locate per strike", f"{1e6 / parse_rate:.2f} µs")
    part.check("insert per strike (difference)", f"{insert_us:.2f} µs")
    part.check(
        "strikes accounted",
        f"{last['added']:,} kept + {outside:,} outside",
        f"= {feed.inside:,} + {count - feed.inside:,}",
        accounted,
    )
    part.check(
        f"summary() of {len(full):,} strikes",
        f"{summary_ms:.2f} ms",
        f"<= {SUMMARY_TARGET_MS:g} ms",
        summary_ms <= SUMMARY_TARGET_MS,
    )

    trend = summary.trend
    nearest = summary.nearest
    burst_nearest = burst_summary.nearest
    part.details += [
        f"feed: {count:,} payloads over {feed.facts['simulated_seconds']:,.0f} simulated s "
        f"({args.rate:g} strikes/s), {feed.inside:,} ({100 * feed.facts['inside_share']:.1f}%) "
        f"within {args.radius:g} km of Paris, from {CELLS} drifting cells over "
        f"{len(feed.facts['tiles'])} tiles at precision {feed.facts['precision']}; median "
        f"payload {feed.facts['payload_bytes']['median']:g} bytes, e.g. {feed.facts['example']}",
        f"window after a pass: {last['kept']:,} strikes (cap {DEFAULT_MAX_STRIKES:,}), "
        f"added {last['added']:,}, expired {last['expired']:,}, dropped {last['dropped']}; "
        f"parse rejections {last['rejected'] or 'none'}; identical every round: "
        f"{all(fact == last for fact in facts)}",
        f"after the burst the window holds its last {burst_summary.count:,} strikes, "
        f"{(window.last_time - next(iter(window)).time):.0f} s of it (the cap), nearest "
        + (
            f"{burst_nearest.distance_km:.1f} km {burst_nearest.compass}"
            if burst_nearest is not None
            else "none"
        ),
        f"summary of the steady window ({summary.count:,} strikes over {span_min:.1f} min): "
        f"rate {summary.rate_per_10min:,.0f}/10 min, nearest "
        + (f"{nearest.distance_km:.1f} km {nearest.compass}" if nearest is not None else "none")
        + ", trend "
        + (
            f"{trend.direction} {trend.speed_km_min:.2f} km/min at {trend.distance_km:.1f} km "
            f"({trend.strikes:,} strikes)"
            if trend is not None
            else "none"
        ),
        "rounds (per s): json.loads "
        + ", ".join(f"{run['rate']:,.0f}" for run in baseline_runs)
        + "; strike path "
        + ", ".join(f"{run['rate']:,.0f}" for run in path_runs)
        + "; parse only "
        + ", ".join(f"{run['rate']:,.0f}" for run in parse_runs),
    ]
    note_busy(part, baseline_runs + path_runs + parse_runs)
    part.figures = {
        "parameters": {
            "strikes": args.strikes,
            "radius_km": args.radius,
            "rate": args.rate,
            "rounds": args.rounds,
            "seed": args.seed,
        },
        "feed": feed.facts,
        "baseline_runs": baseline_runs,
        "strike_path_runs": path_runs,
        "parse_only_runs": parse_runs,
        "baseline_rate": baseline_rate,
        "strike_path_rate": path_rate,
        "parse_only_rate": parse_rate,
        "ratio": ratio,
        "strike_path_us": 1e6 / path_rate,
        "baseline_us": 1e6 / baseline_rate,
        "parse_only_us": 1e6 / parse_rate,
        "insert_us": insert_us,
        "window": last,
        "accounted": accounted,
        "summary_ms": summaries,
        "summary_ms_median": summary_ms,
        "summary_window": {
            "strikes": len(full),
            "span_min": span_min,
            "rate_per_10min": summary.rate_per_10min,
            "trend": None if trend is None else asdict(trend),
        },
    }
    if args.profile or path_rate < STRIKE_PATH_TARGET or ratio < RATIO_TARGET:
        print("A profiling one strike path pass", flush=True)
        profile = profile_strike_path(feed, args.radius)
        part.figures["profile"] = profile
        part.details.append("cProfile of one strike path pass:\n" + profile)
    return part


# B. Tiles


def cell_area_km2(tile: str) -> float:
    """Return the area of a geohash cell on the sphere."""
    south, north, west, east = tile_bounds(tile)
    return (
        EARTH_RADIUS_KM**2
        * math.radians(east - west)
        * (math.sin(math.radians(north)) - math.sin(math.radians(south)))
    )


def cap_area_km2(radius_km: float) -> float:
    """Return the area of a spherical cap of this great-circle radius."""
    return 2 * math.pi * EARTH_RADIUS_KM**2 * (1 - math.cos(radius_km / EARTH_RADIUS_KM))


def uncovered(latitude: float, longitude: float, radius_km: float, tiles: set[str]) -> int:
    """Return how many points sampled on and inside the circle fall outside every tile."""
    precision = len(next(iter(tiles)))
    points = [(latitude, longitude)]
    for fraction in (0.5, 0.999):
        for index in range(RING_SAMPLES):
            points.append(
                destination(latitude, longitude, radius_km * fraction, 360 * index / RING_SAMPLES)
            )
    return sum(encode(lat, lon, precision) not in tiles for lat, lon in points)


def part_tiles(args: argparse.Namespace) -> Part:
    """B: tile counts, precisions, over-coverage and real coverage of covering_tiles."""
    part = Part("tiles")
    rows: list[dict[str, Any]] = []
    for place, (latitude, longitude) in PLACES.items():
        for radius in RADII:
            began = time.perf_counter()
            tiles = covering_tiles(latitude, longitude, radius)
            elapsed_ms = (time.perf_counter() - began) * 1000
            precision = len(next(iter(tiles)))
            missed = uncovered(latitude, longitude, radius, tiles)
            area = sum(cell_area_km2(tile) for tile in tiles)
            rows.append(
                {
                    "place": place,
                    "latitude": latitude,
                    "longitude": longitude,
                    "radius_km": radius,
                    "precision": precision,
                    "tiles": len(tiles),
                    "over_cover": area / cap_area_km2(radius),
                    "uncovered_samples": missed,
                    "samples": 1 + 2 * RING_SAMPLES,
                    "ms": elapsed_ms,
                    "topics": sorted(tiles),
                }
            )
    within_cap = [row for row in rows if row["tiles"] <= MAX_TILES or row["precision"] == 1]
    covered = [row for row in rows if row["uncovered_samples"] == 0]
    slowest = max(row["ms"] for row in rows)
    part.check(
        "circles fully covered",
        f"{len(covered)} of {len(rows)}",
        "all",
        len(covered) == len(rows),
    )
    part.check(
        f"at most {MAX_TILES} tiles",
        f"{len(within_cap)} of {len(rows)}",
        "all (or precision 1)",
        len(within_cap) == len(rows),
    )
    part.check("most tiles subscribed", f"{max(row['tiles'] for row in rows)}")
    part.check("slowest covering_tiles", f"{slowest:.2f} ms")

    width = max(len(place) for place in PLACES) + 2
    header = f"{'place':<{width}}" + "".join(f"{f'{radius:g} km':>18}" for radius in RADII)
    part.details += [
        "cells: precision/tiles, area covered / circle area; ! marks a circle not fully covered",
        header,
        "-" * len(header),
    ]
    for place in PLACES:
        cells = []
        for row in rows:
            if row["place"] != place:
                continue
            mark = "!" if row["uncovered_samples"] else " "
            cells.append(f"p{row['precision']}/{row['tiles']} x{row['over_cover']:,.1f}{mark}")
        part.details.append(f"{place:<{width}}" + "".join(f"{cell:>18}" for cell in cells))
    for row in rows:
        if row["uncovered_samples"]:
            part.details.append(
                f"not covered: {row['place']} {row['radius_km']:g} km, "
                f"{row['uncovered_samples']} of {row['samples']} sampled points outside the tiles"
            )
    part.figures = {"places": PLACES, "radii_km": RADII, "rows": rows}
    return part


# C. End to end: the publisher process (this module, run with --publisher-child)


@dataclass(frozen=True)
class Cell:
    """A storm cell: where it starts, how it drifts, how active it is and when it forms."""

    latitude: float
    longitude: float
    heading: float
    speed_km_s: float
    weight: float
    born_s: float
    kind: str  # inside, near or outside (of the radius)

    def centre(self, elapsed_s: float) -> tuple[float, float]:
        """Return where the cell is `elapsed_s` seconds into the burst."""
        return destination(self.latitude, self.longitude, self.speed_km_s * elapsed_s, self.heading)


@dataclass(frozen=True)
class Planned:
    """One message to publish: a strike (live or replayed late) or a broken payload."""

    kind: str  # inside, outside, old or garbage
    latitude: float
    longitude: float
    delay_s: float
    status: int
    garbage: str | None = None


def tiles_of(filters: list[str]) -> set[str]:
    """Return the geohash tiles of relay topic filters like blitzortung/1.1/u/0/#."""
    tiles = set()
    for topic in filters:
        if not topic.startswith(TOPIC_PREFIX) or not topic.endswith("/#"):
            raise BenchError(f"not a relay tile filter: {topic}")
        tiles.add("".join(topic[len(TOPIC_PREFIX) : -2].split("/")))
    return tiles


def strike_topic(latitude: float, longitude: float) -> str:
    """Return the relay topic of a strike: one level per character of its 12-character geohash."""
    return TOPIC_PREFIX + "/".join(encode(latitude, longitude, 12))


def drifting_cell(
    rng: random.Random, latitude: float, longitude: float, most_active: float, kind: str
) -> Cell:
    """Return a cell there from the start, drifting 20-60 km/h any way, of weight 0.6 up to
    `most_active`."""
    return Cell(
        latitude,
        longitude,
        rng.uniform(0, 360),
        rng.uniform(20, 60) / 3600,
        rng.uniform(0.6, most_active),
        0.0,
        kind,
    )


def storm_cells(
    rng: random.Random, home: tuple[float, float], radius_km: float, tiles: set[str], seconds: float
) -> list[Cell]:
    """Return drifting cells: some inside the radius, one forming near home, some outside."""
    bounds = [tile_bounds(tile) for tile in tiles]
    precision = len(next(iter(tiles)))
    cells = []
    for _ in range(INSIDE_CELLS):
        latitude, longitude = destination(
            *home, rng.uniform(0.15, 0.85) * radius_km, rng.uniform(0, 360)
        )
        cells.append(drifting_cell(rng, latitude, longitude, 1.0, "inside"))
    latitude, longitude = destination(*home, NEAR_CELL_KM, rng.uniform(0, 360))
    cells.append(
        Cell(latitude, longitude, rng.uniform(0, 360), 40 / 3600, 0.8, seconds / 3, "near")
    )
    outside = 0
    while outside < OUTSIDE_CELLS:
        south, north, west, east = rng.choice(bounds)
        latitude, longitude = rng.uniform(south, north), rng.uniform(west, east)
        distance = haversine_km(*home, latitude, longitude)
        if not radius_km + 40 <= distance <= radius_km + 250:
            continue
        if encode(latitude, longitude, precision) not in tiles:
            continue
        cells.append(drifting_cell(rng, latitude, longitude, 0.8, "outside"))
        outside += 1
    return cells


def storm_point(
    rng: random.Random,
    cells: list[Cell],
    elapsed_s: float,
    home: tuple[float, float],
    radius_km: float,
    tiles: set[str],
) -> tuple[float, float, bool]:
    """Return a strike of an active cell that the relay would send (inside a tile), and whether
    it is within the radius; points within BOUNDARY_MARGIN_KM of the radius are drawn again."""
    precision = len(next(iter(tiles)))
    active = [cell for cell in cells if cell.born_s <= elapsed_s]
    weights = [cell.weight for cell in active]
    while True:
        cell = rng.choices(active, weights)[0]
        latitude, longitude = destination(
            *cell.centre(elapsed_s), abs(rng.gauss(0, CELL_SCATTER_KM)), rng.uniform(0, 360)
        )
        latitude, longitude = round(latitude, 6), round(longitude, 6)
        if encode(latitude, longitude, precision) not in tiles:
            continue
        distance = haversine_km(*home, latitude, longitude)
        if abs(distance - radius_km) < BOUNDARY_MARGIN_KM:
            continue
        return latitude, longitude, distance <= radius_km


def plan_burst(spec: dict[str, Any]) -> tuple[list[Planned], dict[str, Any]]:
    """Return the messages of the burst in publish order, and what meshbot must make of them."""
    rng = random.Random(spec["seed"])
    home = (spec["home"][0], spec["home"][1])
    radius, rate, seconds = spec["radius_km"], spec["rate"], spec["seconds"]
    tiles = tiles_of(spec["filters"])
    cells = storm_cells(rng, home, radius, tiles, seconds)
    count = round(rate * seconds)
    plan: list[Planned] = []
    garbage_made = 0
    for index in range(count):
        elapsed = index / rate
        draw = rng.random()
        status = rng.choice((0, 0, 1, 2))
        if draw < OLD_SHARE:
            while True:
                latitude, longitude, inside = storm_point(rng, cells, elapsed, home, radius, tiles)
                if inside:
                    break
            age = rng.uniform(*OLD_MINUTES) * 60
            plan.append(Planned("old", latitude, longitude, age, status))
        elif draw < OLD_SHARE + GARBAGE_SHARE:
            latitude, longitude, _ = storm_point(rng, cells, elapsed, home, radius, tiles)
            kind = GARBAGE_KINDS[garbage_made % len(GARBAGE_KINDS)]
            garbage_made += 1
            plan.append(Planned("garbage", latitude, longitude, 1.0, status, kind))
        else:
            latitude, longitude, inside = storm_point(rng, cells, elapsed, home, radius, tiles)
            delay = rng.uniform(*LIVE_DELAY_S)
            plan.append(
                Planned("inside" if inside else "outside", latitude, longitude, delay, status)
            )
    kinds = Counter(item.kind for item in plan)
    near = sum(
        1
        for item in plan
        if item.kind == "inside"
        and haversine_km(*home, item.latitude, item.longitude) <= E2E_ALERT_KM
    )
    first_near = next(
        (
            index / rate
            for index, item in enumerate(plan)
            if item.kind == "inside"
            and haversine_km(*home, item.latitude, item.longitude) <= E2E_ALERT_KM
        ),
        None,
    )
    topic, payload = render(plan[0], CLOCK_START)
    facts = {
        "example": f"{topic} {payload.decode()}",
        "messages": count,
        "inside": kinds["inside"],
        "outside": kinds["outside"],
        "old": kinds["old"],
        "garbage": kinds["garbage"],
        "garbage_by_reason": dict(Counter(item.garbage for item in plan if item.garbage)),
        "within_alert_km": near,
        "first_within_alert_s": first_near,
        "tiles": sorted(tiles),
        "cells": [
            {
                "kind": cell.kind,
                "distance_km": round(haversine_km(*home, cell.latitude, cell.longitude), 1),
                "speed_km_h": round(cell.speed_km_s * 3600, 1),
                "weight": round(cell.weight, 2),
                "born_s": round(cell.born_s, 1),
            }
            for cell in cells
        ],
    }
    return plan, facts


def render(item: Planned, now: float) -> tuple[str, bytes]:
    """Return the topic and payload of a planned message, stamped from the wall clock `now`."""
    stamp = int((now - item.delay_s) * 1e9)
    record: dict[str, Any] = {
        "time": stamp,
        "lat": item.latitude,
        "lon": item.longitude,
        "status": item.status,
        "region": 1,
    }
    if item.garbage == "missing_field":
        del record["lat"]
    elif item.garbage == "bad_latitude":
        record["lat"] = 95.5
    payload = json.dumps(record, separators=(",", ":")).encode()
    if item.garbage == "invalid_json":
        payload = payload[: len(payload) // 2]
    return strike_topic(item.latitude, item.longitude), payload


def publisher_child(spec: dict[str, Any]) -> None:
    """Plan the burst, connect, wait for `go` on stdin, publish at a steady rate, report.

    Each message is due at a fixed time from the start (a late one does not shift the rest)
    and stamped with the wall clock when sent, less its detection delay. A second client
    subscribed to the same filters counts what Mosquitto delivers.
    """
    # Imported here so parts A and B run exactly as they did before part C existed.
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    began = time.perf_counter()
    plan, facts = plan_burst(spec)
    plan_s = time.perf_counter() - began
    rate, qos = spec["rate"], spec["qos"]

    witness = paho.Client(CallbackAPIVersion.VERSION2, client_id="meshbot-bench-witness")
    witnessed = [0]
    subscribed = threading.Event()
    witness.on_connect = lambda client, *_: client.subscribe([(f, 0) for f in spec["filters"]])
    witness.on_subscribe = lambda *_: subscribed.set()

    def on_witness_message(*_: Any) -> None:
        witnessed[0] += 1

    witness.on_message = on_witness_message
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="meshbot-bench-publisher")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    for each in (witness, client):
        each.connect("127.0.0.1", spec["port"])
        each.loop_start()
    try:
        if not connected.wait(10) or not subscribed.wait(10):
            raise BenchError("the publisher or its witness got no CONNACK/SUBACK within 10 s")
        emit({"ready": True, "plan_s": plan_s, **facts})
        if sys.stdin.readline().strip() != "go":
            raise BenchError("the publisher was not told to go")
        infos = []
        lateness: list[float] = []
        errors = 0
        cpu = time.process_time()
        start_wall, start = time.time(), time.perf_counter()
        for index, item in enumerate(plan):
            due = start + index / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            lateness.append(time.perf_counter() - due)
            info = client.publish(*render(item, time.time()), qos=qos)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                errors += 1
            infos.append(info)
        queued = time.perf_counter()
        for info in infos:
            # QoS 1: acknowledged by the broker; QoS 0: written to the socket, in order.
            info.wait_for_publish(60)
        flushed = time.perf_counter()
        published = sum(info.is_published() for info in infos)
        publisher_cpu = time.process_time() - cpu
        # The witness gets what Mosquitto forwards; wait until it stops growing.
        last, last_change = witnessed[0], time.perf_counter()
        while witnessed[0] < published and time.perf_counter() - last_change < 3.0:
            time.sleep(0.02)
            if witnessed[0] != last:
                last, last_change = witnessed[0], time.perf_counter()
        late_ms = sorted(1000 * value for value in lateness)
        emit(
            {
                "published": published,
                "publish_errors": errors,
                "qos": qos,
                "witness_received": witnessed[0],
                "start_wall": start_wall,
                "queued_s": queued - start,
                "flushed_s": flushed - start,
                "rate": published / (flushed - start),
                "late_p50_ms": late_ms[len(late_ms) // 2],
                "late_p99_ms": late_ms[int(len(late_ms) * 0.99)],
                "late_max_ms": late_ms[-1],
                "cpu_s": publisher_cpu,
            }
        )
    finally:
        for each in (client, witness):
            each.disconnect()
            each.loop_stop()


# C. End to end: the part


def fmt_flush(row: dict[str, Any] | None) -> str:
    """Describe where in a flush a write happened."""
    if row is None:
        return "outside any flush"
    return (
        f"{row['write_into_flush_ms']:g} ms into the flush of +{row['flush_at_s']:.2f} s "
        f"({row['flush_ms']:g} ms)"
    )


def part_end_to_end(args: argparse.Namespace) -> Part:
    """C: a strike burst through Mosquitto into Home Assistant with the recorder on."""
    # Imported here: Home Assistant, the recorder and sqlalchemy are heavy, and parts A and B
    # (and the publisher process) must not carry them.
    from homeassistant.const import __version__ as ha_version

    from .lightning_e2e import run
    from .startup import meshbot_digest

    part = Part("end_to_end")
    source_before = meshbot_digest()
    print(
        f"C publishing {args.rate:g} strikes/s for {args.seconds:g} s (QoS {args.qos}) into "
        f"Home Assistant with the recorder on (meshbot: lightning monitor, "
        f"{args.monitor_radius:g} km around Paris)",
        flush=True,
    )
    alert_config = {
        "distance_km": E2E_ALERT_KM,
        "strikes": E2E_ALERT_STRIKES,
        "minutes": E2E_ALERT_MINUTES,
    }
    facts = run(args, HOME, alert_config, profile=False)
    source_after = meshbot_digest()
    feed, result, lag, writes = facts["feed"], facts["publisher"], facts["lag"], facts["writes"]
    parsed, window, events = facts["parse_counters"], facts["window"], facts["strike_events"]
    rec, alert = facts["recorder"], facts["alert"]
    published = result["published"]
    link = facts["link"]
    burst, after = lag["window"], lag["after"]

    achieved = published / result["flushed_s"]
    delivered = (
        result["publish_errors"] == 0
        and published == feed["messages"]
        and result["witness_received"] == published
        and link["messages"] == published
    )
    rejected = parsed["rejected_total"]
    dropped = window["dropped"]
    outside, too_old = dropped.get("outside_radius", 0), dropped.get("too_old", 0)
    overflow = dropped.get("overflow", 0)
    # What the window's counters must add up to: every payload is in the window now, expired,
    # moved away, dropped (counting the ones the 10,000 cap evicted) or rejected.
    balance = window["kept"] + window["expired"] + dropped.get("moved_away", 0)
    balance += outside + too_old + overflow + rejected
    accounted = parsed["payloads"] == published and balance == published
    evicted = window["added"] - window["kept"] - window["expired"] - dropped.get("moved_away", 0)
    overflow_on_arrival = overflow - evicted
    as_sent = (
        window["added"] == feed["inside"]
        and outside == feed["outside"]
        and too_old == feed["old"]
        and parsed["rejected"] == feed["garbage_by_reason"]
        and overflow_on_arrival == 0
    )
    fired = events["individual"] + events["summarised"]
    alert_in_burst = (
        alert["started_at_s"] is not None and 0 <= alert["started_at_s"] <= (facts["window_s"])
    )
    cpu = facts["cpu_window"]
    threads = cpu["threads"]

    part.check(
        "feed rate achieved",
        f"{achieved:,.0f} strikes/s, {result['flushed_s']:.1f} s",
        f">= {FEED_RATE_TARGET:.0%} of {args.rate:g}/s",
        achieved >= FEED_RATE_TARGET * args.rate,
    )
    part.check(
        "delivered by Mosquitto",
        f"{link['messages']:,} meshbot, {result['witness_received']:,} witness",
        f"all {published:,} (QoS {args.qos})",
        delivered,
    )
    part.check(
        "payloads parsed by meshbot",
        f"{parsed['payloads']:,} of {published:,}",
        "= published",
        parsed["payloads"] == published,
    )
    part.check(
        "window counters balance",
        f"{window['kept']:,}+{outside:,}+{too_old:,}+{overflow:,}+{rejected:,}",
        f"= {published:,} published",
        accounted,
    )
    part.check(
        "outcomes as sent",
        f"{window['added']:,} added of {feed['inside']:,}",
        "each outcome = sent",
        as_sent,
    )
    part.check(
        "strike events + summarised",
        f"{events['individual']:,} + {events['summarised']:,} = {fired:,}",
        f"= {window['added']:,} added",
        fired == window["added"],
    )
    part.check(
        "strike events per flush, max",
        f"{events['max_per_flush']}",
        f"<= {EVENTS_PER_FLUSH_TARGET}",
        events["max_per_flush"] <= EVENTS_PER_FLUSH_TARGET,
    )
    part.check(
        "strike events fired per s",
        f"{events['per_s_burst']:.1f}/s (max {max(events['per_second'], default=0)} in 1 s)",
    )
    part.check(
        "nearby alert started",
        "-" if alert["started_at_s"] is None else f"at +{alert['started_at_s']:.1f} s",
        "during the burst",
        alert_in_burst,
    )
    part.check("loop lag p50, burst", f"{burst['p50_ms']:.2f} ms")
    part.check(
        "loop lag p99, burst",
        f"{burst['p99_ms']:.2f} ms",
        f"<= {E2E_LAG_P99_TARGET_MS:g} ms",
        burst["p99_ms"] <= E2E_LAG_P99_TARGET_MS,
    )
    part.check("loop lag max, burst", f"{burst['max_ms']:.1f} ms")
    part.check(
        "loop lag p99 / max, after burst",
        f"{after['p99_ms']:.2f} / {after['max_ms']:.1f} ms" if after.get("wakeups") else "-",
    )
    part.check(
        "loop lag p99 / max, idle", f"{lag['idle']['p99_ms']:.2f} / {lag['idle']['max_ms']:.1f} ms"
    )
    part.check(
        "writes of one entity in 1 s, max",
        f"{writes['max_in_1s']} (closest {writes['worst_min_interval_s'] or 0:.3f} s)",
        f"<= {WRITES_PER_SECOND_TARGET} each entity",
        writes["max_in_1s"] <= WRITES_PER_SECOND_TARGET,
    )
    part.check(
        "writes of one entity per flush",
        f"{facts['writes_per_flush_max']}",
        "<= 1 each entity",
        facts["writes_per_flush_max"] <= 1,
    )
    flush = facts["flush"]
    part.check(
        "flush on the loop, p50 / max",
        f"{flush['p50_ms']:.2f} / {flush['max_ms']:.1f} ms" if flush["runs"] else "-",
    )
    part.check(
        "state writes",
        f"{writes['writes']:,} to {writes['entities_written']} entities "
        f"({writes['writes'] / writes['seconds']:,.1f}/s)",
    )
    part.check(
        "recorder backlog at burst end",
        f"{rec['backlog_at_window_end']:,} (max {rec['max_backlog']:,})",
    )
    part.check("recorder drained after burst", f"{rec['caught_up_s']:.2f} s")
    part.check(
        "event loop thread CPU, burst",
        f"{100 * threads.get('event loop', 0.0) / cpu['seconds']:.0f}% of a core",
    )

    part.details += e2e_details(args, facts, evicted, overflow_on_arrival)
    source = source_details(part, facts, source_before, source_after)
    per_entity = facts["writes"].pop("per_entity")
    part.figures = {
        "parameters": {
            "rate": args.rate,
            "seconds": args.seconds,
            "qos": args.qos,
            "monitor_radius_km": args.monitor_radius,
            "home": HOME,
            "alert_distance_km": E2E_ALERT_KM,
            "alert_strikes": E2E_ALERT_STRIKES,
            "alert_minutes": E2E_ALERT_MINUTES,
            "seed": args.seed,
            **loop_parameters(args),
        },
        **facts,
        "home_assistant": ha_version,
        "meshbot_source": source,
        "feed_rate": achieved,
        "delivered": delivered,
        "accounted": accounted,
        "outcomes_as_sent": as_sent,
        "evicted_by_cap": evicted,
        "overflow_on_arrival": overflow_on_arrival,
        "events_match_added": fired == window["added"],
        "alert_in_burst": alert_in_burst,
        "writes_per_entity": per_entity,
    }
    if args.profile or burst["p99_ms"] > E2E_LAG_P99_TARGET_MS:
        print(
            "C profiling the event loop in a second run (its figures are not the benchmark's)",
            flush=True,
        )
        profiled = run(args, HOME, alert_config, profile=True)
        profiled_run(part, profiled, "burst")
    return part


def e2e_details(
    args: argparse.Namespace, facts: dict[str, Any], evicted: int, overflow_on_arrival: int
) -> list[str]:
    """Describe the end-to-end run beyond the table."""
    feed, result, lag, writes = facts["feed"], facts["publisher"], facts["lag"], facts["writes"]
    parsed, window, events = facts["parse_counters"], facts["window"], facts["strike_events"]
    rec, alert, link = facts["recorder"], facts["alert"], facts["link"]
    cpu, flush = facts["cpu_window"], facts["flush"]
    per_second = facts["payloads_per_second"]
    steady = per_second[1 : int(result["flushed_s"])] or per_second
    lines = [
        f"feed: {feed['messages']:,} messages on {len(feed['tiles'])} tiles "
        f"{feed['tiles']} (meshbot's filters {facts['filters']}; covering_topics agrees: "
        f"{facts['filters_as_computed']}): {feed['inside']:,} live strikes within "
        f"{args.monitor_radius:g} km ({feed['within_alert_km']:,} within the {E2E_ALERT_KM:g} km "
        f"alert distance, the first at +{feed['first_within_alert_s'] or 0:.1f} s), "
        f"{feed['outside']:,} outside the radius in the tiles, {feed['old']:,} replayed "
        f"{OLD_MINUTES[0]:g}-{OLD_MINUTES[1]:g} min late, {feed['garbage']:,} broken "
        f"{feed['garbage_by_reason']}; e.g. {feed['example']}",
        "storm cells: "
        + "; ".join(
            f"{cell['kind']} {cell['distance_km']:g} km from home, {cell['speed_km_h']:g} km/h, "
            f"weight {cell['weight']:g}"
            + (f", forms at +{cell['born_s']:g} s" if cell["born_s"] else "")
            for cell in feed["cells"]
        ),
        f"publisher: QoS {result['qos']}, one message every {1000 / args.rate:.1f} ms; lateness "
        f"p50 {result['late_p50_ms']:.2f} / p99 {result['late_p99_ms']:.2f} / max "
        f"{result['late_max_ms']:.1f} ms; all queued in {result['queued_s']:.2f} s, "
        f"{'acknowledged' if result['qos'] else 'on the socket'} after {result['flushed_s']:.2f} s; "
        f"publish errors {result['publish_errors']}; the witness subscriber received "
        f"{result['witness_received']:,}",
        f"received by meshbot per second: min {min(steady):,} / median "
        f"{statistics.median(steady):,.0f} / max {max(steady):,} (steady seconds); last payload "
        f"{facts['meshbot_drain_s']:.2f} s after the last publish; link: oversized "
        f"{link['oversized']}, bad topics {link['bad_topics']}, handler errors "
        f"{link['handler_errors']}, reconnects {link['reconnects']}",
        f"meshbot's counters: payloads {parsed['payloads']:,} = accepted {parsed['accepted']:,} + "
        f"rejected {parsed['rejected_total']:,} {parsed['rejected']}; accepted = added "
        f"{window['added']:,} + dropped {window['dropped']} - {evicted:,} evicted from the full "
        f"window (the 'overflow' counter counts those evictions and strikes refused on arrival "
        f"alike: {overflow_on_arrival} refused on arrival); window now {window['kept']:,} "
        f"strikes (cap {window['max_strikes']:,}), expired {window['expired']:,}; the window "
        f"reached its cap at +{facts['window_full_at_s'] if facts['window_full_at_s'] is not None else '-'} s",
        f"expected from the feed: added {feed['inside']:,}, outside_radius {feed['outside']:,}, "
        f"too_old {feed['old']:,}, rejected {feed['garbage_by_reason']}",
        f"strike events: {events['individual']:,} single + {events['summary_events']:,} summary "
        f"events carrying {events['summarised']:,} strikes, over {events['flushes']} flushes "
        f"with strikes; the monitor's own counters: fired {events['monitor_fired']:,}, "
        f"summarised {events['monitor_summarised']:,}; per flush max {events['max_per_flush']}",
        "strike events per second from the start of the burst: "
        + " ".join(str(n) for n in events["per_second"]),
        f"alert: {alert['events']}; binary sensor at the end: {alert['sensor_state']}",
        *lag_lines(lag, "burst", "drain, last flush, recorder sync, settle"),
        f"writes: {writes['writes']:,} to {writes['entities_written']} entities in "
        f"{writes['seconds']:.1f} s ({writes['state_changed']:,} state_changed, "
        f"{writes['state_reported']:,} state_reported); most in 1 s {writes['max_in_1s']} on "
        f"{writes['max_in_1s_entity']}; closest two writes "
        + (
            "-"
            if writes["worst_min_interval_s"] is None
            else f"{writes['worst_min_interval_s']:.3f} s"
        )
        + f" on {writes['worst_entity']}; entities were created at setup, before the burst",
        "writes per entity (writes, most in 1 s, closest two): "
        + "; ".join(
            f"{entity} {row['writes']}, {row['max_in_1s']}, "
            + ("-" if row["min_interval_s"] is None else f"{row['min_interval_s']:.3f} s")
            for entity, row in writes["per_entity"].items()
        ),
        f"flushes: {flush['runs']} runs, p50 {flush['p50_ms'] or 0:.2f} / p99 "
        f"{flush['p99_ms'] or 0:.2f} / max {flush['max_ms'] or 0:.1f} ms (at "
        f"+{flush['max_at_s'] or 0:.1f} s); starts {flush['start_gap_min_s'] or 0:.3f}-"
        f"{flush['start_gap_max_s'] or 0:.3f} s apart; garbage collections inside a flush: "
        + (
            "; ".join(
                f"gen{row['generation']} {row['ms']:g} ms at +{row['at_s']:.2f} s, "
                f"{row['into_flush_ms']:g} ms into the flush of +{row['flush_at_s']:.2f} s "
                f"({row['flush_ms']:g} ms)"
                for row in flush["collections_inside"]
                if row["ms"] >= 1 or row["generation"] == 2
            )
            or "none over 1 ms"
        ),
        f"{len(flush['close_writes'])} times two writes of one entity came less than 1 s "
        f"apart ({sum(row['gap_s'] < 0.99 for row in flush['close_writes'])} of them under "
        "0.99 s)" + ("; the closest:" if flush["close_writes"] else ""),
        *(
            f"writes {row['gap_s']:.4f} s apart on {row['entities']} entities at "
            f"+{row['first_at_s']:.2f} s: the first written {fmt_flush(row['first_flush'])}, "
            f"the second {fmt_flush(row['second_flush'])}; garbage collections in the first "
            "flush: "
            + (
                ", ".join(
                    f"gen{gc['generation']} {gc['ms']:g} ms from {gc['into_flush_ms']:g} ms in"
                    for gc in row["gc_in_first_flush"]
                )
                or "none"
            )
            for row in flush["close_writes"][:5]
        ),
        f"a full collection walks every tracked object: {facts['gc_tracked_objects_before']:,} "
        "in this Home Assistant before the burst",
        "state_changed per second: " + " ".join(str(n) for n in facts["writes_per_second"]),
        f"entity states at the end: {facts['entity_states']}",
        *gc_lines(facts, "burst"),
        f"bus events during the run: {facts['events']}",
        f"recorder (sqlite, commit interval {rec['commit_interval_s']} s): queue at burst end "
        f"{rec['backlog_at_window_end']:,}, max {rec['max_backlog']:,} (sampled each second); "
        f"everything queued at burst end committed {rec['caught_up_s']:.2f} s later; queue after "
        f"meshbot's last flush {rec['backlog_after_meshbot_drain']:,}; rows "
        f"{facts['database_rows']}; database {facts['database_mb']:.1f} MB",
        "recorder backlog per second: " + " ".join(str(n) for n in rec["backlog_per_second"]),
        f"CPU during the burst ({cpu['seconds']:.1f} s, {os.cpu_count()} cores): Home Assistant "
        + cpu_shares(cpu),
        f"setup took {facts['setup_s']:.1f} s",
    ]
    return lines


PARTS: dict[str, Callable[[argparse.Namespace], Part]] = {
    "strike_path": part_strike_path,
    "tiles": part_tiles,
    "end_to_end": part_end_to_end,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="script/bench-lightning", description=__doc__.split("\n")[0]
    )
    add_only(parser, PARTS)
    parser.add_argument("--strikes", type=int, default=300_000, help="payloads in the feed (A)")
    parser.add_argument("--radius", type=float, default=100.0, help="radius in km (A)")
    parser.add_argument("--rate", type=float, default=500.0, help="strikes/s of the burst (A, C)")
    parser.add_argument("--rounds", type=int, default=5, help="baseline/strike path pairs (A)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the strike path (A) and the event loop (C) even if they meet their targets",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of the burst (C)")
    parser.add_argument(
        "--monitor-radius", type=float, default=300.0, help="meshbot's lightning radius, km (C)"
    )
    parser.add_argument(
        "--qos", type=int, choices=(0, 1), default=1, help="QoS the publisher sends at (C)"
    )
    add_loop_arguments(parser, "burst", "take")
    add_seed_output(parser, RESULTS)
    # Internal: part C runs this module again with this (a JSON spec) to publish the burst.
    parser.add_argument("--publisher-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.strikes < 10_000 or args.rounds < 1:
        parser.error("--strikes must be >= 10000 and --rounds >= 1")
    if not 0 < args.radius <= 2000 or args.rate <= 0:
        parser.error("--radius must be in (0, 2000] km and --rate positive")
    if not 0 < args.monitor_radius <= 2000 or args.seconds <= 0 or args.lag_interval_ms <= 0:
        parser.error(
            "--monitor-radius must be in (0, 2000] km, --seconds and --lag-interval-ms positive"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the parts, print the table and write the JSON; exit 1 only on a crash."""
    args = parse_args(argv)
    if args.publisher_child:
        publisher_child(json.loads(args.publisher_child))
        return 0
    run_and_report(
        PARTS,
        args,
        benchmark="lightning",
        widths=(34, 28, 24),
        summary=(
            f"; targets: strike path >= {STRIKE_PATH_TARGET:,.0f} strikes/s, strike "
            f"path/json.loads >= {RATIO_TARGET}, summary <= {SUMMARY_TARGET_MS:g} ms, every "
            f"circle covered by <= {MAX_TILES} tiles; end to end: feed >= "
            f"{FEED_RATE_TARGET:.0%} of its rate, every strike delivered and accounted for, loop "
            f"lag p99 <= {E2E_LAG_P99_TARGET_MS:g} ms, <= {EVENTS_PER_FLUSH_TARGET} strike "
            f"events per flush, <= {WRITES_PER_SECOND_TARGET} write per entity in 1 s, the alert "
            "during the burst"
        ),
        targets={
            "strike_path_per_s": STRIKE_PATH_TARGET,
            "strike_path_json_loads_ratio": RATIO_TARGET,
            "summary_ms": SUMMARY_TARGET_MS,
            "max_tiles": MAX_TILES,
            "end_to_end_feed_rate_share": FEED_RATE_TARGET,
            "end_to_end_lag_p99_ms": E2E_LAG_P99_TARGET_MS,
            "end_to_end_strike_events_per_flush": EVENTS_PER_FLUSH_TARGET,
            "end_to_end_writes_per_entity_in_1s": WRITES_PER_SECOND_TARGET,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
