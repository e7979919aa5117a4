"""StrikeWindow: expiry, caps, the nearest strike, rates, the storm trend, moves and storage."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from custom_components.meshbot.geo.sphere import EARTH_RADIUS_KM
from custom_components.meshbot.lightning.strikes import Strike
from custom_components.meshbot.lightning.window import Direction, StrikeWindow

NOW = 1_700_000_000.0
HOME = (48.8566, 2.3522)


def destination(distance_km: float, bearing: float, origin: tuple[float, float] = HOME):
    """Return the point at a distance and initial bearing (the spherical direct problem)."""
    delta = distance_km / EARTH_RADIUS_KM
    theta, phi1, lambda1 = math.radians(bearing), *map(math.radians, origin)
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    return math.degrees(phi2), (math.degrees(lambda2) + 540) % 360 - 180


def strike(distance_km: float, time: float, bearing: float = 200.0) -> Strike:
    return Strike.locate(*destination(distance_km, bearing), time, *HOME)


def relay(distance_km: float, time: float, bearing: float = 200.0) -> bytes:
    latitude, longitude = destination(distance_km, bearing)
    return json.dumps(
        {"lat": latitude, "lon": longitude, "time": int(time * 1e9), "status": 0, "region": 1}
    ).encode()


def window(**kwargs: float) -> StrikeWindow:
    return StrikeWindow(*HOME, **kwargs)


def test_destination_helper_agrees_with_the_window_geometry() -> None:
    made = strike(42.0, NOW, 123.0)
    assert made.distance_km == pytest.approx(42.0, abs=1e-6)
    assert made.azimuth == pytest.approx(123.0, abs=1e-6)


# Insert and expiry


def test_strikes_expire_by_time() -> None:
    strikes = window(window_s=1800)
    for minute in range(0, 40, 5):
        assert strikes.add(strike(20, NOW + minute * 60), NOW + minute * 60)

    # Added at 35 min: the strike at 0 min was past the 30-minute horizon (5 min is on it).
    assert strikes.count == 7
    assert strikes.counters.expired == 1
    assert [s.time for s in strikes] == [NOW + m * 60 for m in range(5, 40, 5)]
    assert strikes.last_time == NOW + 35 * 60

    assert strikes.expire(NOW + 45 * 60) == 2
    assert strikes.count == 5
    assert strikes.expire(NOW + 45 * 60) == 0
    assert strikes.expire(NOW + 3 * 3600) == 5
    assert (strikes.count, strikes.nearest, strikes.last_time) == (0, None, None)
    assert strikes.counters.expired == 8


def test_the_horizon_itself_is_still_inside() -> None:
    strikes = window(window_s=600)
    strikes.add(strike(20, NOW), NOW)
    assert strikes.expire(NOW + 600) == 0
    assert strikes.expire(NOW + 600.001) == 1


def test_strikes_outside_the_radius_or_too_old_are_dropped_and_counted() -> None:
    strikes = window(radius_km=50, window_s=1800)

    assert strikes.add(strike(49.9, NOW), NOW)
    assert not strikes.add(strike(50.1, NOW), NOW)
    assert not strikes.add(strike(10, NOW - 1801), NOW)
    assert strikes.add(strike(10, NOW - 1799), NOW)

    assert strikes.count == 2
    assert strikes.counters.added == 2
    assert strikes.counters.dropped == {"outside_radius": 1, "too_old": 1}


def test_late_strikes_are_kept_in_time_order() -> None:
    strikes = window()
    for offset in (0, 60, 30, 90, 10, 90):
        strikes.add(strike(20 + offset / 10, NOW + offset), NOW + 100)

    times = [s.time for s in strikes]
    assert times == sorted(times)
    assert strikes.last_time == NOW + 90
    assert strikes.expire(NOW + 1800 + 20) == 2


def test_the_window_is_capped_oldest_first() -> None:
    strikes = window(max_strikes=5)
    for index in range(8):
        strikes.add(strike(10 + index, NOW + index), NOW + index)

    assert strikes.count == 5
    assert [s.time for s in strikes] == [NOW + i for i in range(3, 8)]
    assert strikes.counters.dropped == {"overflow": 3}
    # A late strike older than everything in a full window goes at once.
    assert not strikes.add(strike(1, NOW + 1), NOW + 8)
    assert strikes.counters.dropped == {"overflow": 4}
    assert strikes.nearest is not None
    assert strikes.nearest.distance_km == pytest.approx(13)


def test_a_full_window_holds_ten_thousand_strikes_by_default() -> None:
    strikes = window()
    for index in range(10_500):
        strikes.add(strike(50, NOW + index * 0.1), NOW + index * 0.1)
    assert strikes.count == 10_000
    assert strikes.counters.dropped == {"overflow": 500}


# Answers


def test_nearest_follows_inserts_expiry_and_overflow() -> None:
    strikes = window(window_s=600, max_strikes=3)
    assert strikes.nearest is None

    strikes.add(strike(30, NOW, 90), NOW)
    strikes.add(strike(5, NOW + 10, 45), NOW + 10)
    strikes.add(strike(20, NOW + 20), NOW + 20)
    nearest = strikes.nearest
    assert nearest is not None
    assert (round(nearest.distance_km, 6), round(nearest.azimuth, 6), nearest.compass) == (
        5,
        45,
        "NE",
    )

    strikes.expire(NOW + 605)
    assert strikes.nearest is not None
    assert strikes.nearest.distance_km == pytest.approx(5)
    strikes.expire(NOW + 615)
    assert strikes.nearest is not None
    assert strikes.nearest.distance_km == pytest.approx(20)

    strikes.add(strike(25, NOW + 630), NOW + 630)
    strikes.add(strike(26, NOW + 631), NOW + 631)
    strikes.add(strike(27, NOW + 632), NOW + 632)
    # The cap pushed the 20 km strike out.
    assert strikes.nearest is not None
    assert strikes.nearest.distance_km == pytest.approx(25)


def test_rate_per_ten_minutes() -> None:
    strikes = window()
    for index in range(18):
        strikes.add(strike(20, NOW - 900 + index * 50), NOW)

    # Strikes at -900 ... -50 s every 50 s: those at -600 and later count.
    assert strikes.rate_per_10min(NOW) == 12
    assert strikes.rate_per_10min(NOW + 1000) == 0


def test_rate_of_a_window_shorter_than_ten_minutes_is_scaled() -> None:
    strikes = window(window_s=300)
    for index in range(6):
        strikes.add(strike(20, NOW - index * 30), NOW)
    assert strikes.rate_per_10min(NOW) == 12


def test_summary_expires_then_answers_everything() -> None:
    strikes = window(window_s=600)
    strikes.add(strike(12, NOW - 700), NOW - 700)
    strikes.add(strike(30, NOW - 100), NOW - 100)

    summary = strikes.summary(NOW, target_km=10)

    assert summary.time == NOW
    assert summary.count == 1
    assert summary.nearest is not None
    assert summary.nearest.distance_km == pytest.approx(30)
    assert summary.last_time == NOW - 100
    assert summary.rate_per_10min == 1
    assert summary.trend is None


def test_ingest_parses_and_keeps_only_what_the_window_takes() -> None:
    strikes = window(radius_km=50)

    kept = strikes.ingest(relay(20, NOW - 3), NOW)
    assert kept is not None
    assert kept.distance_km == pytest.approx(20, abs=1e-6)
    assert strikes.ingest(relay(80, NOW - 3), NOW) is None
    assert strikes.ingest(b"garbage", NOW) is None

    assert strikes.count == 1
    assert strikes.parse_counters.payloads == 3
    assert strikes.parse_counters.accepted == 2
    assert strikes.parse_counters.rejected == {"invalid_json": 1}
    assert strikes.counters.dropped == {"outside_radius": 1}


# Storm trend


def storm(
    speed_km_min: float,
    start_km: float = 40.0,
    minutes: float = 15.0,
    per_minute: int = 8,
    scatter_km: float = 3.0,
    seed: int = 1,
) -> list[Strike]:
    """Return the strikes of a cell moving radially at a constant speed, ending at NOW."""
    rng = random.Random(seed)
    strikes = []
    for _ in range(int(minutes * per_minute)):
        age = rng.uniform(0, minutes * 60)
        distance = start_km - speed_km_min * (minutes - age / 60) + rng.gauss(0, scatter_km)
        strikes.append(strike(abs(distance), NOW - age, 200 + rng.gauss(0, 4)))
    return strikes


def filled(strikes: list[Strike], **kwargs: float) -> StrikeWindow:
    result = window(**kwargs)
    for item in sorted(strikes, key=lambda s: s.time):
        result.add(item, NOW)
    return result


def test_an_approaching_storm_gives_its_speed_and_arrival() -> None:
    # 40 km away 15 minutes ago, 1 km/min closer each minute: about 25 km now.
    trend = filled(storm(1.0)).trend(NOW, target_km=10)

    assert trend is not None
    assert trend.direction is Direction.APPROACHING
    assert trend.speed_km_min == pytest.approx(1.0, abs=0.1)
    assert trend.distance_km == pytest.approx(25, abs=1.5)
    assert trend.eta is not None
    # About 15 minutes to cover the remaining 15 km to the alert distance.
    assert (trend.eta - NOW) / 60 == pytest.approx(15, abs=2.5)
    assert trend.strikes >= 100


def test_a_receding_storm_has_no_arrival() -> None:
    trend = filled(storm(-1.0, start_km=10)).trend(NOW, target_km=10)

    assert trend is not None
    assert trend.direction is Direction.RECEDING
    assert trend.speed_km_min == pytest.approx(1.0, abs=0.1)
    assert trend.distance_km == pytest.approx(25, abs=1.5)
    assert trend.eta is None


def test_a_stationary_storm() -> None:
    trend = filled(storm(0.0, start_km=30, scatter_km=5)).trend(NOW, target_km=10)

    assert trend is not None
    assert trend.direction is Direction.STATIONARY
    # The fitted speed is reported even when it is not significant.
    assert trend.speed_km_min < 0.3
    assert trend.distance_km == pytest.approx(30, abs=2)
    assert trend.eta is None


@pytest.mark.parametrize("seed", range(5))
def test_the_trend_ignores_one_outlying_cluster(seed: int) -> None:
    rng = random.Random(seed)
    strikes = storm(1.0, seed=seed)
    # A far cell bursts for one minute, the last but one, as many strikes as the storm gives in
    # three (where a least-squares line would lean most)...
    strikes += [strike(85 + rng.gauss(0, 2), NOW - 60 - rng.uniform(0, 60), 90) for _ in range(24)]
    # ...and a second one fires alongside the storm all along, a fifth of the strikes.
    strikes += [strike(70 + rng.gauss(0, 2), NOW - rng.uniform(0, 900), 300) for _ in range(30)]

    trend = filled(strikes).trend(NOW, target_km=10)

    assert trend is not None
    assert trend.direction is Direction.APPROACHING
    assert trend.speed_km_min == pytest.approx(1.0, abs=0.15)
    assert trend.distance_km == pytest.approx(25, abs=2)
    assert trend.strikes <= 125


def test_without_robustness_the_outliers_would_have_mattered() -> None:
    """Guard the test above: plain least squares on the same strikes is visibly wrong."""
    strikes = storm(1.0) + [strike(85, NOW - 60 - i * 2, 90) for i in range(24)]
    xs = [(s.time - NOW) / 60 for s in strikes]
    ys = [s.distance_km for s in strikes]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    assert abs(-slope - 1.0) > 0.3


def test_arrival_is_to_zero_once_within_the_alert_distance() -> None:
    # 20 km away 15 minutes ago at 1 km/min: 5 km now, already within 10 km.
    trend = filled(storm(1.0, start_km=20, scatter_km=1)).trend(NOW, target_km=10)

    assert trend is not None
    assert trend.direction is Direction.APPROACHING
    assert trend.eta is not None
    assert (trend.eta - NOW) / 60 == pytest.approx(5, abs=1)


def test_a_storm_overhead_has_arrived() -> None:
    # The fitted line crossed zero: the storm is here, the distance is clamped at 0.
    strikes = [strike(max(0.0, 10 - m), NOW - (15 - m) * 60) for m in range(16)]
    trend = filled(strikes).trend(NOW, target_km=10)

    assert trend is not None
    assert trend.direction is Direction.APPROACHING
    assert trend.distance_km == 0
    assert trend.eta == NOW


def test_no_arrival_estimate_beyond_two_hours() -> None:
    # 0.3 km/min from 95 km: 90.5 km now, hours from the 10 km alert distance.
    trend = filled(storm(0.3, start_km=95, scatter_km=0.5)).trend(NOW, target_km=10)

    assert trend is not None
    assert trend.direction is Direction.APPROACHING
    assert trend.eta is None


@pytest.mark.parametrize("seed", range(5))
def test_a_steady_storm_counts_down_without_jumps(seed: int) -> None:
    """80 km away and closing at 30 km/h, 8 strikes a minute scattered over ~10 km."""
    rng = random.Random(seed)
    speed, start_km, target_km = 0.5, 80.0, 15.0
    times = sorted(NOW + rng.uniform(0, 90 * 60) for _ in range(90 * 8))
    strikes = [
        strike(start_km - speed * (time - NOW) / 60 + rng.gauss(0, 3), time, 200 + rng.gauss(0, 4))
        for time in times
    ]
    storm_window, added, shown = window(), 0, []
    # The sensor's refresh: once a minute until the storm is 5 minutes from the alert distance.
    for minute in range(1, 126):
        now = NOW + minute * 60
        while added < len(strikes) and strikes[added].time <= now:
            storm_window.add(strikes[added], now)
            added += 1
        trend = storm_window.summary(now, target_km).trend
        remaining = (start_km - speed * minute - target_km) / speed
        eta = trend.eta if trend else None
        if eta is not None:
            assert (eta - now) / 60 == pytest.approx(remaining, rel=0.35, abs=3), minute
        shown.append(None if eta is None else (eta - now) / 60)

    steps = [
        after - before
        for before, after in itertools.pairwise(shown)
        if before is not None and after is not None
    ]
    minutes_shown = sum(eta is not None for eta in shown)
    assert minutes_shown >= 30, "the arrival is known for a good part of the approach"
    # A minute later the storm is a minute closer: never a jump of more than a few minutes.
    assert all(-1 - 4 <= step <= -1 + 4 for step in steps), steps


def test_a_new_arrival_waits_five_minutes_then_moves_part_of_the_way() -> None:
    steady = filled(storm(1.0, scatter_km=0.5))
    first_raw = steady.trend(NOW, target_km=10)
    first = steady.summary(NOW, target_km=10).trend
    assert first_raw is not None and first_raw.eta is not None
    assert first is not None and first.direction is Direction.APPROACHING
    assert first.eta is None, "not settled yet"

    later_raw = steady.trend(NOW + 300, target_km=10)
    later = steady.summary(NOW + 300, target_km=10).trend
    assert later_raw is not None and later_raw.eta is not None
    assert later is not None and later.eta is not None
    # Five minutes with a 10-minute time constant: 1 - exp(-1/2) of the way to the fresh one.
    share = 1 - math.exp(-0.5)
    assert later.eta == pytest.approx(first_raw.eta + share * (later_raw.eta - first_raw.eta))

    # A clock stepped back starts the estimate over: 5 more minutes before it shows.
    stepped_back = steady.summary(NOW - 60, target_km=10).trend
    assert stepped_back is not None and stepped_back.eta is None
    again = steady.summary(NOW + 240, target_km=10).trend
    assert again is not None and again.eta is not None


@pytest.mark.parametrize(
    "strikes",
    [
        [],
        # Four strikes: too few.
        [strike(30 - m, NOW - (15 - m) * 60) for m in range(4)],
        # Many strikes, all within one minute: no time to see movement.
        [strike(30 - i / 10, NOW - 30 - i) for i in range(20)],
        # Two minutes only.
        [strike(30 - i / 10, NOW - 1 - (i % 2) * 60 - i * 2) for i in range(20)],
        # Plenty, but older than the trend's 15 minutes.
        [strike(30 - m, NOW - (16 + m) * 60) for m in range(10)],
    ],
    ids=["empty", "four", "one-minute", "two-minutes", "old"],
)
def test_too_little_data_gives_no_trend(strikes: list[Strike]) -> None:
    assert filled(strikes).trend(NOW, target_km=10) is None


def test_a_few_noisy_strikes_rarely_read_as_movement() -> None:
    verdicts: list[Direction | None] = []
    for seed in range(100):
        rng = random.Random(seed)
        strikes = [strike(30 + rng.uniform(-10, 10), NOW - m * 150) for m in range(6)]
        trend = filled(strikes).trend(NOW)
        verdicts.append(None if trend is None else trend.direction)
    # The test is at 95%: about 5 in 100 still look like movement, never most.
    assert verdicts.count(Direction.STATIONARY) >= 85


# Moving the observer


def test_moving_recomputes_distances_and_drops_what_falls_outside() -> None:
    strikes = window(radius_km=100)
    north = strike(60, NOW, 0)
    south = strike(60, NOW, 180)
    strikes.add(north, NOW)
    strikes.add(south, NOW)
    assert strikes.nearest is not None

    # 50 km north: the northern strike is 10 km away, the southern one 110 km.
    new_home = destination(50, 0)
    assert strikes.set_location(*new_home) == 1

    (kept,) = list(strikes)
    assert kept.distance_km == pytest.approx(10, abs=1e-6)
    assert kept.azimuth == pytest.approx(0, abs=1e-6)
    assert (kept.latitude, kept.longitude) == (north.latitude, north.longitude)
    assert strikes.nearest == kept
    assert strikes.counters.dropped == {"moved_away": 1}
    assert (strikes.latitude, strikes.longitude) == new_home


def test_a_smaller_radius_drops_the_far_strikes() -> None:
    strikes = window(radius_km=100)
    for distance in (5, 20, 40, 80):
        strikes.add(strike(distance, NOW), NOW)
    assert strikes.set_location(*HOME, radius_km=30) == 2
    assert strikes.radius_km == 30
    assert sorted(round(s.distance_km) for s in strikes) == [5, 20]


@pytest.mark.parametrize(
    "settings",
    [
        {"latitude": 91.0},
        {"longitude": math.nan},
        {"radius_km": 0.0},
        {"radius_km": -5.0},
        {"radius_km": math.inf},
        {"window_s": 0.0},
        {"window_s": math.nan},
        {"max_strikes": 0},
    ],
)
def test_impossible_settings_raise(settings: dict[str, float]) -> None:
    arguments = {"latitude": HOME[0], "longitude": HOME[1]} | settings
    with pytest.raises(ValueError):
        StrikeWindow(**arguments)  # type: ignore[arg-type]


def test_an_impossible_move_raises_and_changes_nothing() -> None:
    strikes = window()
    strikes.add(strike(20, NOW), NOW)
    with pytest.raises(ValueError):
        strikes.set_location(95.0, 0.0)
    assert (strikes.latitude, strikes.longitude, strikes.count) == (*HOME, 1)


# Storage


def test_storage_round_trips_through_json() -> None:
    strikes = filled(storm(1.0))
    stored = json.loads(json.dumps(strikes.to_storage(), allow_nan=False))

    restored = StrikeWindow.from_storage(stored, *HOME, NOW)

    assert list(restored) == list(strikes)
    assert restored.to_storage() == stored


def test_restoring_relocates_and_applies_the_current_settings() -> None:
    strikes = window()
    for distance, age in ((10, 60), (40, 120), (90, 600), (30, 1500)):
        strikes.add(strike(distance, NOW - age), NOW)
    stored = strikes.to_storage()

    restored = StrikeWindow.from_storage(
        stored, *destination(10, 200), NOW + 60, radius_km=50, window_s=900, max_strikes=2
    )

    assert [round(s.distance_km) for s in restored] == [30, 0]


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "strikes",
        {},
        {"strikes": None},
        {"strikes": "[[1, 2, 3]]"},
        {"strikes": {"a": 1}},
        {"strikes": [None, 1, "x", [], [1], [1, 2], [1, 2, 3, 4], {"lat": 1}]},
        {"strikes": [[True, 2.0, NOW], [48.0, False, NOW], [48.0, 2.0, True]]},
        {"strikes": [[math.nan, 2.0, NOW], [48.0, math.inf, NOW], [48.0, 2.0, math.nan]]},
        {"strikes": [[91, 2.0, NOW], [48.0, 181, NOW], ["48", 2.0, NOW], [48.0, 2.0, "now"]]},
        {"strikes": [[48.0, 2.0, NOW + 3600], [48.0, 2.0, NOW - 7200], [48.0, 2.0, 10**400]]},
        {"strikes": [[-33.9, 151.2, NOW]]},
    ],
)
def test_restoring_garbage_gives_an_empty_window(data: object) -> None:
    restored = StrikeWindow.from_storage(data, *HOME, NOW)
    assert restored.count == 0
    assert restored.nearest is None


def test_restoring_keeps_the_valid_strikes_among_garbage() -> None:
    good = strike(20, NOW - 60)
    data = {
        "format": 99,
        "extra": object(),
        "strikes": [[good.latitude, good.longitude, good.time], ["x"], [1e999, 0, 0]],
    }
    restored = StrikeWindow.from_storage(data, *HOME, NOW)
    assert list(restored) == [good]
