"""Tests for the meshbot config, options, reconfigure and reauthentication flows.

Every link is checked against a real peer: Mosquitto brokers, a fake Meshtastic node over TCP
and over a pseudo-terminal, and TCP listeners that refuse, stay silent or hang.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncGenerator, Callable
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import (
    SOURCE_BLUETOOTH,
    SOURCE_REAUTH,
    SOURCE_USB,
    SOURCE_USER,
    SOURCE_ZEROCONF,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.const import (
    CONF_ADDRESS,
    CONF_HOST,
    CONF_LATITUDE,
    CONF_LONGITUDE,
    CONF_PASSWORD,
    CONF_PIN,
    CONF_PORT,
    CONF_USERNAME,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.meshbot.const import (
    CONF_CA_CERT,
    CONF_CHANNEL_KEYS,
    CONF_CONNECTION,
    CONF_DEVICE,
    CONF_FOLLOW_ENTITY,
    CONF_LIGHTNING,
    CONF_LOCATION,
    CONF_LOCATION_MODE,
    CONF_MESH,
    CONF_MESH_TOPICS,
    CONF_RADIO,
    CONF_RADIUS_KM,
    CONF_TLS,
    CONF_VERIFY_TLS,
    CONNECTION_BLUETOOTH,
    CONNECTION_SERIAL,
    CONNECTION_TCP,
    DEFAULT_RADIO_PORT,
    DOMAIN,
    LOCATION_ENTITY,
    LOCATION_FIXED,
    LOCATION_HOME,
    VALIDATION_TIMEOUT,
    LinkKind,
)
from custom_components.meshbot.links.ble import SERVICE_UUID
from custom_components.meshbot.settings import mesh_filters
from meshbot_dev.entries import (
    MESH_PASSWORD,
    MESH_USER,
    bluetooth_section,
    broker_section,
    entry_for,
    radio_section,
)
from meshbot_dev.fake_node import FakeNode
from meshbot_dev.mosquitto import UNRESOLVABLE_HOST, MosquittoBroker, refused_port

from .support.bluetooth import inject, service_info

TIMEOUT_TARGET = "custom_components.meshbot.flows.base.VALIDATION_TIMEOUT"
SERIAL_BY_ID_TARGET = "custom_components.meshbot.flows.radio.SERIAL_BY_ID"
SHORT_TIMEOUT = 0.5
LOCALHOST = "127.0.0.1"
SECOND_NODE_NUM = 0x55667788
POLL_INTERVAL = 0.02


def b64(size: int) -> str:
    """Return a base64 channel key of `size` bytes."""
    return base64.b64encode(bytes(range(1, size + 1))).decode()


# Flow helpers


async def start_user_flow(hass: HomeAssistant) -> ConfigFlowResult:
    """Open the config flow as a user would from the integrations page."""
    return await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})


async def choose(hass: HomeAssistant, result: ConfigFlowResult, step: str) -> ConfigFlowResult:
    """Pick a menu option."""
    return await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": step})


async def submit(
    hass: HomeAssistant, result: ConfigFlowResult, user_input: dict[str, Any]
) -> ConfigFlowResult:
    """Submit a form of the config flow."""
    return await hass.config_entries.flow.async_configure(result["flow_id"], user_input)


async def finish(hass: HomeAssistant, result: ConfigFlowResult) -> ConfigEntry:
    """Pick `finish` and return the created entry once it has been set up."""
    result = await choose(hass, result, "finish")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def unload(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Unload an entry the test set up and check that it went away cleanly."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


def suggested(result: ConfigFlowResult, field: str) -> Any:
    """Return the value a form shows pre-filled in `field`."""
    for key in result["data_schema"].schema:
        if key == field:
            return (key.description or {}).get("suggested_value")
    raise AssertionError(f"the form has no field {field}")


async def shown_description(
    hass: HomeAssistant, result: ConfigFlowResult, language: str = "en"
) -> str:
    """Return a step's description as the frontend shows it: translated, placeholders filled."""
    translations = await async_get_translations(hass, language, "config", [DOMAIN])
    text = translations[f"component.{DOMAIN}.config.step.{result['step_id']}.description"]
    return text.format(**(result["description_placeholders"] or {}))


def form_fields(result: ConfigFlowResult) -> set[str]:
    """Return the names of a form's fields."""
    return {str(key) for key in result["data_schema"].schema}


async def wait_for(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Poll `predicate` until it holds; fail after about `within` seconds."""
    for _ in range(int(within / POLL_INTERVAL)):
        if predicate():
            return
        await asyncio.sleep(POLL_INTERVAL)
    raise AssertionError(f"still not true after {within:g} s")


def radio_input(port: int, host: str = LOCALHOST) -> dict[str, Any]:
    """Return what a user types in the radio over TCP form."""
    return {CONF_HOST: host, CONF_PORT: port}


def mesh_input(
    port: int,
    topics: str = "msh/US",
    keys: str = "LongFast = AQ==",
    **extra: Any,
) -> dict[str, Any]:
    """Return what a user types in the mesh broker form."""
    return {
        CONF_HOST: LOCALHOST,
        CONF_PORT: port,
        CONF_MESH_TOPICS: topics,
        CONF_CHANNEL_KEYS: keys,
        **extra,
    }


def lightning_input(port: int, mode: str = LOCATION_HOME, radius: float = 50) -> dict[str, Any]:
    """Return what a user types in the lightning form."""
    return {
        CONF_LOCATION_MODE: mode,
        CONF_RADIUS_KM: radius,
        CONF_HOST: LOCALHOST,
        CONF_PORT: port,
    }


def connectivity_state(hass: HomeAssistant, entry: ConfigEntry, kind: LinkKind) -> str | None:
    """Return the state of a link's connectivity sensor."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "binary_sensor", DOMAIN, f"{entry.entry_id}_{kind}_connectivity"
    )
    state = hass.states.get(entity_id) if entity_id else None
    return state.state if state else None


# Fixtures


@pytest.fixture(autouse=True)
async def unload_leftover_entries(hass: HomeAssistant) -> AsyncGenerator[None]:
    """Unload entries a failing test left loaded, so one failure does not cascade."""
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
async def silent_node(socket_enabled: None) -> AsyncGenerator[FakeNode]:
    """Run a fake node that accepts the connection but never answers the handshake."""
    node = FakeNode()
    node.behaviour.answer_handshake = False
    await node.start_tcp()
    yield node
    await node.stop()


@pytest.fixture
async def second_node(socket_enabled: None) -> AsyncGenerator[FakeNode]:
    """Run a second fake node with its own node number."""
    node = FakeNode(node_num=SECOND_NODE_NUM)
    await node.start_tcp()
    yield node
    await node.stop()


FAULTS: dict[str, Callable[[pytest.FixtureRequest], tuple[str, int]]] = {
    "refused": lambda request: (LOCALHOST, refused_port()),
    "unresolvable": lambda request: (UNRESOLVABLE_HOST, DEFAULT_RADIO_PORT),
    "silent_listener": lambda request: (LOCALHOST, request.getfixturevalue("silent_listener").port),
    "silent_node": lambda request: (LOCALHOST, request.getfixturevalue("silent_node").port),
    "hanging_listener": lambda request: (
        LOCALHOST,
        request.getfixturevalue("hanging_listener").port,
    ),
}


@pytest.fixture
def fault_address(request: pytest.FixtureRequest, name_resolution: None) -> tuple[str, int]:
    """Return the host and port of a misbehaving peer named by the parameter."""
    return FAULTS[request.param](request)


# The user menu


async def test_menu_offers_links_until_configured_and_finish_once_one_exists(
    hass: HomeAssistant, fake_node: FakeNode, broker: MosquittoBroker
) -> None:
    result = await start_user_flow(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert result["menu_options"] == [
        "radio_tcp",
        "radio_serial",
        "radio_bluetooth",
        "mesh",
        "lightning",
    ]
    assert await shown_description(hass, result) == (
        "Add a first link; you can add more before you finish."
    )

    result = await choose(hass, result, "radio_tcp")
    result = await submit(hass, result, radio_input(fake_node.port))
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "add_links"
    assert result["menu_options"] == ["mesh", "lightning", "finish"]
    assert await shown_description(hass, result) == (
        "Add another link, or finish. Configured so far: radio."
    )
    assert await shown_description(hass, result, "fr") == (
        "Ajoutez un autre lien, ou terminez. Déjà configurés : radio."
    )

    result = await choose(hass, result, "mesh")
    result = await submit(hass, result, mesh_input(broker.port))
    assert result["menu_options"] == ["lightning", "finish"]
    assert result["description_placeholders"] == {"configured": "radio, mesh"}

    result = await choose(hass, result, "lightning")
    result = await submit(hass, result, lightning_input(broker.port))
    assert result["menu_options"] == ["finish"]
    assert result["description_placeholders"] == {"configured": "radio, mesh, lightning"}

    entry = await finish(hass, result)
    assert entry.title == "meshbot: radio 127.0.0.1, mesh 127.0.0.1, lightning"
    assert set(entry.data) == {CONF_RADIO, CONF_MESH, CONF_LIGHTNING}
    await unload(hass, entry)


async def test_finish_is_refused_before_any_link(hass: HomeAssistant) -> None:
    result = await start_user_flow(hass)
    with pytest.raises(InvalidData):
        await choose(hass, result, "finish")
    assert hass.config_entries.async_entries(DOMAIN) == []


# Radio


async def test_radio_tcp_creates_entry_with_node_number(
    hass: HomeAssistant, fake_node: FakeNode
) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "radio_tcp")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "radio_tcp"
    assert result["errors"] == {}

    result = await submit(hass, result, radio_input(fake_node.port))
    entry = await finish(hass, result)

    assert entry.title == "meshbot: radio 127.0.0.1"
    assert entry.data == {
        CONF_RADIO: {
            CONF_CONNECTION: CONNECTION_TCP,
            CONF_HOST: LOCALHOST,
            CONF_PORT: fake_node.port,
            "node_num": fake_node.node_num,
        }
    }
    assert isinstance(entry.data[CONF_RADIO][CONF_PORT], int)
    assert entry.options == {}
    await wait_for(lambda: connectivity_state(hass, entry, LinkKind.RADIO) == "on")
    await unload(hass, entry)


@pytest.mark.parametrize(
    ("fault_address", "validation_timeout", "error"),
    [
        ("refused", VALIDATION_TIMEOUT, "cannot_connect"),
        ("unresolvable", VALIDATION_TIMEOUT, "cannot_connect"),
        ("silent_listener", SHORT_TIMEOUT, "timeout_connect"),
        ("silent_node", SHORT_TIMEOUT, "timeout_connect"),
        ("hanging_listener", SHORT_TIMEOUT, "timeout_connect"),
    ],
    indirect=["fault_address"],
)
async def test_radio_tcp_error_then_recovery(
    hass: HomeAssistant,
    fake_node: FakeNode,
    fault_address: tuple[str, int],
    validation_timeout: float,
    error: str,
) -> None:
    host, port = fault_address
    result = await start_user_flow(hass)
    result = await choose(hass, result, "radio_tcp")
    with patch(TIMEOUT_TARGET, validation_timeout):
        result = await submit(hass, result, radio_input(port, host))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "radio_tcp"
    assert result["errors"] == {"base": error}
    # The form keeps what the user typed so it can be corrected.
    assert suggested(result, CONF_HOST) == host
    assert suggested(result, CONF_PORT) == port

    result = await submit(hass, result, radio_input(fake_node.port))
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["mesh", "lightning", "finish"]


async def test_radio_serial_through_pty(hass: HomeAssistant, serial_node: FakeNode) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "radio_serial")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "radio_serial"

    result = await submit(hass, result, {CONF_DEVICE: "/dev/meshbot-no-such-port"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert suggested(result, CONF_DEVICE) == "/dev/meshbot-no-such-port"

    result = await submit(hass, result, {CONF_DEVICE: serial_node.device})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["mesh", "lightning", "finish"]

    entry = await finish(hass, result)
    assert entry.data == {
        CONF_RADIO: {
            CONF_CONNECTION: CONNECTION_SERIAL,
            CONF_DEVICE: serial_node.device,
            "node_num": serial_node.node_num,
        }
    }
    assert entry.title == f"meshbot: radio {serial_node.device.rsplit('/', 1)[-1]}"
    await wait_for(lambda: connectivity_state(hass, entry, LinkKind.RADIO) == "on")
    await unload(hass, entry)


# Mesh collector


async def test_mesh_form_suggests_public_broker_defaults(hass: HomeAssistant) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "mesh")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "mesh"
    assert suggested(result, CONF_MESH_TOPICS) == "msh/US"
    assert suggested(result, CONF_CHANNEL_KEYS) == "LongFast = AQ=="
    assert suggested(result, CONF_USERNAME) == "meshdev"


@pytest.mark.parametrize(
    ("topics", "keys", "expected_topics", "expected_keys"),
    [
        ("msh/US", "LongFast = AQ==", ["msh/US"], {"LongFast": "AQ=="}),
        (
            "msh/US, msh/EU_868\n/msh/EU_868/DE/ \n\nmsh/US",
            f"LongFast = AQ==\n# my own channel\nPrivate = {b64(32)}\n",
            ["msh/US", "msh/EU_868", "msh/EU_868/DE"],
            {"LongFast": "AQ==", "Private": b64(32)},
        ),
        (
            "msh/ANZ",
            f"Short = {b64(16)}\nHex = {bytes(range(1, 33)).hex()}",
            ["msh/ANZ"],
            {
                "Short": b64(16),
                "Hex": b64(32),
            },
        ),
        ("msh/US", "", ["msh/US"], {}),
    ],
    ids=["defaults", "lines-and-commas", "16-byte-and-hex-keys", "no-keys"],
)
async def test_mesh_creates_entry_with_topics_and_keys_in_options(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    topics: str,
    keys: str,
    expected_topics: list[str],
    expected_keys: dict[str, str],
) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "mesh")
    result = await submit(hass, result, mesh_input(broker.port, topics, keys))
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == [
        "radio_tcp",
        "radio_serial",
        "radio_bluetooth",
        "lightning",
        "finish",
    ]

    entry = await finish(hass, result)
    assert entry.title == "meshbot: mesh 127.0.0.1"
    assert entry.data == {CONF_MESH: broker_section(broker.port)}
    assert entry.options == {
        CONF_MESH_TOPICS: expected_topics,
        CONF_CHANNEL_KEYS: expected_keys,
    }
    await wait_for(lambda: connectivity_state(hass, entry, LinkKind.MESH) == "on")
    await unload(hass, entry)


@pytest.mark.parametrize(
    ("topics", "keys", "errors"),
    [
        ("msh/+/e", "LongFast = AQ==", {CONF_MESH_TOPICS: "invalid_topic"}),
        ("msh/#", "LongFast = AQ==", {CONF_MESH_TOPICS: "invalid_topic"}),
        ("msh//US", "LongFast = AQ==", {CONF_MESH_TOPICS: "invalid_topic"}),
        (" , \n /", "LongFast = AQ==", {CONF_MESH_TOPICS: "invalid_topic"}),
        ("", "LongFast = AQ==", {CONF_MESH_TOPICS: "invalid_topic"}),
        ("msh/US", "LongFast = not*base64", {CONF_CHANNEL_KEYS: "invalid_channel_key"}),
        ("msh/US", f"LongFast = {b64(33)}", {CONF_CHANNEL_KEYS: "invalid_channel_key"}),
        ("msh/US", "LongFast AQ==", {CONF_CHANNEL_KEYS: "invalid_channel_key"}),
        ("msh/US", "LongFast =", {CONF_CHANNEL_KEYS: "invalid_channel_key"}),
        ("msh/US", "TwelveBytes! = AQ==", {CONF_CHANNEL_KEYS: "invalid_channel_key"}),
        (
            "msh/#",
            "LongFast = ???",
            {CONF_MESH_TOPICS: "invalid_topic", CONF_CHANNEL_KEYS: "invalid_channel_key"},
        ),
    ],
    ids=[
        "plus-wildcard",
        "hash-wildcard",
        "empty-level",
        "only-separators",
        "empty",
        "not-base64",
        "33-byte-key",
        "no-equals",
        "no-key",
        "long-name",
        "both",
    ],
)
async def test_mesh_field_errors_then_recovery(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    topics: str,
    keys: str,
    errors: dict[str, str],
) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "mesh")
    result = await submit(hass, result, mesh_input(broker.port, topics, keys))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "mesh"
    assert result["errors"] == errors
    assert suggested(result, CONF_CHANNEL_KEYS) == keys

    result = await submit(hass, result, mesh_input(broker.port))
    assert result["type"] is FlowResultType.MENU
    assert result["description_placeholders"] == {"configured": "mesh"}


@pytest.mark.parametrize(
    "credentials",
    [
        {CONF_USERNAME: MESH_USER, CONF_PASSWORD: "wrong password"},
        {CONF_USERNAME: "nobody", CONF_PASSWORD: MESH_PASSWORD},
        {CONF_USERNAME: MESH_USER},
        {},
    ],
    ids=["wrong-password", "unknown-user", "no-password", "anonymous"],
)
async def test_mesh_invalid_auth_then_right_credentials(
    hass: HomeAssistant, auth_broker: MosquittoBroker, credentials: dict[str, str]
) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "mesh")
    result = await submit(hass, result, mesh_input(auth_broker.port, **credentials))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}

    good = {CONF_USERNAME: MESH_USER, CONF_PASSWORD: MESH_PASSWORD}
    result = await submit(hass, result, mesh_input(auth_broker.port, **good))
    assert result["type"] is FlowResultType.MENU

    entry = await finish(hass, result)
    assert entry.data[CONF_MESH] == broker_section(auth_broker.port, **good)
    await wait_for(lambda: connectivity_state(hass, entry, LinkKind.MESH) == "on")
    await unload(hass, entry)


async def test_mesh_refused_broker_is_cannot_connect(
    hass: HomeAssistant, broker: MosquittoBroker
) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "mesh")
    result = await submit(hass, result, mesh_input(refused_port()))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}

    result = await submit(hass, result, mesh_input(broker.port))
    assert result["type"] is FlowResultType.MENU


async def test_mesh_silent_broker_is_timeout(
    hass: HomeAssistant, broker: MosquittoBroker, silent_listener: Any
) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "mesh")
    with patch(TIMEOUT_TARGET, SHORT_TIMEOUT):
        result = await submit(hass, result, mesh_input(silent_listener.port))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "timeout_connect"}

    result = await submit(hass, result, mesh_input(broker.port))
    assert result["type"] is FlowResultType.MENU


def tls_input(broker: MosquittoBroker, **extra: Any) -> dict[str, Any]:
    """Return the mesh form for the TLS broker with the right credentials."""
    return mesh_input(
        broker.port,
        **{CONF_USERNAME: MESH_USER, CONF_PASSWORD: MESH_PASSWORD, CONF_TLS: True, **extra},
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, "tls_error"),
        ({CONF_TLS: False}, "cannot_connect"),
    ],
    ids=["untrusted-ca", "plain-to-tls-port"],
)
async def test_mesh_tls_error_then_private_ca(
    hass: HomeAssistant, tls_broker: MosquittoBroker, fields: dict[str, Any], error: str
) -> None:
    assert tls_broker.tls_files is not None
    result = await start_user_flow(hass)
    result = await choose(hass, result, "mesh")
    result = await submit(hass, result, tls_input(tls_broker, **fields))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}

    ca_cert = str(tls_broker.tls_files.ca_cert)
    result = await submit(hass, result, tls_input(tls_broker, **{CONF_CA_CERT: ca_cert}))
    assert result["type"] is FlowResultType.MENU


@pytest.mark.parametrize(
    ("fields", "stored"),
    [
        (
            lambda ca: {CONF_CA_CERT: ca},
            lambda ca: {CONF_TLS: True, CONF_VERIFY_TLS: True, CONF_CA_CERT: ca},
        ),
        (
            lambda ca: {CONF_VERIFY_TLS: False},
            lambda ca: {CONF_TLS: True, CONF_VERIFY_TLS: False},
        ),
    ],
    ids=["private-ca", "no-verification"],
)
async def test_mesh_tls_success(
    hass: HomeAssistant,
    tls_broker: MosquittoBroker,
    fields: Callable[[str], dict[str, Any]],
    stored: Callable[[str], dict[str, Any]],
) -> None:
    assert tls_broker.tls_files is not None
    ca_cert = str(tls_broker.tls_files.ca_cert)

    result = await start_user_flow(hass)
    result = await choose(hass, result, "mesh")
    result = await submit(hass, result, tls_input(tls_broker, **fields(ca_cert)))
    assert result["type"] is FlowResultType.MENU

    entry = await finish(hass, result)
    assert entry.data[CONF_MESH] == {
        CONF_HOST: LOCALHOST,
        CONF_PORT: tls_broker.port,
        CONF_USERNAME: MESH_USER,
        CONF_PASSWORD: MESH_PASSWORD,
        **stored(ca_cert),
    }
    await wait_for(lambda: connectivity_state(hass, entry, LinkKind.MESH) == "on")
    await unload(hass, entry)


# Lightning monitor


async def test_lightning_home(hass: HomeAssistant, broker: MosquittoBroker) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "lightning")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "lightning"

    result = await submit(hass, result, lightning_input(broker.port, LOCATION_HOME, 50))
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == [
        "radio_tcp",
        "radio_serial",
        "radio_bluetooth",
        "mesh",
        "finish",
    ]

    entry = await finish(hass, result)
    assert entry.title == "meshbot: lightning"
    assert entry.data == {
        CONF_LIGHTNING: {
            CONF_HOST: LOCALHOST,
            CONF_PORT: broker.port,
            CONF_LOCATION_MODE: LOCATION_HOME,
        }
    }
    assert entry.options == {CONF_RADIUS_KM: 50.0}
    assert isinstance(entry.options[CONF_RADIUS_KM], float)
    await wait_for(lambda: connectivity_state(hass, entry, LinkKind.LIGHTNING) == "on")
    await unload(hass, entry)


@pytest.mark.parametrize(
    ("mode", "step_id", "user_input", "stored"),
    [
        (
            LOCATION_FIXED,
            "lightning_location",
            {CONF_LOCATION: {CONF_LATITUDE: 47.3769, CONF_LONGITUDE: 8.5417}},
            {CONF_LOCATION: {CONF_LATITUDE: 47.3769, CONF_LONGITUDE: 8.5417}},
        ),
        (
            LOCATION_ENTITY,
            "lightning_entity",
            {CONF_FOLLOW_ENTITY: "person.alice"},
            {CONF_FOLLOW_ENTITY: "person.alice"},
        ),
    ],
    ids=["fixed", "entity"],
)
async def test_lightning_location_modes(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    mode: str,
    step_id: str,
    user_input: dict[str, Any],
    stored: dict[str, Any],
) -> None:
    hass.states.async_set("person.alice", "not_home", {"latitude": 52.52, "longitude": 13.405})
    result = await start_user_flow(hass)
    result = await choose(hass, result, "lightning")
    result = await submit(hass, result, lightning_input(broker.port, mode, 250))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step_id

    result = await submit(hass, result, user_input)
    assert result["type"] is FlowResultType.MENU
    assert result["description_placeholders"] == {"configured": "lightning"}

    entry = await finish(hass, result)
    assert entry.data == {
        CONF_LIGHTNING: {
            CONF_HOST: LOCALHOST,
            CONF_PORT: broker.port,
            CONF_LOCATION_MODE: mode,
            **stored,
        }
    }
    assert entry.options == {CONF_RADIUS_KM: 250.0}
    # The title is shown everywhere; it must not reveal where the user lives or travels.
    assert entry.title == "meshbot: lightning"
    assert not any(ch.isdigit() for ch in entry.title)
    await unload(hass, entry)


async def test_lightning_fixed_location_defaults_to_home(
    hass: HomeAssistant, broker: MosquittoBroker
) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "lightning")
    result = await submit(hass, result, lightning_input(broker.port, LOCATION_FIXED))
    assert result["step_id"] == "lightning_location"
    (field,) = result["data_schema"].schema
    assert field.default() == {
        CONF_LATITUDE: hass.config.latitude,
        CONF_LONGITUDE: hass.config.longitude,
    }


async def test_lightning_refused_broker_then_recovery(
    hass: HomeAssistant, broker: MosquittoBroker
) -> None:
    result = await start_user_flow(hass)
    result = await choose(hass, result, "lightning")
    result = await submit(hass, result, lightning_input(refused_port()))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "lightning"
    assert result["errors"] == {"base": "cannot_connect"}

    result = await submit(hass, result, lightning_input(broker.port))
    assert result["type"] is FlowResultType.MENU
    assert result["description_placeholders"] == {"configured": "lightning"}


# Duplicates


@pytest.mark.parametrize("link", [CONF_RADIO, CONF_MESH, CONF_LIGHTNING])
async def test_link_already_in_another_entry_is_refused_at_its_step(
    hass: HomeAssistant, fake_node: FakeNode, broker: MosquittoBroker, link: str
) -> None:
    sections = {
        CONF_RADIO: radio_section(fake_node.port),
        CONF_MESH: broker_section(broker.port),
        CONF_LIGHTNING: broker_section(broker.port),
    }
    steps = {
        CONF_RADIO: ("radio_tcp", radio_input(fake_node.port)),
        CONF_MESH: ("mesh", mesh_input(broker.port)),
        CONF_LIGHTNING: ("lightning", lightning_input(broker.port)),
    }
    entry_for(**{link: sections[link]}).add_to_hass(hass)

    result = await start_user_flow(hass)
    step, user_input = steps[link]
    result = await choose(hass, result, step)
    result = await submit(hass, result, user_input)
    # Said at once, on the form the user is filling, not after every other step.
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    assert result["errors"] == {"base": "link_in_use"}
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_same_radio_under_another_address_is_refused(
    hass: HomeAssistant, fake_node: FakeNode
) -> None:
    entry_for(
        radio={**radio_section(fake_node.port, host="localhost"), "node_num": fake_node.node_num}
    ).add_to_hass(hass)
    result = await start_user_flow(hass)
    result = await choose(hass, result, "radio_tcp")
    result = await submit(hass, result, radio_input(fake_node.port))
    assert result["errors"] == {"base": "link_in_use"}


async def test_same_broker_on_another_port_is_not_a_duplicate(
    hass: HomeAssistant, broker: MosquittoBroker, auth_broker: MosquittoBroker
) -> None:
    entry_for(mesh=broker_section(auth_broker.port)).add_to_hass(hass)
    result = await start_user_flow(hass)
    result = await choose(hass, result, "mesh")
    result = await submit(hass, result, mesh_input(broker.port))
    entry = await finish(hass, result)
    assert len(hass.config_entries.async_entries(DOMAIN)) == 2
    await unload(hass, entry)


async def test_a_link_taken_while_the_menu_was_open_is_refused_at_finish(
    hass: HomeAssistant, broker: MosquittoBroker
) -> None:
    # Two setups in two browser tabs add the same broker; the second to finish is refused.
    first = await choose(hass, await start_user_flow(hass), "mesh")
    second = await choose(hass, await start_user_flow(hass), "mesh")
    first = await submit(hass, first, mesh_input(broker.port))
    second = await submit(hass, second, mesh_input(broker.port))
    entry = await finish(hass, first)

    result = await choose(hass, second, "finish")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert hass.config_entries.async_entries(DOMAIN) == [entry]
    await unload(hass, entry)


async def test_a_link_taken_while_reconfiguring_is_refused_at_save(
    hass: HomeAssistant, fake_node: FakeNode, broker: MosquittoBroker
) -> None:
    entry = entry_for(radio=radio_section(fake_node.port))
    entry.add_to_hass(hass)
    before = dict(entry.data)
    reconfigure = await entry.start_reconfigure_flow(hass)
    reconfigure = await submit(
        hass, await choose(hass, reconfigure, "mesh"), mesh_input(broker.port)
    )
    other = await submit(
        hass, await choose(hass, await start_user_flow(hass), "mesh"), mesh_input(broker.port)
    )
    other_entry = await finish(hass, other)

    result = await choose(hass, reconfigure, "finish")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == before
    await unload(hass, other_entry)


# Options


LIGHTNING_FIELDS = {
    "window_minutes",
    "alert_distance_km",
    "alert_strikes",
    "alert_minutes",
    "quiet_minutes",
    "map_strikes",
    "mesh_alert_targets",
}
MESH_STATE_FIELDS = {
    "node_policy",
    "tracked_nodes",
    "track_positions",
    "node_radius_km",
    "max_tracked_nodes",
    "active_minutes",
    "node_max_age_hours",
    "link_max_age_hours",
}


@pytest.mark.parametrize(
    ("links", "fields"),
    [
        ({CONF_RADIO}, MESH_STATE_FIELDS),
        ({CONF_MESH}, {CONF_MESH_TOPICS, CONF_CHANNEL_KEYS, *MESH_STATE_FIELDS}),
        ({CONF_LIGHTNING}, {CONF_RADIUS_KM, *LIGHTNING_FIELDS}),
        (
            {CONF_RADIO, CONF_MESH, CONF_LIGHTNING},
            {
                CONF_MESH_TOPICS,
                CONF_CHANNEL_KEYS,
                CONF_RADIUS_KM,
                *MESH_STATE_FIELDS,
                *LIGHTNING_FIELDS,
            },
        ),
    ],
    ids=["radio", "mesh", "lightning", "all"],
)
async def test_options_show_tunables_of_configured_links(
    hass: HomeAssistant, links: set[str], fields: set[str]
) -> None:
    sections = {
        CONF_RADIO: radio_section(DEFAULT_RADIO_PORT),
        CONF_MESH: broker_section(1883),
        CONF_LIGHTNING: broker_section(1883),
    }
    entry = entry_for(**{link: sections[link] for link in links})
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert form_fields(result) == fields


async def test_options_prefilled_and_saved_and_entry_reloads(
    hass: HomeAssistant, hass_client: Any, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    reloads: list[ConfigEntryState] = []
    entry.async_on_state_change(lambda: reloads.append(entry.state))
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert suggested(result, CONF_MESH_TOPICS) == "msh/EU_868"
    assert suggested(result, CONF_CHANNEL_KEYS) == "LongFast = AQ=="
    assert suggested(result, CONF_RADIUS_KM) == 100.0

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_MESH_TOPICS: "msh/US, msh/EU_868/DE",
            CONF_CHANNEL_KEYS: f"LongFast = AQ==\nPrivate = {b64(16)}",
            CONF_RADIUS_KM: 25,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert entry.options == {
        CONF_MESH_TOPICS: ["msh/US", "msh/EU_868/DE"],
        CONF_CHANNEL_KEYS: {"LongFast": "AQ==", "Private": b64(16)},
        CONF_RADIUS_KM: 25.0,
        # Mesh options the user left alone keep their defaults.
        "node_policy": "nearby",
        "tracked_nodes": [],
        "track_positions": False,
        "node_radius_km": 10.0,
        "max_tracked_nodes": 50,
        "active_minutes": 120.0,
        "node_max_age_hours": 72.0,
        "link_max_age_hours": 24.0,
        "window_minutes": 30.0,
        "alert_distance_km": 15.0,
        "alert_strikes": 3,
        "alert_minutes": 10.0,
        "quiet_minutes": 20.0,
        "map_strikes": 0,
        "mesh_alert_targets": [],
    }
    assert isinstance(entry.options[CONF_RADIUS_KM], float)
    assert entry.state is ConfigEntryState.LOADED
    assert ConfigEntryState.NOT_LOADED in reloads, "the new options took a reload"
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["links"]["mesh"]["subscriptions"] == len(
        mesh_filters(["msh/US", "msh/EU_868/DE"])
    )
    await unload(hass, entry)


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({CONF_MESH_TOPICS: "msh/#"}, {CONF_MESH_TOPICS: "invalid_topic"}),
        ({CONF_MESH_TOPICS: "msh/+/x"}, {CONF_MESH_TOPICS: "invalid_topic"}),
        ({CONF_MESH_TOPICS: ","}, {CONF_MESH_TOPICS: "invalid_topic"}),
        ({CONF_CHANNEL_KEYS: "LongFast = %%%"}, {CONF_CHANNEL_KEYS: "invalid_channel_key"}),
        ({CONF_CHANNEL_KEYS: f"Big = {b64(33)}"}, {CONF_CHANNEL_KEYS: "invalid_channel_key"}),
        # 24 bytes: no Meshtastic key has that length, so it is no key (it was read as one).
        ({CONF_CHANNEL_KEYS: f"Odd = {b64(24)}"}, {CONF_CHANNEL_KEYS: "invalid_channel_key"}),
        ({CONF_RADIUS_KM: float("nan")}, {CONF_RADIUS_KM: "invalid_number"}),
        ({"window_minutes": float("nan")}, {"window_minutes": "invalid_number"}),
        ({"map_strikes": float("nan")}, {"map_strikes": "invalid_number"}),
        ({"max_tracked_nodes": 2.5}, {"max_tracked_nodes": "invalid_number"}),
        ({"node_radius_km": float("nan")}, {"node_radius_km": "invalid_number"}),
    ],
    ids=[
        "hash",
        "plus",
        "empty",
        "not-base64",
        "33-bytes",
        "24-bytes",
        "nan-radius",
        "nan-window",
        "nan-count",
        "fraction-count",
        "nan-node-radius",
    ],
)
async def test_options_errors_keep_old_options(
    hass: HomeAssistant, broker: MosquittoBroker, user_input: dict[str, str], errors: dict[str, str]
) -> None:
    # A live broker: saving the options reloads the entry, whose links then really connect.
    entry = entry_for(mesh=broker_section(broker.port), lightning=broker_section(broker.port))
    entry.add_to_hass(hass)
    before = dict(entry.options)
    valid = {
        CONF_MESH_TOPICS: "msh/EU_868",
        CONF_CHANNEL_KEYS: "LongFast = AQ==",
        CONF_RADIUS_KM: 300,
    }

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**valid, **user_input}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert entry.options == before

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**valid, CONF_MESH_TOPICS: "msh/EU_868/NL"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_MESH_TOPICS] == ["msh/EU_868/NL"]
    assert entry.options[CONF_CHANNEL_KEYS] == {"LongFast": "AQ=="}
    assert entry.options[CONF_RADIUS_KM] == 300.0
    await hass.async_block_till_done()
    await unload(hass, entry)


@pytest.mark.parametrize(
    ("links", "user_input", "errors"),
    [
        (
            {CONF_RADIO},
            {"tracked_nodes": ["!a1b2c3d4", "alice"]},
            {"tracked_nodes": "invalid_node_id"},
        ),
        (
            {CONF_LIGHTNING},
            {CONF_RADIUS_KM: 50, "mesh_alert_targets": ["channel:9"]},
            {"mesh_alert_targets": "invalid_target"},
        ),
    ],
    ids=["radio-node-id", "lightning-target"],
)
async def test_options_of_one_link_refuse_what_is_not_a_node_or_a_channel(
    hass: HomeAssistant, links: set[str], user_input: dict[str, Any], errors: dict[str, str]
) -> None:
    sections = {CONF_RADIO: radio_section(DEFAULT_RADIO_PORT), CONF_LIGHTNING: broker_section(1883)}
    entry = entry_for(**{link: sections[link] for link in links})
    entry.add_to_hass(hass)
    before = dict(entry.options)

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert entry.options == before


async def test_options_of_a_radio_only_entry_save_its_node_choices(
    hass: HomeAssistant, fake_node: FakeNode
) -> None:
    # The options flow reloads the entry, which connects: to a real node.
    entry = entry_for(radio=radio_section(fake_node.port))
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"node_policy": "chosen", "tracked_nodes": [" !A1B2C3D4 "]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["node_policy"] == "chosen"
    assert entry.options["tracked_nodes"] == ["!a1b2c3d4"]
    assert CONF_MESH_TOPICS in entry.options, "what the entry had stays"
    assert "window_minutes" not in entry.options, "no lightning, no lightning options"
    await hass.async_block_till_done()
    await unload(hass, entry)


async def test_options_of_a_lightning_only_entry_save_its_alert_targets(
    hass: HomeAssistant, broker: MosquittoBroker
) -> None:
    # The options flow reloads the entry, which connects: to a real broker.
    entry = entry_for(lightning=broker_section(broker.port))
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_RADIUS_KM: 40, "mesh_alert_targets": ["channel:1", " ", "!a1b2c3d4"]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["mesh_alert_targets"] == ["channel:1", "!a1b2c3d4"]
    assert entry.options[CONF_RADIUS_KM] == 40.0
    assert "node_policy" not in entry.options, "no mesh, no node options"
    await hass.async_block_till_done()
    await unload(hass, entry)


# Reconfigure


async def test_reconfigure_radio_to_another_node(
    hass: HomeAssistant,
    fake_node: FakeNode,
    second_node: FakeNode,
    broker: MosquittoBroker,
) -> None:
    entry = entry_for(radio=radio_section(fake_node.port), mesh=broker_section(broker.port))
    entry.add_to_hass(hass)

    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "reconfigure"
    assert result["menu_options"] == [
        "radio_tcp",
        "radio_serial",
        "radio_bluetooth",
        "mesh",
        "lightning",
        "remove_links",
        "finish",
    ]
    result = await choose(hass, result, "radio_tcp")
    assert result["step_id"] == "radio_tcp"
    assert suggested(result, CONF_HOST) == LOCALHOST
    assert suggested(result, CONF_PORT) == fake_node.port

    result = await submit(hass, result, radio_input(second_node.port))
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "reconfigure"

    result = await choose(hass, result, "finish")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()

    assert entry.data[CONF_RADIO] == {
        CONF_CONNECTION: CONNECTION_TCP,
        CONF_HOST: LOCALHOST,
        CONF_PORT: second_node.port,
        "node_num": SECOND_NODE_NUM,
    }
    assert entry.data[CONF_MESH] == broker_section(broker.port)
    assert entry.title == "meshbot: radio 127.0.0.1, mesh 127.0.0.1"
    assert entry.state is ConfigEntryState.LOADED
    # The reloaded entry talks to the new node: one handshake for the check, one for the link.
    await wait_for(lambda: second_node.handshakes >= 2)
    await wait_for(lambda: connectivity_state(hass, entry, LinkKind.RADIO) == "on")
    await unload(hass, entry)


async def test_reconfigure_mesh_is_prefilled_and_updates_options(
    hass: HomeAssistant, broker: MosquittoBroker
) -> None:
    entry = entry_for(mesh=broker_section(broker.port), lightning=broker_section(broker.port))
    entry.add_to_hass(hass)

    result = await entry.start_reconfigure_flow(hass)
    result = await choose(hass, result, "mesh")
    assert suggested(result, CONF_HOST) == LOCALHOST
    assert suggested(result, CONF_PORT) == broker.port
    assert suggested(result, CONF_MESH_TOPICS) == "msh/EU_868"
    assert suggested(result, CONF_CHANNEL_KEYS) == "LongFast = AQ=="

    result = await submit(hass, result, mesh_input(broker.port, "msh/EU_433", ""))
    result = await choose(hass, result, "finish")
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.options == {
        CONF_MESH_TOPICS: ["msh/EU_433"],
        CONF_CHANNEL_KEYS: {},
        CONF_RADIUS_KM: 100.0,
    }
    await unload(hass, entry)


FIXED_SPOT = {CONF_LATITUDE: 47.3769, CONF_LONGITUDE: 8.5417}


async def test_reconfigure_lightning_fixed_location_shows_stored_spot(
    hass: HomeAssistant, broker: MosquittoBroker
) -> None:
    entry = entry_for(
        lightning={
            **broker_section(broker.port),
            CONF_LOCATION_MODE: LOCATION_FIXED,
            CONF_LOCATION: FIXED_SPOT,
        }
    )
    entry.add_to_hass(hass)

    result = await entry.start_reconfigure_flow(hass)
    result = await choose(hass, result, "lightning")
    assert suggested(result, CONF_LOCATION_MODE) == LOCATION_FIXED
    assert suggested(result, CONF_RADIUS_KM) == 100.0

    result = await submit(hass, result, lightning_input(broker.port, LOCATION_FIXED, 150))
    assert result["step_id"] == "lightning_location"
    (field,) = result["data_schema"].schema
    assert field.default() == FIXED_SPOT

    moved = {CONF_LATITUDE: 46.948, CONF_LONGITUDE: 7.4474}
    result = await submit(hass, result, {CONF_LOCATION: moved})
    result = await choose(hass, result, "finish")
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_LIGHTNING][CONF_LOCATION] == moved
    assert entry.options[CONF_RADIUS_KM] == 150.0
    assert entry.title == "meshbot: lightning"
    await unload(hass, entry)


async def test_reconfigure_lightning_to_home_forgets_coordinates(
    hass: HomeAssistant, broker: MosquittoBroker
) -> None:
    entry = entry_for(
        lightning={
            **broker_section(broker.port),
            CONF_LOCATION_MODE: LOCATION_FIXED,
            CONF_LOCATION: FIXED_SPOT,
        }
    )
    entry.add_to_hass(hass)

    result = await entry.start_reconfigure_flow(hass)
    result = await choose(hass, result, "lightning")
    result = await submit(hass, result, lightning_input(broker.port, LOCATION_HOME, 100))
    assert result["type"] is FlowResultType.MENU
    result = await choose(hass, result, "finish")
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_LIGHTNING] == {
        CONF_HOST: LOCALHOST,
        CONF_PORT: broker.port,
        CONF_LOCATION_MODE: LOCATION_HOME,
    }
    await unload(hass, entry)


async def test_reconfigure_remove_links(
    hass: HomeAssistant, hass_client: Any, fake_node: FakeNode, broker: MosquittoBroker
) -> None:
    entry = entry_for(
        radio=radio_section(fake_node.port),
        mesh=broker_section(broker.port),
        lightning=broker_section(broker.port),
    )
    entry.add_to_hass(hass)

    result = await entry.start_reconfigure_flow(hass)
    result = await choose(hass, result, "remove_links")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "remove_links"

    result = await submit(hass, result, {"links": [CONF_RADIO, CONF_MESH, CONF_LIGHTNING]})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"links": "keep_one_link"}

    result = await submit(hass, result, {"links": [CONF_MESH, CONF_LIGHTNING]})
    assert result["type"] is FlowResultType.MENU
    # With one link left there is nothing more to remove.
    assert result["menu_options"] == [
        "radio_tcp",
        "radio_serial",
        "radio_bluetooth",
        "mesh",
        "lightning",
        "finish",
    ]
    assert result["description_placeholders"] == {"configured": "radio"}

    result = await choose(hass, result, "finish")
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert set(entry.data) == {CONF_RADIO}
    assert entry.options == {}, "the removed links' settings go with them"
    assert entry.title == "meshbot: radio 127.0.0.1"
    assert entry.state is ConfigEntryState.LOADED
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert set(diagnostics["links"]) == {LinkKind.RADIO}
    await unload(hass, entry)


async def test_reconfigure_remove_all_links_is_refused(
    hass: HomeAssistant, fake_node: FakeNode, broker: MosquittoBroker
) -> None:
    entry = entry_for(radio=radio_section(fake_node.port), mesh=broker_section(broker.port))
    entry.add_to_hass(hass)
    before = dict(entry.data)

    result = await entry.start_reconfigure_flow(hass)
    result = await choose(hass, result, "remove_links")
    result = await submit(hass, result, {"links": [CONF_RADIO, CONF_MESH]})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"links": "keep_one_link"}

    result = await submit(hass, result, {"links": []})
    assert result["type"] is FlowResultType.MENU
    assert result["description_placeholders"] == {"configured": "radio, mesh"}
    assert entry.data == before


async def test_reconfigure_to_link_of_another_entry_is_refused(
    hass: HomeAssistant, fake_node: FakeNode, broker: MosquittoBroker
) -> None:
    other = entry_for(radio=radio_section(fake_node.port))
    other.add_to_hass(hass)
    entry = entry_for(mesh=broker_section(broker.port))
    entry.add_to_hass(hass)
    before = dict(entry.data)

    result = await entry.start_reconfigure_flow(hass)
    result = await choose(hass, result, "radio_tcp")
    result = await submit(hass, result, radio_input(fake_node.port))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "link_in_use"}

    # The entry's own links are not "in use" by itself.
    hass.config_entries.flow.async_abort(result["flow_id"])
    result = await entry.start_reconfigure_flow(hass)
    result = await choose(hass, result, "mesh")
    result = await submit(hass, result, mesh_input(broker.port))
    assert result["type"] is FlowResultType.MENU
    assert entry.data == before
    assert entry.state is ConfigEntryState.NOT_LOADED


# Discovery


def zeroconf_info(port: int, name: str = "Meshtastic_3c4d") -> ZeroconfServiceInfo:
    """Return what zeroconf reports for a node announcing its API on 127.0.0.1."""
    return ZeroconfServiceInfo(
        ip_address=ip_address(LOCALHOST),
        ip_addresses=[ip_address(LOCALHOST)],
        port=port,
        hostname="meshtastic_3c4d.local.",
        type="_meshtastic._tcp.local.",
        name=f"{name}._meshtastic._tcp.local.",
        properties={},
    )


def usb_info(device: str) -> UsbServiceInfo:
    """Return what USB discovery reports for a RAK4631 on `device`."""
    return UsbServiceInfo(
        device=device,
        vid="239A",
        pid="8029",
        serial_number="F1E2D3",
        manufacturer="RAKwireless",
        description="WisCore RAK4631 Board",
    )


async def discover(hass: HomeAssistant, source: str, info: Any) -> ConfigFlowResult:
    """Start the flow Home Assistant starts when it discovers a radio."""
    return await hass.config_entries.flow.async_init(DOMAIN, context={"source": source}, data=info)


def flow_title(hass: HomeAssistant, result: ConfigFlowResult) -> dict[str, str]:
    """Return the placeholders of the title the discovered flow shows on the integrations page."""
    (flow,) = [
        flow
        for flow in hass.config_entries.flow.async_progress()
        if flow["flow_id"] == result["flow_id"]
    ]
    return flow["context"]["title_placeholders"]


async def test_zeroconf_discovery_is_confirmed_then_connects(
    hass: HomeAssistant, fake_node: FakeNode
) -> None:
    info = zeroconf_info(fake_node.port)
    result = await discover(hass, SOURCE_ZEROCONF, info)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    assert flow_title(hass, result) == {"name": "Meshtastic_3c4d"}
    assert fake_node.connections == 0, "nothing connects before the user agrees"
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_RADIO]["node_num"] == fake_node.node_num
    entry = result["result"]
    await hass.async_block_till_done()
    # The same node announced again is not offered twice.
    again = await discover(hass, SOURCE_ZEROCONF, info)
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"
    await unload(hass, entry)


async def test_zeroconf_discovery_of_a_radio_added_by_hand_is_not_offered(
    hass: HomeAssistant, fake_node: FakeNode
) -> None:
    entry_for(radio=radio_section(fake_node.port)).add_to_hass(hass)
    result = await discover(hass, SOURCE_ZEROCONF, zeroconf_info(fake_node.port))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_discovered_radio_that_does_not_answer_shows_an_error(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    # An announcement without an instance name is titled by its address.
    result = await discover(hass, SOURCE_ZEROCONF, zeroconf_info(refused_port(), name=""))
    assert flow_title(hass, result) == {"name": LOCALHOST}
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    assert result["errors"] == {"base": "cannot_connect"}
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_usb_discovery_is_confirmed_and_stored_by_its_stable_name(
    hass: HomeAssistant, serial_node: FakeNode, tmp_path: Path
) -> None:
    # udev names the board under /dev/serial/by-id/; that name survives re-plugging.
    stable = tmp_path / "usb-RAKwireless_WisCore_RAK4631_Board_F1E2D3-if00"
    stable.symlink_to(serial_node.device)
    (tmp_path / "usb-Other_Board-if00").symlink_to("/dev/null")
    with patch(SERIAL_BY_ID_TARGET, str(tmp_path / "*")):
        result = await discover(hass, SOURCE_USB, usb_info(serial_node.device))
        assert result["step_id"] == "discovery_confirm"
        assert result["description_placeholders"] == {"target": str(stable)}
        assert flow_title(hass, result) == {"name": "WisCore RAK4631 Board"}
        result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_RADIO] == {
        CONF_CONNECTION: CONNECTION_SERIAL,
        CONF_DEVICE: str(stable),
        "node_num": serial_node.node_num,
    }
    await hass.async_block_till_done()
    await unload(hass, result["result"])


async def test_usb_discovery_of_a_configured_radio_is_not_offered(
    hass: HomeAssistant, serial_node: FakeNode
) -> None:
    info = usb_info(serial_node.device)
    result = await discover(hass, SOURCE_USB, info)
    assert result["step_id"] == "discovery_confirm"
    assert result["description_placeholders"] == {"target": serial_node.device}
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_RADIO] == {
        CONF_CONNECTION: CONNECTION_SERIAL,
        CONF_DEVICE: serial_node.device,
        "node_num": serial_node.node_num,
    }
    entry = result["result"]
    await hass.async_block_till_done()
    again = await discover(hass, SOURCE_USB, info)
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"
    await unload(hass, entry)


# Bluetooth radios

BLE_ADDRESS = "AA:BB:CC:DD:EE:01"


def ble_info(address: str = BLE_ADDRESS, uuids: list[str] | None = None) -> Any:
    """Return what Home Assistant's Bluetooth reports for a Meshtastic node advertising."""
    return service_info(address, "Meshtastic_ee01", [SERVICE_UUID] if uuids is None else uuids)


async def test_bluetooth_discovery_is_confirmed_then_connects(
    hass: HomeAssistant, enable_bluetooth: None, ble_node: FakeNode
) -> None:
    info = ble_info()
    # Home Assistant's Bluetooth matches the advertisement with the manifest and starts the flow.
    inject(hass, info)
    await hass.async_block_till_done(wait_background_tasks=True)
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == SOURCE_BLUETOOTH
    result = await hass.config_entries.flow.async_configure(flow["flow_id"])
    assert result["step_id"] == "discovery_confirm"
    assert result["description_placeholders"] == {"target": BLE_ADDRESS}
    assert flow_title(hass, result) == {"name": "Meshtastic_ee01"}
    assert ble_node.connections == 0, "nothing connects before the user agrees"
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"meshbot: radio {BLE_ADDRESS}"
    assert result["data"][CONF_RADIO] == {
        CONF_CONNECTION: CONNECTION_BLUETOOTH,
        CONF_ADDRESS: BLE_ADDRESS,
        "node_num": ble_node.node_num,
    }
    # The probe asked for the configuration only, and let go of the radio.
    assert ble_node.received[0].want_config_id == 69420
    entry = result["result"]
    await hass.async_block_till_done()
    again = await discover(hass, SOURCE_BLUETOOTH, info)
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"
    await unload(hass, entry)
    assert ble_node.gatt_connected == 0


async def test_bluetooth_manual_pick_among_the_meshtastic_radios_heard(
    hass: HomeAssistant, enable_bluetooth: None, ble_node: FakeNode
) -> None:
    inject(hass, ble_info())
    # Another Bluetooth device, no Meshtastic node: not offered.
    inject(hass, ble_info("AA:BB:CC:DD:EE:99", uuids=["0000180f-0000-1000-8000-00805f9b34fb"]))
    result = await choose(hass, await start_user_flow(hass), "radio_bluetooth")
    assert result["step_id"] == "radio_bluetooth"
    (field,) = result["data_schema"].schema.values()
    assert [option["value"] for option in field.config["options"]] == [BLE_ADDRESS]
    result = await submit(hass, result, {CONF_ADDRESS: BLE_ADDRESS})
    assert result["type"] is FlowResultType.MENU
    entry = await finish(hass, result)
    assert entry.data[CONF_RADIO][CONF_ADDRESS] == BLE_ADDRESS
    await unload(hass, entry)


async def test_bluetooth_manual_pick_with_no_radio_heard(
    hass: HomeAssistant, enable_bluetooth: None, ble_node: FakeNode
) -> None:
    result = await choose(hass, await start_user_flow(hass), "radio_bluetooth")
    assert result["errors"] == {"base": "no_bluetooth_radios"}
    # Submitting looks again: the node came in range meanwhile.
    inject(hass, ble_info())
    result = await submit(hass, result, {})
    assert result["step_id"] == "radio_bluetooth"
    assert result["errors"] == {}
    result = await submit(hass, result, {CONF_ADDRESS: BLE_ADDRESS})
    assert result["type"] is FlowResultType.MENU


async def test_bluetooth_radio_out_of_reach_is_an_error(
    hass: HomeAssistant, enable_bluetooth: None, ble_node: FakeNode
) -> None:
    inject(hass, ble_info())
    ble_node.behaviour.in_range = False
    result = await choose(hass, await start_user_flow(hass), "radio_bluetooth")
    result = await submit(hass, result, {CONF_ADDRESS: BLE_ADDRESS})
    assert result["errors"] == {"base": "cannot_connect"}


@pytest.mark.parametrize("discovered", [True, False], ids=["discovered", "picked"])
async def test_bluetooth_pin_asked_wrong_then_right(
    hass: HomeAssistant, enable_bluetooth: None, ble_node: FakeNode, discovered: bool
) -> None:
    ble_node.behaviour.pin = "123456"
    info = ble_info()
    inject(hass, info)
    await hass.async_block_till_done(wait_background_tasks=True)
    if discovered:
        (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        result = await hass.config_entries.flow.async_configure(flow["flow_id"], {})
    else:
        result = await choose(hass, await start_user_flow(hass), "radio_bluetooth")
        result = await submit(hass, result, {CONF_ADDRESS: BLE_ADDRESS})
    assert result["step_id"] == "radio_bluetooth_pin"
    assert result["description_placeholders"] == {"address": BLE_ADDRESS}
    result = await submit(hass, result, {CONF_PIN: "12345"})
    assert result["errors"] == {CONF_PIN: "invalid_pin"}
    result = await submit(hass, result, {CONF_PIN: "654321"})
    assert result["errors"] == {"base": "pairing_failed"}
    assert ble_node.gatt_connected == 0, "a refused pairing leaves nothing connected"
    result = await submit(hass, result, {CONF_PIN: " 123456 "})
    if not discovered:
        assert result["type"] is FlowResultType.MENU
        result = await choose(hass, result, "finish")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_RADIO][CONF_PIN] == "123456"
    entry = result["result"]
    await hass.async_block_till_done()
    await unload(hass, entry)


async def test_bluetooth_radio_held_by_an_entry_is_not_connected_twice(
    hass: HomeAssistant, enable_bluetooth: None, ble_node: FakeNode
) -> None:
    info = ble_info()
    inject(hass, info)
    result = await choose(hass, await start_user_flow(hass), "radio_bluetooth")
    assert result["step_id"] == "radio_bluetooth"
    # An entry takes the radio while the form is open: refused before connecting.
    entry_for(radio=bluetooth_section(BLE_ADDRESS.lower())).add_to_hass(hass)
    result = await submit(hass, result, {CONF_ADDRESS: BLE_ADDRESS})
    assert result["errors"] == {"base": "link_in_use"}
    assert ble_node.connections == 0
    # Held now, it is not offered any more.
    result = await choose(hass, await start_user_flow(hass), "radio_bluetooth")
    assert result["errors"] == {"base": "no_bluetooth_radios"}


async def test_bluetooth_reauth_asks_for_the_new_pin(
    hass: HomeAssistant, enable_bluetooth: None, ble_node: FakeNode
) -> None:
    ble_node.behaviour.pin = "111111"
    inject(hass, ble_info())
    entry = entry_for(radio=bluetooth_section(BLE_ADDRESS, pin="482913"))
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_REAUTH, "entry_id": entry.entry_id},
        data={"link": "radio"},
    )
    assert result["step_id"] == "radio_bluetooth_pin"
    result = await submit(hass, result, {CONF_PIN: "111111"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_RADIO][CONF_PIN] == "111111"
    await unload(hass, entry)
    assert ble_node.gatt_connected == 0


# Reauthentication


async def test_reauth_wrong_then_right_credentials(
    hass: HomeAssistant, auth_broker: MosquittoBroker
) -> None:
    entry = entry_for(mesh=broker_section(auth_broker.port, username=MESH_USER, password="expired"))
    entry.add_to_hass(hass)

    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_REAUTH, "entry_id": entry.entry_id},
        data={"link": "mesh"},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["host"] == LOCALHOST
    assert suggested(result, CONF_USERNAME) == MESH_USER

    result = await submit(hass, result, {CONF_USERNAME: MESH_USER, CONF_PASSWORD: "still wrong"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert entry.data[CONF_MESH][CONF_PASSWORD] == "expired"

    result = await submit(hass, result, {CONF_USERNAME: MESH_USER, CONF_PASSWORD: MESH_PASSWORD})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_MESH] == broker_section(
        auth_broker.port, username=MESH_USER, password=MESH_PASSWORD
    )
    assert entry.state is ConfigEntryState.LOADED
    await wait_for(lambda: connectivity_state(hass, entry, LinkKind.MESH) == "on")
    await unload(hass, entry)


async def test_rejected_credentials_start_reauth_that_fixes_the_link(
    hass: HomeAssistant, auth_broker: MosquittoBroker
) -> None:
    entry = entry_for(mesh=broker_section(auth_broker.port, username=MESH_USER, password="expired"))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    def reauth_flows() -> list[Any]:
        return [
            flow
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            if flow["context"]["source"] == SOURCE_REAUTH
        ]

    await wait_for(lambda: len(reauth_flows()) == 1)
    assert connectivity_state(hass, entry, LinkKind.MESH) == "off"
    (flow,) = reauth_flows()
    assert flow["step_id"] == "reauth_confirm"

    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_USERNAME: MESH_USER, CONF_PASSWORD: MESH_PASSWORD}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_MESH][CONF_PASSWORD] == MESH_PASSWORD
    await wait_for(lambda: connectivity_state(hass, entry, LinkKind.MESH) == "on")
    await unload(hass, entry)


@pytest.mark.parametrize(
    ("content", "errors"),
    [
        (None, {CONF_CA_CERT: "invalid_ca_cert"}),
        ("not a certificate", {"base": "tls_error"}),
    ],
    ids=["missing file", "not a certificate"],
)
async def test_unusable_certificate_authority(
    hass: HomeAssistant,
    tls_broker: MosquittoBroker,
    tmp_path: Any,
    content: str | None,
    errors: dict[str, str],
) -> None:
    ca_file = tmp_path / "ca.pem"
    if content is not None:
        ca_file.write_text(content)
    result = await start_user_flow(hass)
    result = await choose(hass, result, "mesh")
    result = await submit(
        hass,
        result,
        mesh_input(
            tls_broker.port,
            **{CONF_TLS: True, CONF_CA_CERT: str(ca_file)},
            **{CONF_USERNAME: MESH_USER, CONF_PASSWORD: MESH_PASSWORD},
        ),
    )
    assert result["errors"] == errors


HUGE = "é" * 40_000  # 80,000 bytes: more than MQTT's 65,535 and a host name's 253


@pytest.mark.parametrize(
    ("step", "user_input", "errors"),
    [
        ("radio_tcp", {CONF_HOST: "", CONF_PORT: 4403}, {CONF_HOST: "invalid_host"}),
        ("radio_tcp", {CONF_HOST: "  ", CONF_PORT: 4403}, {CONF_HOST: "invalid_host"}),
        ("radio_tcp", {CONF_HOST: HUGE, CONF_PORT: 4403}, {CONF_HOST: "invalid_host"}),
        ("radio_tcp", {CONF_HOST: "node..lan", CONF_PORT: 4403}, {CONF_HOST: "invalid_host"}),
        ("radio_tcp", {CONF_HOST: "node\x00", CONF_PORT: 4403}, {CONF_HOST: "invalid_host"}),
        ("radio_tcp", {CONF_HOST: LOCALHOST, CONF_PORT: float("nan")}, {CONF_PORT: "invalid_port"}),
        ("radio_tcp", {CONF_HOST: LOCALHOST, CONF_PORT: 4403.5}, {CONF_PORT: "invalid_port"}),
        ("radio_serial", {CONF_DEVICE: ""}, {CONF_DEVICE: "invalid_device"}),
        ("radio_serial", {CONF_DEVICE: "ttyUSB0"}, {CONF_DEVICE: "invalid_device"}),
        ("radio_serial", {CONF_DEVICE: "/dev/tty\x07"}, {CONF_DEVICE: "invalid_device"}),
        ("mesh", mesh_input(1883, **{CONF_HOST: ""}), {CONF_HOST: "invalid_host"}),
        ("mesh", mesh_input(1883, **{CONF_HOST: HUGE}), {CONF_HOST: "invalid_host"}),
        ("mesh", mesh_input(1883, **{CONF_USERNAME: HUGE}), {CONF_USERNAME: "invalid_username"}),
        ("mesh", mesh_input(1883, **{CONF_PASSWORD: HUGE}), {CONF_PASSWORD: "invalid_password"}),
        (
            "mesh",
            mesh_input(1883, **{CONF_USERNAME: "a\x00b"}),
            {CONF_USERNAME: "invalid_username"},
        ),
        ("mesh", mesh_input(1883, topics=""), {CONF_MESH_TOPICS: "invalid_topic"}),
        (
            "mesh",
            mesh_input(1883, keys=f"Odd = {b64(24)}"),
            {CONF_CHANNEL_KEYS: "invalid_channel_key"},
        ),
        ("mesh", mesh_input(float("nan")), {CONF_PORT: "invalid_port"}),
        (
            "lightning",
            {**lightning_input(1883), CONF_RADIUS_KM: float("nan")},
            {CONF_RADIUS_KM: "invalid_number"},
        ),
        ("lightning", {**lightning_input(1883), CONF_HOST: ""}, {CONF_HOST: "invalid_host"}),
    ],
    ids=[
        "radio-empty-host",
        "radio-blank-host",
        "radio-huge-host",
        "radio-empty-label",
        "radio-control-character",
        "radio-nan-port",
        "radio-fraction-port",
        "serial-empty",
        "serial-relative",
        "serial-control-character",
        "mesh-empty-host",
        "mesh-huge-host",
        "mesh-huge-username",
        "mesh-huge-password",
        "mesh-null-in-username",
        "mesh-no-topic",
        "mesh-24-byte-key",
        "mesh-nan-port",
        "lightning-nan-radius",
        "lightning-empty-host",
    ],
)
async def test_bad_values_get_an_error_on_their_field_and_nothing_is_stored(
    hass: HomeAssistant, step: str, user_input: dict[str, Any], errors: dict[str, str]
) -> None:
    result = await choose(hass, await start_user_flow(hass), step)
    result = await submit(hass, result, user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    assert result["errors"] == errors
    assert not hass.config_entries.async_entries(DOMAIN)


@pytest.mark.parametrize(
    "location",
    [
        {CONF_LATITUDE: 91.0, CONF_LONGITUDE: 0.0},
        {CONF_LATITUDE: 0.0, CONF_LONGITUDE: 181.0},
        {CONF_LATITUDE: float("nan"), CONF_LONGITUDE: 0.0},
        {CONF_LATITUDE: 0.0, CONF_LONGITUDE: float("-inf")},
    ],
    ids=["latitude-91", "longitude-181", "nan", "minus-infinity"],
)
async def test_coordinates_off_the_globe_are_refused(
    hass: HomeAssistant, broker: MosquittoBroker, location: dict[str, float]
) -> None:
    result = await choose(hass, await start_user_flow(hass), "lightning")
    result = await submit(hass, result, lightning_input(broker.port, mode=LOCATION_FIXED))
    assert result["step_id"] == "lightning_location"
    result = await submit(hass, result, {CONF_LOCATION: location})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_LOCATION: "invalid_location"}

    result = await submit(
        hass, result, {CONF_LOCATION: {CONF_LATITUDE: -0.0, CONF_LONGITUDE: 180.0}}
    )
    entry = await finish(hass, result)
    assert entry.data[CONF_LIGHTNING][CONF_LOCATION] == {CONF_LATITUDE: 0.0, CONF_LONGITUDE: 180.0}
    await unload(hass, entry)


async def test_a_hex_channel_key_is_read_as_hex_and_stored_as_base64(
    hass: HomeAssistant, broker: MosquittoBroker
) -> None:
    # 32 hex digits are also valid base64 (of 24 bytes, no key length): hex is the only reading.
    key = "ab" * 16
    result = await choose(hass, await start_user_flow(hass), "mesh")
    result = await submit(hass, result, mesh_input(broker.port, keys=f"Private = {key}"))
    entry = await finish(hass, result)
    assert entry.options[CONF_CHANNEL_KEYS] == {
        "Private": base64.b64encode(bytes.fromhex(key)).decode()
    }
    await unload(hass, entry)


async def test_tls_against_a_plain_port_is_a_tls_error(
    hass: HomeAssistant, broker: MosquittoBroker
) -> None:
    result = await choose(hass, await start_user_flow(hass), "mesh")
    result = await submit(hass, result, mesh_input(broker.port, **{CONF_TLS: True}))
    assert result["errors"] == {"base": "tls_error"}
