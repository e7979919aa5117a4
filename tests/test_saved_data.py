"""What meshbot saved survives: files it cannot read are kept aside, pending events fire once.

These tests use real files in a temporary `.storage/`, not the harness's in-memory storage: what
is on disk after each run is what a user would find there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator
from contextlib import ExitStack
from datetime import timedelta
import json
import logging
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.meshbot.const import (
    EVENT_NODE_DISCOVERED,
    FLUSH_SECONDS,
    STORAGE_MINOR_VERSION,
)
from meshbot_dev.entries import broker_section, entry_for
from meshbot_dev.mesh_traffic import MeshTraffic
from meshbot_dev.mosquitto import MosquittoBroker, publish_many

from .support.waiting import until

# Captured at import, before the harness swaps them for its in-memory storage.
REAL_STORE = {
    name: getattr(Store, name) for name in ("_async_load", "_async_write_data", "async_remove")
}
FIRST_NODE = 0x5A000001
# The gateway that uploads the records is a node of the mesh too.
GATEWAY = 0x0A0A0A0A


@pytest.fixture
def storage_dir(hass: HomeAssistant, tmp_path: Path) -> Generator[Path]:
    """Give Home Assistant a real config directory whose `.storage/` Store reads and writes."""
    # Undone here, before the harness undoes its own patches (monkeypatch would be too late).
    with ExitStack() as stack:
        for name, function in REAL_STORE.items():
            stack.enter_context(patch.object(Store, name, function))
        hass.config.config_dir = str(tmp_path)
        yield tmp_path / ".storage"


def mesh_file(storage: Path, entry: MockConfigEntry) -> Path:
    return storage / f"meshbot.{entry.entry_id}.mesh"


def nodes_known(hass: HomeAssistant) -> str | None:
    state = hass.states.get("sensor.meshbot_test_nodes_known")
    return state.state if state else None


def node_infos(first: int, count: int) -> list[tuple[str, bytes]]:
    traffic = MeshTraffic()
    envelopes = [
        traffic.node_info(num, f"Node {num:08x}", f"{num & 0xFFFF:04x}"[:4], gateway=GATEWAY)
        for num in range(first, first + count)
    ]
    return [(envelope.topic, envelope.payload) for envelope in envelopes]


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set up the entry and wait until the mesh broker link is up."""
    if entry.entry_id not in {known.entry_id for known in hass.config_entries.async_entries()}:
        entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    def connected() -> bool:
        state = hass.states.get("binary_sensor.meshbot_test_mesh_collector")
        return state is not None and state.state == "on"

    await until(connected)


async def hear_nodes(
    hass: HomeAssistant, broker: MosquittoBroker, first: int, count: int, known: int
) -> None:
    """Publish node records and wait until the mesh knows `known` nodes."""
    await hass.async_add_executor_job(publish_many, broker, node_infos(first, count))
    await until(lambda: nodes_known(hass) == str(known))


async def unload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def saved_run(
    hass: HomeAssistant, broker: MosquittoBroker, storage: Path, count: int
) -> tuple[MockConfigEntry, dict[str, Any]]:
    """Run an entry that hears `count` nodes; return it and the file it saved on unload."""
    entry = entry_for(mesh=broker_section(broker.port))
    await set_up(hass, entry)
    await hear_nodes(hass, broker, FIRST_NODE, count, count + 1)
    await unload(hass, entry)
    return entry, json.loads(mesh_file(storage, entry).read_text())


def newer_version(document: dict[str, Any]) -> None:
    document["version"] = 2


def older_version(document: dict[str, Any]) -> None:
    document["version"] = 0


def not_an_object(document: dict[str, Any]) -> None:
    document["data"] = ["not", "a", "mesh"]


def other_format(document: dict[str, Any]) -> None:
    document["data"]["state"]["format"] = 99


def nodes_not_a_list(document: dict[str, Any]) -> None:
    document["data"]["state"]["nodes"] = {"!5a000001": {}}


def pending_not_a_list(document: dict[str, Any]) -> None:
    document["data"]["pending_discoveries"] = "!5a000001"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        # "storage version 2.2" up to 2026.9; 2026.10 reports the major version only.
        (newer_version, "storage version 2"),
        (older_version, "storage version 0.2, older than any meshbot"),
        (not_an_object, "expected an object, found list"),
        (other_format, "the mesh has format 99; this meshbot reads 1"),
        (nodes_not_a_list, "the mesh's 'nodes' is dict, not a list"),
        (pending_not_a_list, "'pending_discoveries' is str, not a list"),
    ],
    ids=["newer", "older", "not-an-object", "other-format", "nodes-not-a-list", "pending"],
)
async def test_a_mesh_it_cannot_read_is_kept_aside_and_never_overwritten(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    storage_dir: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[dict[str, Any]], None],
    reason: str,
) -> None:
    entry, document = await saved_run(hass, broker, storage_dir, 31)
    assert len(document["data"]["state"]["nodes"]) == 31 + 1
    damage(document)
    unreadable = json.dumps(document)
    mesh_file(storage_dir, entry).write_text(unreadable)

    with caplog.at_level(logging.WARNING):
        await set_up(hass, entry)
    assert nodes_known(hass) == "0", "it starts empty"
    (kept,) = await hass.async_add_executor_job(
        list,
        storage_dir.glob(f"meshbot.{entry.entry_id}.mesh.unreadable.*"),  # noqa: ASYNC240 - in the executor
    )
    warning = next(r.getMessage() for r in caplog.records if "saved mesh" in r.getMessage())
    assert "Starting with an empty mesh: the saved mesh is unreadable" in warning
    assert reason in warning
    if damage is newer_version:
        assert "written by a newer meshbot; this one reads 1.x" in warning
    assert f"The file is kept as {kept.name}" in warning

    await hear_nodes(hass, broker, FIRST_NODE + 1000, 1, 2)
    await unload(hass, entry)
    assert kept.read_text() == unreadable, "the unreadable file is kept as it was"
    saved = json.loads(mesh_file(storage_dir, entry).read_text())
    assert {node["id"] for node in saved["data"]["state"]["nodes"]} == {
        f"!{GATEWAY:08x}",
        f"!{FIRST_NODE + 1000:08x}",
    }


async def test_damaged_json_is_kept_by_home_assistant(
    hass: HomeAssistant, broker: MosquittoBroker, storage_dir: Path
) -> None:
    entry, document = await saved_run(hass, broker, storage_dir, 3)
    damaged = json.dumps(document)[:-40]
    mesh_file(storage_dir, entry).write_text(damaged)

    await set_up(hass, entry)
    assert nodes_known(hass) == "0"
    (kept,) = await hass.async_add_executor_job(
        list,
        storage_dir.glob(f"meshbot.{entry.entry_id}.mesh.corrupt.*"),  # noqa: ASYNC240 - in the executor
    )
    assert kept.read_text() == damaged
    await unload(hass, entry)


async def test_a_mesh_saved_by_the_previous_minor_version_is_read_and_upgraded(
    hass: HomeAssistant, broker: MosquittoBroker, storage_dir: Path
) -> None:
    entry, document = await saved_run(hass, broker, storage_dir, 5)
    # What meshbot wrote before it saved pending discovery events.
    document["minor_version"] = 1
    del document["data"]["pending_discoveries"]
    mesh_file(storage_dir, entry).write_text(json.dumps(document))

    await set_up(hass, entry)
    assert nodes_known(hass) == "6"
    await unload(hass, entry)
    saved = json.loads(mesh_file(storage_dir, entry).read_text())
    assert (saved["version"], saved["minor_version"]) == (1, STORAGE_MINOR_VERSION)
    assert len(saved["data"]["state"]["nodes"]) == 6


async def test_each_discovered_node_fires_its_event_once_across_a_reload(
    hass: HomeAssistant, broker: MosquittoBroker, storage_dir: Path
) -> None:
    count = 100  # five flushes' worth of events: most are still pending at the reload
    fired: Counter[str] = Counter()

    @callback
    def discovered(event: Event) -> None:
        fired[event.data["node_id"]] += 1

    hass.bus.async_listen(EVENT_NODE_DISCOVERED, discovered)
    entry = entry_for(mesh=broker_section(broker.port))
    await set_up(hass, entry)
    await hear_nodes(hass, broker, FIRST_NODE, count, count + 1)
    await unload(hass, entry)
    fired_before_reload = sum(fired.values())
    assert fired_before_reload < count, "the reload came before every event fired"

    await set_up(hass, entry)
    await until(lambda: len(fired) == count + 1)
    for _ in range(3):
        # More flushes than the events needed: nothing fires twice.
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=FLUSH_SECONDS + 0.1))
        await hass.async_block_till_done()
    await unload(hass, entry)
    await set_up(hass, entry)
    await unload(hass, entry)
    nodes = [GATEWAY, *range(FIRST_NODE, FIRST_NODE + count)]
    assert set(fired) == {f"!{num:08x}" for num in nodes}
    assert set(fired.values()) == {1}


async def test_strikes_saved_by_a_newer_meshbot_are_kept_aside(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    storage_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = entry_for(lightning=broker_section(broker.port))
    strikes_file = storage_dir / f"meshbot.{entry.entry_id}.lightning"
    newer = {"version": 2, "minor_version": 1, "key": strikes_file.name, "data": {"strikes": []}}
    await hass.async_add_executor_job(storage_dir.mkdir)
    strikes_file.write_text(json.dumps(newer))

    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    (kept,) = await hass.async_add_executor_job(
        list,
        storage_dir.glob(f"{strikes_file.name}.unreadable.*"),  # noqa: ASYNC240 - in the executor
    )
    assert json.loads(kept.read_text()) == newer
    assert "Starting with no recent strikes: the saved ones are unreadable" in caplog.text
    assert "written by a newer meshbot" in caplog.text
    await unload(hass, entry)
    assert json.loads(kept.read_text()) == newer
