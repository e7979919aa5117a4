"""MQTT clients side by side: paho-mqtt as meshbot drives it, against meshbot's own old client.

Run with `python -m bench.mqtt`. Both clients run in this one process, in interleaved rounds,
behind the same link interface (the old one is frozen in bench/own_mqtt.py):

A. `faults`: one session per client against each kind of broker (working, refusing, silent,
   hanging, unresolvable) with a 1 s connect deadline: time to the verdict (up or the error),
   event-loop CPU and the worst loop lag while it is decided.
B. `first_message`: session start to the first message (a retained one) from a real Mosquitto.
C. `memory`: a hostile broker sends a 300 KiB packet: the memory peak while it is skipped.
D. `end_to_end`: the ingest benchmark's part C (2,000 msg/s, recorder on, a running Home
   Assistant) once per client: Home Assistant CPU per message (every thread, and the event
   loop alone), loop lag p99 and max.

Target: paho costs at most 10% more Home Assistant CPU per message than the old client, and no
other figure is worse beyond noise. A missed target is printed and recorded, not an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Iterator
import contextlib
import gc
import statistics
import sys
import time
import tracemalloc
from typing import Any
from unittest.mock import patch

import paho.mqtt.client as paho

from custom_components.meshbot.links.mqtt import MessageHandler, MqttLink, MqttSettings
from custom_components.meshbot.links.supervisor import MarkUp
from meshbot_dev.hostile_broker import HostileBroker, publish_packet
from meshbot_dev.mosquitto import (
    UNRESOLVABLE_HOST,
    HangingListener,
    MosquittoBroker,
    SilentListener,
    refused_port,
)

from . import ingest, own_mqtt
from .end_to_end import LagProbe, run
from .report import REPO, Part, add_only, add_seed_output, run_and_report

RESULTS = REPO / "bench" / "results" / "mqtt.json"
CPU_TARGET = 1.10
FAULTS = ("working", "refused", "silent", "hanging", "unresolvable")
CLIENTS = ("own", "paho")


class OwnClientLink(MqttLink):
    """meshbot's old client behind the paho link's interface, so the integration can run on it."""

    def __init__(self, settings: MqttSettings, on_message: MessageHandler) -> None:
        """Wrap an old-client link with the same settings."""
        super().__init__(settings, on_message)
        self._own = own_mqtt.MqttLink(
            own_mqtt.MqttSettings(
                host=settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password,
                client_id=settings.client_id,
                keepalive=settings.keepalive,
                connect_timeout=settings.connect_timeout,
                ssl_context_factory=settings.ssl_context_factory,
            ),
            self._deliver,
        )
        self._own.counters = self.counters
        self.rejected_filters = self._own.rejected_filters

    def _deliver(self, topic: str, payload: bytes) -> None:
        self.last_message_at = time.time()
        self.on_message(topic, payload)

    @property
    def connected(self) -> bool:
        """Return whether the old client's session is up."""
        return self._own.connected

    @property
    def awaiting_acknowledgement(self) -> int:
        """Return the old client's unanswered (un)subscribes."""
        return self._own.awaiting_acknowledgement

    def set_filters(self, filters: Any) -> None:
        """Keep the filters here and there."""
        super().set_filters(filters)
        self._own.set_filters(filters)

    async def session(self, mark_up: MarkUp) -> None:
        """Run the old client's session."""
        await self._own.session(mark_up)


LINKS: dict[str, type[MqttLink]] = {"own": OwnClientLink, "paho": MqttLink}


def ratio(new: float, old: float) -> float:
    return new / old if old else float("inf")


# A: faults


@contextlib.contextmanager
def fault_target(fault: str, broker: MosquittoBroker) -> Iterator[tuple[str, int]]:
    listener: SilentListener | HangingListener | None = None
    try:
        if fault == "working":
            yield broker.host, broker.port
        elif fault == "refused":
            yield "127.0.0.1", refused_port()
        elif fault == "unresolvable":
            yield UNRESOLVABLE_HOST, refused_port()
        else:
            listener = SilentListener() if fault == "silent" else HangingListener()
            yield "127.0.0.1", listener.port
    finally:
        if listener is not None:
            listener.close()


async def measured(action: Callable[[], Awaitable[None]]) -> dict[str, float]:
    """Run `action`; return its wall time, the loop thread's CPU and the worst loop lag."""
    probe = LagProbe(0.005)
    probe.start()
    await asyncio.sleep(0.02)
    cpu, start = time.thread_time(), time.perf_counter()
    await action()
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    await probe.stop()
    lags = [late for at, late in probe.samples]
    return {"s": wall, "cpu_s": cpu, "lag_max_s": max(lags, default=0.0)}


async def one_session(kind: str, host: str, port: int, filters: set[str]) -> MqttLink:
    link = LINKS[kind](MqttSettings(host, port, connect_timeout=1.0), lambda _t, _p: None)
    link.set_filters(filters)
    up = asyncio.Event()
    task = asyncio.create_task(link.session(lambda restarted=False: up.set()))
    waiter = asyncio.create_task(up.wait())
    await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return link


async def part_faults(part: Part, rounds: int, broker: MosquittoBroker) -> None:
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        fault: {kind: [] for kind in CLIENTS} for fault in FAULTS
    }
    for _ in range(rounds):
        for fault in FAULTS:
            for kind in CLIENTS:
                with fault_target(fault, broker) as (host, port):
                    figures = await measured(
                        lambda k=kind, h=host, p=port: one_session(k, h, p, {"t/#"})
                    )
                results[fault][kind].append(figures)
    for fault in FAULTS:
        row = {}
        for kind in CLIENTS:
            samples = results[fault][kind]
            row[kind] = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
        part.figures[fault] = row
        own, paho = row["own"], row["paho"]
        part.check(
            f"{fault}: verdict after, own / paho",
            f"{own['s'] * 1000:.1f} / {paho['s'] * 1000:.1f} ms",
        )
        part.check(
            f"{fault}: loop CPU, own / paho",
            f"{own['cpu_s'] * 1000:.2f} / {paho['cpu_s'] * 1000:.2f} ms",
        )
        part.check(
            f"{fault}: worst loop lag, own / paho",
            f"{own['lag_max_s'] * 1000:.1f} / {paho['lag_max_s'] * 1000:.1f} ms",
        )


# B: first message


def publish_retained(broker: MosquittoBroker, topic: str, payload: bytes) -> None:
    """Leave a retained message on the broker (with paho's own thread, outside the loop)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


async def first_message(kind: str, broker: MosquittoBroker) -> float:
    arrived = asyncio.Event()
    link = LINKS[kind](MqttSettings(broker.host, broker.port), lambda _t, _p: arrived.set())
    link.set_filters({"retained/#"})
    start = time.perf_counter()
    task = asyncio.create_task(link.session(lambda restarted=False: None))
    await asyncio.wait_for(arrived.wait(), 10)
    elapsed = time.perf_counter() - start
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return elapsed


async def part_first_message(part: Part, rounds: int, broker: MosquittoBroker) -> None:
    await asyncio.to_thread(publish_retained, broker, "retained/strike", b"{}")
    times: dict[str, list[float]] = {kind: [] for kind in CLIENTS}
    for _ in range(rounds):
        for kind in CLIENTS:
            times[kind].append(await first_message(kind, broker))
    own, paho = (statistics.median(times[kind]) for kind in CLIENTS)
    part.figures = {kind: times[kind] for kind in CLIENTS}
    part.check(
        "session start to first message, median, own / paho",
        f"{own * 1000:.2f} / {paho * 1000:.2f} ms (x{ratio(paho, own):.2f})",
    )


# C: memory


async def skip_peak(kind: str) -> tuple[int, int]:
    broker = await HostileBroker().start()
    received: list[str] = []
    arrived = asyncio.Event()

    def on_message(topic: str, _payload: bytes) -> None:
        received.append(topic)
        arrived.set()

    link = LINKS[kind](MqttSettings("127.0.0.1", broker.port), on_message)
    link.set_filters({"t/#"})
    up = asyncio.Event()
    task = asyncio.create_task(link.session(lambda restarted=False: up.set()))
    await asyncio.wait_for(up.wait(), 10)
    stream = publish_packet(b"t/big", b"x" * (300 * 1024)) + publish_packet(b"t/small", b"ok")
    gc.collect()
    tracemalloc.start()
    await broker.send(stream, chunk=16 * 1024)
    await asyncio.wait_for(arrived.wait(), 10)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await broker.close()
    if received != ["t/small"] or link.counters.oversized != 1:
        raise RuntimeError(f"{kind}: expected only t/small after one skip, got {received}")
    return peak, link.counters.oversized


async def part_memory(part: Part) -> None:
    peaks = {kind: (await skip_peak(kind))[0] for kind in CLIENTS}
    part.figures = peaks
    part.check(
        "memory peak while a 300 KiB packet is skipped, own / paho",
        f"{peaks['own'] / 1024:.0f} / {peaks['paho'] / 1024:.0f} KiB",
        "< 300 KiB",
        max(peaks.values()) < 300 * 1024,
    )


# D: end to end


def ingest_args(seconds: float) -> argparse.Namespace:
    return ingest.parse_args(["--only", "end_to_end", "--seconds", str(seconds)])


def end_to_end(kind: str, seconds: float) -> dict[str, Any]:
    with patch("custom_components.meshbot.MqttLink", LINKS[kind]):
        facts = run(ingest_args(seconds), seconds, ingest.WRITE_INTERVAL_TARGET_S)
    cpu = facts["cpu_window"]["threads"]
    messages = facts["link"]["messages"]
    window = facts["lag"]["window"]
    return {
        "messages": messages,
        "cpu_us_per_message": sum(cpu.values()) / messages * 1e6,
        "loop_cpu_us_per_message": cpu.get("event loop", 0.0) / messages * 1e6,
        "lag_p99_ms": window["p99_ms"],
        "lag_max_ms": window["max_ms"],
        "threads": cpu,
    }


def part_end_to_end(part: Part, rounds: int, seconds: float) -> None:
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CLIENTS}
    for number in range(rounds):
        for kind in CLIENTS if number % 2 == 0 else reversed(CLIENTS):
            print(f"D round {number + 1}: {kind} client, {seconds:g} s feed", flush=True)
            runs[kind].append(end_to_end(kind, seconds))
    part.figures = runs

    def median(kind: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[kind])

    cpu_ratio = ratio(median("paho", "cpu_us_per_message"), median("own", "cpu_us_per_message"))
    part.check(
        "Home Assistant CPU per message (all threads), own / paho",
        f"{median('own', 'cpu_us_per_message'):.1f} / {median('paho', 'cpu_us_per_message'):.1f}"
        f" µs (x{cpu_ratio:.3f})",
        f"<= x{CPU_TARGET:.2f}",
        cpu_ratio <= CPU_TARGET,
    )
    loop_ratio = ratio(
        median("paho", "loop_cpu_us_per_message"), median("own", "loop_cpu_us_per_message")
    )
    part.check(
        "event loop CPU per message, own / paho",
        f"{median('own', 'loop_cpu_us_per_message'):.1f} / "
        f"{median('paho', 'loop_cpu_us_per_message'):.1f} µs (x{loop_ratio:.3f})",
    )
    for key, label in (("lag_p99_ms", "loop lag p99"), ("lag_max_ms", "loop lag max")):
        part.check(
            f"{label} during the feed, own / paho",
            f"{median('own', key):.1f} / {median('paho', key):.1f} ms",
        )


def with_broker(body: Callable[[Part, MosquittoBroker], Awaitable[None]], name: str) -> Part:
    """Run one part's measurements in a fresh event loop beside a fresh Mosquitto."""
    part = Part(name)
    broker = MosquittoBroker().start()
    try:
        asyncio.run(body(part, broker))
    finally:
        broker.close()
    return part


def run_faults(args: argparse.Namespace) -> Part:
    """A: one session per client against each kind of broker."""
    print(f"A {args.rounds} rounds of one session per client and broker kind", flush=True)
    return with_broker(lambda part, broker: part_faults(part, args.rounds, broker), "faults")


def run_first_message(args: argparse.Namespace) -> Part:
    """B: session start to the first message."""
    print("B session start to the first (retained) message", flush=True)
    return with_broker(
        lambda part, broker: part_first_message(part, args.rounds * 4, broker), "first_message"
    )


def run_memory(args: argparse.Namespace) -> Part:
    """C: the memory peak while a 300 KiB packet is skipped."""
    print("C a 300 KiB packet from a broker that ignores the packet size limit", flush=True)
    part = Part("memory")
    asyncio.run(part_memory(part))
    return part


def run_end_to_end(args: argparse.Namespace) -> Part:
    """D: the ingest benchmark's end-to-end feed once per client and round."""
    part = Part("end_to_end")
    part_end_to_end(part, args.e2e_rounds, args.seconds)
    return part


PARTS: dict[str, Callable[[argparse.Namespace], Part]] = {
    "faults": run_faults,
    "first_message": run_first_message,
    "memory": run_memory,
    "end_to_end": run_end_to_end,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.mqtt", description=__doc__.split("\n")[0]
    )
    add_only(parser, list(PARTS))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (A, B)")
    parser.add_argument("--e2e-rounds", type=int, default=2, help="feeds per client (D)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of feed (D)")
    add_seed_output(parser, RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the parts, print the table, write the JSON."""
    args = parse_args(argv)
    run_and_report(
        PARTS,
        args,
        benchmark="mqtt",
        widths=(58, 34, 10),
        summary=f" (paho CPU per message at most x{CPU_TARGET:.2f} the old client's)",
        targets={"cpu_per_message_ratio": CPU_TARGET},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
