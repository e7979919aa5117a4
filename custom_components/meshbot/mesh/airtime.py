"""Airtime rules for requests that ask one node for something: how often, and one at a time.

A request and its answer cross every hop between the radio and the node, each way, on a channel
that everybody in range shares. The intervals follow the firmware, which drops what comes sooner:

- the local radio sends at most one traceroute every 30 s, and one position or telemetry request
  every 10 s, whoever of its clients asks (`PhoneAPI::handleToRadioPacket`): a traceroute is
  refused with a notice, the others are dropped without a word and would look like a node that
  never answers;
- a node answers at most one position request every 3 minutes (`PositionModule::allocReply`)
  and ignores the others without a NAK, so asking it sooner only wastes airtime and times out;
- telemetry has no limit in the firmware; once a minute per node is meshbot's own: device
  metrics change slowly (nodes broadcast them every 30 minutes by default), and a node's answer
  is the same few bytes however often it is asked.

A second request to a node whose first is still waiting is refused rather than queued: the caller
hears at once, and an automation that loops cannot stack up requests that would each cost
airtime later. Time is the caller's monotonic clock, passed in.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class RequestKind(StrEnum):
    """What a request asks a node for; each kind is paced on its own."""

    POSITION = "position"
    TELEMETRY = "telemetry"
    TRACEROUTE = "traceroute"


# Seconds between two requests of a kind through one radio, to any node.
RADIO_INTERVALS: Final = {
    RequestKind.TRACEROUTE: 30.0,
    RequestKind.POSITION: 10.0,
    RequestKind.TELEMETRY: 10.0,
}
# Seconds between two requests of a kind to the same node.
NODE_INTERVALS: Final = {
    RequestKind.TRACEROUTE: 30.0,
    RequestKind.POSITION: 180.0,
    RequestKind.TELEMETRY: 60.0,
}
_LONGEST: Final = max(NODE_INTERVALS.values())


class RequestPacer:
    """Say whether a request may go now; remember the requests that went."""

    def __init__(self) -> None:
        """Start with nothing sent and nothing waiting."""
        self._waiting: set[int] = set()
        self._sent_by_node: dict[tuple[int, RequestKind], float] = {}
        self._sent_by_kind: dict[RequestKind, float] = {}

    def waiting(self, node: int) -> bool:
        """Return whether a request to `node` waits for its answer."""
        return node in self._waiting

    def delay(self, node: int, kind: RequestKind, now: float) -> float:
        """Return how many seconds must still pass before this request may go (0: now)."""
        delay = 0.0
        if (sent := self._sent_by_kind.get(kind)) is not None:
            delay = sent + RADIO_INTERVALS[kind] - now
        if (sent := self._sent_by_node.get((node, kind))) is not None:
            delay = max(delay, sent + NODE_INTERVALS[kind] - now)
        return max(delay, 0.0)

    def begin(self, node: int) -> None:
        """Mark a request to `node` as waiting for its answer."""
        self._waiting.add(node)

    def end(self, node: int, kind: RequestKind, started: float, sent: bool) -> None:
        """Mark the request begun at `started` as over; count its airtime if it went out.

        A request the radio never queued (not connected, queue full) cost no airtime and does
        not delay the next one.
        """
        self._waiting.discard(node)
        if not sent:
            return
        self._sent_by_kind[kind] = started
        self._sent_by_node[(node, kind)] = started
        # Entries past every interval say nothing any more: a radio that asked many nodes once
        # keeps only its recent requests.
        stale = [key for key, at in self._sent_by_node.items() if started - at >= _LONGEST]
        for key in stale:
            del self._sent_by_node[key]
