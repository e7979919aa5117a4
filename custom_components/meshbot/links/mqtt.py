"""MQTT for both collectors (Meshtastic and Blitzortung) through paho-mqtt, on the event loop.

Driven as Home Assistant's own MQTT integration drives paho (`components/mqtt/client.py`): paho's
blocking part of the connect (TLS handshake, CONNECT) runs in the executor, bounded by the
session's deadline; then the event loop reads and writes the socket through
`add_reader`/`add_writer` and calls paho's housekeeping (keepalive) once a second. paho runs no
thread of its own. The TCP connection itself is made by asyncio and handed to paho: unlike a
connect blocked in a thread, it ends the moment the session is cancelled. A TLS handshake that
is still running when the session gives up is woken, and closes its socket.

paho is imported when the first session starts (in the executor, unless Home Assistant's
import executor did it already, see lazy.MQTT_CLIENT), never with the integration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
import importlib
import logging
import socket
import ssl
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .counters import MqttCounters
from .errors import LinkAuthError, LinkError, LinkTimeoutError, LinkTlsError
from .supervisor import MarkUp

if TYPE_CHECKING:
    from .paho_client import LoopClient

_LOGGER = logging.getLogger(__name__)

PAHO_CLIENT = f"{__package__}.paho_client"
TOPICS_PER_SUBSCRIBE = 8
# paho's keepalive bookkeeping (pings, silent brokers) runs from this timer.
HOUSEKEEPING_SECONDS = 1.0
# Packets handled per wake-up before other callbacks get the loop: a backlog (after a garbage
# collection, say) must not hold it. A Meshtastic envelope costs up to ~150 µs inside a busy
# Home Assistant, decoding included: 32 of them stay near 5 ms.
PACKETS_PER_WAKEUP = 32

# Reason codes as paho reports them, in MQTT 5 numbering even for 3.1.1 answers.
AUTH_REFUSALS = {0x86, 0x87}  # bad user name or password, not authorized
KEEPALIVE_TIMEOUT = 0x8D

MessageHandler = Callable[[str, bytes], None]


@dataclass(frozen=True)
class MqttSettings:
    """Where and how to connect; the password never leaves this object."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = "meshbot"
    keepalive: int = 60
    connect_timeout: float = 10.0
    # Built lazily in the executor: loading CA files is blocking I/O.
    ssl_context_factory: Callable[[], ssl.SSLContext] | None = None
    # What the broker may deliver at: Meshtastic and Blitzortung publish at QoS 0.
    subscribe_qos: int = 0


def _client_module() -> Any:
    return sys.modules[PAHO_CLIENT]


class _Connect:
    """paho's part of a connect (TLS, CONNECT) in the executor; the session may walk away.

    Whoever comes second, the connect finishing or the session abandoning it, closes the socket:
    a late connect never leaves one open, nor does one that never got to run.
    """

    def __init__(self, client: LoopClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._started = False
        self._finished = False
        self._abandoned = False

    def run(self, host: str, port: int, keepalive: int) -> None:
        """Connect (in the executor); close what was opened if the session left meanwhile."""
        with self._lock:
            if self._abandoned:
                self.client.close_sockets()
                return
            self._started = True
        try:
            self.client.connect(host, port, keepalive)
        finally:
            with self._lock:
                self._finished = True
                abandoned = self._abandoned
            if abandoned:
                self.client.close_sockets()

    def abandon(self) -> None:
        """Give up on the connect (on the loop); close its socket, or wake it to close it."""
        with self._lock:
            self._abandoned = True
            running = self._started and not self._finished
        if running:
            self.client.interrupt()
        else:
            self.client.close_sockets()


async def _open_tcp(host: str, port: int) -> socket.socket:
    """Connect over TCP on the event loop: cancelling closes the socket at once."""
    loop = asyncio.get_running_loop()
    addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError | None = None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as err:
            sock.close()
            error = err
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error or OSError(f"{host} has no address")


class _Session:
    """One connection's callbacks, futures and loop registrations."""

    def __init__(self, link: MqttLink) -> None:
        settings = link.settings
        self.link = link
        self.client = client = _client_module().LoopClient(
            settings.client_id, link.counters, self._on_message
        )
        client.connect_timeout = settings.connect_timeout
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if link.ssl_context is not None:
            client.tls_set_context(link.ssl_context)
        self.loop = asyncio.get_running_loop()
        self.connack: asyncio.Future[Any] = self.loop.create_future()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        # Subscribe/unsubscribe message ids the broker has not acknowledged, with their topics.
        self.pending: dict[int, list[str]] = {}
        self.initial: set[int] = set()
        self.subscribed: asyncio.Future[None] = self.loop.create_future()
        self._socket: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._handler_error_logged = False
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe

    # Driving the socket from the loop.

    def attach(self) -> None:
        """Hand the connected socket to the event loop."""
        client = self.client
        sock = self._socket = client.socket()
        if sock is None:
            raise LinkError("the connection closed while it was made")
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self.loop.add_reader(sock, self._on_readable)
        if client.want_write():
            self.loop.add_writer(sock, self._on_writable)
        self._timer = self.loop.call_later(HOUSEKEEPING_SECONDS, self._housekeeping)
        # Bytes may have arrived with the CONNACK before the reader was registered.
        self._on_readable()

    def detach(self) -> None:
        """Stop driving the socket and close it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        client = self.client
        for name in (
            "on_socket_close",
            "on_socket_register_write",
            "on_socket_unregister_write",
            "on_connect",
            "on_disconnect",
            "on_subscribe",
            "on_unsubscribe",
        ):
            setattr(client, name, None)
        sock, self._socket = self._socket, None
        if sock is not None:
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)
        client.close_sockets()
        for future in (self.connack, self.closed, self.subscribed):
            if not future.done():
                future.cancel()

    def _on_readable(self) -> None:
        if self._socket is None:
            # Scheduled for buffered bytes, and the connection ended meanwhile.
            return
        client = self.client
        for _ in range(PACKETS_PER_WAKEUP):
            if client.loop_read():
                # paho closed the socket and said why through on_disconnect.
                self._end(LinkError("the connection was lost"))
                return
            if not client.buffered:
                return
        # Read but unhandled bytes raise no readiness: come back at the next loop iteration.
        self.loop.call_soon(self._on_readable)

    def _on_writable(self) -> None:
        self.client.loop_write()

    def _on_register_write(self, _client: Any, _userdata: Any, sock: Any) -> None:
        self.loop.add_writer(sock, self._on_writable)

    def _on_unregister_write(self, _client: Any, _userdata: Any, sock: Any) -> None:
        self.loop.remove_writer(sock)

    def _on_socket_close(self, _client: Any, _userdata: Any, sock: Any) -> None:
        self.loop.remove_reader(sock)
        self.loop.remove_writer(sock)
        self._socket = None

    def _housekeeping(self) -> None:
        self._timer = None
        self.client.loop_misc()
        if not self.closed.done():
            self._timer = self.loop.call_later(HOUSEKEEPING_SECONDS, self._housekeeping)

    def _end(self, error: LinkError) -> None:
        for future in (self.connack, self.subscribed):
            if not future.done():
                future.set_exception(error)
                future.exception()
        if not self.closed.done():
            self.closed.set_exception(error)
            self.closed.exception()

    # paho's callbacks, all on the loop.

    def _on_connect(
        self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if not self.connack.done():
            self.connack.set_result(reason)

    def _on_disconnect(
        self, _client: Any, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.value == KEEPALIVE_TIMEOUT:
            keepalive = self.link.settings.keepalive
            self._end(LinkTimeoutError(f"the broker went silent for {keepalive * 2:g} s"))
        elif flags.is_disconnect_packet_from_server:
            self._end(LinkError(f"the broker disconnected: {reason}"))
        else:
            self._end(LinkError("the broker closed the connection"))

    def _on_message(self, raw_topic: bytes, payload: bytes) -> None:
        counters = self.link.counters
        try:
            topic = raw_topic.decode()
        except UnicodeDecodeError:
            counters.bad_topics += 1
            return
        counters.messages += 1
        link = self.link
        link.last_message_at = time.time()
        try:
            link.on_message(topic, payload)
        except Exception:
            # The handler's bug must not cost the connection; say it once per session.
            counters.handler_errors += 1
            if not self._handler_error_logged:
                self._handler_error_logged = True
                _LOGGER.exception("Message handler failed on topic %s", topic)

    def _on_subscribe(
        self, _client: Any, _userdata: Any, mid: int, reasons: Any, _props: Any
    ) -> None:
        topics = self.pending.pop(mid, [])
        link = self.link
        for topic, reason in zip(topics, reasons, strict=False):
            if reason.is_failure and topic not in link.rejected_filters:
                link.rejected_filters.add(topic)
                _LOGGER.warning("%s refused the subscription to %s", link.describe(), topic)
        self.initial.discard(mid)
        if not self.initial and not self.subscribed.done():
            self.subscribed.set_result(None)

    def _on_unsubscribe(
        self, _client: Any, _userdata: Any, mid: int, _reasons: Any, _props: Any
    ) -> None:
        self.pending.pop(mid, None)

    # Requests.

    def send_filters(self, subscribe: bool, filters: Iterable[str]) -> list[int]:
        """Subscribe or unsubscribe `filters`, a few per packet; return the message ids."""
        ordered = sorted(filters)
        qos = self.link.settings.subscribe_qos
        mids = []
        for start in range(0, len(ordered), TOPICS_PER_SUBSCRIBE):
            chunk = ordered[start : start + TOPICS_PER_SUBSCRIBE]
            if subscribe:
                _, mid = self.client.subscribe([(topic, qos) for topic in chunk])
            else:
                _, mid = self.client.unsubscribe(chunk)
            if mid is not None:
                self.pending[mid] = chunk
                mids.append(mid)
        return mids


class MqttLink:
    """One broker connection, kept subscribed to a changing set of topic filters."""

    def __init__(self, settings: MqttSettings, on_message: MessageHandler) -> None:
        """Connect with `settings` and deliver every message to `on_message`."""
        self.settings = settings
        self.counters = MqttCounters()
        self.last_message_at: float | None = None
        self.rejected_filters: set[str] = set()
        self.on_message = on_message
        self._filters: set[str] = set()
        self._session: _Session | None = None
        self.ssl_context: ssl.SSLContext | None = None

    def describe(self) -> str:
        """Return the broker address, never the credentials."""
        scheme = "mqtts" if self.settings.ssl_context_factory else "mqtt"
        return f"{scheme}://{self.settings.host}:{self.settings.port}"

    @property
    def connected(self) -> bool:
        """Return whether a session is up."""
        return self._session is not None

    @property
    def filters(self) -> frozenset[str]:
        """Return the topic filters the link keeps subscribed."""
        return frozenset(self._filters)

    @property
    def awaiting_acknowledgement(self) -> int:
        """Return how many (un)subscribe requests of this session the broker has not answered."""
        session = self._session
        return len(session.pending) if session is not None else 0

    def set_filters(self, filters: Iterable[str]) -> None:
        """Subscribe to `filters`; on a live connection only the difference is sent."""
        wanted = set(filters)
        added, removed = wanted - self._filters, self._filters - wanted
        self._filters = wanted
        self.rejected_filters -= removed
        if (session := self._session) is not None:
            if added:
                session.send_filters(True, added)
            if removed:
                session.send_filters(False, removed)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 0; raise LinkError when not connected."""
        if self._session is None:
            raise LinkError("not connected")
        self._session.client.publish(topic, payload, qos=0, retain=retain)

    async def _prepare(self) -> None:
        loop = asyncio.get_running_loop()
        if PAHO_CLIENT not in sys.modules:
            # Normally imported already by Home Assistant's import executor.
            await loop.run_in_executor(None, importlib.import_module, PAHO_CLIENT)
        factory = self.settings.ssl_context_factory
        if factory is not None and self.ssl_context is None:
            try:
                self.ssl_context = await loop.run_in_executor(None, factory)
            except (OSError, ssl.SSLError) as err:
                raise LinkTlsError(f"cannot load the TLS settings: {err}") from err

    async def _connect(self) -> _Session:
        """Connect and wait for the CONNACK; the caller bounds the time."""
        settings = self.settings
        session = _Session(self)
        session.client.use_connection(await _open_tcp(settings.host, settings.port))
        attempt = _Connect(session.client)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                None,
                attempt.run,
                settings.host,
                settings.port,
                settings.keepalive,
            )
        except BaseException:
            attempt.abandon()
            raise
        try:
            session.attach()
            reason = await session.connack
        except BaseException:
            session.detach()
            raise
        if reason.is_failure:
            session.detach()
            error = LinkAuthError if reason.value in AUTH_REFUSALS else LinkError
            raise error(f"the broker refused the connection: {reason}")
        return session

    async def session(self, mark_up: MarkUp) -> None:
        """Connect, subscribe, and serve until the connection ends or goes silent."""
        settings = self.settings
        await self._prepare()
        session: _Session | None = None
        try:
            try:
                async with asyncio.timeout(settings.connect_timeout):
                    session = await self._connect()
                    self._session = session
                    session.initial.update(session.send_filters(True, self._filters))
                    if session.initial:
                        # Up once the broker has answered the subscriptions: messages flow then.
                        await session.subscribed
            except TimeoutError as err:
                answer = "CONNACK" if session is None else "SUBACK"
                raise LinkTimeoutError(
                    f"no {answer} within {settings.connect_timeout:g} s"
                ) from err
            except ssl.SSLCertVerificationError as err:
                raise LinkTlsError(f"TLS certificate rejected: {err.verify_message}") from err
            except ssl.SSLError as err:
                raise LinkTlsError(f"TLS handshake failed: {err.reason or err}") from err
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as err:
                if settings.ssl_context_factory is None:
                    raise LinkError(err.strerror or str(err)) from err
                # Connected, then dropped during the handshake: a plain MQTT port hangs up on
                # a TLS hello.
                raise LinkTlsError(
                    "the broker hung up during the TLS handshake: is this port for TLS?"
                ) from err
            except OSError as err:
                raise LinkError(err.strerror or str(err)) from err
            mark_up()
            await session.closed
        except asyncio.CancelledError:
            if session is not None and session.client.socket() is not None:
                # A polite goodbye if the socket takes it at once; closed either way.
                session.client.on_socket_register_write = None
                session.client.disconnect()
                session.client.loop_write()
            raise
        finally:
            self._session = None
            if session is not None:
                session.detach()
