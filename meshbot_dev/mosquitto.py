"""Real Mosquitto brokers for tests and benchmarks, and TCP peers that misbehave on purpose."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
import socket
import subprocess
import tempfile
import time

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")
INSTALL_HINT = "Mosquitto is missing: run script/setup (it runs `apt-get install mosquitto`)."


def find_executable(name: str, *extra: str) -> str:
    """Return the path of `name`, or fail with the way to install it."""
    for candidate in (name, *extra):
        if path := shutil.which(candidate):
            return path
    raise RuntimeError(INSTALL_HINT)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@dataclass
class TlsFiles:
    """A private CA and a server certificate for 127.0.0.1 and localhost."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """Generate a CA and a server certificate with trustme."""
    try:
        import trustme
    except ImportError as err:
        raise RuntimeError("trustme is missing: run script/setup") from err
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    authority.cert_pem.write_to_path(str(files.ca_cert))
    server.cert_chain_pems[0].write_to_path(str(files.server_cert))
    server.private_key_pem.write_to_path(str(files.server_key))
    return files


@dataclass
class MosquittoBroker:
    """A Mosquitto process on 127.0.0.1 that tests can kill and restart on the same port."""

    port: int = field(default_factory=free_port)
    tls: bool = False
    users: dict[str, str] = field(default_factory=dict)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="meshbot-mqtt-")))
    process: subprocess.Popen[bytes] | None = None
    tls_files: TlsFiles | None = None

    host = "127.0.0.1"

    def _write_config(self) -> Path:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            "log_dest none",
        ]
        if self.users:
            password_file = self.directory / "passwords"
            password_file.write_text("")
            passwd = find_executable("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
            for user, password in self.users.items():
                subprocess.run(
                    [passwd, "-b", str(password_file), user, password],
                    check=True,
                    timeout=10,
                )
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            self.tls_files = self.tls_files or make_tls_files(self.directory)
            lines += [
                f"cafile {self.tls_files.ca_cert}",
                f"certfile {self.tls_files.server_cert}",
                f"keyfile {self.tls_files.server_key}",
            ]
        config = self.directory / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        # Started as root, Mosquitto drops to its own user, which must still read these files.
        self.directory.chmod(0o755)
        for path in self.directory.iterdir():
            path.chmod(0o644)
        return config

    def start(self) -> MosquittoBroker:
        """Start the broker and wait until it accepts connections."""
        executable = find_executable(*MOSQUITTO_CANDIDATES)
        config = self._write_config()
        self.process = subprocess.Popen(
            [executable, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port)
        except OSError as err:
            error = self.process.stderr.read().decode() if self.process.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {error}") from err
        return self

    def stop(self) -> None:
        """Kill the broker process (a real, abrupt fault for connected clients)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None

    def restart(self) -> None:
        """Start the broker again on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the broker and remove its files."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class SilentListener:
    """Accept TCP connections (the kernel completes them) and never send a byte."""

    def __init__(self) -> None:
        """Listen on a free port with room for many unanswered connections."""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        """Stop listening."""
        self.sock.close()


class HangingListener:
    """A listener whose backlog is full, so new connects hang without an answer."""

    def __init__(self) -> None:
        """Listen with a backlog of one and fill it; later SYNs are silently dropped."""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port: int = self.sock.getsockname()[1]
        self._fillers: list[socket.socket] = []
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)
        time.sleep(0.05)

    def close(self) -> None:
        """Release every socket."""
        for filler in self._fillers:
            filler.close()
        self.sock.close()


def refused_port() -> int:
    """Return a port where connections are refused at once."""
    return free_port()


UNRESOLVABLE_HOST = "meshbot-test.invalid"


def environment_ready() -> str | None:
    """Return why brokers cannot start here, or None."""
    try:
        find_executable(*MOSQUITTO_CANDIDATES)
    except RuntimeError as err:
        return str(err)
    return None if os.name == "posix" else "brokers need a POSIX machine"


def publish_many(
    broker: MosquittoBroker, messages: list[tuple[str, bytes]], interval: float = 0.0
) -> None:
    """Publish messages in order with paho, an MQTT implementation independent of ours.

    `interval` spaces them out in time, as a live feed sends them.
    """
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    if broker.users:
        client.username_pw_set(*next(iter(broker.users.items())))
    if broker.tls and broker.tls_files is not None:
        client.tls_set(ca_certs=str(broker.tls_files.ca_cert))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = []
        for topic, payload in messages:
            infos.append(client.publish(topic, payload, qos=1))
            if interval:
                time.sleep(interval)
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
