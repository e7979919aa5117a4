"""Snapshots kept in Home Assistant's Store: written a while after a change, and on unload.

A snapshot meshbot cannot read (written by a newer meshbot, of the wrong shape, unreadable from
disk) is never overwritten: the file is moved aside as `<key>.unreadable.<UTC time>` in
`.storage/`, the warning says why, and the part starts empty. Damaged JSON is moved aside by
Home Assistant itself (`<key>.corrupt.<UTC time>`, with a repair).
"""

from __future__ import annotations

from collections.abc import Callable
import logging
import os
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, STORAGE_MINOR_VERSION, STORAGE_VERSION

_LOGGER = logging.getLogger(__name__)
# What each part of an entry keeps: the mesh (nodes and links) and the lightning (strikes).
SNAPSHOT_PARTS = ("mesh", "lightning")
UNREADABLE_SUFFIX = ".unreadable."


class UnreadableSnapshot(Exception):
    """Raise when a saved snapshot cannot be used; the message says why."""


def snapshot_key(entry_id: str, part: str) -> str:
    """Return the Store key of one part of an entry."""
    return f"{DOMAIN}.{entry_id}.{part}"


async def async_remove_snapshots(hass: HomeAssistant, entry_id: str) -> None:
    """Delete an entry's saved parts, so a deleted entry leaves nothing in .storage."""
    for part in SNAPSHOT_PARTS:
        await _SnapshotFile(hass, snapshot_key(entry_id, part)).async_remove()


class _SnapshotFile(Store[dict[str, Any]]):
    """meshbot's saved snapshot, migrated from the versions an older meshbot wrote."""

    def __init__(
        self,
        hass: HomeAssistant,
        key: str,
        check: Callable[[dict[str, Any]], None] = lambda _data: None,
        serialize_in_event_loop: bool = True,
    ) -> None:
        self.check = check
        super().__init__(
            hass,
            STORAGE_VERSION,
            key,
            private=True,
            minor_version=STORAGE_MINOR_VERSION,
            serialize_in_event_loop=serialize_in_event_loop,
        )

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: Any
    ) -> dict[str, Any]:
        if old_major_version != STORAGE_VERSION:
            newer = old_major_version > STORAGE_VERSION
            raise UnreadableSnapshot(
                f"it has storage version {old_major_version}.{old_minor_version}, "
                f"{'written by a newer' if newer else 'older than any'} meshbot; this one "
                f"reads {STORAGE_VERSION}.x"
            )
        # Checked before Store saves the migrated data, so an unusable file is kept as it was.
        # 1.1 had no pending discovery events; a newer minor version only added fields.
        return self.validated(old_data)

    def validated(self, data: Any) -> dict[str, Any]:
        """Return `data` if it is a snapshot this meshbot reads; raise UnreadableSnapshot."""
        if not isinstance(data, dict):
            raise UnreadableSnapshot(f"expected an object, found {type(data).__name__}")
        try:
            self.check(data)
        except ValueError as err:
            raise UnreadableSnapshot(str(err)) from err
        return data


class SnapshotStore:
    """Save `snapshot()` at most `delay` seconds after the first change, however many follow."""

    def __init__(
        self,
        hass: HomeAssistant,
        key: str,
        snapshot: Callable[[], dict[str, Any]],
        delay: float,
        check: Callable[[dict[str, Any]], None],
        serialize_in_event_loop: bool = True,
    ) -> None:
        """Keep `snapshot` under `key`; `check` raises ValueError for a file it cannot read."""
        self.hass = hass
        self._store = _SnapshotFile(hass, key, check, serialize_in_event_loop)
        self._snapshot = snapshot
        self._delay = delay
        self._pending = False
        # Set when an unreadable file could not be moved aside: saving would overwrite it.
        self._read_only = False

    async def async_load(self, unreadable: str) -> dict[str, Any] | None:
        """Return the saved snapshot if it is usable, else None.

        When it cannot be used, log `unreadable` with the reason and move the file aside.
        """
        try:
            data = await self._store.async_load()
            if data is None:
                return None
            return self._store.validated(data)
        except Exception as err:  # noqa: BLE001 - whatever the file holds, setup goes on
            # The checks say what is wrong in words; anything else is named by its type.
            described = isinstance(err, UnreadableSnapshot) and str(err)
            reason = str(err) if described else repr(err)
            # From 2026.10 Home Assistant refuses a newer major version before migrating.
            if isinstance(found := getattr(err, "found_version", None), int):
                reason = (
                    f"it has storage version {found}, written by a newer meshbot; this one "
                    f"reads {STORAGE_VERSION}.x"
                )
            fate = await self._async_move_aside()
            _LOGGER.warning("%s: %s. %s", unreadable, reason, fate)
            return None

    async def _async_move_aside(self) -> str:
        """Move the file aside so no save overwrites it; return what became of it."""
        path = self._store.path
        kept = f"{path}{UNREADABLE_SUFFIX}{dt_util.utcnow().strftime('%Y%m%dT%H%M%S.%fZ')}"
        try:
            await self.hass.async_add_executor_job(os.replace, path, kept)
        except FileNotFoundError:
            return "No file held it"
        except OSError as err:
            self._read_only = True
            return f"It could not be moved aside ({err}): meshbot will not save over it"
        return f"The file is kept as {os.path.basename(kept)}"

    def schedule(self) -> None:
        """Save after the delay; further calls before that save change nothing."""
        # Store.async_delay_save restarts its delay on every call: under steady traffic it
        # would never save. Schedule once; taking the snapshot clears the flag.
        if not self._pending and not self._read_only:
            self._pending = True
            self._store.async_delay_save(self._take, self._delay)

    async def async_save(self) -> None:
        """Save now (unload)."""
        if not self._read_only:
            await self._store.async_save(self._take())

    def _take(self) -> dict[str, Any]:
        self._pending = False
        return self._snapshot()
