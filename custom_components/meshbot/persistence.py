"""Snapshots kept in Home Assistant's Store: written a while after a change, and on unload."""

from __future__ import annotations

from collections.abc import Callable
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import DOMAIN, STORAGE_VERSION

_LOGGER = logging.getLogger(__name__)
# What each part of an entry keeps: the mesh (nodes and links) and the lightning (strikes).
SNAPSHOT_PARTS = ("mesh", "lightning")


def snapshot_key(entry_id: str, part: str) -> str:
    """Return the Store key of one part of an entry."""
    return f"{DOMAIN}.{entry_id}.{part}"


async def async_remove_snapshots(hass: HomeAssistant, entry_id: str) -> None:
    """Delete an entry's saved parts, so a deleted entry leaves nothing in .storage."""
    for part in SNAPSHOT_PARTS:
        await Store[dict[str, Any]](
            hass, STORAGE_VERSION, snapshot_key(entry_id, part)
        ).async_remove()


class SnapshotStore:
    """Save `snapshot()` at most `delay` seconds after the first change, however many follow."""

    def __init__(
        self,
        hass: HomeAssistant,
        key: str,
        snapshot: Callable[[], dict[str, Any]],
        delay: float,
        serialize_in_event_loop: bool = True,
    ) -> None:
        """Keep `snapshot` under `key`."""
        self._store: Store[dict[str, Any]] = Store(
            hass,
            STORAGE_VERSION,
            key,
            private=True,
            serialize_in_event_loop=serialize_in_event_loop,
        )
        self._snapshot = snapshot
        self._delay = delay
        self._pending = False

    async def async_load(self, unreadable: str) -> dict[str, Any] | None:
        """Return the saved snapshot; log `unreadable` and return None when it cannot be read."""
        try:
            data = await self._store.async_load()
        except Exception as err:  # noqa: BLE001
            _LOGGER.warning("%s (%s)", unreadable, err)
            return None
        return data if isinstance(data, dict) else None

    def schedule(self) -> None:
        """Save after the delay; further calls before that save change nothing."""
        # Store.async_delay_save restarts its delay on every call: under steady traffic it
        # would never save. Schedule once; taking the snapshot clears the flag.
        if not self._pending:
            self._pending = True
            self._store.async_delay_save(self._take, self._delay)

    async def async_save(self) -> None:
        """Save now (unload)."""
        await self._store.async_save(self._take())

    def _take(self) -> dict[str, Any]:
        self._pending = False
        return self._snapshot()
