"""Blitzortung lightning: geohash tiles, strikes and windows; no Home Assistant import."""
