"""Meshtastic channel keys: parsing the user's list, PSK expansion and channel hashes."""

from __future__ import annotations

import base64
import binascii
import contextlib
from functools import reduce
from operator import xor
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# The expansion of the one-byte PSK 0x01 ("AQ=="): the key every stock node starts with.
DEFAULT_KEY = bytes.fromhex("d4f1bb3a20290759f0bcffabcf4e6901")
MAX_CHANNEL_NAME = 11
PSK_LENGTHS = (1, 16, 32)


# AES-CTR counter block: packet id (uint64 LE), sender (uint32 LE), then a 32-bit big-endian
# block counter from 0 (the firmware's nonce with its four zero bytes, counting up).
COUNTER_BLOCK = struct.Struct("<QI4x")
# Meshtastic payloads are at most 256 bytes; longer (hostile) ones take the general path.
FAST_BLOCKS = 64
# The counters of n blocks as one big-endian integer, to OR into n copies of the zero-counter
# block: one integer operation instead of joining n blocks.
_COUNTERS = tuple(
    sum(index << 128 * (blocks - 1 - index) for index in range(blocks))
    for blocks in range(FAST_BLOCKS + 1)
)


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


class ChannelCipher:
    """AES-CTR decryption of a channel's packets, from one reusable ECB context.

    Building a CTR context per packet (`Cipher(key, modes.CTR(nonce)).decryptor()`) cost more
    than the decryption: cryptography validates the mode and the algorithm each time. CTR is
    ECB of the counter blocks XOR the data, and an ECB context keeps no state between blocks,
    so one serves every packet. Only the event loop decodes, so sharing it is safe.
    """

    def __init__(self, key: bytes) -> None:
        """Prepare the key (16 or 32 bytes)."""
        self._algorithm = algorithms.AES(key)
        self._ecb = Cipher(self._algorithm, modes.ECB()).encryptor()

    def decrypt(self, packet_id: int, sender: int, data: bytes) -> bytes:
        """Return `data` decrypted with the nonce of this packet id and sender."""
        size = len(data)
        blocks = (size + 15) >> 4
        first = COUNTER_BLOCK.pack(packet_id, sender)
        if blocks > FAST_BLOCKS:
            decryptor = Cipher(self._algorithm, modes.CTR(first)).decryptor()
            return decryptor.update(data) + decryptor.finalize()
        width = blocks << 4
        counters = int.from_bytes(first * blocks) | _COUNTERS[blocks]
        stream = int.from_bytes(self._ecb.update(counters.to_bytes(width)))
        # The keystream's first `size` bytes are its high end: the rest shifts out.
        return (int.from_bytes(data) ^ stream >> (width - size << 3)).to_bytes(size)


def channel_hash(name: str, key: bytes | None) -> int:
    """Return the 8-bit hash the firmware puts in encrypted packets for this channel."""
    value = reduce(xor, name.encode(), 0)
    return reduce(xor, key or b"", value)


def decode_psk(text: str) -> bytes:
    """Decode a PSK as the Meshtastic apps show it (base64) or as hex; raise ChannelKeyError.

    Only the lengths the firmware means are taken: none (0 bytes), the 1-byte shorthand, AES-128
    (16) and AES-256 (32). No text is both: hex of 1, 16 or 32 bytes (2, 32 or 64 digits) reads
    as base64 of 1, 24 or 48 bytes, never a key length, so neither encoding is read as the other.
    """
    stripped = text.strip()
    candidates = []
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.b64decode(stripped, validate=True))
    if stripped.isascii():
        with contextlib.suppress(ValueError):
            candidates.append(bytes.fromhex(stripped.removeprefix("0x")))
    keys = [psk for psk in candidates if len(psk) in PSK_LENGTHS]
    if len(keys) != 1:
        raise ChannelKeyError(
            "expected a base64 or hex key of 1, 16 or 32 bytes"
            f" ({'ambiguous' if keys else 'not one'})"
        )
    return keys[0]


def parse_channel_keys(text: str) -> dict[str, str]:
    """Parse lines of `ChannelName = key` into names and base64 keys; raise ChannelKeyError."""
    keys: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, key = line.partition("=")
        name, key = name.strip(), key.strip()
        if not sep or not name or not key:
            raise ChannelKeyError(f"line {number}: expected 'ChannelName = key'")
        # Unprintable names (control characters, lone surrogates) cannot be encoded either.
        if not name.isprintable() or len(name.encode()) > MAX_CHANNEL_NAME:
            raise ChannelKeyError(f"line {number}: channel names have at most 11 bytes")
        try:
            psk = decode_psk(key)
        except ChannelKeyError as err:
            raise ChannelKeyError(f"line {number}: {err}") from err
        # Stored as base64 whatever was typed: the decoder and the form read one encoding.
        keys[name] = base64.b64encode(psk).decode()
    return keys


def format_channel_keys(keys: dict[str, str]) -> str:
    """Format a mapping back into the lines the user edits."""
    return "\n".join(f"{name} = {key}" for name, key in keys.items())
