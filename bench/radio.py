"""Radio benchmark: how fast meshbot's Meshtastic stream link parses frames and handshakes.

Run with `script/bench-radio`. Every figure is measured in this run:

A. `parse`: a realistic stream of FromRadio frames, framed with `encode_frame`, concatenated
   and cut into reads of each `--chunks` size (64 B is a serial read, 4 KiB and 64 KiB are TCP
   reads). The frames are mostly `packet`s whose payload is 40-250 bytes (ciphertext of channels
   the node has no key for, or decoded texts, positions, users and local-stats/environment
   telemetry), some `node_info` (user, position, metrics) and some `queueStatus`. Per read size,
   on the same frames, in the same process:
   - `bare` (the baseline): `FromRadio.ParseFromString` of every payload from a pre-split list;
   - `feed`: `FrameDecoder.feed` of every chunk, parsing nothing (the framing alone);
   - `framed`: `FrameDecoder.feed` plus `FromRadio.ParseFromString` of each payload it returns;
   - `link`: `_StreamProtocol.data_received` of every chunk into `RadioLink._on_payload` with the
     handshake done and a trivial frame handler: exactly what a connected link runs per read.
   The four passes run in a rotated order in each of `--rounds` rounds; figures are medians, and
   every ratio is against the bare parse measured beside it. Every pass must return every frame
   (byte for byte, checked untimed), skip no byte and deliver every message.
B. `handshake`: wall time from calling `RadioLink(RadioSettings(host, port)).session(mark_up)` to
   `mark_up`, against a FakeNode (tests/support/fake_node.py) holding each of `--nodes` other
   nodes, over TCP on 127.0.0.1, with the node database (want_nodes=True) and config only;
   p50/p95 over `--connects` connects each, interleaved. The fake nodes run in a child process,
   so this process's CPU time over a connect is the link's own cost (with the event loop's); the
   wall time also holds the fake's building of its replies, measured apart as context, and a bare
   TCP connect to the same server. Every connect must complete the handshake with the node_info
   count the fake sent (`link.info.nodes_in_db`).

No part has a performance target: figures are printed and recorded; PASS/FAIL rows are the
correctness checks (every frame, every handshake accounted for). `--profile` adds a cProfile of
the link path (A) and of handshakes with the most nodes (B). Only a crash exits non-zero.

Parts are functions `part_<name>(args) -> Part` registered in PARTS; `--only NAME` runs one.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Callable
import contextlib
import cProfile
import gc
import itertools
import json
from pathlib import Path
import random
import statistics
import subprocess
import sys
import time
from typing import Any

from google.protobuf import __version__ as PROTOBUF_VERSION
from google.protobuf.internal import api_implementation
from meshtastic.protobuf import mesh_pb2, portnums_pb2, telemetry_pb2

from custom_components.meshbot.links.radio_transport import RadioSettings
from custom_components.meshbot.links.stream import (
    MAX_FRAME,
    FrameDecoder,
    RadioLink,
    _StreamProtocol,
    encode_frame,
)
from meshbot_dev.fake_node import FakeNode, frame

from .report import (
    BenchError,
    Part,
    add_only,
    add_seed_output,
    note_busy,
    percentile,
    profile_text,
    run_and_report,
)

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "radio.json"

HOST = "127.0.0.1"
BROADCAST = 0xFFFFFFFF
# Shares of the frame mix (the rest of the packets carry a decoded payload).
ENCRYPTED_SHARE = 0.45
DECODED_SHARE = 0.45
NODE_INFO_SHARE = 0.05
# queueStatus: 1 - the three above.
PAYLOAD_MIN, PAYLOAD_MAX = 40, 250
# The firmware's text limit (broadcast); texts in the mix are 40 bytes up to this.
TEXT_MAX = 233
CLOCK_START = 1_700_000_000
PASSES = ("bare", "feed", "framed", "link")
HANDSHAKE_TIMEOUT_S = 30.0
# Pause between two connects so the fake sees the last client go before the next comes.
SETTLE_S = 0.01
FAKE_BUILDS = 7
WORDS = (
    "relais",
    "colline",
    "batterie",
    "signal",
    "ok",
    "reçu",
    "test",
    "meshtastic",
    "ce soir",
    "au nord",
    "antenne",
    "solaire",
    "merci",
    "73",
    "météo",
    "pluie",
)


def size_label(size: int) -> str:
    """Return 64 B, 4 KiB, 64 KiB."""
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


# A. Parse


def text_payload(rng: random.Random) -> bytes:
    """Return a chat text of 40 bytes up to the firmware limit, in UTF-8."""
    wanted = rng.randint(PAYLOAD_MIN, TEXT_MAX)
    words: list[str] = []
    while len(" ".join(words).encode()) < wanted:
        words.append(rng.choice(WORDS))
    data = " ".join(words).encode()
    # Cut back to the limit on a character boundary.
    return data[:TEXT_MAX].decode(errors="ignore").encode()


def decoded_payload(rng: random.Random, sender: int) -> tuple[int, bytes]:
    """Return a portnum and a real application payload as the node hands it over decoded."""
    kind = rng.random()
    if kind < 0.35:
        return portnums_pb2.TEXT_MESSAGE_APP, text_payload(rng)
    if kind < 0.6:
        position = mesh_pb2.Position(
            latitude_i=round((48 + rng.random()) * 1e7),
            longitude_i=round((2 + rng.random()) * 1e7),
            altitude=rng.randint(20, 400),
            time=CLOCK_START + rng.randint(0, 86_400),
            location_source=mesh_pb2.Position.LocSource.LOC_INTERNAL,
            timestamp=CLOCK_START + rng.randint(0, 86_400),
            PDOP=rng.randint(100, 400),
            ground_speed=rng.randint(0, 30),
            ground_track=rng.randint(0, 359_00000),
            sats_in_view=rng.randint(4, 14),
            gps_accuracy=rng.randint(2000, 5000),
            precision_bits=rng.choice((32, 16, 13)),
        )
        return portnums_pb2.POSITION_APP, position.SerializeToString()
    if kind < 0.85:
        # Device-metrics telemetry is about 29 bytes, under the 40-byte floor of this mix: the
        # telemetry here is the node's local stats and environment readings.
        if rng.random() < 0.5:
            telemetry = telemetry_pb2.Telemetry(
                time=CLOCK_START + rng.randint(0, 86_400),
                local_stats=telemetry_pb2.LocalStats(
                    uptime_seconds=rng.randint(60, 10**7),
                    channel_utilization=round(rng.uniform(0, 40), 2),
                    air_util_tx=round(rng.uniform(0, 10), 2),
                    num_packets_tx=rng.randint(0, 50_000),
                    num_packets_rx=rng.randint(0, 500_000),
                    num_packets_rx_bad=rng.randint(0, 5000),
                    num_online_nodes=rng.randint(1, 200),
                    num_total_nodes=rng.randint(200, 2000),
                    num_rx_dupe=rng.randint(0, 100_000),
                    num_tx_relay=rng.randint(0, 20_000),
                    noise_floor=rng.randint(-120, -90),
                ),
            )
        else:
            telemetry = telemetry_pb2.Telemetry(
                time=CLOCK_START + rng.randint(0, 86_400),
                environment_metrics=telemetry_pb2.EnvironmentMetrics(
                    temperature=round(rng.uniform(-10, 35), 2),
                    relative_humidity=round(rng.uniform(20, 95), 1),
                    barometric_pressure=round(rng.uniform(980, 1040), 1),
                    gas_resistance=round(rng.uniform(10, 500), 1),
                    voltage=round(rng.uniform(3.3, 5.2), 2),
                    current=round(rng.uniform(10, 500), 1),
                    iaq=rng.randint(0, 500),
                    lux=round(rng.uniform(0, 20_000), 1),
                ),
            )
        return portnums_pb2.TELEMETRY_APP, telemetry.SerializeToString()
    return portnums_pb2.NODEINFO_APP, user(rng, sender).SerializeToString()


def user(rng: random.Random, num: int) -> mesh_pb2.User:
    """Return a User as nodes announce it (with a public key, as firmware 2.5+ does)."""
    name = " ".join(rng.sample(WORDS, rng.randint(1, 3))).title()[:36]
    return mesh_pb2.User(
        id=f"!{num:08x}",
        long_name=f"{name} {rng.randint(1, 99)}",
        short_name=f"{num & 0xFFFF:04x}",
        hw_model=rng.choice((mesh_pb2.HardwareModel.HELTEC_V3, mesh_pb2.HardwareModel.RAK4631)),
        role=rng.choice((0, 0, 0, 2)),
        public_key=rng.randbytes(32),
    )


def mesh_packet(rng: random.Random, nodes: list[int], packet_id: int) -> tuple[str, Any]:
    """Return the kind and a MeshPacket as the node hands it to its API client."""
    sender = rng.choice(nodes)
    hop_start = rng.choice((3, 3, 3, 7))
    packet = mesh_pb2.MeshPacket(
        to=BROADCAST if rng.random() < 0.9 else rng.choice(nodes),
        id=packet_id,
        rx_time=CLOCK_START + packet_id,
        rx_snr=round(rng.uniform(-20, 12) * 4) / 4,
        rx_rssi=rng.randint(-130, -40),
        hop_start=hop_start,
        hop_limit=rng.randint(0, hop_start),
        relay_node=rng.getrandbits(8),
    )
    setattr(packet, "from", sender)
    if rng.random() < ENCRYPTED_SHARE / (ENCRYPTED_SHARE + DECODED_SHARE):
        # A channel the node has no key for: it hands over the ciphertext.
        packet.channel = rng.randint(0, 255)
        packet.encrypted = rng.randbytes(rng.randint(PAYLOAD_MIN, PAYLOAD_MAX))
        return "packet (encrypted)", packet
    portnum, payload = decoded_payload(rng, sender)
    packet.channel = rng.choice((0, 0, 0, 1))
    packet.decoded.CopyFrom(
        mesh_pb2.Data(portnum=portnum, payload=payload, bitfield=rng.choice((0, 1)))
    )
    return f"packet ({portnums_pb2.PortNum.Name(portnum)})", packet


def node_info(rng: random.Random, num: int) -> mesh_pb2.NodeInfo:
    """Return a NodeInfo as the node database holds it: user, position, metrics."""
    return mesh_pb2.NodeInfo(
        num=num,
        user=user(rng, num),
        position=mesh_pb2.Position(
            latitude_i=round((48 + rng.random()) * 1e7),
            longitude_i=round((2 + rng.random()) * 1e7),
            altitude=rng.randint(20, 400),
            time=CLOCK_START + rng.randint(0, 86_400),
            location_source=mesh_pb2.Position.LocSource.LOC_INTERNAL,
        ),
        snr=round(rng.uniform(-20, 12) * 4) / 4,
        last_heard=CLOCK_START + rng.randint(0, 86_400),
        device_metrics=telemetry_pb2.DeviceMetrics(
            battery_level=rng.randint(1, 101),
            voltage=round(3.3 + rng.random(), 3),
            channel_utilization=round(rng.uniform(0, 40), 2),
            air_util_tx=round(rng.uniform(0, 10), 2),
            uptime_seconds=rng.randint(60, 10**7),
        ),
        hops_away=rng.randint(0, 3),
    )


def build_frames(count: int, seed: int) -> tuple[list[bytes], list[str], list[int]]:
    """Return `count` serialized FromRadio payloads, their kinds and their inner payload sizes."""
    rng = random.Random(seed)
    nodes = rng.sample(range(0x10000000, 0xF0000000), 300)
    payloads: list[bytes] = []
    kinds: list[str] = []
    inner: list[int] = []
    for index in range(count):
        message = mesh_pb2.FromRadio(id=index + 1)
        roll = rng.random()
        if roll < ENCRYPTED_SHARE + DECODED_SHARE:
            kind, packet = mesh_packet(rng, nodes, 0x1000 + index)
            message.packet.CopyFrom(packet)
            inner.append(len(packet.encrypted) if packet.encrypted else len(packet.decoded.payload))
        elif roll < ENCRYPTED_SHARE + DECODED_SHARE + NODE_INFO_SHARE:
            kind = "node_info"
            message.node_info.CopyFrom(node_info(rng, rng.choice(nodes)))
        else:
            kind = "queueStatus"
            message.queueStatus.CopyFrom(
                mesh_pb2.QueueStatus(
                    free=rng.randint(10, 16), maxlen=16, mesh_packet_id=rng.getrandbits(32)
                )
            )
        payload = message.SerializeToString()
        if len(payload) > MAX_FRAME:
            raise BenchError(f"a {kind} frame of {len(payload)} bytes exceeds {MAX_FRAME}")
        payloads.append(payload)
        kinds.append(kind)
    return payloads, kinds, inner


def split(stream: bytes, size: int) -> list[bytes]:
    """Cut the stream into reads of `size` bytes (the last one shorter)."""
    return [stream[start : start + size] for start in range(0, len(stream), size)]


def _ignore_noise(_oversized: int, _skipped_bytes: int) -> None:
    """Drop the protocol's noise counts: the decoder keeps its own."""


async def _new_protocol(on_payload: Callable[[bytes], None]) -> _StreamProtocol:
    # The protocol takes its futures from the running loop, as when a connection makes it.
    return _StreamProtocol(on_payload, _ignore_noise)


def new_link(loop: asyncio.AbstractEventLoop) -> tuple[RadioLink, _StreamProtocol, Any]:
    """Return a link past its handshake, its protocol, and a delivery counter."""
    delivered = itertools.count()
    link = RadioLink(RadioSettings(host=HOST), lambda _message: next(delivered))
    handshake: asyncio.Future[None] = loop.create_future()
    handshake.set_result(None)
    link._handshake = handshake
    protocol = loop.run_until_complete(_new_protocol(link._on_payload))
    return link, protocol, delivered


def bare_pass(payloads: list[bytes]) -> dict[str, Any]:
    """Parse every payload from a pre-split list; nothing else."""
    from_radio = mesh_pb2.FromRadio
    parsed = 0
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for payload in payloads:
        message = from_radio()
        message.ParseFromString(payload)
        parsed += 1
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "frames": parsed,
    }


def feed_pass(chunks: list[bytes]) -> dict[str, Any]:
    """Cut every chunk into payloads with a fresh decoder, parsing nothing."""
    decoder = FrameDecoder()
    feed = decoder.feed
    frames = 0
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for chunk in chunks:
        frames += len(feed(chunk))
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "frames": frames,
        "skipped_bytes": decoder.skipped_bytes,
        "oversized": decoder.oversized,
    }


def framed_pass(chunks: list[bytes]) -> dict[str, Any]:
    """Cut every chunk with a fresh decoder and parse each payload, as the link does."""
    decoder = FrameDecoder()
    feed = decoder.feed
    from_radio = mesh_pb2.FromRadio
    parsed = 0
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for chunk in chunks:
        for payload in feed(chunk):
            message = from_radio()
            message.ParseFromString(payload)
            parsed += 1
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "frames": parsed,
        "skipped_bytes": decoder.skipped_bytes,
        "oversized": decoder.oversized,
    }


def link_pass(chunks: list[bytes], loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    """Hand every chunk to a connected link's protocol, as its transport does."""
    link, protocol, delivered = new_link(loop)
    receive = protocol.data_received
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for chunk in chunks:
        receive(chunk)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "frames": protocol.decoder.frames,
        "delivered": next(delivered),
        "bad_frames": link.bad_frames,
        "skipped_bytes": protocol.decoder.skipped_bytes,
        "oversized": protocol.decoder.oversized,
    }


def verify(chunks: list[bytes], payloads: list[bytes], kinds: list[str]) -> dict[str, Any]:
    """Check (untimed) that the decoder returns every payload byte for byte, in order."""
    decoder = FrameDecoder()
    out = [payload for chunk in chunks for payload in decoder.feed(chunk)]
    variants: Counter[str] = Counter()
    for payload in out:
        message = mesh_pb2.FromRadio()
        message.ParseFromString(payload)
        variants[message.WhichOneof("payload_variant") or "none"] += 1
    expected = Counter(kind.split(" ")[0] for kind in kinds)
    return {
        "identical": out == payloads,
        "frames": len(out),
        "variants_match": variants == expected,
        "buffer_left": len(decoder._buffer),
    }


def profile_link(chunks: list[bytes], loop: asyncio.AbstractEventLoop) -> str:
    """Return cProfile's top costs of one link pass, by own time and cumulative."""
    profiler = cProfile.Profile()
    profiler.runcall(link_pass, chunks, loop)
    return profile_text(profiler)


def rate(runs: list[dict[str, Any]], count: int) -> float:
    """Return the median of count / wall over the runs."""
    return statistics.median(count / run["wall_s"] for run in runs)


def part_parse(args: argparse.Namespace) -> Part:
    """A: frame parsing throughput per read size against a bare protobuf parse."""
    part = Part("parse")
    began = time.perf_counter()
    payloads, kinds, inner = build_frames(args.frames, args.seed)
    stream = b"".join(encode_frame(payload) for payload in payloads)
    payload_bytes = sum(len(payload) for payload in payloads)
    chunked = {size: split(stream, size) for size in args.chunks}
    frame_sizes = sorted(len(payload) + 4 for payload in payloads)
    inner.sort()
    print(
        f"A built {len(payloads):,} frames, {len(stream) / 1e6:.2f} MB of stream, in "
        f"{time.perf_counter() - began:.1f} s",
        flush=True,
    )
    verified = {size: verify(chunks, payloads, kinds) for size, chunks in chunked.items()}

    loop = asyncio.new_event_loop()
    try:
        # Warm every path (imports, caches, allocator) on a slice before timing.
        warm = split(stream[: min(len(stream), 1_000_000)], 4096)
        bare_pass(payloads[:5000])
        feed_pass(warm)
        framed_pass(warm)
        link_pass(warm, loop)

        runs: dict[int, dict[str, list[dict[str, Any]]]] = {
            size: {name: [] for name in PASSES} for size in args.chunks
        }
        for index in range(args.rounds):
            shift = index % len(PASSES)
            order = PASSES[shift:] + PASSES[:shift]
            for size, chunks in chunked.items():
                for name in order:
                    if name == "bare":
                        run = bare_pass(payloads)
                    elif name == "feed":
                        run = feed_pass(chunks)
                    elif name == "framed":
                        run = framed_pass(chunks)
                    else:
                        run = link_pass(chunks, loop)
                    runs[size][name].append(run)
            print(
                f"A round {index + 1}/{args.rounds}: "
                + "; ".join(
                    f"{size_label(size)} framed {len(stream) / runs[size]['framed'][-1]['wall_s'] / 1e6:.1f} "
                    f"link {len(stream) / runs[size]['link'][-1]['wall_s'] / 1e6:.1f} MB/s"
                    for size in args.chunks
                )
                + f"; bare {payload_bytes / runs[args.chunks[0]]['bare'][-1]['wall_s'] / 1e6:.1f} MB/s",
                flush=True,
            )
        profile = None
        if args.profile:
            size = 4096 if 4096 in chunked else args.chunks[0]
            print(f"A profiling one link pass at {size_label(size)} reads", flush=True)
            profile = profile_link(chunked[size], loop)
    finally:
        loop.close()

    count = len(payloads)
    bare_all = [run for size in args.chunks for run in runs[size]["bare"]]
    bare_rate = rate(bare_all, count)
    part.check(
        "bare parse (baseline)",
        f"{bare_rate * payload_bytes / count / 1e6:,.1f} MB/s, {bare_rate / 1e3:,.0f}k fr/s",
    )
    part.check(
        "packet payload sizes in the mix",
        f"{inner[0]}-{inner[-1]} B, median {inner[len(inner) // 2]}",
        f"within {PAYLOAD_MIN}-{PAYLOAD_MAX} B",
        inner[0] >= PAYLOAD_MIN and inner[-1] <= PAYLOAD_MAX,
    )
    per_size: dict[str, Any] = {}
    all_ok = True
    for size in args.chunks:
        sized = runs[size]
        # Each ratio is against the bare passes run beside it, in the same rounds.
        bare = rate(sized["bare"], count)
        rates = {name: rate(sized[name], count) for name in PASSES}
        label = size_label(size)
        for name in ("framed", "link"):
            part.check(
                f"{name} @ {label} reads",
                f"{rates[name] * len(stream) / count / 1e6:,.1f} MB/s, "
                f"{rates[name] / 1e3:,.0f}k fr/s",
            )
            part.check(f"{name}/bare @ {label}", f"{rates[name] / bare:.3f}")
        facts = verified[size]
        counted = all(
            run["frames"] == count and run["skipped_bytes"] == 0 and run["oversized"] == 0
            for name in ("feed", "framed", "link")
            for run in sized[name]
        ) and all(run["delivered"] == count and run["bad_frames"] == 0 for run in sized["link"])
        ok = facts["identical"] and facts["variants_match"] and counted
        all_ok = all_ok and ok
        part.check(
            f"frames accounted @ {label}",
            f"{sized['link'][-1]['delivered']:,} of {count:,}",
            "all, byte-exact, 0 skipped",
            ok,
        )
        us = {name: 1e6 / rates[name] for name in PASSES}
        per_size[label] = {
            "chunk_bytes": size,
            "reads": len(chunked[size]),
            "rates_frames_per_s": rates,
            "mb_per_s": {
                name: rates[name] * (payload_bytes if name == "bare" else len(stream)) / count / 1e6
                for name in PASSES
            },
            "us_per_frame": us,
            "ratio_to_bare": {name: rates[name] / bare for name in PASSES},
            "verified": facts,
            "runs": sized,
        }
        part.details.append(
            f"{label} reads ({len(chunked[size]):,} of them): per frame bare {us['bare']:.2f} µs, "
            f"feed only {us['feed']:.2f} µs, framed {us['framed']:.2f} µs "
            f"(framing {us['framed'] - us['bare']:.2f} µs over bare), link {us['link']:.2f} µs "
            f"(link {us['link'] - us['framed']:.2f} µs over framed); ratios to bare: feed "
            f"{rates['feed'] / bare:.3f}, framed {rates['framed'] / bare:.3f}, "
            f"link {rates['link'] / bare:.3f}"
        )
    mix = Counter(kinds)
    part.details[:0] = [
        f"mix: {count:,} frames, {len(stream):,} bytes of stream ({payload_bytes:,} of payload), "
        f"frame size min {frame_sizes[0]} / median {frame_sizes[len(frame_sizes) // 2]} / max "
        f"{frame_sizes[-1]} B; packet payloads (ciphertext or Data.payload) min {inner[0]} / "
        f"median {inner[len(inner) // 2]} / max {inner[-1]} B",
        "mix kinds: " + ", ".join(f"{kind} {n:,}" for kind, n in mix.most_common()),
        "MB/s counts stream bytes for feed/framed/link and payload bytes for bare; every ratio "
        "is frames/s against the bare passes of the same rounds; link = _StreamProtocol."
        "data_received -> RadioLink._on_payload (handshake done) -> a counting frame handler",
    ]
    note_busy(part, (run for size in args.chunks for name in PASSES for run in runs[size][name]))
    part.figures = {
        "parameters": {
            "frames": args.frames,
            "chunks": args.chunks,
            "rounds": args.rounds,
            "seed": args.seed,
            "shares": {
                "packet_encrypted": ENCRYPTED_SHARE,
                "packet_decoded": DECODED_SHARE,
                "node_info": NODE_INFO_SHARE,
                "queueStatus": round(1 - ENCRYPTED_SHARE - DECODED_SHARE - NODE_INFO_SHARE, 6),
            },
        },
        "mix": {
            "frames": count,
            "stream_bytes": len(stream),
            "payload_bytes": payload_bytes,
            "kinds": dict(mix.most_common()),
            "frame_bytes": {
                "min": frame_sizes[0],
                "median": frame_sizes[len(frame_sizes) // 2],
                "max": frame_sizes[-1],
            },
            "packet_payload_bytes": {
                "min": inner[0],
                "median": inner[len(inner) // 2],
                "max": inner[-1],
            },
        },
        "bare_rate_frames_per_s": bare_rate,
        "all_accounted": all_ok,
        "by_read_size": per_size,
    }
    if profile is not None:
        part.figures["profile"] = profile
        part.details.append("cProfile of one link pass:\n" + profile)
    return part


# B. Handshake


def node_child(counts: list[int]) -> None:
    """Serve a FakeNode per count on 127.0.0.1, print their ports, run until stdin closes."""

    async def serve() -> None:
        nodes = {count: FakeNode(other_nodes=count) for count in counts}
        ports = {count: await node.start_tcp() for count, node in nodes.items()}
        print(json.dumps({str(count): port for count, port in ports.items()}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for node in nodes.values():
            await node.stop()
        print(
            json.dumps({str(count): node.handshakes for count, node in nodes.items()}),
            flush=True,
        )

    asyncio.run(serve())


async def one_handshake(port: int, want_nodes: bool) -> dict[str, Any]:
    """Run a session until mark_up; return its wall and CPU time and what the link counted."""
    link = RadioLink(RadioSettings(host=HOST, port=port, want_nodes=want_nodes))
    loop = asyncio.get_running_loop()
    up: asyncio.Future[tuple[float, float, int]] = loop.create_future()

    def mark_up(restarted: bool = False) -> None:
        frames = link._protocol.decoder.frames if link._protocol is not None else -1
        up.set_result((time.perf_counter(), time.process_time(), frames))

    wall, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(link.session(mark_up))
    error = None
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
            await asyncio.wait((up, task), return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        error = f"no handshake within {HANDSHAKE_TIMEOUT_S:g} s"
    if task.done() and not up.done():
        error = repr(task.exception())
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    if error is not None or not up.done():
        return {"ok": False, "error": error}
    up_wall, up_cpu, frames = up.result()
    return {
        "ok": True,
        "wall_ms": 1000 * (up_wall - wall),
        "cpu_ms": 1000 * (up_cpu - cpu),
        "nodes_in_db": link.info.nodes_in_db,
        "frames": frames,
        "bad_frames": link.bad_frames,
    }


async def one_connect(port: int) -> dict[str, Any]:
    """Open and close a bare TCP connection to the same server: the floor of a connect."""
    loop = asyncio.get_running_loop()
    wall = time.perf_counter()
    transport, _ = await loop.create_connection(asyncio.Protocol, HOST, port)
    elapsed = time.perf_counter() - wall
    transport.close()
    return {"ok": True, "wall_ms": 1000 * elapsed}


def fake_build_ms(count: int, want_nodes: bool) -> tuple[float, int, int]:
    """Return the median time the fake takes to build and frame its replies, their count, bytes."""
    node = FakeNode(other_nodes=count)
    config_id = 12345 if want_nodes else 69420
    times = []
    data = b""
    for _ in range(FAKE_BUILDS):
        began = time.perf_counter()
        data = b"".join(frame(reply) for reply in node.handshake(config_id))
        times.append(1000 * (time.perf_counter() - began))
    return statistics.median(times), len(node.handshake(config_id)), len(data)


def bare_handshake_parse_ms(count: int, want_nodes: bool) -> float:
    """Return the median time to parse the handshake's payloads bare (the link's CPU floor)."""
    node = FakeNode(other_nodes=count)
    payloads = [
        reply.SerializeToString() for reply in node.handshake(12345 if want_nodes else 69420)
    ]
    times = []
    for _ in range(FAKE_BUILDS):
        began = time.perf_counter()
        for payload in payloads:
            message = mesh_pb2.FromRadio()
            message.ParseFromString(payload)
        times.append(1000 * (time.perf_counter() - began))
    return statistics.median(times)


async def measure_handshakes(
    ports: dict[int, int], connects: int, profile: bool
) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """Run every scenario `connects` times, interleaved in a rotating order."""
    scenarios: list[tuple[str, Callable[[], Any]]] = []
    for count, port in ports.items():
        scenarios.append((f"nodes {count}", lambda port=port: one_handshake(port, True)))
        scenarios.append((f"config {count}", lambda port=port: one_handshake(port, False)))
    smallest = ports[min(ports)]
    scenarios.append(("tcp connect", lambda: one_connect(smallest)))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in scenarios}
    # Warm the path (imports, first connection) once per scenario.
    for _, run in scenarios:
        await run()
        await asyncio.sleep(SETTLE_S)
    for index in range(connects):
        shift = index % len(scenarios)
        for name, run in scenarios[shift:] + scenarios[:shift]:
            # Outside the timed span: a collection should not land in one connect.
            gc.collect()
            results[name].append(await run())
            await asyncio.sleep(SETTLE_S)
        if (index + 1) % 5 == 0 or index + 1 == connects:
            print(
                f"B round {index + 1}/{connects}: "
                + ", ".join(
                    f"{count} nodes {results[f'nodes {count}'][-1].get('wall_ms', float('nan')):.1f} ms"
                    for count in ports
                ),
                flush=True,
            )
    text = None
    if profile:
        biggest = ports[max(ports)]
        print(f"B profiling 5 handshakes with {max(ports)} nodes", flush=True)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(5):
            profiler.disable()
            gc.collect()
            profiler.enable()
            await one_handshake(biggest, True)
            await asyncio.sleep(SETTLE_S)
        profiler.disable()
        text = profile_text(profiler)
    return results, text


def part_handshake(args: argparse.Namespace) -> Part:
    """B: connect-to-handshake time against fake nodes of several database sizes."""
    part = Part("handshake")
    counts = sorted(set(args.nodes))
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.radio",
            "--node-child",
            ",".join(str(count) for count in counts),
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()
        if not line:
            raise BenchError(f"the fake node process exited ({child.wait()})")
        ports = {int(count): port for count, port in json.loads(line).items()}
        print(
            f"B fake nodes with {', '.join(str(c) for c in counts)} other nodes on ports "
            f"{', '.join(str(ports[c]) for c in counts)} (child process {child.pid})",
            flush=True,
        )
        results, profile = asyncio.run(measure_handshakes(ports, args.connects, args.profile))
        child.stdin.close()
        served = json.loads(child.stdout.readline() or "{}")
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    connect = [run["wall_ms"] for run in results["tcp connect"]]
    part.check(
        "bare TCP connect (floor)",
        f"p50 {statistics.median(connect):.2f}, p95 {percentile(connect, 95):.2f} ms",
    )
    figures: dict[str, Any] = {}
    medians: dict[tuple[int, bool], float] = {}
    cpu_medians: dict[tuple[int, bool], float] = {}
    for count in counts:
        for want_nodes in (True, False):
            name = f"{'nodes' if want_nodes else 'config'} {count}"
            runs = results[name]
            good = [run for run in runs if run["ok"]]
            wall = [run["wall_ms"] for run in good]
            cpu = [run["cpu_ms"] for run in good]
            build_ms, replies, reply_bytes = fake_build_ms(count, want_nodes)
            parse_ms = bare_handshake_parse_ms(count, want_nodes)
            expected_nodes = count + 1 if want_nodes else 1
            label = f"{count} nodes" if want_nodes else f"{count} nodes, config only"
            if wall:
                medians[count, want_nodes] = statistics.median(wall)
                cpu_medians[count, want_nodes] = statistics.median(cpu)
                part.check(
                    f"handshake, {label}",
                    f"p50 {statistics.median(wall):.2f}, p95 {percentile(wall, 95):.2f} ms, "
                    f"CPU {statistics.median(cpu):.2f}",
                )
            nodes_seen = sorted({run["nodes_in_db"] for run in good})
            frames_seen = sorted({run["frames"] for run in good})
            accounted = (
                len(good) == len(runs)
                and nodes_seen == [expected_nodes]
                and frames_seen == [replies]
                and all(run["bad_frames"] == 0 for run in good)
            )
            part.check(
                f"nodes_in_db, {label}",
                f"{'/'.join(str(n) for n in nodes_seen) or '-'} in {len(good)}/{len(runs)}",
                f"{expected_nodes} every connect",
                accounted,
            )
            errors = sorted({run["error"] for run in runs if not run["ok"]})
            if wall:
                part.details.append(
                    f"{label}: wall p50 {statistics.median(wall):.2f} / p95 "
                    f"{percentile(wall, 95):.2f} / max {max(wall):.2f} ms; this process's CPU "
                    f"p50 {statistics.median(cpu):.2f} ms; {replies} frames, {reply_bytes:,} "
                    f"bytes; the fake builds them in {build_ms:.2f} ms; a bare parse of them "
                    f"takes {parse_ms:.2f} ms" + (f"; errors: {errors}" if errors else "")
                )
            else:
                part.details.append(f"{label}: no handshake completed; errors: {errors}")
            figures[name] = {
                "other_nodes": count,
                "want_nodes": want_nodes,
                "connects": len(runs),
                "completed": len(good),
                "wall_ms_p50": statistics.median(wall) if wall else None,
                "wall_ms_p95": percentile(wall, 95) if wall else None,
                "wall_ms_max": max(wall) if wall else None,
                "cpu_ms_p50": statistics.median(cpu) if cpu else None,
                "nodes_in_db": nodes_seen,
                "expected_nodes_in_db": expected_nodes,
                "frames": frames_seen,
                "expected_frames": replies,
                "reply_bytes": reply_bytes,
                "fake_build_ms": build_ms,
                "bare_parse_ms": parse_ms,
                "errors": errors,
                "runs": runs,
            }
    biggest, smallest = max(counts), min(counts)
    if biggest > smallest and (biggest, True) in medians and (smallest, True) in medians:
        span = biggest - smallest
        per_node = 1000 * (medians[biggest, True] - medians[smallest, True]) / span
        cpu_per_node = 1000 * (cpu_medians[biggest, True] - cpu_medians[smallest, True]) / span
        part.check("wall per node_info (p50 slope)", f"{per_node:.2f} µs")
        part.check("link CPU per node_info (p50 slope)", f"{cpu_per_node:.2f} µs")
        figures["us_per_node_info"] = per_node
        figures["cpu_us_per_node_info"] = cpu_per_node
    part.details.append(
        f"the fake nodes answered {sum(served.values())} want_config requests "
        "(warm-up and profile included); wall = RadioLink.session() called -> mark_up, "
        "so it holds the TCP connect and the fake's building of its replies; CPU = this "
        "process's CPU time over the same span (the link and its event loop; the fake nodes "
        "run in a child process)"
    )
    part.figures = {
        "parameters": {"nodes": counts, "connects": args.connects, "settle_s": SETTLE_S},
        "tcp_connect_ms": {
            "p50": statistics.median(connect),
            "p95": percentile(connect, 95),
            "runs": connect,
        },
        "scenarios": figures,
        "fake_handshakes_served": served,
    }
    if profile is not None:
        part.figures["profile"] = profile
        part.details.append(f"cProfile of 5 handshakes with {biggest} nodes:\n" + profile)
    return part


# Main

PARTS: dict[str, Callable[[argparse.Namespace], Part]] = {
    "parse": part_parse,
    "handshake": part_handshake,
}


def int_list(text: str) -> list[int]:
    """Parse `64,512,4096`."""
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text}") from err
    if not values:
        raise argparse.ArgumentTypeError("an empty list")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="script/bench-radio", description=__doc__.split("\n")[0])
    add_only(parser, PARTS)
    parser.add_argument("--frames", type=int, default=100_000, help="frames in the stream (A)")
    parser.add_argument(
        "--chunks",
        type=int_list,
        default=[64, 512, 4096, 65536],
        help="read sizes in bytes, comma-separated (A)",
    )
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the four passes (A)")
    parser.add_argument(
        "--nodes",
        type=int_list,
        default=[0, 100, 500, 2000],
        help="other nodes in each fake node's database, comma-separated (B)",
    )
    parser.add_argument("--connects", type=int, default=20, help="connects per scenario (B)")
    parser.add_argument(
        "--profile", action="store_true", help="profile the link path (A) and handshakes (B)"
    )
    add_seed_output(parser, RESULTS)
    # Internal: part B runs itself again with this to serve the fake nodes from another process.
    parser.add_argument("--node-child", type=int_list, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.frames < 1 or args.rounds < 1 or args.connects < 1:
        parser.error("--frames, --rounds and --connects must be >= 1")
    if min(args.chunks) < 1 or min(args.nodes) < 0:
        parser.error("--chunks must be >= 1 byte and --nodes >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the parts, print the table and write the JSON; exit 1 only on a crash."""
    args = parse_args(argv)
    if args.node_child is not None:
        node_child(args.node_child)
        return 0
    run_and_report(
        PARTS,
        args,
        benchmark="radio",
        widths=(38, 34, 26),
        rstrip=True,
        summary=" (correctness only: no performance target is set for this benchmark)",
        targets={},
        versions={"protobuf": PROTOBUF_VERSION, "protobuf_backend": api_implementation.Type()},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
