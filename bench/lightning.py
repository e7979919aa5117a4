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

Targets: strike path >= 50,000 strikes/s, strike path / json.loads >= 0.25, summary of a full
window <= 20 ms; tiles: every circle covered, at most 9 tiles (unless precision 1 already needs
more). A missed target is printed and recorded (with a cProfile of the strike path when A
misses); only a crash exits non-zero.

Parts are functions `part_<name>(args) -> Part` registered in PARTS; `--only NAME` runs one.
An end-to-end part (a burst through Mosquitto into Home Assistant) can register beside them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import cProfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
import gc
import io
import json
import math
import os
from pathlib import Path
import platform
import pstats
import random
import statistics
import sys
import time
from typing import Any

from custom_components.meshbot.geo import EARTH_RADIUS_KM, haversine_km
from custom_components.meshbot.lightning.geohash import BASE32, covering_tiles, encode
from custom_components.meshbot.lightning.strikes import StrikeCounters, parse_strike
from custom_components.meshbot.lightning.window import (
    DEFAULT_MAX_STRIKES,
    DEFAULT_WINDOW_S,
    StrikeWindow,
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
PROFILE_LINES = 25

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


class BenchError(Exception):
    """Raise when the benchmark itself cannot measure (not when a target is missed)."""


@dataclass
class Check:
    """One reported figure, with its target when it has one."""

    part: str
    measure: str
    value: str
    target: str = "-"
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        """Return PASS, FAIL or a dash for figures without a target."""
        return "-" if self.passed is None else ("PASS" if self.passed else "FAIL")


@dataclass
class Part:
    """What one part measured: table rows, printed details and the figures for the JSON."""

    name: str
    checks: list[Check] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(
        self, measure: str, value: str, target: str = "-", passed: bool | None = None
    ) -> None:
        """Add a table row."""
        self.checks.append(Check(self.name, measure, value, target, passed))


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
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    return out.getvalue()


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
    busy = [
        run["cpu_s"] / run["wall_s"]
        for run in baseline_runs + path_runs + parse_runs
        if run["wall_s"] > 0
    ]
    if min(busy) < 0.9:
        part.details.append(
            f"note: a pass got only {100 * min(busy):.0f}% of a CPU (wall vs process time): "
            "other load on the machine lowered some rounds"
        )
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


PARTS: dict[str, Callable[[argparse.Namespace], Part]] = {
    "strike_path": part_strike_path,
    "tiles": part_tiles,
}


def print_table(parts: list[Part]) -> None:
    """Print one row per figure, then each part's details."""
    part_width = max([8, *(len(part.name) for part in parts)])
    columns = (
        ("part", part_width),
        ("measure", 34),
        ("value", 28),
        ("target", 24),
        ("verdict", 7),
    )
    header = "  ".join(f"{name:<{width}}" for name, width in columns)
    print(header)
    print("-" * len(header))
    for part in parts:
        for check in part.checks:
            cells = (check.part, check.measure, check.value, check.target, check.verdict)
            print(
                "  ".join(
                    f"{cell:<{width}}" for cell, (_, width) in zip(cells, columns, strict=True)
                )
            )
    for part in parts:
        print()
        for line in part.details:
            print(f"{part.name}: {line}")


def environment() -> dict[str, Any]:
    """Describe where the figures come from."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "loadavg": os.getloadavg(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="script/bench-lightning", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only", choices=[*PARTS, "all"], default="all", help="run one part (default: all)"
    )
    parser.add_argument("--strikes", type=int, default=300_000, help="payloads in the feed (A)")
    parser.add_argument("--radius", type=float, default=100.0, help="radius in km (A)")
    parser.add_argument("--rate", type=float, default=500.0, help="strikes/s of the burst (A)")
    parser.add_argument("--rounds", type=int, default=5, help="baseline/strike path pairs (A)")
    parser.add_argument(
        "--profile", action="store_true", help="profile the strike path even if it meets targets"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of every random choice")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    if args.strikes < 10_000 or args.rounds < 1:
        parser.error("--strikes must be >= 10000 and --rounds >= 1")
    if not 0 < args.radius <= 2000 or args.rate <= 0:
        parser.error("--radius must be in (0, 2000] km and --rate positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the parts, print the table and write the JSON; exit 1 only on a crash."""
    args = parse_args(argv)
    began = time.perf_counter()
    names = list(PARTS) if args.only == "all" else [args.only]
    parts = [PARTS[name](args) for name in names]
    elapsed = time.perf_counter() - began
    print()
    print_table(parts)
    checks = [check for part in parts for check in part.checks if check.passed is not None]
    print()
    print(
        f"{sum(bool(c.passed) for c in checks)}/{len(checks)} checks PASS; targets: strike path "
        f">= {STRIKE_PATH_TARGET:,.0f} strikes/s, strike path/json.loads >= {RATIO_TARGET}, "
        f"summary <= {SUMMARY_TARGET_MS:g} ms, every circle covered by <= {MAX_TILES} tiles"
    )
    print(f"total runtime {elapsed:.1f} s")
    document = {
        "benchmark": "lightning",
        "environment": environment(),
        "targets": {
            "strike_path_per_s": STRIKE_PATH_TARGET,
            "strike_path_json_loads_ratio": RATIO_TARGET,
            "summary_ms": SUMMARY_TARGET_MS,
            "max_tiles": MAX_TILES,
        },
        "total_runtime_s": elapsed,
        "checks": [
            asdict(check) | {"verdict": check.verdict} for part in parts for check in part.checks
        ],
        "parts": {part.name: part.figures for part in parts},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
