"""Geohash tiles covering a circle, for subscribing to the Blitzortung relay's topics."""

from __future__ import annotations

import math
from typing import NamedTuple

from ..geo.sphere import EARTH_RADIUS_KM, haversine_km

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
MAX_TILES = 9
TOPIC_ROOT = "blitzortung/1.1"
# Tiles over-cover the circle, so a move this small (relative to the radius) changes nothing worth
# a resubscription and a recount of the strikes.
MOVE_FRACTION = 0.25


class Circle(NamedTuple):
    """The area the lightning monitor watches."""

    latitude: float
    longitude: float
    radius_km: float


def encode(latitude: float, longitude: float, precision: int) -> str:
    """Return the geohash of a point."""
    lat_range, lon_range = [-90.0, 90.0], [-180.0, 180.0]
    chars: list[str] = []
    bits, value, even = 0, 0, True
    while len(chars) < precision:
        span = lon_range if even else lat_range
        coordinate = longitude if even else latitude
        middle = (span[0] + span[1]) / 2
        value <<= 1
        if coordinate >= middle:
            value |= 1
            span[0] = middle
        else:
            span[1] = middle
        even = not even
        bits += 1
        if bits == 5:
            chars.append(BASE32[value])
            bits, value = 0, 0
    return "".join(chars)


def _cell_size(precision: int) -> tuple[float, float]:
    lon_bits = math.ceil(5 * precision / 2)
    lat_bits = 5 * precision // 2
    return 180.0 / 2**lat_bits, 360.0 / 2**lon_bits


def tiles_at(latitude: float, longitude: float, radius_km: float, precision: int) -> set[str]:
    """Return the geohash cells of `precision` overlapping the circle's bounding box."""
    dlat_cell, dlon_cell = _cell_size(precision)
    # The circle's bounding box on the sphere. Its widest longitude, asin(sin d / cos lat), lies
    # poleward of the centre: radius / (km per degree * cos lat) misses a sliver of the circle at
    # high latitudes and large radii, and strikes there would never arrive.
    angular = radius_km / EARTH_RADIUS_KM
    dlat = math.degrees(angular)
    lat_min, lat_max = max(-90.0, latitude - dlat), min(90.0, latitude + dlat)
    cos_lat = math.cos(math.radians(latitude))
    if lat_min <= -90.0 or lat_max >= 90.0 or math.sin(angular) >= cos_lat:
        lon_min, lon_max = -180.0, 180.0
    else:
        dlon = math.degrees(math.asin(math.sin(angular) / cos_lat))
        lon_min, lon_max = longitude - dlon, longitude + dlon
    rows = range(
        int((lat_min + 90.0) // dlat_cell),
        int(min(lat_max + 90.0, 179.999999) // dlat_cell) + 1,
    )
    columns_count = int((lon_max + 180.0) // dlon_cell) - int((lon_min + 180.0) // dlon_cell) + 1
    total_columns = round(360.0 / dlon_cell)
    first_column = int((lon_min + 180.0) // dlon_cell)
    columns = {
        (first_column + offset) % total_columns
        for offset in range(min(columns_count, total_columns))
    }
    return {
        encode(
            -90.0 + (row + 0.5) * dlat_cell,
            -180.0 + (column + 0.5) * dlon_cell,
            precision,
        )
        for row in rows
        for column in columns
    }


def covering_tiles(latitude: float, longitude: float, radius_km: float) -> set[str]:
    """Return the finest tile set with at most nine tiles covering the circle."""
    best = tiles_at(latitude, longitude, radius_km, 1)
    for precision in range(2, 9):
        tiles = tiles_at(latitude, longitude, radius_km, precision)
        if len(tiles) > MAX_TILES:
            break
        best = tiles
    return best


def tile_topic(tile: str) -> str:
    """Return the topic filter for a tile: one topic level per geohash character."""
    return "/".join((TOPIC_ROOT, *tile, "#"))


def covering_topics(circle: Circle) -> set[str]:
    """Return the topic filters that cover the circle."""
    return {tile_topic(tile) for tile in covering_tiles(*circle)}


def subscription_changes(old: Circle | None, new: Circle) -> tuple[set[str], set[str]]:
    """Return the topic filters to subscribe and to unsubscribe when `old` becomes `new`.

    Filters both circles share are in neither set; with no `old`, everything is to subscribe.
    """
    wanted = covering_topics(new)
    if old is None:
        return wanted, set()
    current = covering_topics(old)
    return wanted - current, current - wanted


def moved_enough(old: Circle | None, new: Circle) -> bool:
    """Return whether `new` is worth acting on: a changed radius or a move of a quarter radius."""
    if old is None or new.radius_km != old.radius_km:
        return True
    moved = haversine_km(old.latitude, old.longitude, new.latitude, new.longitude)
    return moved >= MOVE_FRACTION * old.radius_km
