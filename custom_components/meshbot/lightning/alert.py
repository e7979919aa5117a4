"""The "lightning nearby" alert: a state machine on strike times, and a per-destination throttle.

The alert starts when at least `strikes` strikes fell within `distance_km` in the last
`period_s` seconds (the newest of them within the quiet period, so it cannot start already
over), and ends once `quiet_s` seconds passed with no strike within `distance_km`. Time is
always passed in (`now`, epoch seconds), never read from the clock, so tests travel in time.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
import math
from typing import Any, TypeIs

from .strikes import Strike

DEFAULT_ALERT_DISTANCE_KM = 15.0
DEFAULT_ALERT_STRIKES = 3
DEFAULT_ALERT_PERIOD_S = 600.0
DEFAULT_QUIET_S = 1200.0
DEFAULT_THROTTLE_S = 1800.0
DEFAULT_MAX_DESTINATIONS = 1024
STORAGE_FORMAT = 1
# Stored times beyond this (the year 5138) are garbage, and bounded they convert to float safely.
MAX_STORED_TIME = 1e11


class AlertChange(StrEnum):
    """A transition of the alert, for the integration to turn into events."""

    STARTED = "started"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """When the alert starts and ends."""

    distance_km: float = DEFAULT_ALERT_DISTANCE_KM
    strikes: int = DEFAULT_ALERT_STRIKES
    period_s: float = DEFAULT_ALERT_PERIOD_S
    quiet_s: float = DEFAULT_QUIET_S

    def __post_init__(self) -> None:
        """Raise ValueError on settings that cannot work."""
        for name in ("distance_km", "period_s", "quiet_s"):
            value = getattr(self, name)
            if type(value) not in (int, float) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be positive, not {value!r}")
        if type(self.strikes) is not int or self.strikes < 1:
            raise ValueError(f"strikes must be at least 1, not {self.strikes!r}")


class LightningAlert:
    """Whether lightning is nearby, from the strikes observed and the time."""

    def __init__(self, settings: AlertSettings | None = None) -> None:
        """Start inactive, having seen nothing."""
        self.settings = settings or AlertSettings()
        self.active = False
        self.since: float | None = None
        """When the current alert started (the `now` of that update); None when inactive."""
        self.last_near: float | None = None
        """Time of the newest strike within the alert distance."""
        # Only the newest `strikes` near strikes can decide "N within M", so memory stays tiny.
        self._near: list[float] = []

    def observe(self, strike: Strike) -> bool:
        """Record a strike; return whether it fell within the alert distance."""
        if strike.distance_km > self.settings.distance_km:
            return False
        near = self._near
        bisect.insort(near, strike.time)
        if len(near) > self.settings.strikes:
            del near[0]
        if self.last_near is None or strike.time > self.last_near:
            self.last_near = strike.time
        return True

    def replay(self, strikes: Iterable[Strike]) -> None:
        """Forget the near strikes and observe these instead, keeping the state (after a move)."""
        self._near.clear()
        self.last_near = None
        for strike in strikes:
            self.observe(strike)

    def update(self, now: float) -> AlertChange | None:
        """Advance to `now`; return the transition that happened, if any."""
        settings = self.settings
        quiet = self.last_near is None or now - self.last_near >= settings.quiet_s
        if self.active:
            if quiet:
                self.active, self.since = False, None
                return AlertChange.ENDED
            return None
        near = self._near
        if not quiet and len(near) >= settings.strikes and near[0] >= now - settings.period_s:
            self.active, self.since = True, now
            return AlertChange.STARTED
        return None

    def to_storage(self) -> dict[str, Any]:
        """Return the state as JSON-ready data."""
        return {
            "format": STORAGE_FORMAT,
            "active": self.active,
            "since": self.since,
            "last_near": self.last_near,
            "near": list(self._near),
        }

    @classmethod
    def from_storage(cls, data: object, settings: AlertSettings | None = None) -> LightningAlert:
        """Rebuild an alert from `to_storage` data; whatever is not valid is left at its default."""
        alert = cls(settings)
        if not isinstance(data, dict):
            return alert
        near = data.get("near")
        if isinstance(near, list):
            alert._near = sorted(value for value in near if _time(value))[-alert.settings.strikes :]
        if _time(last_near := data.get("last_near")):
            alert.last_near = float(last_near)
        if data.get("active") is True and _time(since := data.get("since")):
            alert.active, alert.since = True, float(since)
        return alert


class Throttle:
    """Allow an action at most once per interval per destination (mesh alerts, notifications)."""

    def __init__(
        self,
        interval_s: float = DEFAULT_THROTTLE_S,
        max_destinations: int = DEFAULT_MAX_DESTINATIONS,
    ) -> None:
        """Start having sent nothing."""
        self.interval_s = interval_s
        self.max_destinations = max_destinations
        self._sent: OrderedDict[str, float] = OrderedDict()

    def allow(self, destination: str, now: float) -> bool:
        """Return whether to send to `destination` now; if so, record the send."""
        last = self._sent.get(destination)
        # A clock stepped back must not mute a destination for the size of the step.
        if last is not None and 0 <= now - last < self.interval_s:
            return False
        self._sent[destination] = now
        self._sent.move_to_end(destination)
        while len(self._sent) > self.max_destinations:
            self._sent.popitem(last=False)
        return True

    def remaining(self, destination: str, now: float) -> float:
        """Return the seconds until `destination` may be sent to again (0 when it may now)."""
        last = self._sent.get(destination)
        if last is None or not 0 <= now - last < self.interval_s:
            return 0.0
        return self.interval_s - (now - last)

    def to_storage(self) -> dict[str, float]:
        """Return the last send time per destination as JSON-ready data."""
        return dict(self._sent)

    @classmethod
    def from_storage(
        cls,
        data: object,
        interval_s: float = DEFAULT_THROTTLE_S,
        max_destinations: int = DEFAULT_MAX_DESTINATIONS,
    ) -> Throttle:
        """Rebuild a throttle from `to_storage` data; skip entries that are not valid."""
        throttle = cls(interval_s, max_destinations)
        if isinstance(data, dict):
            valid = [
                (key, value) for key, value in data.items() if isinstance(key, str) and _time(value)
            ]
            for destination, sent in sorted(valid, key=lambda item: item[1])[-max_destinations:]:
                throttle._sent[destination] = float(sent)
        return throttle


def _time(value: object) -> TypeIs[float]:
    # type() rather than isinstance(): True is not a time. NaN fails the comparison.
    return (type(value) is int or type(value) is float) and (
        -MAX_STORED_TIME < value < MAX_STORED_TIME
    )
