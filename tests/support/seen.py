"""What a Home Assistant user sees of meshbot, read the way the user reads it.

Diagnostics come from the download a user attaches to an issue, the mesh from the get_topology
action, the links from their connectivity sensors, and time moves with freezegun.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.meshbot.const import DOMAIN, FLUSH_SECONDS

from .waiting import eventually

type Diagnostics = Callable[[ConfigEntry], Awaitable[dict[str, Any]]]

# Where frozen tests start: 2027-01-15 08:00:00 UTC, a round epoch second.
NOW = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


def connectivity(hass: HomeAssistant, entry: ConfigEntry, link: str) -> str:
    """Return the entity id of the link's connectivity sensor, whatever the language named it."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "binary_sensor", DOMAIN, f"{entry.entry_id}_{link}_connectivity"
    )
    assert entity_id is not None, link
    return entity_id


def is_on(hass: HomeAssistant, entity_id: str) -> bool:
    """Return whether the entity's state is on."""
    state = hass.states.get(entity_id)
    return state is not None and state.state == "on"


async def until_subscribed(
    hass: HomeAssistant, diagnostics: Diagnostics, entry: ConfigEntry, link: str
) -> None:
    """Wait until the link's connectivity sensor is on and the broker acknowledged everything.

    The sensor turns on once the subscriptions are sent, before the broker acknowledges them,
    and a message published before that is lost: so the diagnostics must show none pending.
    """

    async def subscribed() -> bool:
        if not is_on(hass, connectivity(hass, entry, link)):
            return False
        report = (await diagnostics(entry))["links"][link]
        return bool(report["subscriptions"]) and report["awaiting_acknowledgement"] == 0

    await eventually(subscribed)


async def link_messages(diagnostics: Diagnostics, entry: ConfigEntry, link: str) -> int:
    """Return how many messages the link received, as the diagnostics count them."""
    return int((await diagnostics(entry))["links"][link]["messages"])


async def until_messages(
    diagnostics: Diagnostics, entry: ConfigEntry, link: str, count: int
) -> None:
    """Wait until the link received `count` messages (each is handled as it arrives)."""

    async def arrived() -> bool:
        return await link_messages(diagnostics, entry, link) >= count

    await eventually(arrived)


async def flush(hass: HomeAssistant, seconds: float = FLUSH_SECONDS) -> None:
    """Run the timers due within `seconds`: the once-a-second flushes, and longer ones if asked."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
    await hass.async_block_till_done()


async def later(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Let `seconds` pass on the wall clock, then flush."""
    freezer.tick(seconds)
    await flush(hass)


async def topology(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    """Return the mesh as the get_topology action answers it."""
    response = await hass.services.async_call(
        DOMAIN, "get_topology", data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)
