"""The MQTT link against a broker that breaks the rules: what Mosquitto never sends, fuzzed.

paho parses the packets; meshbot's part is the buffered reads, the skipping of oversized packets
and what reaches the handler. Every case runs the real link over TCP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import itertools
import tracemalloc

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.meshbot.links.errors import LinkError
from custom_components.meshbot.links.mqtt import MqttLink, MqttSettings
from custom_components.meshbot.links.paho_client import MAX_PACKET
from meshbot_dev.hostile_broker import HostileBroker, publish_packet, remaining_length

from .support.waiting import until

WIRE_FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Received:
    """Collect what a link delivers."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload))


@contextlib.asynccontextmanager
async def linked(
    refuse: tuple[str, ...] = (), handler: Callable[[str, bytes], None] | None = None
) -> AsyncIterator[tuple[HostileBroker, MqttLink, asyncio.Task[None], Received]]:
    """Run a link subscribed to t/# against a fresh hostile broker; stop both afterwards."""
    broker = await HostileBroker(refuse=refuse).start()
    received = Received()
    link = MqttLink(MqttSettings("127.0.0.1", broker.port, connect_timeout=5), handler or received)
    link.set_filters({"t/#", *refuse})
    up = asyncio.Event()
    task = asyncio.create_task(link.session(lambda restarted=False: up.set()))
    try:
        await asyncio.wait_for(up.wait(), 10)
        yield broker, link, task, received
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await broker.close()


async def test_oversized_packets_are_skipped_without_being_kept(socket_enabled: None) -> None:
    async with linked() as (broker, link, task, received):
        stream = publish_packet(b"t/big", b"x" * (300 * 1024)) + publish_packet(b"t/small", b"fine")
        tracemalloc.start()
        try:
            # In 4 KiB pieces, as a network delivers them: the skip spans many reads.
            await broker.send(stream, chunk=4096)
            await until(lambda: received.messages)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert received.messages == [("t/small", b"fine")]
        assert link.counters.oversized == 1
        assert link.connected and not task.done()
        # The 300 KiB never sat in memory at once (the broker's buffers count here too).
        assert peak < 150 * 1024, peak


async def test_a_packet_just_under_the_limit_is_delivered(socket_enabled: None) -> None:
    async with linked() as (broker, link, _, received):
        payload = b"y" * (MAX_PACKET - 100)
        await broker.send(publish_packet(b"t/large", payload))
        await until(lambda: received.messages)
        assert received.messages == [("t/large", payload)]
        assert link.counters.oversized == 0


async def test_topics_that_are_not_utf8_are_counted_and_dropped(socket_enabled: None) -> None:
    async with linked() as (broker, link, _, received):
        await broker.send(publish_packet(b"t/\xff\xfe", b"bad") + publish_packet(b"t/ok", b"1"))
        await until(lambda: received.messages)
        assert received.messages == [("t/ok", b"1")]
        assert link.counters.bad_topics == 1
        assert link.counters.messages == 1


async def test_refused_subscriptions_are_reported_once(
    socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    async with linked(refuse=("secret/#",)) as (_, link, _, _):
        assert link.rejected_filters == {"secret/#"}
        # Dropping the filter forgets the refusal; asking again is refused again.
        link.set_filters({"t/#"})
        assert link.rejected_filters == set()
    refusals = [r for r in caplog.records if "refused the subscription to secret/#" in r.message]
    assert len(refusals) == 1


@pytest.mark.parametrize(
    "garbage",
    [
        # Five length bytes with the continuation bit: no MQTT packet is that long.
        b"\x30\xff\xff\xff\xff\x7f",
        # A PUBLISH whose topic would run past the end of the packet.
        b"\x30\x05\x00\x09t/1",
        # A PUBLISH with an empty topic, which 3.1.1 forbids.
        b"\x30\x04\x00\x00hi",
    ],
    ids=["length", "topic_past_the_end", "empty_topic"],
)
async def test_a_malformed_packet_ends_the_session_with_a_link_error(
    socket_enabled: None, garbage: bytes
) -> None:
    async with linked() as (broker, link, task, received):
        await broker.send(garbage)
        with pytest.raises(LinkError):
            await asyncio.wait_for(task, 5)
        assert not link.connected
        assert received.messages == []


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


topics = st.text(min_size=1, max_size=40).filter(lambda t: "\x00" not in t)
messages = st.lists(st.tuples(topics, st.binary(max_size=300)), min_size=1, max_size=6)


@WIRE_FUZZ
@given(batch=messages, cuts=st.lists(st.integers(0, 100_000), max_size=10))
def test_publishes_survive_any_chunking(
    socket_enabled: None, batch: list[tuple[str, bytes]], cuts: list[int]
) -> None:
    async def run() -> list[tuple[str, bytes]]:
        async with linked() as (broker, link, _, received):
            stream = b"".join(publish_packet(f"t/{t}".encode(), p) for t, p in batch)
            for piece in chunked(stream, cuts):
                await broker.send(piece)
                await asyncio.sleep(0)
            await until(lambda: len(received.messages) >= len(batch))
            assert link.counters.messages == len(batch)
            return received.messages

    assert asyncio.run(run()) == [(f"t/{topic}", payload) for topic, payload in batch]


@WIRE_FUZZ
@given(chunks=st.lists(st.binary(min_size=1, max_size=600), min_size=1, max_size=10))
def test_garbage_from_the_broker_ends_at_most_the_session(
    socket_enabled: None, chunks: list[bytes]
) -> None:
    async def run() -> None:
        async with linked() as (broker, link, task, _):
            for chunk in chunks:
                await broker.send(chunk)
            # Garbage, then a packet announcing more than the limit: memory must stay flat
            # whichever way the garbage left paho's parser.
            await broker.send(b"\x30" + remaining_length(MAX_PACKET + 1))
            await asyncio.sleep(0.05)
            if task.done():
                # Only ever the link's own error: the supervisor reconnects.
                with pytest.raises(LinkError):
                    task.result()
            else:
                assert link.connected

    asyncio.run(run())
