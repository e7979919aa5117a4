"""One bounded connection attempt, for checking settings while a user waits."""

from __future__ import annotations

import asyncio

from .errors import LinkError, LinkTimeoutError
from .supervisor import Link


async def probe(link: Link, within: float) -> None:
    """Connect `link` once and disconnect; raise LinkError if it is not usable in time."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def mark_up(restarted: bool = False) -> None:
        if not ready.done():
            ready.set_result(None)

    session = asyncio.create_task(link.session(mark_up))
    try:
        done, _ = await asyncio.wait(
            (ready, session), timeout=within, return_when=asyncio.FIRST_COMPLETED
        )
        if ready in done:
            return
        if session in done:
            session.result()
            raise LinkError("the connection closed before it was ready")
        raise LinkTimeoutError(f"no answer within {within:g} s")
    finally:
        session.cancel()
        await asyncio.gather(session, return_exceptions=True)
        if not ready.done():
            ready.cancel()
