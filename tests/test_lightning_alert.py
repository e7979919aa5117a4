"""The nearby-lightning alert state machine and the per-destination throttle, in explicit time."""

from __future__ import annotations

import json
import math

import pytest

from custom_components.meshbot.lightning.alert import (
    AlertChange,
    AlertSettings,
    LightningAlert,
    Throttle,
)
from custom_components.meshbot.lightning.strikes import Strike

T0 = 1_700_000_000.0
MINUTE = 60.0
# 3 strikes within 10 km in 10 minutes start it; 20 quiet minutes end it.
SETTINGS = AlertSettings(distance_km=10.0, strikes=3, period_s=600.0, quiet_s=1200.0)


def at(distance_km: float, time: float) -> Strike:
    """Return a strike at a distance; the alert only reads distance and time."""
    return Strike(48.85, 2.35, time, distance_km, 0.0)


def alert_after(*strikes: Strike, settings: AlertSettings = SETTINGS) -> LightningAlert:
    alert = LightningAlert(settings)
    for strike in strikes:
        alert.observe(strike)
    return alert


def test_starts_on_the_nth_near_strike_within_the_period() -> None:
    alert = LightningAlert(SETTINGS)

    assert alert.observe(at(5, T0))
    assert alert.update(T0) is None
    assert alert.observe(at(9.9, T0 + MINUTE))
    assert alert.update(T0 + MINUTE) is None
    assert not alert.active

    assert alert.observe(at(10.0, T0 + 2 * MINUTE))
    assert alert.update(T0 + 2 * MINUTE) is AlertChange.STARTED
    assert alert.active
    assert alert.since == T0 + 2 * MINUTE
    assert alert.last_near == T0 + 2 * MINUTE
    # Reported once.
    assert alert.update(T0 + 3 * MINUTE) is None


def test_far_strikes_never_start_it() -> None:
    alert = LightningAlert(SETTINGS)
    for index in range(50):
        assert not alert.observe(at(10.01, T0 + index))
    assert alert.update(T0 + 50) is None
    assert alert.last_near is None


def test_near_strikes_spread_over_more_than_the_period_do_not_start_it() -> None:
    alert = alert_after(at(5, T0), at(5, T0 + 6 * MINUTE), at(5, T0 + 10 * MINUTE + 1))
    assert alert.update(T0 + 10 * MINUTE + 1) is None

    # A fourth one makes three within ten minutes.
    alert.observe(at(5, T0 + 12 * MINUTE))
    assert alert.update(T0 + 12 * MINUTE) is AlertChange.STARTED


def test_an_update_too_late_no_longer_starts_it() -> None:
    alert = alert_after(at(5, T0), at(5, T0 + 1), at(5, T0 + 2))
    assert alert.update(T0 + 10 * MINUTE + 1) is None
    assert not alert.active


def test_ends_after_the_quiet_period_exactly() -> None:
    alert = alert_after(at(5, T0), at(5, T0 + 1), at(5, T0 + 2))
    assert alert.update(T0 + 2) is AlertChange.STARTED

    assert alert.update(T0 + 2 + 20 * MINUTE - 1) is None
    assert alert.active
    assert alert.update(T0 + 2 + 20 * MINUTE) is AlertChange.ENDED
    assert not alert.active
    assert alert.since is None
    assert alert.update(T0 + 3600) is None


def test_one_near_strike_during_the_alert_restarts_the_quiet_period() -> None:
    alert = alert_after(at(5, T0), at(5, T0 + 1), at(5, T0 + 2))
    alert.update(T0 + 2)

    alert.observe(at(8, T0 + 15 * MINUTE))
    # Far strikes do not count as activity.
    alert.observe(at(30, T0 + 30 * MINUTE))
    assert alert.update(T0 + 30 * MINUTE) is None
    assert alert.update(T0 + 35 * MINUTE - 1) is None
    assert alert.update(T0 + 35 * MINUTE) is AlertChange.ENDED


def test_after_it_ends_it_needs_n_strikes_again() -> None:
    alert = alert_after(at(5, T0), at(5, T0 + 1), at(5, T0 + 2))
    alert.update(T0 + 2)
    assert alert.update(T0 + 3600) is AlertChange.ENDED

    alert.observe(at(5, T0 + 3600))
    assert alert.update(T0 + 3600) is None
    alert.observe(at(5, T0 + 3601))
    alert.observe(at(5, T0 + 3602))
    assert alert.update(T0 + 3602) is AlertChange.STARTED


def test_late_strikes_count_by_their_own_time() -> None:
    alert = alert_after(at(5, T0 + 120), at(5, T0 + 60), at(5, T0))
    assert alert.last_near == T0 + 120
    assert alert.update(T0 + 130) is AlertChange.STARTED


def test_a_quiet_period_shorter_than_the_period_cannot_start_an_alert_already_over() -> None:
    settings = AlertSettings(distance_km=10, strikes=3, period_s=3600, quiet_s=300)
    alert = alert_after(at(5, T0), at(5, T0 + 1), at(5, T0 + 2), settings=settings)

    # Three strikes within the hour, but the last one is older than the quiet period.
    assert alert.update(T0 + 600) is None
    assert alert.update(T0 + 200) is AlertChange.STARTED


def test_one_strike_setting() -> None:
    alert = alert_after(at(1, T0), settings=AlertSettings(strikes=1))
    assert alert.update(T0) is AlertChange.STARTED


def test_time_travel_backwards_keeps_the_state() -> None:
    alert = alert_after(at(5, T0), at(5, T0 + 1), at(5, T0 + 2))
    assert alert.update(T0 + 2) is AlertChange.STARTED
    assert alert.update(T0 - 86_400) is None
    assert alert.active


def test_replay_after_a_move_uses_the_new_distances() -> None:
    alert = alert_after(at(5, T0), at(5, T0 + 1), at(5, T0 + 2))
    alert.update(T0 + 2)

    alert.replay([at(40, T0), at(40, T0 + 1), at(40, T0 + 2)])

    assert alert.active
    assert alert.last_near is None
    assert alert.update(T0 + 3) is AlertChange.ENDED


@pytest.mark.parametrize(
    "settings",
    [
        {"distance_km": 0},
        {"distance_km": -1.0},
        {"distance_km": math.nan},
        {"period_s": 0},
        {"quiet_s": math.inf},
        {"strikes": 0},
        {"strikes": 2.5},
        {"strikes": True},
        {"distance_km": "10"},
    ],
)
def test_impossible_settings_raise(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AlertSettings(**settings)  # type: ignore[arg-type]


def test_alert_storage_round_trips_through_json() -> None:
    alert = alert_after(at(5, T0), at(5, T0 + 1), at(5, T0 + 2), at(5, T0 + 3))
    alert.update(T0 + 3)
    stored = json.loads(json.dumps(alert.to_storage(), allow_nan=False))

    restored = LightningAlert.from_storage(stored, SETTINGS)

    assert restored.to_storage() == stored
    assert (restored.active, restored.since, restored.last_near) == (True, T0 + 3, T0 + 3)
    assert restored.update(T0 + 3 + 20 * MINUTE) is AlertChange.ENDED


def test_a_restored_inactive_alert_starts_from_its_stored_strikes() -> None:
    stored = alert_after(at(5, T0), at(5, T0 + 1)).to_storage()
    restored = LightningAlert.from_storage(stored, SETTINGS)

    restored.observe(at(5, T0 + 2))

    assert restored.update(T0 + 2) is AlertChange.STARTED


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "active",
        {},
        {"active": "yes", "since": T0},
        {"active": True, "since": None},
        {"active": True, "since": math.nan},
        {"active": 1, "since": T0},
        {"near": "x", "last_near": "y"},
        {"near": [None, "1", True, math.inf, [1]], "last_near": True},
        {"near": {"a": 1}, "last_near": [T0]},
    ],
)
def test_restoring_garbage_gives_an_idle_alert(data: object) -> None:
    restored = LightningAlert.from_storage(data, SETTINGS)
    assert (restored.active, restored.since, restored.last_near) == (False, None, None)
    assert restored.to_storage()["near"] == []
    assert restored.update(T0) is None


def test_restoring_keeps_only_the_newest_n_near_strikes() -> None:
    restored = LightningAlert.from_storage({"near": [T0 + 5, T0, T0 + 9, T0 + 1]}, SETTINGS)
    assert restored.to_storage()["near"] == [T0 + 1, T0 + 5, T0 + 9]


# Throttle


def test_throttle_allows_once_per_interval_per_destination() -> None:
    throttle = Throttle(interval_s=1800)

    assert throttle.allow("!a1b2c3d4", T0)
    assert not throttle.allow("!a1b2c3d4", T0 + 1)
    assert not throttle.allow("!a1b2c3d4", T0 + 1799.9)
    assert throttle.allow("channel:0", T0 + 60)
    assert throttle.remaining("!a1b2c3d4", T0 + 600) == pytest.approx(1200)
    assert throttle.remaining("nobody", T0) == 0

    assert throttle.allow("!a1b2c3d4", T0 + 1800)
    # A refused attempt does not push the next window back.
    assert not throttle.allow("!a1b2c3d4", T0 + 3000)
    assert throttle.allow("!a1b2c3d4", T0 + 3600)


def test_throttle_after_the_clock_stepped_back() -> None:
    throttle = Throttle(interval_s=1800)
    assert throttle.allow("!a1b2c3d4", T0)

    # A clock set back a day must not mute the destination for a day.
    assert throttle.allow("!a1b2c3d4", T0 - 86_400)
    assert not throttle.allow("!a1b2c3d4", T0 - 86_400 + 60)
    assert throttle.remaining("!a1b2c3d4", T0 - 90_000) == 0


def test_throttle_forgets_the_oldest_destinations_beyond_its_cap() -> None:
    throttle = Throttle(interval_s=1800, max_destinations=3)
    for index, destination in enumerate("abcd"):
        assert throttle.allow(destination, T0 + index)

    assert set(throttle.to_storage()) == {"b", "c", "d"}
    assert throttle.allow("a", T0 + 10)
    assert not throttle.allow("d", T0 + 10)


def test_throttle_storage_round_trips_and_survives_garbage() -> None:
    throttle = Throttle()
    throttle.allow("!a1b2c3d4", T0)
    throttle.allow("channel:0", T0 + 5)
    stored = json.loads(json.dumps(throttle.to_storage(), allow_nan=False))

    restored = Throttle.from_storage(stored)

    assert restored.to_storage() == stored
    assert not restored.allow("!a1b2c3d4", T0 + 60)
    for garbage in (None, [], "x", {"a": "1", "b": None, "c": True, "d": math.nan, 5: T0}):
        assert Throttle.from_storage(garbage).to_storage() == {}
    assert Throttle.from_storage(
        {"a": T0, "b": T0 + 1, "c": T0 + 2}, max_destinations=2
    ).to_storage() == {"b": T0 + 1, "c": T0 + 2}
