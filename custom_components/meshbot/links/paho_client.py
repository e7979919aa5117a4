"""paho-mqtt's client made for one event loop: no locks, buffered reads, oversized packets skipped.

paho keeps the protocol (CONNECT, subscriptions, keepalive, QoS 1 and 2 flows, TLS); what is
changed is only how received bytes reach paho's packet handling and how a QoS 0 message reaches
meshbot's handler: paho's generic path cost five times the old client's per message.

MQTT 3.1.1: MQTT 5 would let meshbot tell the broker its largest packet, but paho parses the
properties of every MQTT 5 PUBLISH in Python, which doubled its cost per message
(bench/mqtt.py); the guard on reads below does the same job for any broker.

Imported only when an MQTT link starts (see lazy.MQTT_CLIENT): paho is not needed before.
Home Assistant's own MQTT integration subclasses paho's client in the same way
(`homeassistant/components/mqtt/async_client.py`); what is reached into here is paho 2.1's, the
version Home Assistant pins, and the link tests exercise each part against a real broker.
"""

from __future__ import annotations

from collections.abc import Callable
import socket
from types import TracebackType
from typing import Any

from paho.mqtt.client import Client, MQTTMessage, MQTTv311, time_func
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from .counters import MqttCounters

# Meshtastic envelopes stay under 1 KiB and strikes under 200 B; a packet announced larger than
# this is skipped without being buffered, so a hostile broker cannot grow memory.
MAX_PACKET = 256 * 1024
# One read from the socket serves many packets: paho asks the socket for one byte, then for
# the length bytes, then for the body, which costs a system call each.
READ_SIZE = 64 * 1024


class _NoLock:
    """A lock that is never contended: every call on the client comes from the event loop."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        # Refused, as Home Assistant's NullLock does: paho then queues every packet for the
        # writer callback instead of writing from whichever thread queued it.
        return False

    def release(self) -> None:
        return None


def _fresh_packet() -> dict[str, Any]:
    # The state paho 2.1 keeps for the packet being read, as `Client.reconnect` resets it.
    return {
        "command": 0,
        "have_remaining": 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": 0,
        "packet": bytearray(b""),
        "to_process": 0,
        "pos": 0,
    }


class LoopClient(Client):
    """A paho client that only the event loop touches; reads are buffered and bounded."""

    def __init__(
        self, client_id: str, counters: MqttCounters, deliver: Callable[[bytes, bytes], None]
    ) -> None:
        """Make a clean-session client that never reconnects on its own.

        Every message received goes to `deliver(topic, payload)`, the topic as it came (it may
        not be UTF-8).
        """
        super().__init__(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=MQTTv311,
            reconnect_on_failure=False,
        )
        no_lock: Any = _NoLock()
        self._in_callback_mutex = no_lock
        self._callback_mutex = no_lock
        self._msgtime_mutex = no_lock
        self._out_message_mutex = no_lock
        self._in_message_mutex = no_lock
        self._reconnect_delay_mutex = no_lock
        self._mid_generate_mutex = no_lock
        self.suppress_exceptions = True
        self._counters = counters
        self._deliver = deliver
        self._read_buffer = b""
        self._read_at = 0
        self._discard = 0
        # The connection the event loop made, and its descriptor (the TLS socket takes the
        # descriptor over): a connect stuck in its TLS handshake, which paho bounds by the
        # keepalive (a minute), is woken through it when the session gives up.
        self._tcp_socket: socket.socket | None = None
        self._tcp_fd = -1

    def use_connection(self, sock: socket.socket) -> None:
        """Connect over `sock`, a TCP connection the event loop made.

        The loop makes it (asyncio, cancellable at once) rather than paho in the executor: a
        TCP connect blocked in a thread cannot be cut short, and would outlive an unload.
        """
        self._tcp_socket = sock
        self._tcp_fd = sock.fileno()

    def _create_socket_connection(self) -> socket.socket:
        sock = self._tcp_socket
        if sock is None:
            raise ConnectionError("no connection was handed over")
        # paho's TLS handshake blocks, bounded by a timeout, before it makes the socket
        # non-blocking again.
        sock.setblocking(True)
        sock.settimeout(self._connect_timeout)
        return sock

    def interrupt(self) -> None:
        """Wake a connect blocked on its socket in another thread: it fails at once.

        Only called while that connect has not returned, so the descriptor is still its socket.
        """
        if self._tcp_fd < 0:
            return
        try:
            sock = socket.socket(fileno=self._tcp_fd)
        except OSError:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.detach()

    def close_sockets(self) -> None:
        """Close whatever socket the connect opened."""
        for sock in (self.socket(), self._tcp_socket):
            if sock is not None:
                sock.close()

    def _packet_read(self) -> MQTTErrorCode:
        # A whole packet waiting in the buffer goes to paho's packet handling at once; paho's
        # own read (three socket reads per packet, a new state dict each) takes anything else:
        # a packet split across reads, one too large, the skipping of one.
        packet = self._in_packet
        if packet["command"] == 0 and not self._discard:
            if self._read_at >= len(self._read_buffer):
                try:
                    if not self._refill():
                        return MQTTErrorCode.MQTT_ERR_CONN_LOST
                except BlockingIOError:
                    return MQTTErrorCode.MQTT_ERR_AGAIN
                except OSError:
                    return MQTTErrorCode.MQTT_ERR_CONN_LOST
            buffer, start = self._read_buffer, self._read_at
            size = len(buffer)
            index, length, shift = start + 1, 0, 0
            while index < size and shift <= 21:
                byte = buffer[index]
                index += 1
                length |= (byte & 0x7F) << shift
                if byte & 0x80:
                    shift += 7
                    continue
                end = index + length
                if end > size or length > MAX_PACKET:
                    break
                self._read_at = end
                packet["command"] = buffer[start]
                packet["remaining_length"] = length
                # paho reads the body with struct, which takes bytes as well as a bytearray.
                packet["packet"] = buffer[index:end]  # type: ignore[typeddict-item]
                try:
                    result: MQTTErrorCode = self._packet_handle()
                finally:
                    packet["command"] = packet["remaining_length"] = 0
                    packet["packet"] = bytearray()
                self._last_msg_in = time_func()
                return result
        return super()._packet_read()

    def _handle_publish(self) -> MQTTErrorCode:
        # At QoS 0 (all Meshtastic and Blitzortung traffic) topic and payload go straight to
        # the handler. paho's own handling makes a message object with a threading.Condition
        # for each, which was half of paho's cost per message in a busy Home Assistant
        # (bench/mqtt.py). With QoS 1 or 2, paho's handling runs, acknowledgements included.
        packet = self._in_packet
        if (packet["command"] >> 1) & 0x03:
            result: MQTTErrorCode = super()._handle_publish()
            return result
        body = packet["packet"]
        topic_end = 2 + int.from_bytes(body[:2])
        # A topic is at least one character (3.1.1, 4.7.3); its length must fit the packet.
        if len(body) < 2 or topic_end == 2 or topic_end > len(body):
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._deliver(bytes(body[2:topic_end]), bytes(body[topic_end:]))
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_on_message(self, message: MQTTMessage) -> None:
        # paho's QoS 1 and 2 deliveries: straight to the one handler (meshbot uses none of
        # paho's per-topic callbacks, whose lookup costs a third of paho's time per message).
        self._deliver(message._topic, message.payload)

    @property
    def buffered(self) -> bool:
        """Return whether read bytes wait that the socket's readiness will not announce."""
        if self._read_at < len(self._read_buffer):
            return True
        sock = self._sock
        # TLS can hold decrypted bytes the kernel no longer reports as readable.
        pending = getattr(sock, "pending", None)
        return bool(pending is not None and pending())

    def _refill(self) -> bool:
        data = super()._sock_recv(READ_SIZE)
        if not data:
            return False
        self._read_buffer = data
        self._read_at = 0
        return True

    def _sock_recv(self, bufsize: int) -> bytes:
        if bufsize > MAX_PACKET:
            # paho asks for a packet's whole body at once, before it keeps any of it: here the
            # packet is forgotten and its bytes are skipped as they arrive.
            self._counters.oversized += 1
            self._discard = bufsize
            self._in_packet = _fresh_packet()  # type: ignore[assignment]
            raise BlockingIOError
        while self._discard:
            available = len(self._read_buffer) - self._read_at
            if not available:
                if not self._refill():
                    return b""
                continue
            skipped = min(available, self._discard)
            self._read_at += skipped
            self._discard -= skipped
        if self._read_at >= len(self._read_buffer) and not self._refill():
            return b""
        start = self._read_at
        self._read_at = start + bufsize
        return self._read_buffer[start : start + bufsize]
