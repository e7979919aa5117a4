"""Waiting for asynchronous outcomes in tests without fixed sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until `condition()` is truthy; fail with TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def eventually(probe: Callable[[], Awaitable[object]], timeout: float = 10.0) -> None:
    """Wait until `await probe()` is truthy; fail with TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not await probe():
            await asyncio.sleep(0.02)
