"""Meshtastic channel keys: parsing the user's list, PSK expansion and channel hashes."""

from __future__ import annotations

import base64
import binascii
from functools import reduce
from operator import xor

# The expansion of the one-byte PSK 0x01 ("AQ=="): the key every stock node starts with.
DEFAULT_KEY = bytes.fromhex("d4f1bb3a20290759f0bcffabcf4e6901")
MAX_CHANNEL_NAME = 11


class ChannelKeyError(ValueError):
    """Raise when a channel key line cannot be used."""


def expand_psk(psk: bytes) -> bytes | None:
    """Return the AES key a PSK stands for, or None for an unencrypted channel."""
    if not psk or psk == b"\x00":
        return None
    if len(psk) == 1:
        return DEFAULT_KEY[:-1] + bytes(((DEFAULT_KEY[-1] + psk[0] - 1) & 0xFF,))
    if len(psk) <= 16:
        return psk.ljust(16, b"\x00")
    if len(psk) <= 32:
        return psk.ljust(32, b"\x00")
    raise ChannelKeyError("a channel key is at most 32 bytes")


def channel_hash(name: str, key: bytes | None) -> int:
    """Return the 8-bit hash the firmware puts in encrypted packets for this channel."""
    value = reduce(xor, name.encode(), 0)
    return reduce(xor, key or b"", value)


def decode_psk(text: str) -> bytes:
    """Decode a base64 PSK as the Meshtastic apps show it."""
    try:
        psk = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as err:
        raise ChannelKeyError(f"not valid base64: {err}") from err
    expand_psk(psk)
    return psk


def parse_channel_keys(text: str) -> dict[str, str]:
    """Parse lines of `ChannelName = base64key` into a mapping; raise ChannelKeyError."""
    keys: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, key = line.partition("=")
        name, key = name.strip(), key.strip()
        if not sep or not name or not key:
            raise ChannelKeyError(f"line {number}: expected 'ChannelName = base64key'")
        if len(name.encode()) > MAX_CHANNEL_NAME or any(ord(ch) < 32 for ch in name):
            raise ChannelKeyError(f"line {number}: channel names have at most 11 bytes")
        try:
            decode_psk(key)
        except ChannelKeyError as err:
            raise ChannelKeyError(f"line {number}: {err}") from err
        keys[name] = key
    return keys


def format_channel_keys(keys: dict[str, str]) -> str:
    """Format a mapping back into the lines the user edits."""
    return "\n".join(f"{name} = {key}" for name, key in keys.items())
