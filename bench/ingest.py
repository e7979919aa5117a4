"""Ingest benchmark: how fast meshbot's mesh package takes a regional MQTT feed, and its memory.

Run with `script/bench-ingest`. Every figure is measured in this run, on envelopes built and
encrypted like firmware does (tests/support/mesh_traffic.py):

A. `pipeline`: envelopes/s of `MeshDecoder.decode` + `MeshState.apply` on one core, over a
   regional mix (mostly encrypted position, telemetry and node info, some neighbor info and
   traceroutes, each packet via 1-3 gateways, exactly 2% garbage), beside the "floor" on the same
   envelopes in the same process: bare ServiceEnvelope parse + AES-CTR decrypt + Data parse.
   Floor and pipeline passes alternate, each round then adds a decode-only pass that splits
   the pipeline's cost into decode and apply; the figures are medians. The decoder's counters must
   account for every envelope (envelopes == decoded + duplicates + rejected), every garbage
   envelope must be rejected and no real one.
B. `memory`: resident memory growth (VmRSS) of a fresh process while it builds a MeshState of
   10,000 nodes (names, positions, telemetry) and 50,000 links through `apply`/`add_link`, and
   the size of `json.dumps(state.to_storage())`.
C. `end_to_end`: the same kind of regional mix published at `--rate` messages/s for `--seconds`
   by a separate process (paho, its own network thread, a small batch every `--batch-ms`)
   through a real Mosquitto into an in-process Home Assistant with the recorder on (sqlite in a
   temp dir, default commit interval) and a meshbot mesh collector (node policy "all", capped at
   `--max-devices` devices, positions on). Measured inside Home Assistant (bench/end_to_end.py):
   event-loop lag of a task that sleeps `--lag-interval-ms` in a loop; every message accounted
   for (published == received by the link == envelopes the decoder saw == decoded + duplicates
   + rejected); the interval between two state writes of each entity (state_changed and
   state_reported); the recorder's backlog and how long it takes to drain. Then a stand-in
   integration, in a fresh Home Assistant with the recorder on, makes the state writes and bus
   events meshbot made, second by second, on as many sensors and devices, without meshbot: the
   lag Home Assistant itself has for that output, full garbage collections included, is the
   yardstick for meshbot's own.

Targets: pipeline >= 20,000 envelopes/s, pipeline/floor >= 0.5, memory growth <= 100 MB;
end-to-end loop lag p99 <= 20 ms and max <= 100 ms (during the feed, and max <= 100 ms in the
seconds after it), every message accounted for, no entity written twice within 0.9 s. A missed
target is printed and recorded (with a cProfile of the pipeline when A misses, and a sampled
profile of the event loop from a second, perturbed run when C's lag misses); only a crash exits
non-zero.

Parts are functions `part_<name>(args) -> Part` registered in PARTS; `--only NAME` runs one.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
import cProfile
import gc
import json
from pathlib import Path
import random
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from cryptography import __version__ as CRYPTOGRAPHY_VERSION
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from google.protobuf import __version__ as PROTOBUF_VERSION
from google.protobuf.internal import api_implementation
from google.protobuf.message import DecodeError
from meshtastic.protobuf import mesh_pb2, mqtt_pb2

from custom_components.meshbot.mesh.channels import expand_psk
from custom_components.meshbot.mesh.decode import MeshDecoder
from custom_components.meshbot.mesh.models import (
    DecodedPacket,
    NeighborsObs,
    NodeInfoObs,
    PositionObs,
    Reception,
    TelemetryObs,
    TracerouteObs,
)
from custom_components.meshbot.mesh.state import DEFAULT_MAX_LINKS, DEFAULT_MAX_NODES, MeshState
from meshbot_dev.mesh_traffic import Envelope, MeshTraffic

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
RESULTS = REPO / "bench" / "results" / "ingest.json"

PIPELINE_TARGET = 20_000.0  # envelopes/s
RATIO_TARGET = 0.5  # pipeline / floor
MEMORY_TARGET_MB = 100.0
LAG_P99_TARGET_MS = 20.0
LAG_MAX_TARGET_MS = 100.0
WRITE_INTERVAL_TARGET_S = 0.9
# The feed must really run at the rate asked, or the other end-to-end figures mean little.
FEED_RATE_TARGET = 0.98

CHANNEL = "LongFast"
# The key regional_mix encrypts with (the firmware default), as the user would enter it.
CHANNEL_KEYS = {CHANNEL: "AQ=="}
GARBAGE_GATEWAY = "!deadbeef"
# Simulated feed clock: one envelope per millisecond; changes drained once per simulated second.
CLOCK_START = 1_700_000_000.0
CLOCK_STEP = 0.001
DRAIN_EVERY = 1000


# A. Pipeline


def build_mix(count: int, nodes: int, garbage: float, seed: int) -> tuple[list[Envelope], set[int]]:
    """Return `count` envelopes of which exactly round(count * garbage) are garbage, and where.

    `regional_mix` draws garbage once per packet, but a packet becomes 1-3 envelopes, so its
    garbage share comes out near half the one asked; the garbage is mixed in here instead, in
    the same form (random bytes of 0-120 on an encrypted-channel topic).
    """
    garbage_count = round(count * garbage)
    traffic = MeshTraffic(rng=random.Random(seed))
    real = traffic.regional_mix(count - garbage_count, nodes, garbage=0.0)
    rng = random.Random(seed + 1)
    where = set(rng.sample(range(count), garbage_count))
    topic = f"{traffic.root}/2/e/{CHANNEL}/{GARBAGE_GATEWAY}"
    feed = iter(real)
    mix = [
        Envelope(topic, rng.randbytes(rng.randint(0, 120))) if index in where else next(feed)
        for index in range(count)
    ]
    return mix, where


def census(pairs: list[tuple[str, bytes]], garbage: set[int]) -> dict[str, Any]:
    """Describe the mix and check the decoder accounts for every envelope (untimed)."""
    decoder = MeshDecoder(CHANNEL_KEYS)
    variants: Counter[str] = Counter()
    observations: Counter[str] = Counter()
    copies: Counter[tuple[int, int]] = Counter()
    rejected_real: list[int] = []
    accepted_garbage: list[int] = []
    for index, (topic, payload) in enumerate(pairs):
        is_garbage = index in garbage
        if not is_garbage:
            envelope = mqtt_pb2.ServiceEnvelope()
            envelope.ParseFromString(payload)
            variants[envelope.packet.WhichOneof("payload_variant") or "none"] += 1
        before = decoder.counters.rejected_total
        packet = decoder.decode(topic, payload, CLOCK_START + index * CLOCK_STEP)
        rejected = decoder.counters.rejected_total != before
        if rejected != is_garbage:
            (accepted_garbage if is_garbage else rejected_real).append(index)
        if packet is not None:
            copies[packet.sender, packet.packet_id] += 1
            if not packet.duplicate:
                kind = type(packet.observation).__name__ if packet.observation else "none"
                observations[kind] += 1
    counters = decoder.counters
    real = len(pairs) - len(garbage)
    return {
        "envelopes": len(pairs),
        "garbage": len(garbage),
        "garbage_share": len(garbage) / len(pairs),
        "real_payload_variants": dict(variants),
        "distinct_packets": len(copies),
        "copies_per_packet": dict(sorted(Counter(copies.values()).items())),
        "mean_copies": real / len(copies) if copies else None,
        "observations": dict(observations.most_common()),
        "counters": counter_dict(counters),
        "rejected_real": rejected_real[:20],
        "rejected_real_count": len(rejected_real),
        "accepted_garbage": accepted_garbage[:20],
        "accepted_garbage_count": len(accepted_garbage),
    }


def counter_dict(counters: Any) -> dict[str, Any]:
    """Return the decoder's counters as plain data."""
    return {
        "envelopes": counters.envelopes,
        "decoded": counters.decoded,
        "duplicates": counters.duplicates,
        "rejected": dict(sorted(counters.rejected.items())),
        "rejected_total": counters.rejected_total,
    }


def floor_pass(payloads: list[bytes], key: bytes) -> tuple[float, float, int]:
    """Parse, decrypt and parse Data for every envelope, nothing else; return wall, CPU, parsed."""
    aes = algorithms.AES(key)
    parsed = 0
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for payload in payloads:
        envelope = mqtt_pb2.ServiceEnvelope()
        try:
            envelope.ParseFromString(payload)
        except DecodeError:
            continue
        packet = envelope.packet
        nonce = (
            packet.id.to_bytes(8, "little")
            + getattr(packet, "from").to_bytes(4, "little")
            + b"\x00\x00\x00\x00"
        )
        decryptor = Cipher(aes, modes.CTR(nonce)).decryptor()
        plain = decryptor.update(packet.encrypted) + decryptor.finalize()
        data = mesh_pb2.Data()
        try:
            data.ParseFromString(plain)
        except DecodeError:
            continue
        parsed += 1
    return time.perf_counter() - wall, time.process_time() - cpu, parsed


def pipeline_pass(
    pairs: list[tuple[str, bytes]],
) -> tuple[float, float, MeshDecoder, MeshState]:
    """Decode and apply every envelope with a fresh decoder and state; return wall, CPU, both.

    Changes are drained every DRAIN_EVERY envelopes, as the integration drains them each tick.
    """
    decoder = MeshDecoder(CHANNEL_KEYS)
    state = MeshState()
    decode, apply, drain = decoder.decode, state.apply, state.drain
    now = CLOCK_START
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(pairs), DRAIN_EVERY):
        for topic, payload in pairs[start : start + DRAIN_EVERY]:
            now += CLOCK_STEP
            packet = decode(topic, payload, now)
            if packet is not None:
                apply(packet, now)
        drain()
    return time.perf_counter() - wall, time.process_time() - cpu, decoder, state


def decode_pass(pairs: list[tuple[str, bytes]]) -> tuple[float, float]:
    """Decode every envelope with a fresh decoder, applying nothing; return wall and CPU time.

    Beside the pipeline pass it splits the pipeline's cost into decode and apply.
    """
    decoder = MeshDecoder(CHANNEL_KEYS)
    decode = decoder.decode
    now = CLOCK_START
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for topic, payload in pairs:
        now += CLOCK_STEP
        decode(topic, payload, now)
    return time.perf_counter() - wall, time.process_time() - cpu


def profile_pipeline(pairs: list[tuple[str, bytes]]) -> str:
    """Return cProfile's top costs of one pipeline pass, by own time and cumulative."""
    profiler = cProfile.Profile()
    profiler.runcall(pipeline_pass, pairs)
    return profile_text(profiler)


def part_pipeline(args: argparse.Namespace) -> Part:
    """A: pipeline throughput against the parse-and-decrypt floor, on the same envelopes."""
    part = Part("pipeline")
    began = time.perf_counter()
    mix, garbage = build_mix(args.envelopes, args.nodes, args.garbage, args.seed)
    pairs = [(envelope.topic, envelope.payload) for envelope in mix]
    payloads = [payload for _, payload in pairs]
    del mix
    print(
        f"A built {len(pairs):,} envelopes ({len(garbage):,} garbage) from {args.nodes:,} nodes "
        f"in {time.perf_counter() - began:.1f} s",
        flush=True,
    )
    mix_facts = census(pairs, garbage)
    key = expand_psk(b"\x01")
    if key is None:
        raise BenchError("the default channel key did not expand")

    # Warm both paths (imports, caches, allocator) on a slice before timing.
    warm = pairs[: min(len(pairs), 10_000)]
    floor_pass([payload for _, payload in warm], key)
    pipeline_pass(warm)

    floor_runs: list[dict[str, float]] = []
    pipeline_runs: list[dict[str, float]] = []
    decode_runs: list[dict[str, float]] = []
    counters: list[dict[str, Any]] = []
    state_facts: dict[str, Any] = {}
    floor_parsed = 0
    for index in range(args.rounds):
        order = ("floor", "pipeline") if index % 2 == 0 else ("pipeline", "floor")
        for which in order:
            if which == "floor":
                wall, cpu, floor_parsed = floor_pass(payloads, key)
                floor_runs.append({"wall_s": wall, "cpu_s": cpu, "rate": len(payloads) / wall})
            else:
                wall, cpu, decoder, state = pipeline_pass(pairs)
                pipeline_runs.append({"wall_s": wall, "cpu_s": cpu, "rate": len(pairs) / wall})
                counters.append(counter_dict(decoder.counters))
                state_facts = {
                    "nodes": len(state.nodes),
                    "links": len(state.links),
                    "links_by_source": state.count_links_by_source(),
                    "evicted_nodes": state.evicted_nodes,
                    "evicted_links": state.evicted_links,
                }
                del decoder, state
        wall, cpu = decode_pass(pairs)
        decode_runs.append({"wall_s": wall, "cpu_s": cpu, "rate": len(pairs) / wall})
        print(
            f"A round {index + 1}/{args.rounds}: floor {floor_runs[-1]['rate']:,.0f}/s, "
            f"pipeline {pipeline_runs[-1]['rate']:,.0f}/s, "
            f"decode only {decode_runs[-1]['rate']:,.0f}/s",
            flush=True,
        )

    floor_rate = statistics.median(run["rate"] for run in floor_runs)
    pipeline_rate = statistics.median(run["rate"] for run in pipeline_runs)
    decode_rate = statistics.median(run["rate"] for run in decode_runs)
    ratio = pipeline_rate / floor_rate
    apply_us = 1e6 / pipeline_rate - 1e6 / decode_rate
    last = counters[-1]
    accounted = last["decoded"] + last["duplicates"] + last["rejected_total"]
    consistent = all(c == last for c in counters) and last == mix_facts["counters"]
    exact = (
        last["envelopes"] == len(pairs) == accounted
        and mix_facts["rejected_real_count"] == 0
        and mix_facts["accepted_garbage_count"] == 0
        and consistent
    )

    part.check(
        "pipeline decode+apply",
        f"{pipeline_rate:,.0f} env/s",
        f">= {PIPELINE_TARGET:,.0f} env/s",
        pipeline_rate >= PIPELINE_TARGET,
    )
    part.check("floor parse+decrypt", f"{floor_rate:,.0f} env/s")
    part.check("pipeline / floor", f"{ratio:.3f}", f">= {RATIO_TARGET}", ratio >= RATIO_TARGET)
    part.check("pipeline per envelope", f"{1e6 / pipeline_rate:.2f} µs")
    part.check("floor per envelope", f"{1e6 / floor_rate:.2f} µs")
    part.check("decode only per envelope", f"{1e6 / decode_rate:.2f} µs")
    part.check("apply per envelope (difference)", f"{apply_us:.2f} µs")
    part.check(
        "envelopes accounted",
        f"{accounted:,} of {len(pairs):,}",
        "all, garbage = rejected",
        exact,
    )

    rejected = ", ".join(f"{reason} {count:,}" for reason, count in last["rejected"].items())
    part.details += [
        f"mix: {len(pairs):,} envelopes, {len(garbage):,} garbage "
        f"({100 * mix_facts['garbage_share']:.2f}%), {mix_facts['distinct_packets']:,} distinct "
        f"packets, copies per packet {mix_facts['copies_per_packet']} "
        f"(mean {mix_facts['mean_copies']:.2f}), real payloads {mix_facts['real_payload_variants']}",
        f"mix observations (first copies): {mix_facts['observations']}",
        f"decoder counters: envelopes {last['envelopes']:,} = decoded {last['decoded']:,} "
        f"+ duplicates {last['duplicates']:,} + rejected {last['rejected_total']:,} "
        f"({rejected}); identical in every round: {consistent}",
        f"garbage rejected: {len(garbage) - mix_facts['accepted_garbage_count']:,}"
        f"/{len(garbage):,}; real envelopes rejected: {mix_facts['rejected_real_count']}",
        f"floor parsed Data from {floor_parsed:,} envelopes (it checks nothing, so garbage that "
        "happens to parse counts too)",
        f"state after a pass: {state_facts['nodes']:,} nodes, {state_facts['links']:,} links "
        f"{state_facts['links_by_source']}, evicted {state_facts['evicted_nodes']} nodes / "
        f"{state_facts['evicted_links']} links",
        "rounds (env/s): floor "
        + ", ".join(f"{run['rate']:,.0f}" for run in floor_runs)
        + "; pipeline "
        + ", ".join(f"{run['rate']:,.0f}" for run in pipeline_runs)
        + "; decode only "
        + ", ".join(f"{run['rate']:,.0f}" for run in decode_runs),
    ]
    note_busy(part, floor_runs + pipeline_runs + decode_runs)
    part.figures = {
        "parameters": {
            "envelopes": args.envelopes,
            "nodes": args.nodes,
            "garbage": args.garbage,
            "rounds": args.rounds,
            "seed": args.seed,
            "drain_every": DRAIN_EVERY,
        },
        "mix": mix_facts,
        "floor_runs": floor_runs,
        "pipeline_runs": pipeline_runs,
        "decode_only_runs": decode_runs,
        "floor_rate": floor_rate,
        "pipeline_rate": pipeline_rate,
        "ratio": ratio,
        "floor_us_per_envelope": 1e6 / floor_rate,
        "pipeline_us_per_envelope": 1e6 / pipeline_rate,
        "decode_only_rate": decode_rate,
        "decode_only_us_per_envelope": 1e6 / decode_rate,
        "apply_us_per_envelope": apply_us,
        "counters": last,
        "counters_identical_every_round": consistent,
        "accounted": accounted,
        "state": state_facts,
    }
    if args.profile or pipeline_rate < PIPELINE_TARGET or ratio < RATIO_TARGET:
        print("A profiling one pipeline pass", flush=True)
        profile = profile_pipeline(pairs)
        part.figures["profile"] = profile
        part.details.append("cProfile of one pipeline pass:\n" + profile)
    return part


# B. Memory


def status_kb(field_name: str) -> int:
    """Return a field of /proc/self/status in kB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise BenchError(f"/proc/self/status has no {field_name}")


HW_MODELS = ("HELTEC_V3", "RAK4631", "T_ECHO", "TBEAM", "STATION_G2", "HELTEC_WSL_V3")
ROLES = ("CLIENT", "CLIENT", "CLIENT", "ROUTER", "CLIENT_MUTE", "ROUTER_LATE")
NAME_WORDS = ("Paris", "Nord", "relay", "Base", "Mobile", "Toit", "Solar", "Colline", "Gare")


def long_name(rng: random.Random, num: int) -> str:
    """Return a name like the ones nodes announce: the firmware default or a few words."""
    if rng.random() < 0.4:
        return f"Meshtastic {num & 0xFFFF:04x}"
    words = rng.sample(NAME_WORDS, rng.randint(1, 3))
    return f"{' '.join(words)} {rng.randint(1, 99)}"[:39]


def build_state(nodes: int, links: int, seed: int) -> MeshState:
    """Fill a MeshState through `apply` with `nodes` described nodes and exactly `links` links.

    Every node sends node info, a position and device telemetry (a quarter also environment
    telemetry), each heard by 1-3 gateways (a tenth of the nodes), some directly, which adds
    direct links; NeighborInfo (85%) and traceroute replies (15%) add links up to `links`.
    """
    rng = random.Random(seed)
    state = MeshState(max(nodes, DEFAULT_MAX_NODES), max(links, DEFAULT_MAX_LINKS))
    population = rng.sample(range(0x10000000, 0xF0000000), nodes)
    gateways = population[: max(3, nodes // 10)]
    clock = [CLOCK_START]
    packet_id = [0]

    def send(sender: int, observation: Any) -> None:
        packet_id[0] += 1
        heard = [gw for gw in rng.sample(gateways, rng.randint(1, 3)) if gw != sender] or [None]
        for copy, gateway in enumerate(heard):
            clock[0] += CLOCK_STEP
            reception = None
            hops = rng.choice((0, 1, 1, 2, 3))
            if gateway is not None:
                reception = Reception(
                    gateway=gateway,
                    snr=round(rng.uniform(-15, 10), 2),
                    rssi=rng.randint(-125, -60),
                    hops=hops,
                    rx_time=clock[0],
                )
            packet = DecodedPacket(
                sender=sender,
                destination=0xFFFFFFFF,
                packet_id=packet_id[0],
                channel=CHANNEL,
                reception=reception,
                direct=hops == 0 and reception is not None,
                duplicate=copy > 0,
                observation=None if copy else observation,
            )
            state.apply(packet, clock[0])
            if packet_id[0] % DRAIN_EVERY == 0:
                state.drain()

    for num in population:
        send(
            num,
            NodeInfoObs(
                node=num,
                long_name=long_name(rng, num),
                short_name=f"{num & 0xFFFF:04x}",
                hw_model=rng.choice(HW_MODELS),
                role=rng.choice(ROLES),
            ),
        )
        send(
            num,
            PositionObs(
                node=num,
                latitude=round(48 + rng.random(), 7),
                longitude=round(2 + rng.random(), 7),
                altitude=rng.randint(20, 400),
                precision_bits=rng.choice((32, 16, 13)),
                time=int(clock[0]),
            ),
        )
        send(
            num,
            TelemetryObs(
                node=num,
                kind="device",
                values={
                    "battery_level": float(rng.randint(1, 101)),
                    "voltage": round(3.3 + rng.random(), 3),
                    "channel_utilization": round(rng.uniform(0, 40), 2),
                    "air_util_tx": round(rng.uniform(0, 10), 2),
                    "uptime_seconds": float(rng.randint(60, 10**7)),
                },
            ),
        )
        if rng.random() < 0.25:
            send(
                num,
                TelemetryObs(
                    node=num,
                    kind="environment",
                    values={
                        "temperature": round(rng.uniform(-10, 35), 2),
                        "relative_humidity": round(rng.uniform(20, 95), 1),
                        "barometric_pressure": round(rng.uniform(980, 1040), 1),
                    },
                ),
            )
    while len(state.links) < links:
        missing = links - len(state.links)
        sender = rng.choice(population)
        if rng.random() < 0.85:
            peers = [num for num in rng.sample(population, rng.randint(1, 10)) if num != sender]
            neighbors = tuple((num, round(rng.uniform(-10, 10), 2)) for num in peers[:missing])
            send(sender, NeighborsObs(reporter=sender, neighbors=neighbors, interval=900))
        else:
            path = rng.sample(population, rng.randint(3, 5))
            hops = tuple(
                (path[index], path[index + 1], round(rng.uniform(-10, 10), 2))
                for index in range(len(path) - 1)
            )[:missing]
            send(path[-1], TracerouteObs(origin=path[0], destination=path[-1], hops=hops))
    state.drain()
    return state


def memory_child(nodes: int, links: int, seed: int) -> dict[str, Any]:
    """Build the state in this (fresh) process and return the memory figures."""
    gc.collect()
    rss_before, hwm_before = status_kb("VmRSS"), status_kb("VmHWM")
    began = time.perf_counter()
    state = build_state(nodes, links, seed)
    build_s = time.perf_counter() - began
    gc.collect()
    rss_after, hwm_after = status_kb("VmRSS"), status_kb("VmHWM")
    began = time.perf_counter()
    text = json.dumps(state.to_storage())
    storage_s = time.perf_counter() - began
    rss_with_json = status_kb("VmRSS")
    with_telemetry = sum(1 for node in state.nodes.values() if node.telemetry)
    with_position = sum(1 for node in state.nodes.values() if node.latitude is not None)
    with_name = sum(1 for node in state.nodes.values() if node.long_name)
    return {
        "nodes": len(state.nodes),
        "links": len(state.links),
        "links_by_source": state.count_links_by_source(),
        "evicted_nodes": state.evicted_nodes,
        "evicted_links": state.evicted_links,
        "nodes_with_name": with_name,
        "nodes_with_position": with_position,
        "nodes_with_telemetry": with_telemetry,
        "gateway_entries": sum(len(node.gateways) for node in state.nodes.values()),
        "rss_before_kb": rss_before,
        "rss_after_kb": rss_after,
        "hwm_before_kb": hwm_before,
        "hwm_after_kb": hwm_after,
        "rss_with_json_kb": rss_with_json,
        "growth_mb": (rss_after - rss_before) / 1024,
        "peak_growth_mb": (hwm_after - rss_before) / 1024,
        "build_s": build_s,
        "storage_json_bytes": len(text.encode()),
        "storage_json_s": storage_s,
    }


def part_memory(args: argparse.Namespace) -> Part:
    """B: resident memory of a full MeshState, measured in a fresh process."""
    part = Part("memory")
    print(
        f"B building {args.memory_nodes:,} nodes and {args.memory_links:,} links "
        "in a fresh process",
        flush=True,
    )
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ingest",
            "--memory-child",
            str(args.memory_nodes),
            str(args.memory_links),
            str(args.seed),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise BenchError(f"the memory process failed ({child.returncode}):\n{child.stderr}")
    facts = json.loads(child.stdout.strip().splitlines()[-1])
    complete = (
        facts["nodes"] == args.memory_nodes
        and facts["links"] == args.memory_links
        and facts["evicted_nodes"] == facts["evicted_links"] == 0
    )
    growth = facts["growth_mb"]
    part.check(
        "RSS growth, full state",
        f"{growth:.1f} MB",
        f"<= {MEMORY_TARGET_MB:g} MB",
        growth <= MEMORY_TARGET_MB,
    )
    part.check("peak RSS growth while building", f"{facts['peak_growth_mb']:.1f} MB")
    part.check(
        "json.dumps(to_storage())",
        f"{facts['storage_json_bytes'] / 1e6:.2f} MB",
    )
    part.check(
        "state as asked",
        f"{facts['nodes']:,} nodes, {facts['links']:,} links",
        "exact, no eviction",
        complete,
    )
    part.details += [
        f"state: {facts['nodes']:,} nodes ({facts['nodes_with_name']:,} named, "
        f"{facts['nodes_with_position']:,} with position, {facts['nodes_with_telemetry']:,} with "
        f"telemetry, {facts['gateway_entries']:,} gateway entries), {facts['links']:,} links "
        f"{facts['links_by_source']}, evicted {facts['evicted_nodes']} nodes / "
        f"{facts['evicted_links']} links",
        f"VmRSS {facts['rss_before_kb'] / 1024:.1f} MB -> {facts['rss_after_kb'] / 1024:.1f} MB "
        f"(after gc.collect); VmHWM {facts['hwm_after_kb'] / 1024:.1f} MB; "
        f"{facts['rss_with_json_kb'] / 1024:.1f} MB with the JSON text alive",
        f"per node+links: {1024 * growth / facts['nodes']:.2f} kB per node with its share of "
        f"links; build took {facts['build_s']:.1f} s, to_storage+dumps "
        f"{1000 * facts['storage_json_s']:.0f} ms",
    ]
    part.figures = {
        "parameters": {
            "nodes": args.memory_nodes,
            "links": args.memory_links,
            "seed": args.seed,
        },
        **facts,
    }
    return part


# C. End to end


def publisher_child(port: int, args: argparse.Namespace) -> None:
    """Build the feed, connect, wait for `go` on stdin, publish at a steady rate, report.

    The mix is part A's (exactly `--garbage` garbage, each packet via 1-3 gateways). Batches are
    due at fixed times from the start, so a late batch does not shift the ones after it.
    """
    # Imported here so parts A and B run exactly as they did before part C existed.
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    count = round(args.rate * args.seconds)
    began = time.perf_counter()
    mix, garbage = build_mix(count, args.nodes, args.garbage, args.seed)
    messages = [(envelope.topic, envelope.payload) for envelope in mix]
    del mix
    build_s = time.perf_counter() - began
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="meshbot-bench-publisher")
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise BenchError("the publisher got no CONNACK within 10 s")
        emit({"ready": True, "envelopes": count, "garbage": len(garbage), "build_s": build_s})
        if sys.stdin.readline().strip() != "go":
            raise BenchError("the publisher was not told to go")
        per_batch = max(1, round(args.rate * args.batch_ms / 1000))
        interval = per_batch / args.rate
        lateness: list[float] = []
        errors = 0
        info = None
        cpu = time.process_time()
        start_wall, start = time.time(), time.perf_counter()
        for index, first in enumerate(range(0, count, per_batch)):
            due = start + index * interval
            if (delay := due - time.perf_counter()) > 0:
                time.sleep(delay)
            lateness.append(time.perf_counter() - due)
            for topic, payload in messages[first : first + per_batch]:
                info = client.publish(topic, payload, qos=0)
                if info.rc != paho.MQTT_ERR_SUCCESS:
                    errors += 1
        queued = time.perf_counter()
        if info is not None:
            # QoS 0 messages count as published once written to the socket, in order.
            info.wait_for_publish(60)
        flushed = time.perf_counter()
        late_ms = sorted(1000 * value for value in lateness)
        emit(
            {
                "published": count - errors,
                "publish_errors": errors,
                "garbage": len(garbage),
                "batch": per_batch,
                "batch_interval_ms": 1000 * interval,
                "start_wall": start_wall,
                "queued_s": queued - start,
                "flushed_s": flushed - start,
                "rate": count / (flushed - start),
                "batch_late_p50_ms": late_ms[len(late_ms) // 2],
                "batch_late_p99_ms": late_ms[int(len(late_ms) * 0.99)],
                "batch_late_max_ms": late_ms[-1],
                "cpu_s": time.process_time() - cpu,
            }
        )
    finally:
        client.disconnect()
        client.loop_stop()


def standin_line(standin: dict[str, Any]) -> str:
    """Describe the stand-in's run: Home Assistant making meshbot's output without meshbot."""
    lag, outside = standin["lag"]["window"], standin["lag"]["window_outside_full_collections"]
    full = standin["gc"]["full_collections"]
    return (
        f"stand-in without meshbot, in a fresh process ({standin['entities']} sensors on "
        f"{standin['devices']} devices added as fast as meshbot's, {standin['state_changed']:,} "
        f"state_changed, {standin['state_reported']:,} state_reported and "
        f"{standin['events']:,} events, second by second as meshbot made them): loop lag during "
        f"the feed p99 {lag['p99_ms']:.2f} / max {lag['max_ms']:.1f} ms, outside full "
        f"collections {outside.get('max_ms', 0.0):.1f} ms; full collections {len(full)}"
        + (f" ({', '.join(f'{c["ms"]:.0f} ms in {c["thread"]}' for c in full)})" if full else "")
        + f"; a forced full collection before / after: {standin['full_collection_before_ms']:.0f}"
        f" / {standin['full_collection_after_ms']:.0f} ms ({standin['tracked_after']:,} objects)"
    )


def part_end_to_end(args: argparse.Namespace) -> Part:
    """C: a steady regional feed through Mosquitto into Home Assistant with the recorder on."""
    # Imported here: Home Assistant, the recorder and sqlalchemy are heavy, and parts A and B
    # (and the processes they start) must not carry them.
    from homeassistant.const import __version__ as ha_version

    from .end_to_end import run, run_standin
    from .startup import meshbot_digest

    part = Part("end_to_end")
    source_before = meshbot_digest()
    print(
        f"C publishing {args.rate:,}/s for {args.seconds:g} s into Home Assistant with the "
        f"recorder on (meshbot: node policy all, up to {args.max_devices} devices, positions on)",
        flush=True,
    )
    facts = run(args, args.seconds, WRITE_INTERVAL_TARGET_S)
    print(
        "C replaying the same writes and events from a stand-in integration, without meshbot",
        flush=True,
    )
    standin = run_standin(args, facts)
    source_after = meshbot_digest()
    feed, result, counters, link = (
        facts["feed"],
        facts["publisher"],
        facts["counters"],
        facts["link"],
    )
    lag, writes, rec = facts["lag"], facts["writes"], facts["recorder"]
    published = facts["published"]
    accounted = counters["decoded"] + counters["duplicates"] + counters["rejected_total"]
    exact = published == link["messages"] == counters["envelopes"] == accounted
    achieved = published / result["flushed_s"]
    window, after = lag["window"], lag["after"]
    cpu = facts["cpu_window"]
    cpu_seconds = cpu["seconds"]
    threads = cpu["threads"]

    part.check(
        "feed rate achieved",
        f"{achieved:,.0f} msg/s, {result['flushed_s']:.1f} s",
        f">= {FEED_RATE_TARGET:.0%} of {args.rate:,}/s",
        achieved >= FEED_RATE_TARGET * args.rate,
    )
    part.check(
        "messages accounted",
        f"{counters['envelopes']:,} of {published:,}",
        "all, link = decoder",
        exact,
    )
    part.check(
        "garbage rejected",
        f"{counters['rejected_total']:,} of {result['garbage']:,}",
        "= garbage published",
        counters["rejected_total"] == result["garbage"],
    )
    part.check("loop lag p50, feed", f"{window['p50_ms']:.2f} ms")
    part.check(
        "loop lag p99, feed",
        f"{window['p99_ms']:.2f} ms",
        f"<= {LAG_P99_TARGET_MS:g} ms",
        window["p99_ms"] <= LAG_P99_TARGET_MS,
    )
    part.check(
        "loop lag max, feed",
        f"{window['max_ms']:.1f} ms",
        f"<= {LAG_MAX_TARGET_MS:g} ms",
        window["max_ms"] <= LAG_MAX_TARGET_MS,
    )
    outside = lag["window_outside_full_collections"]
    part.check(
        "loop lag max, feed, outside full collections",
        f"{outside.get('max_ms', 0.0):.1f} ms",
        f"<= {LAG_MAX_TARGET_MS:g} ms",
        outside.get("max_ms", 0.0) <= LAG_MAX_TARGET_MS,
    )
    # The yardstick: Home Assistant making the same state writes and events without meshbot.
    standin_lag = standin["lag"]["window"]
    standin_outside = standin["lag"]["window_outside_full_collections"]
    part.check(
        "loop lag max, same output from a stand-in",
        f"{standin_lag['max_ms']:.1f} ms (p99 {standin_lag['p99_ms']:.2f} ms), "
        f"{len(standin['gc']['full_collections'])} full collections",
    )
    part.check(
        "same, outside full collections: meshbot / stand-in",
        f"{outside.get('max_ms', 0.0):.1f} / {standin_outside.get('max_ms', 0.0):.1f} ms",
    )
    without, with_meshbot = (
        facts["full_collection_without_meshbot_ms"],
        facts["full_collection_with_meshbot_ms"],
    )
    part.check(
        "full collection, before meshbot / after the feed",
        f"{without:.0f} / {with_meshbot:.0f} ms "
        f"({facts['tracked_without_meshbot']:,} / {facts['tracked_with_meshbot']:,} objects)",
    )
    unloaded = facts["full_collection_after_unload_ms"]
    part.check(
        "full collection, meshbot unloaded after the feed",
        f"{unloaded:.0f} ms ({facts['tracked_after_unload']:,} objects)",
    )
    part.check("full collection, meshbot's share", f"{with_meshbot - unloaded:+.0f} ms")
    part.check(
        "loop lag max, after the feed",
        f"{after['max_ms']:.1f} ms" if after.get("wakeups") else "-",
        f"<= {LAG_MAX_TARGET_MS:g} ms",
        after.get("max_ms", 0.0) <= LAG_MAX_TARGET_MS,
    )
    part.check(
        "loop lag p99 / max, idle", f"{lag['idle']['p99_ms']:.2f} / {lag['idle']['max_ms']:.1f} ms"
    )
    worst = writes["worst_min_interval_s"]
    part.check(
        "closest two writes, one entity",
        "-" if worst is None else f"{worst:.3f} s",
        f">= {WRITE_INTERVAL_TARGET_S:g} s",
        worst is None or worst >= WRITE_INTERVAL_TARGET_S,
    )
    later = writes["worst_min_interval_after_first_s"]
    part.check(
        "same, without each first write",
        "-" if later is None else f"{later:.3f} s",
    )
    part.check("most writes in 1 s, one entity", f"{writes['max_in_1s']}")
    part.check(
        "state writes",
        f"{writes['writes']:,} ({writes['writes'] / writes['seconds']:,.0f}/s)",
    )
    part.check(
        "recorder backlog at feed end",
        f"{rec['backlog_at_window_end']:,} (max {rec['max_backlog']:,})",
    )
    part.check("recorder caught up after feed", f"{rec['caught_up_s']:.2f} s")
    part.check(
        "event loop thread CPU, feed",
        f"{100 * threads.get('event loop', 0.0) / cpu_seconds:.0f}% of a core",
    )

    rejected = ", ".join(f"{reason} {count:,}" for reason, count in counters["rejected"].items())
    per_second = facts["received_per_second"]
    steady = per_second[1 : int(result["flushed_s"])] or per_second
    part.details += [
        f"feed: {feed['envelopes']:,} envelopes ({feed['garbage']:,} garbage) from {args.nodes:,} "
        f"nodes, built in {feed['build_s']:.1f} s by the publisher process; batches of "
        f"{result['batch']} every {result['batch_interval_ms']:.1f} ms; batch lateness p50 "
        f"{result['batch_late_p50_ms']:.2f} / p99 {result['batch_late_p99_ms']:.2f} / max "
        f"{result['batch_late_max_ms']:.1f} ms; all queued in {result['queued_s']:.2f} s, on the "
        f"socket after {result['flushed_s']:.2f} s; publish errors {result['publish_errors']}",
        f"received by meshbot per second: min {min(steady):,} / median "
        f"{statistics.median(steady):,.0f} / max {max(steady):,} (steady seconds); drained "
        f"{facts['meshbot_drain_s']:.2f} s after the last publish",
        f"accounting: published {published:,}; link received {link['messages']:,} (oversized "
        f"{link['oversized']}, bad topics {link['bad_topics']}, handler errors "
        f"{link['handler_errors']}); decoder envelopes {counters['envelopes']:,} = decoded "
        f"{counters['decoded']:,} + duplicates {counters['duplicates']:,} + rejected "
        f"{counters['rejected_total']:,} ({rejected})",
        *lag_lines(lag, "feed", "drain, recorder sync, settle"),
        f"writes: {writes['writes']:,} to {writes['entities_written']} entities in "
        f"{writes['seconds']:.1f} s: {writes['state_changed']:,} state_changed (recorded), "
        f"{writes['state_reported']:,} state_reported (unchanged, not recorded); closest two "
        f"writes {'-' if worst is None else f'{worst:.3f} s'} on {writes['worst_entity']} "
        f"({writes['worst_writes']} writes); most in 1 s {writes['max_in_1s']} on "
        f"{writes['max_in_1s_entity']}; {writes['entities_under_min_interval']} entities written "
        f"twice within {WRITE_INTERVAL_TARGET_S:g} s"
        + (
            ": "
            + ", ".join(
                f"{entity} {figures['min_interval_s']:.3f} s"
                for entity, figures in writes["under_min_interval_examples"].items()
            )
            if writes["under_min_interval_examples"]
            else ""
        ),
        f"without each entity's first write in the run (a node entity's creation): closest two "
        f"writes "
        f"{'-' if later is None else f'{later:.3f} s'} on {writes['worst_entity_after_first']}, "
        f"most in 1 s {writes['max_in_1s_after_first']}, "
        f"{writes['entities_under_min_interval_after_first']} entities written twice within "
        f"{WRITE_INTERVAL_TARGET_S:g} s",
        "state_changed per second: " + " ".join(str(n) for n in facts["writes_per_second"]),
        "meshbot_node_discovered events per second: "
        + " ".join(str(n) for n in facts["discovered_per_second"]),
        "state_reported per second: " + " ".join(str(n) for n in facts["reported_per_second"]),
        *gc_lines(facts, "feed"),
        standin_line(standin),
        f"bus events during the run: {facts['events']}",
        f"recorder (sqlite, commit interval {rec['commit_interval_s']} s): queue at feed end "
        f"{rec['backlog_at_window_end']:,} events, max {rec['max_backlog']:,} (sampled each "
        f"second); everything queued at feed end committed {rec['caught_up_s']:.2f} s later; "
        f"queue after meshbot's last flush {rec['backlog_after_meshbot_drain']:,}; rows "
        f"{facts['database_rows']}; database {facts['database_mb']:.1f} MB",
        "recorder backlog per second: " + " ".join(str(n) for n in rec["backlog_per_second"]),
        f"CPU during the feed ({cpu_seconds:.1f} s, 2 cores = 200%): Home Assistant threads "
        + cpu_shares(cpu),
        f"meshbot: {facts['meshbot']['nodes']:,} nodes, {facts['meshbot']['links']:,} links, "
        f"{facts['meshbot']['tracked']} devices, {facts['meshbot']['entities']} entities "
        f"{facts['meshbot']['entities_by_platform']}; setup took {facts['setup_s']:.1f} s",
    ]
    saved = facts["mesh_saved"]
    part.details.append(
        f"meshbot's saved mesh ({saved['file']}): "
        + (
            "not written during the feed"
            if saved["during_feed_at_s"] is None
            else f"written at +{saved['during_feed_at_s']:.1f} s"
        )
        + (
            f", nor by the end of the run (+{saved['end_s']:.1f} s)"
            if saved["by_end_at_s"] is None
            else f"; last written at +{saved['by_end_at_s']:.1f} s"
        )
    )
    source = source_details(part, facts, source_before, source_after)
    lag_missed = window["p99_ms"] > LAG_P99_TARGET_MS or window["max_ms"] > LAG_MAX_TARGET_MS
    lag_missed = lag_missed or after.get("max_ms", 0.0) > LAG_MAX_TARGET_MS
    # Only the big per-entity table stays out of the JSON's top level.
    per_entity = facts["writes"].pop("per_entity")
    part.figures = {
        "parameters": {
            "rate": args.rate,
            "seconds": args.seconds,
            "nodes": args.nodes,
            "garbage": args.garbage,
            "seed": args.seed,
            "max_devices": args.max_devices,
            "batch_ms": args.batch_ms,
            **loop_parameters(args),
        },
        **facts,
        "home_assistant": ha_version,
        "meshbot_source": source,
        "accounted": accounted,
        "accounted_exactly": exact,
        "feed_rate": achieved,
        "writes_per_entity": per_entity,
        "standin": standin,
    }
    if args.profile or lag_missed:
        print(
            "C profiling the event loop in a second run (its figures are not the benchmark's)",
            flush=True,
        )
        profiled = run(args, args.seconds, WRITE_INTERVAL_TARGET_S, profile=True)
        profiled_run(part, profiled, "feed")
    return part


# Main

PARTS: dict[str, Callable[[argparse.Namespace], Part]] = {
    "pipeline": part_pipeline,
    "memory": part_memory,
    "end_to_end": part_end_to_end,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="script/bench-ingest", description=__doc__.split("\n")[0])
    add_only(parser, PARTS)
    parser.add_argument("--envelopes", type=int, default=200_000, help="envelopes in the mix (A)")
    parser.add_argument("--nodes", type=int, default=3000, help="nodes in the mix (A, C)")
    parser.add_argument("--garbage", type=float, default=0.02, help="garbage share (A, C)")
    parser.add_argument("--rounds", type=int, default=5, help="floor/pipeline pairs (A)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the pipeline (A) and the event loop (C) even if they meet their targets",
    )
    parser.add_argument("--memory-nodes", type=int, default=10_000, help="nodes in the state (B)")
    parser.add_argument("--memory-links", type=int, default=50_000, help="links in the state (B)")
    parser.add_argument("--rate", type=int, default=2000, help="messages/s published (C)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of feed (C)")
    parser.add_argument(
        "--max-devices", type=int, default=50, help="meshbot's cap on node devices (C)"
    )
    parser.add_argument(
        "--batch-ms", type=float, default=5.0, help="the publisher sends a batch this often (C)"
    )
    add_loop_arguments(parser, "feed", "decode")
    add_seed_output(parser, RESULTS)
    # Internal: part B runs itself again with this to build the state in a fresh process.
    parser.add_argument("--memory-child", nargs=3, type=int, help=argparse.SUPPRESS)
    # Internal: part C runs itself again with this (a broker port) to publish the feed.
    parser.add_argument("--publisher-child", type=int, help=argparse.SUPPRESS)
    # Internal: part C runs itself again with this (a replay file) to measure the stand-in.
    parser.add_argument("--standin-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.envelopes < 1 or args.rounds < 1 or args.nodes < 3:
        parser.error("--envelopes and --rounds must be >= 1, --nodes >= 3")
    if not 0 <= args.garbage < 1:
        parser.error("--garbage is a share in [0, 1)")
    if args.memory_nodes < 3 or args.memory_links < 0:
        parser.error("--memory-nodes must be >= 3 and --memory-links >= 0")
    if args.rate < 1 or args.seconds <= 0 or args.batch_ms <= 0 or args.lag_interval_ms <= 0:
        parser.error("--rate, --seconds, --batch-ms and --lag-interval-ms must be positive")
    if args.max_devices < 1:
        parser.error("--max-devices must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the parts, print the table and write the JSON; exit 1 only on a crash."""
    args = parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(*args.memory_child)))
        return 0
    if args.publisher_child:
        publisher_child(args.publisher_child, args)
        return 0
    if args.standin_child:
        # Imported here, as part C does: Home Assistant is heavy.
        from .end_to_end import standin_child

        print(json.dumps(standin_child(args.standin_child)))
        return 0
    run_and_report(
        PARTS,
        args,
        benchmark="ingest",
        widths=(32, 26, 24),
        summary=(
            f"; targets: pipeline >= {PIPELINE_TARGET:,.0f} env/s, pipeline/floor >= "
            f"{RATIO_TARGET}, RSS growth <= {MEMORY_TARGET_MB:g} MB, end-to-end loop lag p99 <= "
            f"{LAG_P99_TARGET_MS:g} ms and max <= {LAG_MAX_TARGET_MS:g} ms, every message "
            f"accounted, no entity written twice within {WRITE_INTERVAL_TARGET_S:g} s"
        ),
        targets={
            "pipeline_envelopes_per_s": PIPELINE_TARGET,
            "pipeline_floor_ratio": RATIO_TARGET,
            "memory_growth_mb": MEMORY_TARGET_MB,
            "end_to_end_lag_p99_ms": LAG_P99_TARGET_MS,
            "end_to_end_lag_max_ms": LAG_MAX_TARGET_MS,
            "end_to_end_min_write_interval_s": WRITE_INTERVAL_TARGET_S,
            "end_to_end_feed_rate_share": FEED_RATE_TARGET,
        },
        versions={
            "protobuf": PROTOBUF_VERSION,
            "protobuf_backend": api_implementation.Type(),
            "cryptography": CRYPTOGRAPHY_VERSION,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
