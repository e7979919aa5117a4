"""Actions: meshbot.get_topology returns the mesh's nodes and links as plain JSON."""

from __future__ import annotations

import time
from typing import cast

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_CONFIG_ENTRY_ID, CONF_LATITUDE, CONF_LONGITUDE
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
import voluptuous as vol

from .const import DOMAIN
from .coordinator import RadioCoordinator
from .data import MeshbotConfigEntry
from .errors import no_radio
from .mesh.models import BROADCAST, LinkSource, parse_node_id
from .mesh_coordinator import MeshCoordinator

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
