"""Jittered exponential back-off for reconnecting links."""

from __future__ import annotations

from dataclasses import dataclass, field
import random


@dataclass
class Backoff:
    """Delays that double from `initial` up to `maximum`, with up to 50% jitter added.

    Jitter is only ever added, never subtracted, so `initial` is a hard floor: the
    Blitzortung relay bans clients that reconnect faster than once a minute.
    """

    initial: float = 1.0
    maximum: float = 300.0
    attempts: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        base = min(self.maximum, self.initial * (2.0 ** min(self.attempts, 32)))
        self.attempts += 1
        return base + base * 0.5 * self._random.random()

    def reset(self) -> None:
        """Start again from the initial delay after a stable connection."""
        self.attempts = 0
