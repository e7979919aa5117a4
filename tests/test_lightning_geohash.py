"""Relay subscriptions: which topic filters change when the watched circle moves, and when to act."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.meshbot.lightning.geohash import (
    Circle,
    covering_tiles,
    covering_topics,
    encode,
    moved_enough,
    subscription_changes,
    tile_topic,
)

from .test_lightning_window import destination

PARIS = Circle(48.85, 2.35, 100.0)


def test_the_first_subscription_is_everything() -> None:
    subscribe, unsubscribe = subscription_changes(None, PARIS)

    assert subscribe == {tile_topic(tile) for tile in covering_tiles(48.85, 2.35, 100.0)}
    assert len(subscribe) == 6
    assert unsubscribe == set()
    assert all(topic.startswith("blitzortung/1.1/u/") for topic in subscribe)
    assert all(topic.endswith("/#") for topic in subscribe)


def test_the_same_circle_changes_nothing() -> None:
    assert subscription_changes(PARIS, PARIS) == (set(), set())


def test_a_small_move_inside_the_same_tiles_changes_nothing() -> None:
    assert subscription_changes(PARIS, Circle(48.86, 2.36, 100.0)) == (set(), set())


def test_a_move_east_sends_only_the_difference() -> None:
    east = Circle(48.85, 3.35, 100.0)

    subscribe, unsubscribe = subscription_changes(PARIS, east)

    assert subscribe == {"blitzortung/1.1/u/0/e/#", "blitzortung/1.1/u/0/g/#"}
    assert unsubscribe == {"blitzortung/1.1/u/0/8/#", "blitzortung/1.1/u/0/b/#"}


def test_a_smaller_radius_moves_to_finer_tiles() -> None:
    subscribe, unsubscribe = subscription_changes(PARIS, Circle(48.85, 2.35, 10.0))

    assert subscribe == {f"blitzortung/1.1/u/0/9/{c}/#" for c in "tvwy"}
    assert unsubscribe == covering_topics(PARIS)


def outside(latitude: float, longitude: float, radius_km: float) -> list[tuple[float, float]]:
    """Return the points sampled on and inside the circle that no subscribed tile holds."""
    tiles = covering_tiles(latitude, longitude, radius_km)
    precision = len(next(iter(tiles)))
    points = [
        destination(radius_km * fraction, bearing, (latitude, longitude))
        for fraction in (0.5, 0.999)
        for bearing in range(0, 360, 5)
    ]
    return [point for point in points if encode(*point, precision) not in tiles]


@pytest.mark.parametrize(
    "circle",
    [
        # Far from the centre's latitude the circle is wider in longitude than a flat box says;
        # these lost a band of their circle before the box was computed on the sphere.
        Circle(57.13, 24.11, 1248.4),
        Circle(85.13, 38.03, 170.1),
        Circle(-76.62, 42.45, 1126.7),
        Circle(69.33, 87.7, 1772.3),
        Circle(85.89, -66.27, 99.0),
    ],
)
def test_high_latitude_circles_are_covered(circle: Circle) -> None:
    assert outside(*circle) == []


@settings(max_examples=400, deadline=None)
@given(
    latitude=st.floats(-89.9, 89.9),
    longitude=st.floats(-180, 180),
    radius=st.floats(1, 2000),
)
def test_every_circle_is_covered(latitude: float, longitude: float, radius: float) -> None:
    assert outside(latitude, longitude, radius) == []


@settings(max_examples=300, deadline=None)
@given(
    old=st.none() | st.builds(Circle, st.floats(-89, 89), st.floats(-180, 180), st.floats(1, 2000)),
    new=st.builds(Circle, st.floats(-89, 89), st.floats(-180, 180), st.floats(1, 2000)),
)
def test_applying_the_changes_gives_the_new_subscriptions(old: Circle | None, new: Circle) -> None:
    current = set() if old is None else covering_topics(old)

    subscribe, unsubscribe = subscription_changes(old, new)

    assert not subscribe & unsubscribe
    assert not subscribe & current
    assert unsubscribe <= current
    assert (current - unsubscribe) | subscribe == covering_topics(new)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (None, PARIS, True),
        (PARIS, PARIS, False),
        # One degree of latitude is 111.2 km: a quarter of 100 km is 0.2248 degrees.
        (PARIS, Circle(48.85 + 0.22, 2.35, 100.0), False),
        (PARIS, Circle(48.85 + 0.23, 2.35, 100.0), True),
        (PARIS, Circle(48.85 - 0.23, 2.35, 100.0), True),
        # East-west at 48.85 N: one degree of longitude is 73.2 km, so 0.33 deg is 24.2 km.
        (PARIS, Circle(48.85, 2.35 + 0.33, 100.0), False),
        (PARIS, Circle(48.85, 2.35 + 0.35, 100.0), True),
        (PARIS, Circle(48.85, 2.35, 100.1), True),
        (PARIS, Circle(48.85, 2.35, 50.0), True),
        # Across the antimeridian, 20 km apart.
        (Circle(0.0, 179.9, 100.0), Circle(0.0, -179.92, 100.0), False),
        (Circle(0.0, 179.9, 50.0), Circle(0.0, -179.92, 50.0), True),
    ],
)
def test_moved_enough(old: Circle | None, new: Circle, expected: bool) -> None:
    assert moved_enough(old, new) is expected
