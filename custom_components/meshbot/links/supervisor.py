"""Keep a link connected: run its sessions, back off between them, and publish its state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import logging
import time
from typing import Protocol

from .backoff import Backoff
from .errors import LinkAuthError, LinkClosedByPeer, LinkError

# A session that stayed up this long was a real connection, not a flap: start back-off over.
STABLE_AFTER = 60.0
# A Meshtastic node serves one API client and closes the previous one's connection when another
# connects. Sessions closed this way this soon, this many times in a row, mean another client (a
# phone app, the CLI) keeps taking the radio: then wait longer instead of fighting it. A radio
# that restarts (a firmware update, a settings change) resets or drops the connection instead,
# and comes back with a new reboot count: that is no contention.
KICK_WINDOW = 120.0
KICKS_IN_A_ROW = 3
CONTENDED_DELAY = 300.0
# Once a session has lasted this long, the contention is over.
CONTENTION_CLEARS_AFTER = 600.0


class MarkUp(Protocol):
    """What a session calls once its link is usable."""

    def __call__(self, restarted: bool = False) -> None:
        """Say the link is up; `restarted`: the peer restarted since the last session."""


class Link(Protocol):
    """What a supervisor needs from a link."""

    def describe(self) -> str:
        """Return where the link connects to, with no secret in it."""

    async def session(self, mark_up: MarkUp) -> None:
        """Connect, call `mark_up` once usable, and serve until the connection ends."""


@dataclass
class LinkState:
    """What the user sees of a link: its connectivity and recent history."""

    connected: bool = False
    last_error: str | None = None
    connected_since: float | None = None
    reconnects: int = 0
    auth_failed: bool = False
    stopped: bool = False
    contended: bool = False


class Supervisor:
    """Run one link forever with back-off; log once per outage, not once per attempt."""

    def __init__(
        self,
        name: str,
        link: Link,
        backoff: Backoff,
        logger: logging.Logger,
        on_change: Callable[[], None] | None = None,
        on_auth_failed: Callable[[], None] | None = None,
        detect_contention: bool = False,
    ) -> None:
        """Supervise `link`; `on_change` is called after every state change."""
        self.name = name
        self.link = link
        self.state = LinkState()
        self._backoff = backoff
        self._logger = logger
        self._on_change = on_change
        self._on_auth_failed = on_auth_failed
        self._outage_logged = False
        self._up_at: float | None = None
        self._detect_contention = detect_contention
        self._short_sessions = 0
        # Whether the last drop counted as a kick, and raised the contention: a restart found
        # at the next connection takes both back.
        self._last_drop_counted = False
        self._contended_by_last_drop = False
        self._clear_timer: asyncio.TimerHandle | None = None

    def _notify(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _mark_up(self, restarted: bool = False) -> None:
        if restarted:
            self._logger.info("%s: %s restarted", self.name, self.link.describe())
            if self._last_drop_counted:
                self._short_sessions -= 1
            if self._contended_by_last_drop:
                self.state.contended = False
        self._last_drop_counted = self._contended_by_last_drop = False
        self._up_at = time.monotonic()
        self.state.connected = True
        self.state.connected_since = time.time()
        self.state.last_error = None
        if self._outage_logged:
            self._logger.info("%s is back: connected to %s", self.name, self.link.describe())
            self._outage_logged = False
        else:
            self._logger.debug("%s connected to %s", self.name, self.link.describe())
        if self.state.contended:
            self._clear_timer = asyncio.get_running_loop().call_later(
                CONTENTION_CLEARS_AFTER, self._contention_over
            )
        self._notify()

    def _contention_over(self) -> None:
        self._clear_timer = None
        self._short_sessions = 0
        self.state.contended = False
        self._logger.info("%s is stable again on %s", self.name, self.link.describe())
        self._notify()

    def _count_session(self, lasted: float | None, error: BaseException) -> None:
        if self._clear_timer is not None:
            self._clear_timer.cancel()
            self._clear_timer = None
        if not self._detect_contention or lasted is None:
            return
        if lasted >= KICK_WINDOW:
            self._short_sessions = 0
            return
        if not isinstance(error, LinkClosedByPeer):
            # Reset, silent or failed: a restart or the network, not another client.
            return
        self._short_sessions += 1
        self._last_drop_counted = True
        if self._short_sessions >= KICKS_IN_A_ROW and not self.state.contended:
            self.state.contended = True
            self._contended_by_last_drop = True
            self._logger.warning(
                "%s keeps losing %s to another client; backing off", self.name, self.link.describe()
            )

    def _mark_down(self, error: BaseException) -> None:
        was_up = self.state.connected
        self.state.connected = False
        self.state.connected_since = None
        self.state.last_error = str(error) or type(error).__name__
        if not self._outage_logged:
            self._logger.info(
                "%s %s %s: %s; retrying in the background",
                self.name,
                "lost its connection to" if was_up else "cannot connect to",
                self.link.describe(),
                self.state.last_error,
            )
            self._outage_logged = True
        else:
            self._logger.debug("%s still down: %s", self.name, self.state.last_error)
        lasted = time.monotonic() - self._up_at if self._up_at is not None else None
        if lasted is not None and lasted >= STABLE_AFTER:
            self._backoff.reset()
        self._count_session(lasted, error)
        self._up_at = None
        self._notify()

    def _delay(self) -> float:
        delay = self._backoff.next_delay()
        return max(delay, CONTENDED_DELAY) if self.state.contended else delay

    async def run(self) -> None:
        """Connect, serve and reconnect until cancelled or the credentials are rejected."""
        try:
            await self._run()
        finally:
            if self._clear_timer is not None:
                self._clear_timer.cancel()
                self._clear_timer = None

    async def _run(self) -> None:
        while True:
            try:
                await self.link.session(self._mark_up)
                error: BaseException = LinkError("connection closed")
            except LinkAuthError as err:
                if self._on_auth_failed is None:
                    # Nobody can supply new credentials: treat it as any other refusal.
                    self._mark_down(err)
                    await asyncio.sleep(self._backoff.next_delay())
                    self.state.reconnects += 1
                    continue
                self._mark_down(err)
                self.state.auth_failed = True
                self.state.stopped = True
                self._logger.warning(
                    "%s stopped: %s rejected the credentials",
                    self.name,
                    self.link.describe(),
                )
                self._notify()
                self._on_auth_failed()
                return
            except (LinkError, OSError) as err:
                error = err
            except Exception as err:
                # A bug in one session must not end supervision; the next session starts clean.
                self._logger.exception("%s failed unexpectedly", self.name)
                error = err
            self._mark_down(error)
            await asyncio.sleep(self._delay())
            self.state.reconnects += 1
