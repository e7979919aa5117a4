"""What an MQTT link counts, apart from paho so that reading it needs no paho import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MqttCounters:
    """What the link received and what it had to drop."""

    messages: int = 0
    oversized: int = 0
    bad_topics: int = 0
    handler_errors: int = 0
