"""Fuzz meshbot's mesh decoder and state with hostile envelopes, and report the throughput.

Run with `.venv/bin/python -m bench.fuzz_mesh --cases 200000` (`--seed N` to replay a run). Each
case is one envelope handed to `MeshDecoder.decode`, and its result to `MeshState.apply`:

- `fields`: a real envelope of any shape with fuzzed field values: node ids 0, 1 and broadcast,
  positions out of range, NaN/inf SNR, huge hop counts, names with control characters or invalid
  UTF-8, future timestamps, wrong keys, PKI, map reports (tests/support/mesh_traffic.py);
- `mutated`: a real envelope (every port and channel) with bytes flipped, set, inserted or
  deleted, truncated or extended;
- `random`: random bytes (0-600) on a valid topic;
- `topic`: a real envelope on a random topic (odd characters, empty levels);
- `wrong_key`: a real envelope for a decoder holding other keys with the same channel hashes;
- `replay`: an envelope already sent (duplicates, and copies of rejected packets).

Checked on every case: nothing raises, the decoder never counts `internal_error`, its counters
move by exactly one outcome (decoded, duplicate or one rejection, None exactly on a rejection),
a returned packet names only real node ids with at most 7 hops; every 10,000 cases and at the
end: the state is within its caps, every link joins two known nodes, and the topology and the
stored state survive JSON. The first failure stops the run with what reproduces it; exit 1.
"""

from __future__ import annotations

import argparse
import base64
from collections import Counter
from collections.abc import Callable
import json
import math
import random
import sys
import time
import traceback

from custom_components.meshbot.mesh.decode import MeshDecoder
from custom_components.meshbot.mesh.models import DecodedPacket
from custom_components.meshbot.mesh.state import MeshState
from meshbot_dev.mesh_traffic import (
    DEFAULT_PSK,
    FUZZ_CHANNEL_KEYS,
    FUZZ_CHANNELS,
    FUZZ_ROOT,
    ByteSource,
    Envelope,
    MeshTraffic,
    fuzz_envelope,
    fuzz_mutate,
    fuzz_topic,
    hash_of,
)

CLOCK_START = 1_700_000_000.0
CLOCK_STEP = 0.001
CHECK_EVERY = 10_000
PRUNE_EVERY = 50_000
REPLAY_MEMORY = 256
KINDS = {
    "fields": 35,
    "mutated": 25,
    "random": 15,
    "topic": 10,
    "wrong_key": 10,
    "replay": 5,
}
VALID_TOPICS = (
    f"{FUZZ_ROOT}/2/e/LongFast/!0badcafe",
    f"{FUZZ_ROOT}/2/e/Ops/!0badcafe",
    f"{FUZZ_ROOT}/2/e/PKI/!0badcafe",
    f"{FUZZ_ROOT}/2/map/",
    "msh/US/CA/Bay/2/e/LongFast/!12345678",
)


class FuzzFailure(Exception):
    """Raise when a case breaks an invariant."""


def real_node(num: int) -> bool:
    """0 is nobody, 1 the "MQTT and apps" pseudo-address, 0xFFFFFFFF broadcast."""
    return 1 < num < 0xFFFFFFFF


def envelope_pool(seed: int) -> list[Envelope]:
    """Real envelopes of every shape on every channel (one of them unconfigured)."""
    mesh = MeshTraffic(root=FUZZ_ROOT, rng=random.Random(seed))
    pool = mesh.regional_mix(400, nodes=60, garbage=0.0)
    sender, gateway = 0x1A2B3C4D, 0x0BADCAFE
    for channel, key in FUZZ_CHANNELS.items():
        kw = {"gateway": gateway, "channel": channel, "key": key}
        pool += [
            mesh.position(sender, 48.85, 2.35, precision=13, **kw),
            mesh.node_info(sender, "Base\x00Camp", "BC", **kw),
            mesh.telemetry(sender, 101, 4.2, **kw),
            mesh.environment(sender, 21.5, 40.0, **kw),
            mesh.neighbors(sender, [(0x11, 1.0), (0, 0.0)], **kw),
            mesh.traceroute_reply(sender, 0x22, [0x33], [1.0, -32.0], [0x33], [2.0], **kw),
            mesh.text(sender, "hello", **kw),
        ]
    pool += [
        mesh.text(sender, "clear", gateway=gateway, encrypted=False),
        mesh.pki(sender, 0x0A0A0A0A, gateway=gateway),
        mesh.map_report(sender, "Hilltop", 45.76, 4.83),
        mesh.map_report(sender + 1, "Nowhere", 0.0, 0.0),
    ]
    return pool


def same_hash_key(rng: random.Random, channel: str, key: bytes) -> str:
    """Return a random key of the same length and channel hash as `key`, in base64."""
    wrong = bytearray(rng.randbytes(len(key)))
    wrong[-1] ^= hash_of(channel, bytes(wrong)) ^ hash_of(channel, key)
    if bytes(wrong) == key:
        wrong[0] ^= 1
        wrong[1] ^= 1
    return base64.b64encode(bytes(wrong)).decode()


def check_packet(packet: DecodedPacket) -> None:
    if not real_node(packet.sender):
        raise FuzzFailure(f"returned a packet from node {packet.sender:#x}")
    reception = packet.reception
    if reception is not None:
        if not real_node(reception.gateway) or reception.gateway == packet.sender:
            raise FuzzFailure(f"reception by gateway {reception.gateway:#x}")
        if reception.hops is not None and not 0 <= reception.hops <= 7:
            raise FuzzFailure(f"{reception.hops} hops")
        if reception.snr is not None and not math.isfinite(reception.snr):
            raise FuzzFailure(f"SNR {reception.snr}")
    if packet.direct != (reception is not None and reception.hops == 0):
        raise FuzzFailure("direct flag disagrees with the reception")


def decode_checked(decoder: MeshDecoder, envelope: Envelope, now: float) -> DecodedPacket | None:
    counters = decoder.counters
    before = (counters.decoded, counters.duplicates, counters.rejected_total)
    packet = decoder.decode(envelope.topic, envelope.payload, now)
    after = (counters.decoded, counters.duplicates, counters.rejected_total)
    if packet is None:
        expected = (before[0], before[1], before[2] + 1)
    elif packet.duplicate:
        expected = (before[0], before[1] + 1, before[2])
    else:
        expected = (before[0] + 1, before[1], before[2])
    if after != expected:
        raise FuzzFailure(f"counters moved from {before} to {after}, expected {expected}")
    if "internal_error" in counters.rejected:
        raise FuzzFailure("the decoder caught an exception of its own (internal_error)")
    if packet is not None:
        check_packet(packet)
    return packet


def check_state(state: MeshState, now: float) -> None:
    if len(state.nodes) > state.max_nodes or len(state.links) > state.max_links:
        raise FuzzFailure(f"{len(state.nodes)} nodes, {len(state.links)} links over the caps")
    for source_node, target_node, source in state.links:
        if source_node not in state.nodes or target_node not in state.nodes:
            raise FuzzFailure(f"{source} link {source_node:#x}->{target_node:#x} to a lost node")
    json.dumps(state.topology(now), allow_nan=False)
    stored = json.loads(json.dumps(state.to_storage(), allow_nan=False))
    restored = MeshState.from_storage(stored, state.max_nodes, state.max_links)
    if restored.to_storage() != stored:
        raise FuzzFailure("the stored state does not survive a reload")


class Fuzzer:
    """One run: the case generators, a decoder per key set, and one capped state."""

    def __init__(self, seed: int, max_nodes: int, max_links: int) -> None:
        self.rng = random.Random(seed)
        self.pool = envelope_pool(seed)
        self.decoder = MeshDecoder(FUZZ_CHANNEL_KEYS)
        wrong_keys = {
            "LongFast": same_hash_key(self.rng, "LongFast", DEFAULT_PSK),
            "Ops": same_hash_key(self.rng, "Ops", FUZZ_CHANNELS["Ops"]),
        }
        self.wrong_decoder = MeshDecoder(wrong_keys)
        self.state = MeshState(max_nodes, max_links)
        self.recent: list[Envelope] = []
        self.kinds = Counter[str]()
        makers: dict[str, Callable[[float], Envelope]] = {
            "fields": self.fields,
            "mutated": self.mutated,
            "random": self.random,
            "topic": self.topic,
            "wrong_key": self.wrong_key,
            "replay": self.replay,
        }
        self.makers = [makers[name] for name in KINDS]
        self.names = list(KINDS)
        self.weights = list(KINDS.values())

    def fields(self, now: float) -> Envelope:
        return fuzz_envelope(ByteSource(self.rng.randbytes(512)), now)

    def mutated(self, _now: float) -> Envelope:
        envelope = self.rng.choice(self.pool)
        source = ByteSource(self.rng.randbytes(96))
        return Envelope(envelope.topic, fuzz_mutate(envelope.payload, source))

    def random(self, _now: float) -> Envelope:
        return Envelope(self.rng.choice(VALID_TOPICS), self.rng.randbytes(self.rng.randint(0, 600)))

    def topic(self, _now: float) -> Envelope:
        topic = fuzz_topic(ByteSource(self.rng.randbytes(96)))
        return Envelope(topic, self.rng.choice(self.pool).payload)

    def wrong_key(self, _now: float) -> Envelope:
        return self.rng.choice(self.pool)

    def replay(self, now: float) -> Envelope:
        return self.rng.choice(self.recent) if self.recent else self.fields(now)

    def run(self, cases: int) -> None:
        state, now = self.state, CLOCK_START
        batch = self.rng.choices(range(len(self.makers)), self.weights, k=cases)
        for index, kind in enumerate(batch, start=1):
            now += CLOCK_STEP
            name = self.names[kind]
            envelope = self.makers[kind](now)
            self.kinds[name] += 1
            decoder = self.wrong_decoder if name == "wrong_key" else self.decoder
            try:
                packet = decode_checked(decoder, envelope, now)
                if packet is not None:
                    state.apply(packet, now)
                if index % CHECK_EVERY == 0:
                    check_state(state, now)
                if index % PRUNE_EVERY == 0:
                    state.prune(now, node_max_age=20.0, link_max_age=10.0)
            except Exception as err:
                err.add_note(f"case {index} ({name}): topic {envelope.topic!r}")
                err.add_note(f"payload {envelope.payload.hex()}")
                raise
            if len(self.recent) < REPLAY_MEMORY:
                self.recent.append(envelope)
            else:
                self.recent[index % REPLAY_MEMORY] = envelope
        check_state(state, now)


def report(fuzzer: Fuzzer, cases: int, seconds: float) -> None:
    print(f"meshbot mesh fuzz: {cases:,} cases in {seconds:.2f} s = {cases / seconds:,.0f} cases/s")
    print("cases by kind: " + ", ".join(f"{n} {c:,}" for n, c in fuzzer.kinds.most_common()))
    rejected: Counter[str] = Counter()
    totals = Counter[str]()
    for decoder in (fuzzer.decoder, fuzzer.wrong_decoder):
        counters = decoder.counters
        rejected.update(counters.rejected)
        totals.update(
            envelopes=counters.envelopes,
            decoded=counters.decoded,
            duplicates=counters.duplicates,
            rejected=counters.rejected_total,
        )
    print(
        f"decoder: {totals['envelopes']:,} envelopes = {totals['decoded']:,} decoded"
        f" + {totals['duplicates']:,} duplicates + {totals['rejected']:,} rejected"
    )
    print("rejections: " + ", ".join(f"{n} {c:,}" for n, c in rejected.most_common()))
    state = fuzzer.state
    print(
        f"state: {len(state.nodes):,}/{state.max_nodes:,} nodes, "
        f"{len(state.links):,}/{state.max_links:,} links; evicted {state.evicted_nodes:,} "
        f"nodes and {state.evicted_links:,} links; links by source "
        f"{state.count_links_by_source()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200_000, help="envelopes to throw")
    parser.add_argument("--seed", type=int, default=1, help="replay a run with its seed")
    parser.add_argument("--max-nodes", type=int, default=500, help="state node cap")
    parser.add_argument("--max-links", type=int, default=1_000, help="state link cap")
    args = parser.parse_args(argv)
    if args.cases < 1:
        parser.error("--cases must be at least 1")

    fuzzer = Fuzzer(args.seed, args.max_nodes, args.max_links)
    print(f"seed {args.seed}; {len(fuzzer.pool)} real envelopes to mutate")
    started = time.perf_counter()
    try:
        fuzzer.run(args.cases)
    except Exception:
        traceback.print_exc()
        print(f"FAILED (seed {args.seed}): the case above raised", file=sys.stderr)
        return 1
    report(fuzzer, args.cases, time.perf_counter() - started)
    print("OK: nothing raised, every invariant held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
