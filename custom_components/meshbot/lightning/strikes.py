"""Blitzortung strike payloads -> typed strikes with distance and azimuth from an observer.

The relay sends compact JSON, `{"lat": float, "lon": float, "time": int, "status": int,
"region": int}` with `time` in epoch nanoseconds (PROTOCOLS.md section 3); other keys are
ignored. Every payload either becomes a `Strike` or is counted under one rejection reason in
`StrikeCounters`: nothing raises out of `parse_strike`, whatever bytes the broker hands over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import math

from ..geo.sphere import distance_bearing

# Real payloads are about 100 bytes; relays that still send the old per-station fields reach a
# few KiB. Anything larger is not a strike and only costs parse time.
MAX_PAYLOAD_BYTES = 16_384
# Blitzortung stamps strikes with its own clock; ahead of ours by more than this is a bad value.
FUTURE_SLACK_S = 600.0
# A relay may replay its backlog after an outage, but a day-old strike (or one in seconds read as
# nanoseconds, which lands in 1970) is not news.
MAX_AGE_S = 86_400.0
NS_PER_S = 1_000_000_000

COMPASS_POINTS = (
    "N",
    "NNE",
    "NE",
    "ENE",
    "E",
    "ESE",
    "SE",
    "SSE",
    "S",
    "SSW",
    "SW",
    "WSW",
    "W",
    "WNW",
    "NW",
    "NNW",
)

# Rejection reasons, as counted in StrikeCounters.rejected.
NOT_BYTES = "not_bytes"
TOO_LARGE = "too_large"
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
BAD_LATITUDE = "bad_latitude"
BAD_LONGITUDE = "bad_longitude"
BAD_TIME = "bad_time"
TIME_FUTURE = "time_future"
TIME_TOO_OLD = "time_too_old"
INTERNAL_ERROR = "internal_error"
REJECTION_REASONS = frozenset(
    {
        NOT_BYTES,
        TOO_LARGE,
        INVALID_UTF8,
        INVALID_JSON,
        NOT_OBJECT,
        MISSING_FIELD,
        BAD_LATITUDE,
        BAD_LONGITUDE,
        BAD_TIME,
        TIME_FUTURE,
        TIME_TOO_OLD,
        INTERNAL_ERROR,
    }
)


def compass_point(azimuth: float) -> str:
    """Return the 16-point compass name of an azimuth in degrees (N, NNE, ... NNW).

    Each point owns 22.5 degrees centred on it; a boundary belongs to the next point clockwise,
    so N is [348.75, 11.25) and 11.25 is NNE. Any finite azimuth is wrapped into [0, 360).
    """
    return COMPASS_POINTS[int((azimuth % 360.0 + 11.25) // 22.5) % 16]


@dataclass(frozen=True, slots=True)
class Strike:
    """One lightning strike, located from an observer."""

    latitude: float
    longitude: float
    time: float
    """Epoch seconds."""
    distance_km: float
    """Great-circle distance from the observer."""
    azimuth: float
    """Initial bearing from the observer, degrees clockwise from north, in [0, 360)."""

    @classmethod
    def locate(
        cls,
        latitude: float,
        longitude: float,
        time: float,
        observer_latitude: float,
        observer_longitude: float,
    ) -> Strike:
        """Build a strike seen from an observer."""
        distance, azimuth = distance_bearing(
            observer_latitude, observer_longitude, latitude, longitude
        )
        return cls(latitude, longitude, time, distance, azimuth)

    def seen_from(self, observer_latitude: float, observer_longitude: float) -> Strike:
        """Return this strike located from another observer."""
        return Strike.locate(
            self.latitude, self.longitude, self.time, observer_latitude, observer_longitude
        )

    @property
    def compass(self) -> str:
        """Return the 16-point compass name of the azimuth."""
        return compass_point(self.azimuth)


@dataclass(slots=True)
class StrikeCounters:
    """Payloads seen, strikes accepted, and rejections by reason."""

    payloads: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        """Count one rejection."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    @property
    def rejected_total(self) -> int:
        """Return how many payloads were rejected for any reason."""
        return sum(self.rejected.values())


def valid_coordinates(latitude: object, longitude: object) -> tuple[float, float] | str:
    """Return the coordinates as floats, or the rejection reason when they are not a position."""
    # type() rather than isinstance(): bool is an int subclass, and True is not a latitude.
    if not ((type(latitude) is float or type(latitude) is int) and -90.0 <= latitude <= 90.0):
        return BAD_LATITUDE
    if not ((type(longitude) is float or type(longitude) is int) and -180.0 <= longitude <= 180.0):
        return BAD_LONGITUDE
    # NaN fails every comparison above; the infinities fail the ranges.
    return float(latitude), float(longitude)


def _parse(payload: bytes, now: float, latitude: float, longitude: float) -> Strike | str:
    if type(payload) is not bytes:
        if not isinstance(payload, bytes | bytearray | memoryview):
            return NOT_BYTES
        payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD_BYTES:
        return TOO_LARGE
    try:
        # Decoded first: json.loads(bytes) would also take UTF-16/32 and lone surrogates.
        text = payload.decode()
    except UnicodeDecodeError:
        return INVALID_UTF8
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and integers past the digit limit.
        return INVALID_JSON
    if type(data) is not dict:
        return NOT_OBJECT
    try:
        strike_lat, strike_lon, stamp = data["lat"], data["lon"], data["time"]
    except KeyError:
        return MISSING_FIELD
    coordinates = valid_coordinates(strike_lat, strike_lon)
    if isinstance(coordinates, str):
        return coordinates
    kind = type(stamp)
    if not (kind is int or (kind is float and math.isfinite(stamp))):
        return BAD_TIME
    # Compared in nanoseconds so a huge integer never has to become a float.
    if stamp > (now + FUTURE_SLACK_S) * NS_PER_S:
        return TIME_FUTURE
    if stamp < (now - MAX_AGE_S) * NS_PER_S:
        return TIME_TOO_OLD
    strike_lat, strike_lon = coordinates
    distance, azimuth = distance_bearing(latitude, longitude, strike_lat, strike_lon)
    return Strike(strike_lat, strike_lon, stamp / NS_PER_S, distance, azimuth)


def parse_strike(
    payload: bytes,
    now: float,
    latitude: float,
    longitude: float,
    counters: StrikeCounters,
) -> Strike | None:
    """Parse one relay payload into a strike seen from (latitude, longitude); count the outcome.

    Returns None exactly when one rejection was counted. `now` is epoch seconds.
    """
    counters.payloads += 1
    try:
        result = _parse(payload, now, latitude, longitude)
    except Exception:  # noqa: BLE001
        # A parser bug on one hostile payload must not stop the monitor.
        result = INTERNAL_ERROR
    if isinstance(result, str):
        counters.reject(result)
        return None
    counters.accepted += 1
    return result
