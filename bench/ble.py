"""Bluetooth radio benchmark: the handshake through the GATT transport, and the loop's lag meanwhile.

Run with `script/bench-ble`. Every figure is measured in this run, in one process and one event
loop (no Bluetooth exists here: the peripheral is the fake node's GATT client, `FakeGattClient`,
which yields to the loop at every read and write as a real GATT round trip does):

- `ble`: wall time from `RadioLink(RadioSettings(address=...)).session(mark_up)` to `mark_up`,
  against a FakeNode holding `--nodes` other nodes, the node database included (want_nodes=True);
- `tcp`: the same node database over the stream protocol on 127.0.0.1, in the same process: the
  baseline, so the ratio is what the GATT transport costs beyond the session both share;
- loop lag: a 1 ms ticker runs beside the handshakes; each tick's lateness is a stall of the loop.
  p99 and max over every tick of the BLE handshakes. Target: no stall over 20 ms.

`--connects` handshakes of each kind run interleaved; figures are medians. Every handshake must
record the node count the fake sent (`link.info.nodes_in_db`), or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import gc
import statistics
import sys
import time
from typing import Any
from unittest.mock import patch

from bleak.backends.device import BLEDevice

from custom_components.meshbot.links.radio_transport import RadioSettings
from custom_components.meshbot.links.stream import RadioLink
from meshbot_dev.fake_node import FakeNode

ADDRESS = "AA:BB:CC:DD:EE:01"
STALL_TARGET_MS = 20.0
TICK = 0.001


class LagMeter:
    """Measure how late a 1 ms ticker wakes: the loop's stalls."""

    def __init__(self) -> None:
        """Start with no sample."""
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK)
            self.lags_ms.append((loop.time() - before - TICK) * 1000)

    def start(self) -> None:
        """Start ticking."""
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        """Stop ticking."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def handshake(link: RadioLink) -> float:
    """Return the seconds from starting a session to its mark_up; end the session."""
    ready = asyncio.Event()
    started = time.perf_counter()
    session = asyncio.create_task(link.session(lambda restarted=False: ready.set()))
    waiting = asyncio.create_task(ready.wait())
    try:
        await asyncio.wait((waiting, session), timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if session.done():
            session.result()
        if not ready.is_set():
            raise RuntimeError("no handshake within 60 s")
        return time.perf_counter() - started
    finally:
        session.cancel()
        waiting.cancel()
        await asyncio.gather(session, waiting, return_exceptions=True)


def percentile(values: list[float], share: float) -> float:
    """Return the value below which `share` of `values` lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(nodes: int, connects: int) -> dict[str, Any]:
    """Run the interleaved handshakes; return the figures and the checks."""
    node = FakeNode(other_nodes=nodes)
    port = await node.start_tcp()
    device = BLEDevice(ADDRESS, "Meshtastic_ee01", details={})
    expected = nodes + 1
    ble_times: list[float] = []
    tcp_times: list[float] = []
    ble_lags: list[float] = []
    failures: list[str] = []

    async def run(kind: str, make: Callable[[], RadioLink], into: list[float]) -> None:
        link = make()
        meter = LagMeter()
        meter.start()
        try:
            into.append(await handshake(link))
        finally:
            await meter.stop()
        if kind == "ble":
            ble_lags.extend(meter.lags_ms)
        if link.info.nodes_in_db != expected:
            failures.append(f"{kind}: {link.info.nodes_in_db} of {expected} nodes")

    def ble_link() -> RadioLink:
        return RadioLink(RadioSettings(address=ADDRESS), ble_device=lambda: device)

    def tcp_link() -> RadioLink:
        return RadioLink(RadioSettings(host="127.0.0.1", port=port))

    runs: list[Callable[[], Awaitable[None]]] = []
    for _ in range(connects):
        runs.append(lambda: run("ble", ble_link, ble_times))
        runs.append(lambda: run("tcp", tcp_link, tcp_times))
    with patch(
        "custom_components.meshbot.links.ble.establish_connection", node.establish_connection
    ):
        # One untimed round of each warms imports and caches.
        await run("ble", ble_link, [])
        await run("tcp", tcp_link, [])
        ble_lags.clear()
        gc.collect()
        for step in runs:
            await step()
    await node.stop()
    ble = statistics.median(ble_times)
    tcp = statistics.median(tcp_times)
    return {
        "nodes": nodes,
        "connects": connects,
        "ble_ms": ble * 1000,
        "tcp_ms": tcp * 1000,
        "ratio": ble / tcp,
        "lag_p99_ms": percentile(ble_lags, 0.99),
        "lag_max_ms": max(ble_lags),
        "ticks": len(ble_lags),
        "gatt_connected_after": node.gatt_connected,
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--connects", type=int, default=5)
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.nodes, args.connects))
    print(f"Bluetooth handshake, {figures['nodes']} nodes, {figures['connects']} connects each")
    print(f"  ble (GATT, fake peripheral)   {figures['ble_ms']:8.1f} ms  (median)")
    print(f"  tcp (stream, same process)    {figures['tcp_ms']:8.1f} ms  (median, baseline)")
    print(f"  ratio ble / tcp               {figures['ratio']:8.2f}")
    print(
        f"  loop lag during ble handshakes: p99 {figures['lag_p99_ms']:.2f} ms, "
        f"max {figures['lag_max_ms']:.2f} ms over {figures['ticks']} ticks"
    )
    stall_ok = figures["lag_max_ms"] <= STALL_TARGET_MS
    print(f"  {'PASS' if stall_ok else 'FAIL'} no stall over {STALL_TARGET_MS:g} ms")
    complete = not figures["failures"] and figures["gatt_connected_after"] == 0
    print(f"  {'PASS' if complete else 'FAIL'} every handshake complete, nothing left connected")
    for failure in figures["failures"]:
        print(f"    {failure}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
