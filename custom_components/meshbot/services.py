"""Actions: the mesh's topology as plain JSON, text through the radio, and requests to a node.

A request (position, telemetry, traceroute) asks one node through the radio and returns its
answer; the answer also reaches the mesh like any packet the radio hears, so the node's sensors,
its tracker and the topology show it too.
"""

from __future__ import annotations

from collections.abc import Callable
import time
from typing import TYPE_CHECKING, Any, cast

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_CONFIG_ENTRY_ID, CONF_LATITUDE, CONF_LONGITUDE
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
import voluptuous as vol

from .const import DOMAIN
from .coordinator import RadioCoordinator
from .data import MeshbotConfigEntry
from .errors import no_radio, send_error
from .lazy import LazyModule
from .links.errors import LinkError
from .mesh.airtime import RequestKind
from .mesh.models import (
    BROADCAST,
    LinkSource,
    default_node_name,
    node_id,
    parse_node_id,
    valid_node,
)
from .mesh_coordinator import MeshCoordinator

if TYPE_CHECKING:
    from meshtastic.protobuf import mesh_pb2

    from .mesh import requests
else:
    # Imported with the radio's protocol before the radio connects (lazy.MESH_PROTOCOL).
    requests = LazyModule(f"{__package__}.mesh.requests")

SERVICE_GET_TOPOLOGY = "get_topology"
SERVICE_SEND_TEXT = "send_text"
ATTR_MESSAGE = "message"
ATTR_DESTINATION = "destination"
ATTR_CHANNEL = "channel"
ATTR_WANT_ACK = "want_ack"
BROADCAST_NAMES = {"", "broadcast", "^all", "!ffffffff"}
ATTR_SOURCES = "sources"
ATTR_MAX_AGE = "max_age"
ATTR_NODE = "node"
ATTR_RADIUS_KM = "radius_km"
ATTR_TIMEOUT = "timeout"
ATTR_TYPE = "type"
SERVICE_REQUEST_POSITION = "request_position"
SERVICE_REQUEST_TELEMETRY = "request_telemetry"
SERVICE_TRACEROUTE = "traceroute"
TELEMETRY_TYPES = ["device", "environment"]
# How long a request waits for its answer by default: a few hops, each retried a few times.
DEFAULT_REQUEST_TIMEOUT = 60

GET_TOPOLOGY_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_SOURCES): vol.All(cv.ensure_list, [vol.In([str(s) for s in LinkSource])]),
        vol.Optional(ATTR_MAX_AGE): cv.positive_time_period,
        vol.Optional(ATTR_NODE): cv.string,
        vol.Optional(ATTR_RADIUS_KM): vol.All(vol.Coerce(float), vol.Range(min=0)),
        vol.Optional(CONF_LATITUDE): cv.latitude,
        vol.Optional(CONF_LONGITUDE): cv.longitude,
    }
)


SEND_TEXT_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_MESSAGE): cv.string,
        vol.Optional(ATTR_DESTINATION, default="broadcast"): cv.string,
        vol.Optional(ATTR_CHANNEL, default=0): vol.All(vol.Coerce(int), vol.Range(min=0, max=7)),
        vol.Optional(ATTR_WANT_ACK, default=False): cv.boolean,
    }
)


REQUEST_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_NODE): cv.string,
        vol.Optional(ATTR_TIMEOUT, default=DEFAULT_REQUEST_TIMEOUT): vol.All(
            vol.Coerce(float), vol.Range(min=5, max=300)
        ),
    }
)
REQUEST_TELEMETRY_SCHEMA = REQUEST_SCHEMA.extend(
    {vol.Optional(ATTR_TYPE, default="device"): vol.In(TELEMETRY_TYPES)}
)


def _entry(hass: HomeAssistant, call: ServiceCall, with_radio: bool = False) -> MeshbotConfigEntry:
    entries: list[MeshbotConfigEntry] = [
        entry
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.state is ConfigEntryState.LOADED
        and (
            entry.runtime_data.radio is not None
            if with_radio
            else entry.runtime_data.mesh is not None
        )
    ]
    if entry_id := call.data.get(ATTR_CONFIG_ENTRY_ID):
        entries = [entry for entry in entries if entry.entry_id == entry_id]
        if not entries:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="entry_not_loaded"
            )
    if not entries:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="no_radio" if with_radio else "no_mesh"
        )
    if len(entries) > 1:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="choose_entry")
    return entries[0]


def _mesh_of(entry: MeshbotConfigEntry) -> MeshCoordinator:
    if (mesh := entry.runtime_data.mesh) is None:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_mesh")
    return mesh


def _radio_of(entry: MeshbotConfigEntry) -> RadioCoordinator:
    if (radio := entry.runtime_data.radio) is None:
        raise no_radio()
    return radio


async def _get_topology(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    mesh = _mesh_of(_entry(hass, call))
    around = None
    if (text := call.data.get(ATTR_NODE)) is not None:
        around = parse_node_id(text)
        if around is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_node_id",
                translation_placeholders={"node": text},
            )
    within = None
    if (radius := call.data.get(ATTR_RADIUS_KM)) is not None:
        within = (
            call.data.get(CONF_LATITUDE, hass.config.latitude),
            call.data.get(CONF_LONGITUDE, hass.config.longitude),
            radius,
        )
    max_age = call.data.get(ATTR_MAX_AGE)
    # Plain JSON by construction; the mesh layer does not know Home Assistant's JSON types.
    return cast(
        ServiceResponse,
        mesh.state.topology(
            time.time(),
            sources=call.data.get(ATTR_SOURCES),
            max_age=max_age.total_seconds() if max_age is not None else None,
            around=around,
            within=within,
        ),
    )


async def _send_text(call: ServiceCall) -> ServiceResponse:
    radio = _radio_of(_entry(call.hass, call, with_radio=True))
    text = call.data[ATTR_DESTINATION].strip().lower()
    destination = BROADCAST if text in BROADCAST_NAMES else parse_node_id(text)
    if destination is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_node_id",
            translation_placeholders={"node": call.data[ATTR_DESTINATION]},
        )
    result = await radio.async_send_text(
        call.data[ATTR_MESSAGE], destination, call.data[ATTR_CHANNEL], call.data[ATTR_WANT_ACK]
    )
    return {
        "packet_id": result.packet_id,
        "acknowledged": result.acknowledged,
        "error": result.error,
    }


def _requested_node(call: ServiceCall, radio: RadioCoordinator) -> int:
    """Return the node a request names; raise ServiceValidationError if it cannot be asked."""
    text = call.data[ATTR_NODE]
    num = parse_node_id(text.strip().lower())
    if num is None or not valid_node(num):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_node_id",
            translation_placeholders={"node": text},
        )
    if num == radio.link.info.node_num:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="request_to_radio",
            translation_placeholders={"node": node_id(num)},
        )
    # Only a node the mesh knows: its id is likely a typo otherwise, and the request would
    # cost airtime on every hop for nothing.
    if radio.mesh is None or num not in radio.mesh.state.nodes:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_node",
            translation_placeholders={"node": node_id(num)},
        )
    return num


def _names(radio: RadioCoordinator) -> Callable[[int], str]:
    nodes = radio.mesh.state.nodes if radio.mesh is not None else {}

    def name_of(num: int) -> str:
        node = nodes.get(num)
        return node.name if node is not None else default_node_name(num)

    return name_of


async def _ask(
    call: ServiceCall, kind: RequestKind, telemetry_type: str = "device"
) -> tuple[RadioCoordinator, mesh_pb2.MeshPacket]:
    radio = _radio_of(_entry(call.hass, call, with_radio=True))
    node = _requested_node(call, radio)
    if not radio.link.connected:
        # Checked before the protocol modules are used: the link imports them (in the executor)
        # before it connects, never the event loop here.
        reason = radio.supervisor.state.last_error or "not connected yet"
        raise send_error(LinkError(reason), radio_connected=False)
    answer = await radio.async_request(
        kind,
        node,
        requests.PORTS[kind],
        requests.request_payload(kind, telemetry_type),
        call.data[ATTR_TIMEOUT],
    )
    return radio, answer


async def _request_position(call: ServiceCall) -> ServiceResponse:
    radio, answer = await _ask(call, RequestKind.POSITION)
    return _response(requests.position_answer(answer, radio.link.info.node_num or 0, _names(radio)))


async def _request_telemetry(call: ServiceCall) -> ServiceResponse:
    radio, answer = await _ask(call, RequestKind.TELEMETRY, call.data[ATTR_TYPE])
    return _response(
        requests.telemetry_answer(answer, radio.link.info.node_num or 0, _names(radio))
    )


async def _traceroute(call: ServiceCall) -> ServiceResponse:
    radio, answer = await _ask(call, RequestKind.TRACEROUTE)
    route = requests.traceroute_answer(answer, _names(radio))
    if route is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="invalid_answer",
            translation_placeholders={"node": node_id(getattr(answer, "from"))},
        )
    return _response(route)


def _response(answer: dict[str, Any]) -> ServiceResponse:
    # Plain JSON by construction; the mesh layer does not know Home Assistant's JSON types.
    return cast(ServiceResponse, answer)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register meshbot's actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_TOPOLOGY,
        _get_topology,
        schema=GET_TOPOLOGY_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_SEND_TEXT,
        _send_text,
        schema=SEND_TEXT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    for service, handler, schema in (
        (SERVICE_REQUEST_POSITION, _request_position, REQUEST_SCHEMA),
        (SERVICE_REQUEST_TELEMETRY, _request_telemetry, REQUEST_TELEMETRY_SCHEMA),
        (SERVICE_TRACEROUTE, _traceroute, REQUEST_SCHEMA),
    ):
        # Optional: a request is worth making for its side effect alone (the node's sensors,
        # its tracker and the topology update from the answer).
        hass.services.async_register(
            DOMAIN, service, handler, schema=schema, supports_response=SupportsResponse.OPTIONAL
        )
