"""Parse protobuf messages the way real radios need: a broken text costs that text only.

Firmware and apps cut names at a byte limit, sometimes inside a multi-byte character (seen in
the wild: a short name of the four bytes `52 46 50 e0`). protobuf then refuses the whole
message, and with it every other field: a node record loses its position and metrics for one
broken name. Here only the broken characters go, at any depth (a `User` inside a `NodeInfo`
inside a `FromRadio`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from google.protobuf import empty_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

# Protobuf's own limit for nested messages; deeper bytes are kept as they came.
MAX_DEPTH = 100


def parse_lenient(message: Message, payload: bytes) -> None:
    """Parse `payload` into `message`, dropping invalid UTF-8 from string fields at any depth.

    DecodeError still means the bytes are not such a message at all.
    """
    try:
        message.ParseFromString(payload)
        return
    except DecodeError:
        repaired = _repaired(message.DESCRIPTOR, payload, 0)
    message.ParseFromString(repaired)


def _repaired(descriptor: Any, payload: bytes, depth: int) -> bytes:
    """Return `payload` with the invalid UTF-8 of its string fields dropped; raise DecodeError.

    `descriptor` is Any: the C (upb) and pure-Python descriptors are different types.
    """
    raw = empty_pb2.Empty()
    raw.ParseFromString(payload)
    fields = descriptor.fields_by_number
    out = bytearray()
    for item in UnknownFieldSet(raw):
        number, wire, data = item.field_number, item.wire_type, item.data
        tag = _varint(number << 3 | wire)
        if wire == 0:
            out += tag + _varint(data)
        elif wire == 1:
            out += tag + data.to_bytes(8, "little")
        elif wire == 5:
            out += tag + data.to_bytes(4, "little")
        elif wire == 2:
            field = fields.get(number)
            if field is not None and field.type == FieldDescriptor.TYPE_STRING:
                data = data.decode("utf-8", errors="ignore").encode()
            elif (
                field is not None
                and field.type == FieldDescriptor.TYPE_MESSAGE
                and depth < MAX_DEPTH
            ):
                # Not a message inside: the final parse says so for the whole.
                with contextlib.suppress(DecodeError):
                    data = _repaired(field.message_type, data, depth + 1)
            out += tag + _varint(len(data)) + data
        # Groups (wire type 3) are dropped: no Meshtastic message has one.
    return bytes(out)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
