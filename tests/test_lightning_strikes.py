"""Strike parsing, great-circle distance and bearing, compass points; the package stays pure."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from custom_components.meshbot.geo.sphere import (
    EARTH_RADIUS_KM,
    distance_bearing,
    haversine_km,
    initial_bearing,
)
from custom_components.meshbot.lightning.strikes import (
    COMPASS_POINTS,
    MAX_PAYLOAD_BYTES,
    REJECTION_REASONS,
    Strike,
    StrikeCounters,
    compass_point,
    parse_strike,
)

NOW = 1_700_000_000.0
PARIS = (48.8566, 2.3522)
LONDON = (51.5074, -0.1278)
PACKAGE = Path(__file__).resolve().parent.parent / "custom_components" / "meshbot"


def dms(degrees: int, minutes: int, seconds: int) -> float:
    return degrees + minutes / 60 + seconds / 3600


def payload(**fields: object) -> bytes:
    return json.dumps(fields, separators=(",", ":")).encode()


def strike_payload(
    latitude: object = 51.5074,
    longitude: object = -0.1278,
    time: object = int((NOW - 5) * 1e9),
    **extra: object,
) -> bytes:
    return payload(lat=latitude, lon=longitude, time=time, status=0, region=1, **extra)


def parse(data: object, now: float = NOW) -> tuple[Strike | None, StrikeCounters]:
    counters = StrikeCounters()
    strike = parse_strike(data, now, *PARIS, counters)  # type: ignore[arg-type]
    assert counters.payloads == 1
    assert counters.accepted + counters.rejected_total == 1
    assert (strike is None) == (counters.rejected_total == 1)
    assert set(counters.rejected) <= REJECTION_REASONS - {"internal_error"}
    return strike, counters


def rejection(data: object, now: float = NOW) -> str:
    strike, counters = parse(data, now)
    assert strike is None
    (reason,) = counters.rejected
    return reason


# Distances and bearings against published figures


@pytest.mark.parametrize(
    ("start", "end", "published_km", "scale", "tolerance_km"),
    [
        # Movable Type Scripts (Veness), latlong.html worked example, R = 6371 km: 968.9 km.
        (
            (dms(50, 3, 59), -dms(5, 42, 53)),
            (dms(58, 38, 38), -dms(3, 4, 12)),
            968.9,
            6371.0,
            0.06,
        ),
        # Rosetta Code "Haversine formula", BNA to LAX with R = 6372.8 km.
        ((36.12, -86.67), (33.94, -118.40), 2887.2599506071106, 6372.8, 1e-6),
        # Paris to London, about 343.5 km.
        (PARIS, LONDON, 343.5, EARTH_RADIUS_KM, 0.1),
        # Exact on a sphere: a quarter of the equator, a meridian to the pole, antipodes.
        ((0.0, 0.0), (0.0, 90.0), math.pi * 6371.0 / 2, 6371.0, 1e-9),
        ((0.0, 10.0), (90.0, 10.0), math.pi * 6371.0 / 2, 6371.0, 1e-9),
        ((0.0, 0.0), (0.0, 180.0), math.pi * 6371.0, 6371.0, 1e-9),
        ((-33.8688, 151.2093), (33.8688, -28.7907), math.pi * 6371.0, 6371.0, 1e-6),
        # One degree of longitude on the equator, across the antimeridian.
        ((0.0, 179.5), (0.0, -179.5), math.pi * 6371.0 / 180, 6371.0, 1e-9),
    ],
)
def test_distance_matches_published_figures(
    start: tuple[float, float],
    end: tuple[float, float],
    published_km: float,
    scale: float,
    tolerance_km: float,
) -> None:
    # Published figures use their own Earth radius; the central angle is what must agree.
    distance = haversine_km(*start, *end) * scale / EARTH_RADIUS_KM
    assert distance == pytest.approx(published_km, abs=tolerance_km)
    assert distance_bearing(*start, *end)[0] * scale / EARTH_RADIUS_KM == pytest.approx(
        published_km, abs=tolerance_km
    )


@pytest.mark.parametrize(
    ("start", "end", "published_degrees", "tolerance"),
    [
        # Movable Type Scripts worked example: initial bearing 009 07 11.
        (
            (dms(50, 3, 59), -dms(5, 42, 53)),
            (dms(58, 38, 38), -dms(3, 4, 12)),
            dms(9, 7, 11),
            1 / 3600,
        ),
        # Paris to London, about 330 degrees (NNW).
        (PARIS, LONDON, 330.0, 0.1),
        ((0.0, 0.0), (0.0, 1.0), 90.0, 1e-9),
        ((0.0, 0.0), (0.0, -1.0), 270.0, 1e-9),
        ((0.0, 0.0), (1.0, 0.0), 0.0, 1e-9),
        ((0.0, 0.0), (-1.0, 0.0), 180.0, 1e-9),
        ((0.0, 179.5), (0.0, -179.5), 90.0, 1e-9),
        ((10.0, 20.0), (90.0, 0.0), 0.0, 1e-9),
    ],
)
def test_bearing_matches_published_figures(
    start: tuple[float, float],
    end: tuple[float, float],
    published_degrees: float,
    tolerance: float,
) -> None:
    bearing = initial_bearing(*start, *end)
    assert 0 <= bearing < 360
    # Compare on the circle so 359.99 and 0.01 are neighbours.
    difference = (bearing - published_degrees + 180) % 360 - 180
    assert abs(difference) <= tolerance


def test_bearing_of_a_tiny_negative_angle_stays_below_360() -> None:
    # Due north with a sub-ulp westward component: atan2 gives -0.0 or a tiny negative angle.
    assert 0 <= initial_bearing(0.0, 0.0, 1.0, -1e-300) < 360
    assert distance_bearing(0.0, 0.0, 0.0, 0.0) == (0.0, 0.0)


# Compass points


def test_compass_has_sixteen_points_in_order() -> None:
    assert COMPASS_POINTS[::4] == ("N", "E", "S", "W")
    assert len(set(COMPASS_POINTS)) == 16


@pytest.mark.parametrize("index", range(16))
def test_compass_point_boundaries(index: int) -> None:
    centre = index * 22.5
    name, following = COMPASS_POINTS[index], COMPASS_POINTS[(index + 1) % 16]
    assert compass_point(centre) == name
    assert compass_point(centre - 11.25) == name
    assert compass_point(centre + 11.2499) == name
    assert compass_point(centre + 11.25) == following


@pytest.mark.parametrize(
    ("azimuth", "name"),
    [
        (0.0, "N"),
        (359.999, "N"),
        (360.0, "N"),
        (348.75, "N"),
        (348.7499, "NNW"),
        (11.25, "NNE"),
        (45.0, "NE"),
        (90.0, "E"),
        (135.0, "SE"),
        (180.0, "S"),
        (202.5, "SSW"),
        (270.0, "W"),
        (330.0, "NNW"),
        (-11.25, "N"),
        (-11.26, "NNW"),
        (-90.0, "W"),
        (810.0, "E"),
    ],
)
def test_compass_point_of_known_azimuths(azimuth: float, name: str) -> None:
    assert compass_point(azimuth) == name


# Parsing


def test_a_relay_payload_becomes_a_strike_seen_from_the_observer() -> None:
    stamp = 1_699_999_990_123_456_789
    strike, counters = parse(strike_payload(time=stamp))

    assert strike is not None
    assert (strike.latitude, strike.longitude) == LONDON
    assert strike.time == pytest.approx(1_699_999_990.123456789, abs=1e-6)
    assert strike.distance_km == pytest.approx(343.5, abs=0.1)
    assert strike.azimuth == pytest.approx(330.0, abs=0.1)
    assert strike.compass == "NNW"
    assert counters.accepted == 1
    assert strike == Strike.locate(*LONDON, strike.time, *PARIS)
    assert strike.seen_from(*LONDON).distance_km == 0


@pytest.mark.parametrize(
    "data",
    [
        # Older relays' fields are ignored.
        strike_payload(alt=0, pol=-1, mds=12, mcg=200, delay=3.2, sig=[{"sta": 1, "time": 2}]),
        strike_payload(latitude=51, longitude=0),
        strike_payload(time=float(int((NOW - 5) * 1e9))),
        b' \n{"lat": 51.5, "lon": -0.1, "time": 1699999995000000000}\t',
        b'{"lat":51.5,"lon":-0.1,"time":1699999995000000000,"region":"x","status":null}',
        # Duplicate keys: the last one wins, as in every JSON parser of note.
        b'{"lat":"x","lat":51.5,"lon":-0.1,"time":1699999995000000000}',
        bytearray(strike_payload()),
        memoryview(strike_payload()),
    ],
)
def test_valid_variants_are_accepted(data: bytes) -> None:
    strike, _ = parse(data)
    assert strike is not None


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [(90, 0), (-90, 0), (0, 180), (0, -180), (90.0, 180.0), (-90.0, -180.0), (0, 0)],
)
def test_coordinate_limits_are_accepted(latitude: float, longitude: float) -> None:
    strike, _ = parse(strike_payload(latitude, longitude))
    assert strike is not None
    assert 0 <= strike.azimuth < 360
    assert 0 <= strike.distance_km <= math.pi * EARTH_RADIUS_KM


@pytest.mark.parametrize(
    ("offset_s", "accepted"),
    [(600, True), (601, False), (-86_400, True), (-86_401, False)],
)
def test_time_limits(offset_s: int, accepted: bool) -> None:
    strike, _ = parse(strike_payload(time=int(NOW + offset_s) * 1_000_000_000))
    assert (strike is not None) is accepted


# Deep enough to exhaust the decoder's recursion limit, yet under the size limit.
DEEP = b"[" * 16_000
HUGE_INTEGER = b'{"lat":' + b"1" * 5000 + b',"lon":0,"time":0}'
REJECTIONS = [
    ("a string", "not_bytes"),
    (None, "not_bytes"),
    (12, "not_bytes"),
    (b" " * MAX_PAYLOAD_BYTES + b"{}", "too_large"),
    (b'{"lat":1,\xff}', "invalid_utf8"),
    (b'{"lat":"\xed\xa0\x80"}', "invalid_utf8"),
    (json.dumps({"lat": 1}).encode("utf-16"), "invalid_utf8"),
    (b"", "invalid_json"),
    (b"{", "invalid_json"),
    (b"{'lat': 1}", "invalid_json"),
    (json.dumps({"lat": 1}).encode("utf-16-le"), "invalid_json"),
    (DEEP, "invalid_json"),
    (HUGE_INTEGER, "invalid_json"),
    (b"[]", "not_object"),
    (b"[51.5, -0.1, 1]", "not_object"),
    (b"1", "not_object"),
    (b'"lat"', "not_object"),
    (b"null", "not_object"),
    (b"true", "not_object"),
    (b"NaN", "not_object"),
    (b"{}", "missing_field"),
    (payload(lat=51.5, lon=-0.1), "missing_field"),
    (payload(lat=51.5, time=1), "missing_field"),
    (payload(Lat=51.5, lon=-0.1, time=1), "missing_field"),
    (strike_payload(latitude="51.5"), "bad_latitude"),
    (strike_payload(latitude=True), "bad_latitude"),
    (strike_payload(latitude=None), "bad_latitude"),
    (strike_payload(latitude=[51.5]), "bad_latitude"),
    (strike_payload(latitude={"deg": 51.5}), "bad_latitude"),
    (strike_payload(latitude=90.000001), "bad_latitude"),
    (strike_payload(latitude=-91), "bad_latitude"),
    (strike_payload(latitude=10**30), "bad_latitude"),
    (strike_payload(latitude=math.nan), "bad_latitude"),
    (strike_payload(latitude=math.inf), "bad_latitude"),
    (b'{"lat":1e400,"lon":0,"time":1699999995000000000}', "bad_latitude"),
    (strike_payload(longitude=180.000001), "bad_longitude"),
    (strike_payload(longitude=-181), "bad_longitude"),
    (strike_payload(longitude=False), "bad_longitude"),
    (strike_payload(longitude=-math.inf), "bad_longitude"),
    (strike_payload(longitude="E"), "bad_longitude"),
    (strike_payload(time="1699999995000000000"), "bad_time"),
    (strike_payload(time=True), "bad_time"),
    (strike_payload(time=None), "bad_time"),
    (strike_payload(time=math.nan), "bad_time"),
    (strike_payload(time=math.inf), "bad_time"),
    (strike_payload(time=[1]), "bad_time"),
    (strike_payload(time=10**40), "time_future"),
    (strike_payload(time=1.7e300), "time_future"),
    (strike_payload(time=int(NOW + 3600) * 1_000_000_000), "time_future"),
    (strike_payload(time=0), "time_too_old"),
    (strike_payload(time=-(10**40)), "time_too_old"),
    # Seconds where nanoseconds belong land in January 1970.
    (strike_payload(time=int(NOW)), "time_too_old"),
    (strike_payload(time=int(NOW - 2 * 86_400) * 1_000_000_000), "time_too_old"),
]


@pytest.mark.parametrize(
    ("data", "reason"),
    REJECTIONS,
    ids=[f"{reason}-{index}" for index, (_, reason) in enumerate(REJECTIONS)],
)
def test_every_rejection_is_counted_under_its_reason(data: object, reason: str) -> None:
    assert rejection(data) == reason


def test_counters_add_up_over_a_mixed_feed() -> None:
    counters = StrikeCounters()
    feed = [strike_payload(), b"{", b"[]", strike_payload(latitude=99), strike_payload(), b"\xff"]

    results = [parse_strike(data, NOW, *PARIS, counters) for data in feed]

    assert sum(result is not None for result in results) == counters.accepted == 2
    assert counters.payloads == 6
    assert counters.rejected_total == 4
    assert counters.rejected == {
        "invalid_json": 1,
        "not_object": 1,
        "bad_latitude": 1,
        "invalid_utf8": 1,
    }


# Purity


PURE_MODULES = [
    *sorted((PACKAGE / "geo").glob("*.py")),
    *sorted((PACKAGE / "lightning").glob("*.py")),
]


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda path: path.name)
def test_pure_modules_never_import_homeassistant(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ] + [
        node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    ]
    assert not [name for name in imported if name.split(".")[0] == "homeassistant"]
    # Relative imports stay inside the pure modules.
    relative = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level
    }
    assert relative <= {"geo.sphere", "sphere", "geohash", "strikes", "window", "alert"}
