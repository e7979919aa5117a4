"""The lightning monitor end to end: strikes on real relay topics through a real Mosquitto.

Everything is read where a user reads it: sensor and event entities, bus events, the map, the
diagnostics download, and what the fake radio was asked to send; time moves with freezegun.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import HomeAssistant, callback
from homeassistant.util.unit_system import US_CUSTOMARY_SYSTEM
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meshbot.const import (
    CONF_FOLLOW_ENTITY,
    CONF_LOCATION_MODE,
    CONF_MAP_STRIKES,
    CONF_MESH_ALERT_TARGETS,
    DOMAIN,
    EVENT_LIGHTNING_ALERT,
    EVENT_LIGHTNING_STRIKE,
    LOCATION_ENTITY,
    MAX_STRIKE_EVENTS_PER_SECOND,
)
from custom_components.meshbot.lightning.geohash import encode
from meshbot_dev.entries import broker_section, entry_for, radio_section
from meshbot_dev.fake_node import FakeNode
from meshbot_dev.mosquitto import MosquittoBroker, publish_many

from .support.seen import (
    Diagnostics,
    connectivity,
    flush,
    is_on,
    later,
    link_messages,
    until_messages,
    until_subscribed,
)
from .support.waiting import until

EARTH_RADIUS_KM = 6371.0088
NEARBY = "binary_sensor.meshbot_test_lightning_nearby"
# Flushes run a second apart plus their own run time.
FLUSH_PERIOD = 1.003


def destination(lat: float, lon: float, distance_km: float, bearing: float) -> tuple[float, float]:
    """Solve the direct problem (a point at a distance and bearing), independently of meshbot."""
    delta = distance_km / EARTH_RADIUS_KM
    theta, phi1, lambda1 = map(math.radians, (bearing, lat, lon))
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    return math.degrees(phi2), (math.degrees(lambda2) + 540) % 360 - 180


def strike(lat: float, lon: float, when: float) -> tuple[str, bytes]:
    """Return a relay message: one topic level per geohash character, time in nanoseconds."""
    payload = {"lat": lat, "lon": lon, "time": int(when * 1e9), "status": 2, "region": 1, "sig": []}
    return "blitzortung/1.1/" + "/".join(encode(lat, lon, 12)), json.dumps(payload).encode()


async def start(hass: HomeAssistant, diagnostics: Diagnostics, entry: MockConfigEntry) -> None:
    """Set the entry up and wait until the relay acknowledged every subscription."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until_subscribed(hass, diagnostics, entry, "lightning")


async def publish(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    entry: MockConfigEntry,
    messages: list[tuple[str, bytes]],
) -> None:
    """Publish strikes and wait until the monitor received all it has received so far and them."""
    before = await link_messages(diagnostics, entry, "lightning")
    await hass.async_add_executor_job(publish_many, broker, messages)
    await until_messages(diagnostics, entry, "lightning", before + len(messages))


def lightning_entry(broker: MosquittoBroker, **options: Any) -> MockConfigEntry:
    base = entry_for(lightning=broker_section(broker.port))
    return MockConfigEntry(
        domain=DOMAIN, title=base.title, data=dict(base.data), options={**base.options, **options}
    )


def value(hass: HomeAssistant, key: str) -> Any:
    state = hass.states.get(f"sensor.meshbot_test_{key}")
    assert state is not None, key
    return state


async def test_strikes_become_sensors_events_and_an_alert(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
) -> None:
    entry = lightning_entry(broker)
    await start(hass, diagnostics, entry)
    now = time.time()
    home = (hass.config.latitude, hass.config.longitude)
    strikes_seen: list[Any] = []
    alerts: list[Any] = []
    hass.bus.async_listen(
        EVENT_LIGHTNING_STRIKE, callback(lambda event: strikes_seen.append(event.data))
    )
    hass.bus.async_listen(EVENT_LIGHTNING_ALERT, callback(lambda event: alerts.append(event.data)))

    far = destination(*home, 80.0, 300.0)
    outside = destination(*home, 140.0, 10.0)
    # A storm closing in from the WSW at 1.8 km/min: 20 km five minutes ago, 11 km now.
    closing = (20.0, 18.2, 16.4, 14.6, 12.8, 11.0)
    near = [destination(*home, distance, 250.0) for distance in closing]
    messages = [strike(*far, now - 1200), strike(*outside, now - 60)]
    messages += [strike(*point, now - 300 + 60 * index) for index, point in enumerate(near)]
    await publish(hass, broker, diagnostics, entry, messages)
    await flush(hass)

    assert value(hass, "strikes_in_window").state == "7", "the one beyond 100 km is dropped"
    nearest = value(hass, "nearest_strike")
    assert float(nearest.state) == pytest.approx(11.0, abs=0.01)
    assert nearest.attributes["unit_of_measurement"] == "km"
    direction = value(hass, "strike_direction")
    assert float(direction.state) == pytest.approx(250.0, abs=0.1)
    assert direction.attributes["compass"] == "WSW"
    assert value(hass, "storm_trend").state == "approaching"
    assert float(value(hass, "storm_speed").state) == pytest.approx(1.8 * 60, rel=0.1)
    # A first arrival estimate is held until estimates came for 5 minutes in a row.
    assert value(hass, "storm_arrival").state == "unknown"
    assert [round(event["distance_km"], 1) for event in strikes_seen] == [80.0, *closing]
    assert strikes_seen[0]["time"].endswith("+00:00")
    assert {event["config_entry_id"] for event in strikes_seen} == {entry.entry_id}
    assert is_on(hass, NEARBY)
    assert [alert["state"] for alert in alerts] == ["started"]
    event_entity = hass.states.get("event.meshbot_test_lightning_strike")
    assert event_entity.attributes["strikes"] == 7
    assert event_entity.attributes["distance_km"] == pytest.approx(11.0, abs=0.01)

    # Quiet for the quiet period: the alert ends. The window then empties with time.
    await later(hass, frozen, 20 * 60 + 1)
    assert hass.states.get(NEARBY).state == "off"
    assert [alert["state"] for alert in alerts] == ["started", "ended"]
    await later(hass, frozen, 30 * 60)
    assert value(hass, "strikes_in_window").state == "0"
    assert value(hass, "nearest_strike").state == "unknown"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_quiet_times_refresh_the_sensors_once_a_minute(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
) -> None:
    # Half past a minute of the clock: the minute is counted from the last write, not the clock.
    frozen.tick(30)
    entry = lightning_entry(broker)
    await start(hass, diagnostics, entry)
    await flush(hass)
    writes: list[str] = []

    @callback
    def lightning_sensor(data: Any) -> bool:
        return data["entity_id"].startswith("sensor.meshbot_test_")

    for event_type in (EVENT_STATE_CHANGED, EVENT_STATE_REPORTED):
        hass.bus.async_listen(
            event_type,
            callback(lambda event: writes.append(event.data["entity_id"])),
            event_filter=lightning_sensor,
        )
    # No strike: a flush each second writes nothing for a minute...
    for _ in range(59):
        await later(hass, frozen, FLUSH_PERIOD)
    assert writes == []
    # ...then the sensors are written again, so their rate, trend and expiry move on.
    await later(hass, frozen, FLUSH_PERIOD)
    assert "sensor.meshbot_test_strikes_in_window" in writes
    await hass.config_entries.async_unload(entry.entry_id)


async def test_strike_events_are_bounded_per_second(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
) -> None:
    entry = lightning_entry(broker)
    await start(hass, diagnostics, entry)
    home = (hass.config.latitude, hass.config.longitude)
    # (real loop time fired at, event data): the events of one flush are fired together.
    events: list[tuple[float, Any]] = []
    hass.bus.async_listen(
        EVENT_LIGHTNING_STRIKE,
        callback(lambda event: events.append((hass.loop.time(), event.data))),
    )
    burst = [
        strike(*destination(*home, 30 + index % 50, index * 7 % 360), time.time() - 1)
        for index in range(200)
    ]
    await publish(hass, broker, diagnostics, entry, burst)
    await flush(hass)
    # The burst may straddle one of the real flushes: judge each flush's events on their own.
    flushes: list[list[Any]] = []
    last = -math.inf
    for fired_at, data in events:
        if fired_at - last > 0.5:
            flushes.append([])
        flushes[-1].append(data)
        last = fired_at
    for fired in flushes:
        individual = [data for data in fired if "summarised" not in data]
        summaries = [data for data in fired if "summarised" in data]
        assert len(individual) <= MAX_STRIKE_EVENTS_PER_SECOND
        assert len(summaries) <= 1, "the rest of a second is one event"
        if summaries:
            assert len(individual) == MAX_STRIKE_EVENTS_PER_SECOND
            assert fired[-1] is summaries[0], "after the individual ones"
    assert any("summarised" in data for fired in flushes for data in fired)
    told = sum(data.get("summarised", 1) for fired in flushes for data in fired)
    assert told == 200, "every strike is in an event or a summary"
    assert value(hass, "strikes_in_window").state == "200", "no strike is lost"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_distances_follow_the_unit_system(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
) -> None:
    hass.config.units = US_CUSTOMARY_SYSTEM
    entry = lightning_entry(broker)
    await start(hass, diagnostics, entry)
    home = (hass.config.latitude, hass.config.longitude)
    await publish(
        hass, broker, diagnostics, entry, [strike(*destination(*home, 16.09344, 90), time.time())]
    )
    await flush(hass)
    nearest = value(hass, "nearest_strike")
    assert nearest.attributes["unit_of_measurement"] == "mi"
    assert float(nearest.state) == pytest.approx(10.0, abs=0.01)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_following_a_person_moves_the_subscriptions(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
) -> None:
    paris, london = (48.8566, 2.3522), (51.5074, -0.1278)
    hass.states.async_set("person.alice", "home", {"latitude": paris[0], "longitude": paris[1]})
    base = entry_for(lightning=broker_section(broker.port))
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=base.title,
        data={
            "lightning": {
                **base.data["lightning"],
                CONF_LOCATION_MODE: LOCATION_ENTITY,
                CONF_FOLLOW_ENTITY: "person.alice",
            }
        },
        options=base.options,
    )
    await start(hass, diagnostics, entry)
    now = time.time()

    async def lightning_link() -> dict[str, Any]:
        return dict((await diagnostics(entry))["links"]["lightning"])

    # Paris's tiles are subscribed, and strikes are measured from Paris.
    await publish(hass, broker, diagnostics, entry, [strike(*destination(*paris, 5.0, 0.0), now)])
    await flush(hass)
    assert float(value(hass, "nearest_strike").state) == pytest.approx(5.0, abs=0.01)
    around_paris = (await lightning_link())["subscriptions"]

    # A short walk (under a quarter of the radius) changes nothing: no request to the relay,
    # and distances are still measured from where the walk began.
    hass.states.async_set("person.alice", "not_home", {"latitude": 48.90, "longitude": 2.40})
    await hass.async_block_till_done()
    link = await lightning_link()
    assert (link["subscriptions"], link["awaiting_acknowledgement"]) == (around_paris, 0)
    south = destination(*paris, 8.0, 180.0)
    await publish(hass, broker, diagnostics, entry, [strike(*south, now)])
    await flush(hass)
    assert value(hass, "strikes_in_window").state == "2"
    assert float(value(hass, "nearest_strike").state) == pytest.approx(5.0, abs=0.01), (
        "3.5 km from where she walked to"
    )

    hass.states.async_set(
        "person.alice", "not_home", {"latitude": london[0], "longitude": london[1]}
    )
    await hass.async_block_till_done()
    await until_subscribed(hass, diagnostics, entry, "lightning")
    before = await link_messages(diagnostics, entry, "lightning")
    stale = destination(*paris, 5.0, 0.0)
    lightning = destination(*london, 6.0, 180.0)
    # In this order: had Paris stayed subscribed, its strike would arrive first.
    await hass.async_add_executor_job(
        publish_many, broker, [strike(*stale, now), strike(*lightning, now)]
    )
    await until_messages(diagnostics, entry, "lightning", before + 1)
    await flush(hass)
    assert float(value(hass, "nearest_strike").state) == pytest.approx(6.0, abs=0.01)
    assert value(hass, "strikes_in_window").state == "1", "Paris's strikes are out of range"
    assert await link_messages(diagnostics, entry, "lightning") == before + 1, (
        "Paris is no longer subscribed"
    )
    await hass.config_entries.async_unload(entry.entry_id)


async def test_restart_keeps_the_window(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
) -> None:
    entry = lightning_entry(broker)
    await start(hass, diagnostics, entry)
    home = (hass.config.latitude, hass.config.longitude)
    now = time.time()
    await publish(
        hass,
        broker,
        diagnostics,
        entry,
        [strike(*destination(*home, d, 45), now - 60) for d in (20, 30, 40)],
    )
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert value(hass, "strikes_in_window").state == "3"
    assert float(value(hass, "nearest_strike").state) == pytest.approx(20.0, abs=0.01)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_mesh_alert_is_sent_at_most_once_per_half_hour(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    fake_node: FakeNode,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
) -> None:
    base = entry_for(radio=radio_section(fake_node.port), lightning=broker_section(broker.port))
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=base.title,
        data=dict(base.data),
        options={**base.options, CONF_MESH_ALERT_TARGETS: ["channel:0", "!0000beef"]},
    )
    await start(hass, diagnostics, entry)
    await until(lambda: is_on(hass, connectivity(hass, entry, "radio")))
    home = (hass.config.latitude, hass.config.longitude)

    async def storm() -> None:
        now = time.time()
        await publish(
            hass,
            broker,
            diagnostics,
            entry,
            [strike(*destination(*home, 5, 90), now - i) for i in range(3)],
        )
        await flush(hass)
        assert is_on(hass, NEARBY)

    await storm()
    await until(lambda: len(fake_node.sent_packets) == 2)
    texts = {packet.to: packet.decoded.payload.decode() for packet in fake_node.sent_packets}
    assert texts[0xFFFFFFFF].startswith("Lightning 5 km E")
    assert set(texts) == {0xFFFFFFFF, 0x0000BEEF}
    # The storm passes, then comes back within 30 minutes: no second message.
    await later(hass, frozen, 21 * 60)
    assert hass.states.get(NEARBY).state == "off"
    await storm()
    # A text sent after the alert would have been, through the same radio: it comes next.
    await hass.services.async_call(
        DOMAIN, "send_text", {"message": "after the storm"}, blocking=True
    )
    await until(lambda: len(fake_node.sent_packets) > 2)
    assert [packet.decoded.payload for packet in fake_node.sent_packets[2:]] == [b"after the storm"]
    assert is_on(hass, connectivity(hass, entry, "radio"))
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("language", "names"),
    [
        ("en", ["Lightning 13 km ESE", "Lightning 14 km SSE", "Lightning 15 km SSW"]),
        ("fr", ["Foudre à 13 km ESE", "Foudre à 14 km SSE", "Foudre à 15 km SSO"]),
    ],
)
async def test_strikes_on_the_map_are_capped_named_and_expire(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
    language: str,
    names: list[str],
) -> None:
    hass.config.language = language
    entry = lightning_entry(broker, **{CONF_MAP_STRIKES: 5})
    await start(hass, diagnostics, entry)
    home = (hass.config.latitude, hass.config.longitude)
    now = time.time()
    await publish(
        hass,
        broker,
        diagnostics,
        entry,
        [strike(*destination(*home, 10 + i, 40 * i), now - 100 + i) for i in range(8)],
    )
    await flush(hass)
    on_map = hass.states.async_all("geo_location")
    assert len(on_map) == 5
    assert {state.attributes["source"] for state in on_map} == {"meshbot_lightning"}
    by_distance = sorted(on_map, key=lambda state: float(state.state))
    assert [state.name for state in by_distance][:3] == names
    await later(hass, frozen, 31 * 60)
    assert hass.states.async_all("geo_location") == []
    await hass.config_entries.async_unload(entry.entry_id)


async def test_the_relay_is_never_retried_faster_than_once_a_minute(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """A refused relay is retried with back-off whose every delay is at least 60 s."""
    import asyncio
    import sys
    from unittest.mock import patch

    from custom_components.meshbot.const import BACKOFF, LinkKind
    from custom_components.meshbot.links import supervisor as supervisor_module
    from meshbot_dev.mosquitto import refused_port

    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float, *args: Any) -> None:
        # Waiting minutes for real is not possible in a test: record the supervisor's delays
        # (asyncio.sleep is shared, so only calls from the supervisor count), then yield.
        if sys._getframe(1).f_code.co_filename == supervisor_module.__file__:
            delays.append(delay)
            delay = 0
        await real_sleep(delay, *args)

    entry = entry_for(lightning=broker_section(refused_port()))
    with (
        patch("custom_components.meshbot.coordinator.BACKOFF", BACKOFF),
        patch.object(supervisor_module.asyncio, "sleep", record),
    ):
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await until(lambda: len(delays) >= 12)
        monitor = hass.states.get(connectivity(hass, entry, "lightning"))
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert min(delays) >= 60
    assert max(delays) <= BACKOFF[LinkKind.LIGHTNING][1] * 1.5
    assert delays[-1] > delays[0], "and it backs off further"
    assert monitor.state == "off"
    assert monitor.attributes["reconnects"] >= 11


async def test_a_new_radius_changes_the_subscriptions(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    diagnostics: Diagnostics,
    frozen: FrozenDateTimeFactory,
) -> None:
    from custom_components.meshbot.const import CONF_RADIUS_KM
    from custom_components.meshbot.lightning.geohash import Circle, covering_topics

    entry = lightning_entry(broker)
    await start(hass, diagnostics, entry)
    home = (hass.config.latitude, hass.config.longitude)
    subscriptions = (await diagnostics(entry))["links"]["lightning"]["subscriptions"]
    assert subscriptions == len(covering_topics(Circle(*home, 100.0)))
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_RADIUS_KM: 10.0})
    assert await hass.config_entries.async_reload(entry.entry_id)
    await until_subscribed(hass, diagnostics, entry, "lightning")
    subscriptions = (await diagnostics(entry))["links"]["lightning"]["subscriptions"]
    assert subscriptions == len(covering_topics(Circle(*home, 10.0)))
    far = destination(*home, 50.0, 0.0)
    near = destination(*home, 5.0, 0.0)
    now = time.time()
    # In this order: had the coarse tiles stayed, the far strike would arrive first.
    await hass.async_add_executor_job(publish_many, broker, [strike(*far, now), strike(*near, now)])
    await until_messages(diagnostics, entry, "lightning", 1)
    await flush(hass)
    assert float(value(hass, "nearest_strike").state) == pytest.approx(5.0, abs=0.01)
    assert await link_messages(diagnostics, entry, "lightning") == 1, (
        "finer tiles: the relay does not even send the far one"
    )
    await hass.config_entries.async_unload(entry.entry_id)
