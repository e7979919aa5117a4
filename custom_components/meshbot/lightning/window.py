"""A rolling window of the strikes around an observer, and what they say about the storm.

The window keeps the strikes of the last `window_s` seconds (30 min by default) that fell within
`radius_km`, oldest first, and at most `max_strikes` of them (the oldest go first). It answers
the count, the nearest strike, the last strike time, the rate per 10 minutes and the storm trend.

Storm trend (`StrikeWindow.trend`): whether the strikes come closer or move away, and how fast.

1. Take the strikes of the last 15 minutes; at least 5 of them, in at least 3 different minutes.
2. Group them by minute and take each minute's median distance: a storm's strikes scatter over
   its ~10 km extent, and the median removes single wild strikes and weighs a burst like a lull.
3. Fit a Theil-Sen line through those per-minute medians (the median of the slopes between every
   pair of minutes). It ignores up to about 29% of outlying minutes, such as a burst from a far
   cell.
4. From 20 strikes on, keep those within max(3 robust sigma, 5 km) of that line (sigma from the
   median absolute residual), which drops a second cell that fires alongside the storm; fewer
   strikes are all kept, as their median residual is too unstable to call any an outlier. Fit
   distance against time by ordinary least squares on the strikes kept: the slope is the speed
   in km/min. Fewer than 5 strikes kept, or less than about a minute between them, and there is
   no trend.
5. The storm is approaching or receding when the slope is at least 0.1 km/min (6 km/h) and
   differs from zero at 95% (Student's t on its standard error), stationary otherwise: a few
   scattered strikes read as stationary, not as a wild speed. The reported speed is the fitted
   one either way.

When approaching, the estimated arrival is when the fitted line reaches `target_km` (the alert
distance), or 0 km if the fitted distance is already within it. An arrival is a distance divided
by the speed, so it is only as good as the speed: there is none while the speed's standard error
exceeds 15% of it, nor beyond 2 hours. The summary then smooths it (`ArrivalSmoother`): an
arrival is an instant, which a steady storm keeps, so each fresh estimate moves it only part of
the way (a 10-minute time constant), and a new one shows only after 5 minutes of estimates in a
row. A storm at a constant speed then counts down smoothly instead of jumping from 2 hours to
57 minutes as one minute's strikes replace another's.

Queries walk the window (O(n), O(n log n) for the trend, a few ms at 10,000 strikes): call them
on a refresh tick, not per strike. `add` and `ingest` cost O(1) for strikes in time order.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
import math
from operator import attrgetter
import statistics
from typing import Any

from .strikes import (
    FUTURE_SLACK_S,
    Strike,
    StrikeCounters,
    parse_strike,
    valid_coordinates,
)

DEFAULT_RADIUS_KM = 100.0
DEFAULT_WINDOW_S = 1800.0
DEFAULT_MAX_STRIKES = 10_000
RATE_PERIOD_S = 600.0
TREND_PERIOD_S = 900.0
TREND_MIN_STRIKES = 5
TREND_BIN_S = 60.0
TREND_MIN_BINS = 3
# Strikes this close to the robust line always count as the storm, whatever the scatter says:
# a cell spreads its strikes over several km, and a few strikes' median scatter can be tiny.
TREND_MIN_INLIER_KM = 5.0
# A median absolute residual of a handful of strikes is too unstable to call any of them an
# outlier: trimming 1 of 6 scattered strikes makes the rest look like a significant movement.
TREND_TRIM_MIN_STRIKES = 20
# 1.4826 * MAD estimates a normal sigma; 3 sigma keeps 99.7% of the storm's own scatter.
MAD_TO_SIGMA = 1.4826
INLIER_SIGMAS = 3.0
STATIONARY_KM_MIN = 0.1
# Two-sided 95%: the movement must be this many standard errors (Student's t) from zero.
SIGNIFICANCE_Z = 1.959964
MAX_ETA_S = 7200.0
# A storm's strikes scatter over ~10 km: a 15-minute fit of one at 30 km/h gives a speed, hence
# an arrival, that wanders by a third from minute to minute. The arrival is given when the speed
# is known to 15% (one standard error), ...
ETA_MAX_RELATIVE_ERROR = 0.15
# ...moves a fresh estimate's share 1 - exp(-dt / 10 min) of the way, ...
ETA_SMOOTHING_S = 600.0
# ...and shows once estimates came for 5 minutes in a row.
ETA_SETTLE_S = 300.0
STORAGE_FORMAT = 1

# Drop reasons, as counted in WindowCounters.dropped.
OUTSIDE_RADIUS = "outside_radius"
TOO_OLD = "too_old"
OVERFLOW = "overflow"
MOVED_AWAY = "moved_away"

_time = attrgetter("time")


class Direction(StrEnum):
    """Which way the storm moves relative to the observer."""

    APPROACHING = "approaching"
    RECEDING = "receding"
    STATIONARY = "stationary"


@dataclass(frozen=True, slots=True)
class StormTrend:
    """The fitted movement of the strikes relative to the observer."""

    direction: Direction
    speed_km_min: float
    """How fast the fitted distance changes, km/min, never negative."""
    distance_km: float
    """The fitted distance now, never negative."""
    eta: float | None
    """Epoch seconds when an approaching storm reaches the target distance; None otherwise."""
    strikes: int
    """How many strikes the final fit used."""


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """Everything the window answers, at one instant."""

    time: float
    count: int
    nearest: Strike | None
    last_time: float | None
    rate_per_10min: float
    trend: StormTrend | None


@dataclass(slots=True)
class WindowCounters:
    """Strikes added, expired, and dropped by reason."""

    added: int = 0
    expired: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, count: int = 1) -> None:
        """Count dropped strikes."""
        self.dropped[reason] = self.dropped.get(reason, 0) + count


class ArrivalSmoother:
    """Smooth the arrival of successive trends, and hold a new one until it settles (see module)."""

    def __init__(self) -> None:
        """Start with no arrival."""
        self._eta: float | None = None
        self._since = 0.0
        self._updated = 0.0

    def smooth(self, trend: StormTrend | None, now: float) -> StormTrend | None:
        """Return `trend` with its arrival smoothed, or None while it has not settled."""
        if trend is None or trend.eta is None:
            self._eta = None
            return trend
        if self._eta is None or now < self._updated:
            self._eta, self._since = trend.eta, now
        else:
            share = 1.0 - math.exp(-(now - self._updated) / ETA_SMOOTHING_S)
            self._eta += share * (trend.eta - self._eta)
        self._updated = now
        settled = now - self._since >= ETA_SETTLE_S
        return replace(trend, eta=max(self._eta, now) if settled else None)


class StrikeWindow:
    """The recent strikes within a radius of an observer, oldest first, bounded in size."""

    def __init__(
        self,
        latitude: float,
        longitude: float,
        radius_km: float = DEFAULT_RADIUS_KM,
        window_s: float = DEFAULT_WINDOW_S,
        max_strikes: int = DEFAULT_MAX_STRIKES,
    ) -> None:
        """Start empty around (latitude, longitude); raise ValueError on impossible settings."""
        if not window_s > 0 or not math.isfinite(window_s):
            raise ValueError(f"window_s must be positive, not {window_s!r}")
        if max_strikes < 1:
            raise ValueError(f"max_strikes must be at least 1, not {max_strikes!r}")
        self.window_s = float(window_s)
        self.max_strikes = int(max_strikes)
        self.counters = WindowCounters()
        self.parse_counters = StrikeCounters()
        self._strikes: deque[Strike] = deque()
        # The nearest strike, kept on insert; None with _nearest_stale means "recompute".
        self._nearest: Strike | None = None
        self._nearest_stale = False
        self.arrival = ArrivalSmoother()
        self.latitude, self.longitude, self.radius_km = _checked(latitude, longitude, radius_km)

    def __len__(self) -> int:
        """Return how many strikes the window holds."""
        return len(self._strikes)

    def __iter__(self) -> Iterator[Strike]:
        """Iterate over the strikes, oldest first."""
        return iter(self._strikes)

    @property
    def count(self) -> int:
        """Return how many strikes the window holds (as of the last add or expire)."""
        return len(self._strikes)

    @property
    def nearest(self) -> Strike | None:
        """Return the nearest strike in the window (as of the last add or expire)."""
        if self._nearest_stale:
            self._nearest = min(self._strikes, key=_distance, default=None)
            self._nearest_stale = False
        return self._nearest

    @property
    def last_time(self) -> float | None:
        """Return the time of the newest strike in the window."""
        return self._strikes[-1].time if self._strikes else None

    def ingest(self, payload: bytes, now: float) -> Strike | None:
        """Parse a relay payload from this observer and add it; return the strike if it was kept.

        Parse outcomes are counted in `parse_counters`, drops in `counters`.
        """
        strike = parse_strike(payload, now, self.latitude, self.longitude, self.parse_counters)
        if strike is not None and self.add(strike, now):
            return strike
        return None

    def add(self, strike: Strike, now: float) -> bool:
        """Add a strike located from this observer; return False (counted) if it was dropped."""
        strikes = self._strikes
        horizon = now - self.window_s
        if strikes and strikes[0].time < horizon:
            self.expire(now)
        if strike.distance_km > self.radius_km:
            self.counters.drop(OUTSIDE_RADIUS)
            return False
        if strike.time < horizon:
            self.counters.drop(TOO_OLD)
            return False
        full = len(strikes) >= self.max_strikes
        if not strikes or strike.time >= strikes[-1].time:
            strikes.append(strike)
        elif full and strike.time < strikes[0].time:
            # It would be the oldest of a full window, the first to go.
            self.counters.drop(OVERFLOW)
            return False
        else:
            # Relays deliver slightly out of order; keeping time order keeps expiry O(1).
            bisect.insort_right(strikes, strike, key=_time)
        if full:
            self._forget(strikes.popleft())
            self.counters.drop(OVERFLOW)
        self.counters.added += 1
        nearest = self._nearest
        if not self._nearest_stale and (
            nearest is None or strike.distance_km < nearest.distance_km
        ):
            self._nearest = strike
        return True

    def expire(self, now: float) -> int:
        """Forget the strikes older than the window; return how many."""
        strikes, horizon, expired = self._strikes, now - self.window_s, 0
        while strikes and strikes[0].time < horizon:
            self._forget(strikes.popleft())
            expired += 1
        self.counters.expired += expired
        return expired

    def set_location(
        self, latitude: float, longitude: float, radius_km: float | None = None
    ) -> int:
        """Move the observer (and optionally the radius); relocate every strike.

        Strikes now outside the radius are dropped (counted as moved_away); return how many.
        Raise ValueError on impossible coordinates or radius.
        """
        self.latitude, self.longitude, self.radius_km = _checked(
            latitude, longitude, self.radius_km if radius_km is None else radius_km
        )
        kept = deque(
            moved
            for strike in self._strikes
            if (moved := strike.seen_from(self.latitude, self.longitude)).distance_km
            <= self.radius_km
        )
        dropped = len(self._strikes) - len(kept)
        if dropped:
            self.counters.drop(MOVED_AWAY, dropped)
        self._strikes = kept
        self._nearest, self._nearest_stale = None, True
        self.arrival = ArrivalSmoother()
        return dropped

    def rate_per_10min(self, now: float) -> float:
        """Return the strikes per 10 minutes, counted over the last 10 minutes (or the window)."""
        period = min(RATE_PERIOD_S, self.window_s)
        recent = len(self._strikes) - self._first_index(now - period)
        return recent * RATE_PERIOD_S / period

    def trend(self, now: float, target_km: float = 0.0) -> StormTrend | None:
        """Return the storm's fitted movement, or None with too few recent strikes (see module)."""
        since, until = now - TREND_PERIOD_S, now + FUTURE_SLACK_S
        recent: list[tuple[float, float]] = []
        # Newest first, stopping at the period's start: the window is in time order.
        for strike in reversed(self._strikes):
            if strike.time < since:
                break
            if strike.time <= until:
                recent.append(((strike.time - now) / 60.0, strike.distance_km))
        if len(recent) < TREND_MIN_STRIKES:
            return None
        bins: dict[int, list[tuple[float, float]]] = {}
        for point in recent:
            bins.setdefault(math.floor(point[0] * 60.0 / TREND_BIN_S), []).append(point)
        if len(bins) < TREND_MIN_BINS:
            return None
        medians = [
            (statistics.fmean(x for x, _ in points), statistics.median(d for _, d in points))
            for points in bins.values()
        ]
        slope = statistics.median(
            (d2 - d1) / (x2 - x1)
            for index, (x1, d1) in enumerate(medians)
            for x2, d2 in medians[index + 1 :]
            if x2 != x1
        )
        intercept = statistics.median(d - slope * x for x, d in medians)
        inliers = recent
        if len(recent) >= TREND_TRIM_MIN_STRIKES:
            spread = statistics.median(abs(d - intercept - slope * x) for x, d in recent)
            limit = max(INLIER_SIGMAS * MAD_TO_SIGMA * spread, TREND_MIN_INLIER_KM)
            inliers = [(x, d) for x, d in recent if abs(d - intercept - slope * x) <= limit]
        fit = _least_squares(inliers)
        if fit is None:
            return None
        slope, intercept, standard_error = fit
        distance = max(0.0, intercept)
        speed = abs(slope)
        if speed < STATIONARY_KM_MIN or speed < _t_critical(len(inliers) - 2) * standard_error:
            return StormTrend(Direction.STATIONARY, speed, distance, None, len(inliers))
        if slope > 0:
            return StormTrend(Direction.RECEDING, speed, distance, None, len(inliers))
        target = target_km if distance > target_km else 0.0
        eta = now + (distance - target) / speed * 60.0
        reliable = eta - now <= MAX_ETA_S and standard_error <= ETA_MAX_RELATIVE_ERROR * speed
        return StormTrend(
            Direction.APPROACHING, speed, distance, eta if reliable else None, len(inliers)
        )

    def summary(self, now: float, target_km: float = 0.0) -> WindowSummary:
        """Expire old strikes, then return every answer at `now`."""
        self.expire(now)
        return WindowSummary(
            time=now,
            count=len(self._strikes),
            nearest=self.nearest,
            last_time=self.last_time,
            rate_per_10min=self.rate_per_10min(now),
            trend=self.arrival.smooth(self.trend(now, target_km), now),
        )

    def to_storage(self) -> dict[str, Any]:
        """Return the strikes as JSON-ready data; distances are recomputed on restore."""
        return {
            "format": STORAGE_FORMAT,
            "strikes": [[strike.latitude, strike.longitude, strike.time] for strike in self],
        }

    @classmethod
    def from_storage(
        cls,
        data: object,
        latitude: float,
        longitude: float,
        now: float,
        radius_km: float = DEFAULT_RADIUS_KM,
        window_s: float = DEFAULT_WINDOW_S,
        max_strikes: int = DEFAULT_MAX_STRIKES,
    ) -> StrikeWindow:
        """Rebuild a window from `to_storage` data; skip whatever is not a valid recent strike."""
        window = cls(latitude, longitude, radius_km, window_s, max_strikes)
        rows = data.get("strikes") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            return window
        for row in rows:
            if not isinstance(row, list | tuple) or len(row) != 3:
                continue
            coordinates, stamp = valid_coordinates(row[0], row[1]), row[2]
            if (
                isinstance(coordinates, str)
                or type(stamp) not in (int, float)
                or not now - window.window_s <= stamp <= now + FUTURE_SLACK_S
            ):
                continue
            window.add(Strike.locate(*coordinates, float(stamp), latitude, longitude), now)
        return window

    def _first_index(self, since: float) -> int:
        return bisect.bisect_left(self._strikes, since, key=_time)

    def _forget(self, strike: Strike) -> None:
        if strike is self._nearest:
            self._nearest, self._nearest_stale = None, True


def _distance(strike: Strike) -> float:
    return strike.distance_km


def _least_squares(points: list[tuple[float, float]]) -> tuple[float, float, float] | None:
    """Return slope, intercept and the slope's standard error, or None when they are unknown."""
    count = len(points)
    if count < TREND_MIN_STRIKES:
        return None
    mean_x = math.fsum(x for x, _ in points) / count
    mean_y = math.fsum(y for _, y in points) / count
    sxx = math.fsum((x - mean_x) ** 2 for x, _ in points)
    # Under a minute of spread in time says nothing about movement.
    if sxx < count * (TREND_BIN_S / 60.0) ** 2 / 12.0:
        return None
    slope = math.fsum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    intercept = mean_y - slope * mean_x
    residuals = math.fsum((y - intercept - slope * x) ** 2 for x, y in points)
    return slope, intercept, math.sqrt(residuals / (count - 2) / sxx)


def _t_critical(degrees_of_freedom: int) -> float:
    """Return Student's two-sided 95% critical value (Cornish-Fisher, within 4% from 3 dof)."""
    z, df = SIGNIFICANCE_Z, degrees_of_freedom
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def _checked(latitude: float, longitude: float, radius_km: float) -> tuple[float, float, float]:
    coordinates = valid_coordinates(latitude, longitude)
    if isinstance(coordinates, str):
        raise ValueError(f"not a position: {latitude!r}, {longitude!r}")
    if type(radius_km) not in (int, float) or not 0 < radius_km < math.inf:
        raise ValueError(f"radius_km must be positive, not {radius_km!r}")
    return coordinates[0], coordinates[1], float(radius_km)
