"""The flush timer: runs spaced by a full interval, resilient to a failing run, stoppable."""

from __future__ import annotations

import asyncio
from datetime import datetime
from itertools import pairwise
import time

from homeassistant.core import CALLBACK_TYPE, CoreState, HomeAssistant
import pytest

from custom_components.meshbot.flush_timer import async_track_spaced_interval

from .support.waiting import until

INTERVAL = 0.05


async def test_runs_are_spaced_from_the_end_of_the_previous_run(hass: HomeAssistant) -> None:
    spans: list[tuple[float, float]] = []

    def slow_flush(_now: datetime) -> None:
        began = time.monotonic()
        # Blocks the loop like a flush stalled by a garbage collection.
        time.sleep(INTERVAL)
        spans.append((began, time.monotonic()))

    cancel = async_track_spaced_interval(hass, slow_flush, INTERVAL, "test flush")
    await until(lambda: len(spans) >= 4)
    cancel()
    gaps = [nxt[0] - previous[1] for previous, nxt in pairwise(spans)]
    assert min(gaps) >= INTERVAL - 0.002, gaps


async def test_a_run_that_returns_a_task_is_spaced_from_the_task_end(hass: HomeAssistant) -> None:
    spans: list[tuple[float, float]] = []

    async def spread(began: float) -> None:
        # The run's work goes on over loop iterations after the callback returned.
        await asyncio.sleep(INTERVAL)
        spans.append((began, time.monotonic()))

    def spreading_flush(_now: datetime) -> asyncio.Task[None]:
        return hass.async_create_task(spread(time.monotonic()))

    cancel = async_track_spaced_interval(hass, spreading_flush, INTERVAL, "test flush")
    await until(lambda: len(spans) >= 4)
    cancel()
    gaps = [nxt[0] - previous[1] for previous, nxt in pairwise(spans)]
    assert min(gaps) >= INTERVAL - 0.002, gaps


async def test_a_failing_task_is_logged_and_does_not_stop_later_runs(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[datetime] = []

    async def fail() -> None:
        raise RuntimeError("one bad spread flush")

    def flaky_flush(now: datetime) -> asyncio.Task[None] | None:
        calls.append(now)
        return hass.async_create_task(fail()) if len(calls) == 1 else None

    cancel = async_track_spaced_interval(hass, flaky_flush, INTERVAL, "test flush")
    await until(lambda: len(calls) >= 3)
    cancel()
    assert "Error in test flush" in caplog.text
    assert "one bad spread flush" in caplog.text


async def test_a_failing_run_is_logged_and_does_not_stop_later_runs(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[datetime] = []

    def flaky_flush(now: datetime) -> None:
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError("one bad flush")

    cancel = async_track_spaced_interval(hass, flaky_flush, INTERVAL, "test flush")
    await until(lambda: len(calls) >= 3)
    cancel()
    assert "Error in test flush" in caplog.text
    assert "one bad flush" in caplog.text


async def test_cancel_stops_it_even_from_inside_a_run(hass: HomeAssistant) -> None:
    calls: list[datetime] = []
    cancellers: list[CALLBACK_TYPE] = []

    def flush_that_unloads(now: datetime) -> None:
        calls.append(now)
        # Unloading the entry from inside the flush cancels the timer mid-run.
        cancellers[0]()

    cancellers.append(async_track_spaced_interval(hass, flush_that_unloads, INTERVAL, "test flush"))
    await until(lambda: calls)
    await asyncio.sleep(INTERVAL * 4)
    assert len(calls) == 1


async def test_home_assistant_stopping_cancels_it(hass: HomeAssistant) -> None:
    calls: list[datetime] = []
    async_track_spaced_interval(hass, calls.append, INTERVAL, "test flush")
    await until(lambda: calls)
    await hass.async_stop()
    assert hass.state is CoreState.stopped
    seen = len(calls)
    await asyncio.sleep(INTERVAL * 4)
    assert len(calls) == seen
