"""Fixtures for meshbot tests: real Mosquitto brokers, a fake Meshtastic node, faults."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from datetime import timedelta
from http import HTTPStatus
import logging
import platform
import socket
from typing import Any
from unittest.mock import patch

import freezegun.api
from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component import plugins as harness_plugins
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

# Imported before the harness puts its own test config folder first on sys.path; without this,
# Home Assistant finds the harness's custom_components instead of ours.
import custom_components.meshbot  # noqa: F401
from custom_components.meshbot.const import LinkKind
from meshbot_dev.entries import MESH_PASSWORD, MESH_USER, broker_section, entry_for, radio_section
from meshbot_dev.fake_node import FakeNode
from meshbot_dev.mosquitto import (
    HangingListener,
    MosquittoBroker,
    SilentListener,
    environment_ready,
)

from .support.deprecations import DeprecationReports
from .support.seen import NOW, Diagnostics


def pytest_configure(config: pytest.Config) -> None:
    """Fail the run at once, with the fix, when the real parts are missing."""
    if problem := environment_ready():
        raise pytest.UsageError(problem)


def pytest_report_header(config: pytest.Config) -> str:
    """Say which Home Assistant the run tests against."""
    return f"Home Assistant {HA_VERSION} on Python {platform.python_version()}"


@pytest.fixture(autouse=True)
def fail_on_deprecation_reports(request: pytest.FixtureRequest) -> Generator[None]:
    """Fail a test during which Home Assistant reports meshbot using a deprecated API."""
    if request.node.get_closest_marker("deprecation_reports_expected"):
        yield
        return
    reports = DeprecationReports()
    root = logging.getLogger()
    root.addHandler(reports)
    try:
        yield
    finally:
        root.removeHandler(reports)
    if reports.reports:
        pytest.fail(
            "Home Assistant reported deprecated use by meshbot:\n" + "\n".join(reports.reports)
        )


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load meshbot from custom_components."""


@pytest.fixture(autouse=True)
def fast_backoff() -> Generator[None]:
    """Reconnect within a fraction of a second so tests do not wait for real back-off."""
    fast = {kind: (0.05, 0.2) for kind in LinkKind}
    with patch("custom_components.meshbot.coordinator.BACKOFF", fast):
        yield


@pytest.fixture
def name_resolution(socket_enabled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve host names with the machine's resolver, as on a user's Home Assistant.

    Newer harnesses (0.13.375) refuse every name but localhost with a RuntimeError that no real
    resolver raises; the names the tests cannot resolve end in .invalid (RFC 2606), which a real
    resolver always refuses.
    """
    if (real := getattr(harness_plugins, "_real_getaddrinfo", None)) is not None:
        monkeypatch.setattr(socket, "getaddrinfo", real)


@pytest.fixture
def broker(socket_enabled: None) -> Generator[MosquittoBroker]:
    """Run a plain anonymous Mosquitto broker."""
    instance = MosquittoBroker().start()
    yield instance
    instance.close()


@pytest.fixture
def auth_broker(socket_enabled: None) -> Generator[MosquittoBroker]:
    """Run a Mosquitto broker that requires a username and password."""
    instance = MosquittoBroker(users={MESH_USER: MESH_PASSWORD}).start()
    yield instance
    instance.close()


@pytest.fixture
def tls_broker(socket_enabled: None) -> Generator[MosquittoBroker]:
    """Run a Mosquitto broker with TLS (a generated CA) and a password file."""
    instance = MosquittoBroker(tls=True, users={MESH_USER: MESH_PASSWORD}).start()
    yield instance
    instance.close()


@pytest.fixture
async def fake_node(socket_enabled: None) -> AsyncGenerator[FakeNode]:
    """Run a fake Meshtastic node on 127.0.0.1."""
    node = FakeNode()
    await node.start_tcp()
    yield node
    await node.stop()


@pytest.fixture
async def serial_node() -> AsyncGenerator[FakeNode]:
    """Run a fake Meshtastic node behind a pseudo-terminal, as a USB serial radio."""
    node = FakeNode()
    node.behaviour.debug_text = True
    node.start_pty()
    yield node
    await node.stop()


@pytest.fixture
def silent_listener(socket_enabled: None) -> Generator[SilentListener]:
    """Accept connections and never answer."""
    listener = SilentListener()
    yield listener
    listener.close()


@pytest.fixture
def hanging_listener(socket_enabled: None) -> Generator[HangingListener]:
    """Make connects hang: the listener's backlog is full."""
    listener = HangingListener()
    yield listener
    listener.close()


@pytest.fixture
def mock_config_entry(fake_node: FakeNode, broker: MosquittoBroker) -> MockConfigEntry:
    """Return an entry with all three links pointing at live fakes."""
    return entry_for(
        radio=radio_section(fake_node.port),
        mesh=broker_section(broker.port),
        lightning=broker_section(broker.port),
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> MockConfigEntry:
    """Set up meshbot with the mock entry."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    return mock_config_entry


@pytest.fixture
async def diagnostics(
    hass: HomeAssistant, hass_client: Any, hass_admin_user: MockUser
) -> Diagnostics:
    """Return a reader of an entry's diagnostics, downloaded as a user does, over one client.

    The client signs in with a long-lived token made at the first download, so that a test that
    moves the clock (by hours, past a normal token's half hour) keeps a valid one.
    """
    assert await async_setup_component(hass, "diagnostics", {})
    clients: list[Any] = []

    async def read(entry: ConfigEntry) -> dict[str, Any]:
        if not clients:
            refresh_token = await hass.auth.async_create_refresh_token(
                hass_admin_user,
                client_name="meshbot tests",
                token_type=TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN,
                access_token_expiration=timedelta(days=3650),
            )
            clients.append(await hass_client(hass.auth.async_create_access_token(refresh_token)))
        response = await clients[0].get(f"/api/diagnostics/config_entry/{entry.entry_id}")
        assert response.status == HTTPStatus.OK
        return dict((await response.json())["data"])

    return read


@pytest.fixture
def frozen(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, freezer: FrozenDateTimeFactory
) -> FrozenDateTimeFactory:
    """Hold the wall clock at NOW for the test to move; the event loop keeps real time.

    With the loop's clock frozen too, no timer would ever fire: not the waits, not the sockets'.
    The real clock is read from freezegun's module: freezegun swaps every other module's
    reference to it for the frozen one.
    """
    monkeypatch.setattr(hass.loop, "time", freezegun.api.real_monotonic)
    freezer.move_to(NOW)
    return freezer


@pytest.fixture
async def ble_node() -> AsyncGenerator[FakeNode]:
    """Serve a fake Meshtastic node's GATT service to meshbot's Bluetooth transport.

    No Bluetooth exists here: bleak-retry-connector's `establish_connection` is the one thing
    replaced, and it hands over the node's fake bleak client.
    """
    node = FakeNode()
    with patch(
        "custom_components.meshbot.links.ble.establish_connection", node.establish_connection
    ):
        yield node
    await node.stop()
