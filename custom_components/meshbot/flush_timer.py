"""A flush timer whose runs are spaced by a full interval, however long each run takes.

Home Assistant's `async_track_time_interval` schedules the next run when the current one starts.
A flush writes many entities one after the other; when a garbage collection stalls it halfway,
the entities written after the stall get their next write less than an interval later, and the
promise of one state write per entity per interval breaks. Counting the interval from the end of
each run keeps every entity's writes at least an interval apart. A run that spreads its work over
several loop iterations returns the task doing it: the interval then counts from that task's end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
import logging
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.util import dt as dt_util

_LOGGER = logging.getLogger(__name__)


class SpacedInterval:
    """Call a callback `seconds` after its previous call returned, until cancelled.

    The callback runs in the event loop and must not be a coroutine function; it may return a
    task (or future) that finishes its work, and the next call waits for that.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        action: Callable[[datetime], asyncio.Future[Any] | None],
        seconds: float,
        name: str,
    ) -> None:
        """Prepare the timer; `async_start` arms it."""
        self._hass = hass
        self._loop = hass.loop
        self._seconds = seconds
        # A HassJob marked cancel_on_shutdown as the timer's first argument: Home Assistant
        # cancels such timers when it stops, as it does those of async_track_time_interval.
        self._job = HassJob(action, name, cancel_on_shutdown=True)
        self._handle: asyncio.TimerHandle | None = None
        self._cancelled = False

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Arm the timer; return the canceller."""
        self._schedule()
        return self.async_cancel

    def _schedule(self) -> None:
        # A run may unload the entry, and so cancel the timer, before it would re-arm; and a run
        # already due when Home Assistant began to stop must not arm another.
        if self._cancelled or self._hass.is_stopping:
            return
        self._handle = self._loop.call_at(self._loop.time() + self._seconds, self._run, self._job)

    @callback
    def _run(self, job: HassJob[[datetime], Any]) -> None:
        try:
            pending = job.target(dt_util.utcnow())
        except Exception:
            # One failed flush must not stop every later update: log it and go on.
            _LOGGER.exception("Error in %s", job.name)
            pending = None
        if isinstance(pending, asyncio.Future):
            pending.add_done_callback(lambda done: self._finished(done, job.name))
        else:
            self._schedule()

    def _finished(self, done: asyncio.Future[Any], name: str | None) -> None:
        if not done.cancelled() and (error := done.exception()) is not None:
            _LOGGER.error("Error in %s", name, exc_info=error)
        self._schedule()

    @callback
    def async_cancel(self) -> None:
        """Stop calling the callback."""
        self._cancelled = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


@callback
def async_track_spaced_interval(
    hass: HomeAssistant,
    action: Callable[[datetime], asyncio.Future[Any] | None],
    seconds: float,
    name: str,
) -> CALLBACK_TYPE:
    """Call the callback `action` every `seconds`, counted from the end of its last run."""
    return SpacedInterval(hass, action, seconds, name).async_start()
