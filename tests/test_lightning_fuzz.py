"""Property-based fuzzing of strike parsing, the window, the alert and their storage.

Properties, for every payload: `parse_strike` never raises and never falls into its own
`internal_error` net; it returns None exactly when it counted one rejection, under the reason an
independent oracle (`expected_reason`, written apart from the parser) gives for those bytes; a
strike it returns is sane. Fed in sequences, the window stays in time order, within its radius
and cap, and its counters add up; storage of the window, the alert and the throttle survives any
JSON value.

Hypothesis generates bytes; `ByteSource` (tests/support/mesh_traffic.py) reads values from them,
biased towards edge values, so a case costs one hypothesis draw. A hypothesis case costs about
0.3 ms on its own here, more than parsing, so most cases build several payloads: the parse
tests check `PARSE_PAYLOADS` (140,000) payloads in 65,000 cases, and the feeds about 30,000
more payloads in 2,000 cases.
"""

from __future__ import annotations

from collections import Counter
import json
import math
import random
import struct

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.meshbot.geo.sphere import EARTH_RADIUS_KM
from custom_components.meshbot.lightning.alert import (
    AlertSettings,
    LightningAlert,
    Throttle,
)
from custom_components.meshbot.lightning.strikes import (
    COMPASS_POINTS,
    MAX_PAYLOAD_BYTES,
    REJECTION_REASONS,
    Strike,
    StrikeCounters,
    parse_strike,
)
from custom_components.meshbot.lightning.window import StrikeWindow
from meshbot_dev.mesh_traffic import ByteSource, fuzz_mutate

NOW = 1_700_000_000.0
HOME = (48.8566, 2.3522)
NS = 1_000_000_000

EXAMPLES = {
    "random_bytes": 20_000,
    "json_values": 15_000,
    "mutated": 15_000,
    "fields": 15_000,
    "feeds": 2_000,
    "storage": 3_000,
}
PAYLOADS_PER_EXAMPLE = {"random_bytes": 1, "json_values": 2, "mutated": 3, "fields": 3}
PARSE_PAYLOADS = sum(EXAMPLES[name] * count for name, count in PAYLOADS_PER_EXAMPLE.items())


def fuzz(name: str) -> settings:
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# The oracle: what the parser must answer, derived from the protocol notes, not from its code


def is_number(value: object) -> bool:
    """Return whether a JSON value is a finite number (true and false are not numbers)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def expected_reason(payload: bytes, now: float = NOW) -> str | None:
    """Return the rejection reason PROTOCOLS.md section 3 implies, or None for a strike."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return "too_large"
    try:
        text = str(payload, "utf-8", "strict")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return "invalid_json"
    if not isinstance(data, dict):
        return "not_object"
    if not {"lat", "lon", "time"} <= data.keys():
        return "missing_field"
    latitude, longitude, stamp = data["lat"], data["lon"], data["time"]
    if not (is_number(latitude) and abs(latitude) <= 90):
        return "bad_latitude"
    if not (is_number(longitude) and abs(longitude) <= 180):
        return "bad_longitude"
    if not is_number(stamp):
        return "bad_time"
    # Integer arithmetic on whole nanoseconds: exact whatever the magnitude.
    if isinstance(stamp, int):
        if stamp > int(now + 600) * NS:
            return "time_future"
        if stamp < int(now - 86_400) * NS:
            return "time_too_old"
    elif stamp > (now + 600) * NS:
        return "time_future"
    elif stamp < (now - 86_400) * NS:
        return "time_too_old"
    return None


def check_strike(strike: Strike) -> None:
    assert -90 <= strike.latitude <= 90
    assert -180 <= strike.longitude <= 180
    assert NOW - 86_400 <= strike.time <= NOW + 600
    assert 0 <= strike.distance_km <= math.pi * EARTH_RADIUS_KM + 1e-6
    assert 0 <= strike.azimuth < 360
    assert strike.compass in COMPASS_POINTS
    assert all(
        isinstance(value, float)
        for value in (strike.latitude, strike.longitude, strike.time, strike.distance_km)
    )


def parse_checked(payload: bytes) -> Strike | None:
    counters = StrikeCounters()

    strike = parse_strike(payload, NOW, *HOME, counters)

    assert counters.payloads == 1
    assert counters.accepted + counters.rejected_total == 1
    assert (strike is None) == (counters.rejected_total == 1)
    assert set(counters.rejected) <= REJECTION_REASONS - {"internal_error"}
    reason = next(iter(counters.rejected), None)
    assert reason == expected_reason(payload)
    if strike is not None:
        check_strike(strike)
    return strike


# Values read from hypothesis' bytes

NUMBER_TEXTS = (
    "1e400",
    "-1e400",
    "1e-400",
    "-0",
    "-0.0",
    "0e0",
    "1E+2",
    "90.0000000000000000001",
    "1" + "0" * 400,
    "1" + "0" * 4400,
    "0." + "0" * 3000 + "1",
    "1.7976931348623157e308",
    "5e-324",
    "NaN",
    "Infinity",
    "-Infinity",
    "1700000000000000000",
    "1.7e18",
    "0x10",
    "01",
    "+1",
    ".5",
    "1.",
)
INT_EDGES = (
    0,
    1,
    -1,
    90,
    -90,
    91,
    180,
    -180,
    181,
    2**31,
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    10**400,
    -(10**400),
    int(NOW) * NS,
    int(NOW + 600) * NS,
    int(NOW + 600) * NS + 1,
    int(NOW - 86_400) * NS,
    int(NOW - 86_400) * NS - 1,
    int(NOW),
)
FLOAT_EDGES = (
    math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    5e-324,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    90.0,
    90.00000000000001,
    -90.0,
    180.0,
    180.00000000000003,
    -180.00000000000003,
    NOW * NS,
    (NOW + 600) * NS,
    (NOW - 86_400) * NS,
    1e300,
)
EXTRA_KEYS = ("status", "region", "alt", "pol", "mds", "mcg", "delay", "sig", "", "lat ", "LAT")
VALID_PAYLOADS = [
    b'{"lat":51.5074,"lon":-0.1278,"time":1699999995000000000,"status":0,"region":1}',
    b'{"time": 1699999000123456789, "lat": 48.1, "lon": 2.2, "region": 1, "status": 2}',
    b'{"lat":-33.86,"lon":151.2,"time":1699990000000000000,"alt":0,"pol":0,"mds":11,"mcg":180,'
    b'"status":0,"region":7,"delay":2.9,"sig":[{"sta":12,"time":1234,"lat":1.0,"lon":2.0}]}',
    b'{"lat":90,"lon":-180,"time":1.69999e18}',
    b' {"lat" : 0 , "lon" : 0 , "time" : 1699999999999999999 } ',
]


def number(source: ByteSource, scale: float) -> object:
    roll = source.byte()
    if roll < 60:
        return source.choice(INT_EDGES)
    if roll < 120:
        return source.choice(FLOAT_EDGES)
    if roll < 200:
        # Plausible values, around and past the limits.
        return (source.below(60_001) - 30_000) / 30_000 * scale * 1.2
    if roll < 230:
        return source.below(65_536) - 32_768
    return struct.unpack("<d", source.take(8))[0]


def value(source: ByteSource, depth: int = 0) -> object:
    """Return a JSON-ish value of any type (NaN and the infinities included)."""
    kind = source.below(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return source.chance(50)
    if kind == 2:
        return number(source, 1e9)
    if kind == 3:
        return source.text()
    if kind == 4:
        return struct.unpack("<d", source.take(8))[0]
    if kind == 5:
        return [value(source, depth + 1) for _ in range(source.below(4))]
    return {
        source.choice((*EXTRA_KEYS, "lat", "lon", "time", source.text(4))): value(source, depth + 1)
        for _ in range(source.below(4))
    }


def field(source: ByteSource, scale: float, stamp: bool = False) -> object:
    roll = source.byte()
    if roll < 140:
        if stamp:
            return int(NOW * NS) + (source.below(4001) - 2000) * 60 * NS
        return number(source, scale)
    if roll < 200:
        return source.choice(INT_EDGES + FLOAT_EDGES)
    return value(source)


def valid_fields(source: ByteSource) -> dict[str, object]:
    """Return a strike the parser must accept, often on a limit."""
    latitude = source.choice((90, -90, 0, 89.999999, -0.0)) if source.chance(20) else None
    longitude = source.choice((180, -180, 0, 179.9999999, -180.0)) if source.chance(20) else None
    stamp = int(NOW * NS) - source.below(65_536) * 1_000_003
    if source.chance(15):
        stamp = source.choice((int(NOW + 600) * NS, int(NOW - 86_400) * NS, (NOW - 1) * NS))
    return {
        "lat": latitude if latitude is not None else (source.below(180_001) - 90_000) / 1000,
        "lon": longitude if longitude is not None else (source.below(360_001) - 180_000) / 1000,
        "time": stamp,
    }


def strike_fields(source: ByteSource) -> dict[str, object]:
    """Return strike fields: valid, valid but for one field, or anything."""
    mode = source.below(3)
    if mode == 0:
        fields = valid_fields(source)
    elif mode == 1:
        fields = valid_fields(source)
        key = source.choice(("lat", "lon", "time"))
        if source.chance(10):
            del fields[key]
        else:
            fields[key] = field(source, {"lat": 90.0, "lon": 180.0}.get(key, 1.0), key == "time")
    else:
        fields = {}
        for key, scale in (("lat", 90.0), ("lon", 180.0), ("time", 1.0)):
            if source.chance(92):
                fields[key] = field(source, scale, stamp=key == "time" and source.chance(50))
    for _ in range(source.below(4)):
        fields[source.choice(EXTRA_KEYS)] = value(source)
    return fields


def encode(source: ByteSource, data: object) -> bytes:
    """Serialize compactly or loosely, sometimes splicing a raw number text into a field."""
    text = json.dumps(data, separators=(",", ":") if source.chance(50) else None)
    if isinstance(data, dict) and data and source.chance(20):
        key = source.choice(list(data))
        text = json.dumps({**data, key: "@@"}).replace('"@@"', source.choice(NUMBER_TEXTS))
    return text.encode("utf-8", "surrogatepass")


# Parsing


@fuzz("random_bytes")
@given(payload=st.binary(max_size=200))
def test_random_bytes(payload: bytes) -> None:
    parse_checked(payload)


@fuzz("json_values")
@given(data=st.binary(min_size=16, max_size=256))
def test_random_json_values_of_every_type(data: bytes) -> None:
    source = ByteSource(data)
    for _ in range(PAYLOADS_PER_EXAMPLE["json_values"]):
        parse_checked(encode(source, value(source)))


@fuzz("mutated")
@given(data=st.binary(min_size=8, max_size=160))
def test_mutated_valid_payloads(data: bytes) -> None:
    source = ByteSource(data)
    for _ in range(PAYLOADS_PER_EXAMPLE["mutated"]):
        parse_checked(fuzz_mutate(source.choice(VALID_PAYLOADS), source))


@fuzz("fields")
@given(data=st.binary(min_size=24, max_size=256))
def test_field_values_of_every_type_and_size(data: bytes) -> None:
    source = ByteSource(data)
    for _ in range(PAYLOADS_PER_EXAMPLE["fields"]):
        payload = encode(source, strike_fields(source))
        if source.chance(10):
            payload = payload.ljust(MAX_PAYLOAD_BYTES + source.below(3) - 1)

        strike = parse_checked(payload)

        if strike is not None:
            parsed = json.loads(payload)
            assert (strike.latitude, strike.longitude) == (parsed["lat"], parsed["lon"])


def test_the_oracle_agrees_on_the_obvious() -> None:
    assert expected_reason(VALID_PAYLOADS[0]) is None
    assert expected_reason(b'{"lat":1e400,"lon":0,"time":0}') == "bad_latitude"
    assert expected_reason(b'{"lat":0,"lon":0,"time":' + b"9" * 4000 + b"}") == "time_future"
    assert expected_reason(b'{"lat":0,"lon":0,"time":' + b"9" * 5000 + b"}") == "invalid_json"
    assert PARSE_PAYLOADS >= 100_000
    assert all(parse_checked(payload) is not None for payload in VALID_PAYLOADS)


def test_the_generators_reach_every_outcome() -> None:
    """Guard the generators: fed plain random bytes, they produce every verdict the parser has."""
    rng = random.Random(11)
    outcomes: Counter[str | None] = Counter()
    for _ in range(3000):
        source = ByteSource(rng.randbytes(256))
        payload = (
            encode(source, strike_fields(source))
            if source.chance(60)
            else fuzz_mutate(source.choice(VALID_PAYLOADS), source)
        )
        if source.chance(3):
            payload = payload.ljust(MAX_PAYLOAD_BYTES + 1)
        outcomes[expected_reason(payload)] += 1
    assert set(outcomes) == {None} | (REJECTION_REASONS - {"internal_error", "not_bytes"})
    assert outcomes[None] >= 600


# Sequences through the window and the alert


def feed_payload(source: ByteSource, now: float) -> bytes:
    kind = source.below(5)
    if kind <= 1:
        # A plausible strike within a few hundred km and about the window's age.
        fields = {
            "lat": HOME[0] + (source.below(2001) - 1000) / 250,
            "lon": HOME[1] + (source.below(2001) - 1000) / 200,
            "time": int((now - source.below(2400) + 300) * NS),
            "status": 0,
            "region": 1,
        }
        return json.dumps(fields).encode()
    if kind == 2:
        return fuzz_mutate(source.choice(VALID_PAYLOADS), source)
    if kind == 3:
        return encode(source, strike_fields(source))
    return source.take(source.below(80))


@fuzz("feeds")
@given(data=st.binary(min_size=200, max_size=1500))
def test_any_feed_keeps_the_window_ordered_bounded_and_counted(data: bytes) -> None:
    source = ByteSource(data)
    strikes = StrikeWindow(*HOME, radius_km=150, window_s=1800, max_strikes=16)
    alert = LightningAlert(AlertSettings(distance_km=60, strikes=2, period_s=600, quiet_s=900))
    throttle = Throttle(interval_s=1800, max_destinations=4)
    now = NOW - 3600
    for payloads in range(1, 2 + source.below(30)):
        now += source.below(400)
        payload = feed_payload(source, now)
        added = strikes.counters.added
        kept = strikes.ingest(payload, now)
        assert (kept is not None) == (strikes.counters.added == added + 1)
        if kept is not None:
            alert.observe(kept)
        if alert.update(now) is not None:
            throttle.allow(source.choice(("!a", "!b", "!c", "!d", "!e")), now)
        if source.chance(5):
            strikes.set_location(HOME[0] + source.below(3) / 2, HOME[1], 50 + source.below(150))
            alert.replay(strikes)

        counters, parsed = strikes.counters, strikes.parse_counters
        assert parsed.payloads == payloads
        assert parsed.payloads == parsed.accepted + parsed.rejected_total
        assert "internal_error" not in parsed.rejected
        dropped = counters.dropped
        overflow, moved = dropped.get("overflow", 0), dropped.get("moved_away", 0)
        settled = counters.added - counters.expired - moved
        assert settled - overflow <= len(strikes) <= settled
        assert parsed.accepted >= counters.added + dropped.get("outside_radius", 0) + dropped.get(
            "too_old", 0
        )
        assert len(strikes) <= 16
        times = [strike.time for strike in strikes]
        assert times == sorted(times)
        assert all(strike.distance_km <= strikes.radius_km for strike in strikes)

    summary = strikes.summary(now, target_km=20)
    assert all(strike.time >= now - 1800 for strike in strikes)
    nearest = summary.nearest
    assert nearest is None or nearest.distance_km == min(s.distance_km for s in strikes)
    assert summary.rate_per_10min >= 0
    if summary.trend is not None:
        assert summary.trend.speed_km_min >= 0
        assert summary.trend.distance_km >= 0
        assert summary.trend.eta is None or now <= summary.trend.eta <= now + 7200
    check_storage(strikes, alert, throttle, now)


def check_storage(
    strikes: StrikeWindow, alert: LightningAlert, throttle: Throttle, now: float
) -> None:
    stored = json.loads(json.dumps(strikes.to_storage(), allow_nan=False))
    restored = StrikeWindow.from_storage(
        stored, strikes.latitude, strikes.longitude, now, strikes.radius_km, 1800, 16
    )
    assert [(s.latitude, s.longitude, s.time) for s in restored] == [
        (s.latitude, s.longitude, s.time) for s in strikes
    ]
    stored_alert = json.loads(json.dumps(alert.to_storage(), allow_nan=False))
    assert LightningAlert.from_storage(stored_alert, alert.settings).to_storage() == stored_alert
    stored_throttle = json.loads(json.dumps(throttle.to_storage(), allow_nan=False))
    assert Throttle.from_storage(stored_throttle, 1800, 4).to_storage() == stored_throttle


# Storage of anything


@fuzz("storage")
@given(data=st.binary(min_size=8, max_size=400))
def test_storage_survives_any_json_value(data: bytes) -> None:
    source = ByteSource(data)
    garbage = value(source)
    if source.chance(50):
        rows = [
            [value(source) if source.chance(30) else number(source, 90.0) for _ in range(3)]
            for _ in range(source.below(8))
        ]
        garbage = {"format": value(source), "strikes": rows}

    strikes = StrikeWindow.from_storage(garbage, *HOME, NOW, max_strikes=4)
    alert = LightningAlert.from_storage(garbage)
    throttle = Throttle.from_storage(garbage, max_destinations=3)

    assert len(strikes) <= 4
    assert all(
        strike.distance_km <= strikes.radius_km and NOW - 1800 <= strike.time <= NOW + 600
        for strike in strikes
    )
    assert len(throttle.to_storage()) <= 3
    assert alert.update(NOW) in (None, "started", "ended")
    json.dumps(strikes.to_storage(), allow_nan=False)
    json.dumps(alert.to_storage(), allow_nan=False)
    json.dumps(throttle.to_storage(), allow_nan=False)
