"""Great-circle geometry on a spherical Earth, shared by the mesh and lightning packages."""

from __future__ import annotations

import math

# The IUGG mean radius: on a sphere it keeps the error against the ellipsoid within about 0.5%.
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance in km."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def initial_bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the initial great-circle bearing from point 1 to point 2, in degrees [0, 360)."""
    return distance_bearing(lat1, lon1, lat2, lon2)[1]


def distance_bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> tuple[float, float]:
    """Return the great-circle distance in km and the initial bearing in degrees [0, 360)."""
    # One function for both because strikes need both and share the trigonometry.
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlambda = math.radians(lon2 - lon1)
    cos1, cos2 = math.cos(phi1), math.cos(phi2)
    sin1, sin2 = math.sin(phi1), math.sin(phi2)
    a = math.sin((phi2 - phi1) / 2) ** 2 + cos1 * cos2 * math.sin(dlambda / 2) ** 2
    distance = 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
    y = math.sin(dlambda) * cos2
    x = cos1 * sin2 - sin1 * cos2 * math.cos(dlambda)
    bearing = math.degrees(math.atan2(y, x)) % 360.0
    # -1e-15 % 360 rounds to 360.0 in floating point; the contract is [0, 360).
    return distance, bearing if bearing < 360.0 else 0.0
