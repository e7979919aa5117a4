"""Diagnostics for meshbot, with credentials, channel keys and coordinates redacted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
import time
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    CONF_LATITUDE,
    CONF_LONGITUDE,
    CONF_PASSWORD,
    CONF_PIN,
    CONF_USERNAME,
)
from homeassistant.core import HomeAssistant

from .const import CONF_CHANNEL_KEYS, CONF_LOCATION
from .data import MeshbotConfigEntry
from .links.mqtt import MqttLink
from .mesh.models import node_id, parse_node_id
from .mesh.state import Node

# A node's position is often its owner's home.
NODE_POSITION = {"latitude", "longitude", "altitude"}
TO_REDACT = {
    CONF_PASSWORD,
    CONF_USERNAME,
    CONF_CHANNEL_KEYS,
    CONF_LOCATION,
    CONF_LATITUDE,
    CONF_LONGITUDE,
    CONF_PIN,
}


def heard_by(nodes: Mapping[int, Node], text: str) -> list[str]:
    """Return the ids of the gateways that uploaded the node's packets, stalest first."""
    num = parse_node_id(text)
    node = nodes.get(num) if num is not None else None
    return [node_id(gateway) for gateway in node.gateways] if node is not None else []


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: MeshbotConfigEntry
) -> dict[str, Any]:
    """Return the entry's settings and state, and, while it runs, the state of each link."""
    report: dict[str, Any] = {
        "mesh": None,
        "entry": {
            "state": entry.state.value,
            # Why setup failed or is retrying: the moment diagnostics matter most.
            "reason": entry.reason,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": async_redact_data(dict(entry.options), TO_REDACT),
        },
        "links": {},
    }
    if entry.state is ConfigEntryState.LOADED:
        report |= _running(entry)
    return report


def _running(entry: MeshbotConfigEntry) -> dict[str, Any]:
    """Return the state of a loaded entry's links and mesh."""
    runtime = entry.runtime_data
    links: dict[str, Any] = {}
    for kind, coordinator in runtime.links.items():
        link = coordinator.link
        report: dict[str, Any] = {
            "target": link.describe(),
            "state": asdict(coordinator.supervisor.state),
            "messages": coordinator.messages,
        }
        if isinstance(link, MqttLink):
            report["counters"] = asdict(link.counters)
            report["subscriptions"] = len(link.filters)
            # A message published before the broker acknowledged a subscription is lost.
            report["awaiting_acknowledgement"] = link.awaiting_acknowledgement
            report["refused_subscriptions"] = len(link.rejected_filters)
        else:
            report["radio"] = asdict(link.info)
            report["bad_frames"] = link.bad_frames
            report["skipped_bytes"] = link.skipped_bytes
            report["restarts"] = link.restarts
        links[kind] = report
    mesh_report: dict[str, Any] | None = None
    if (mesh := runtime.mesh) is not None:
        topology = mesh.state.topology(time.time())
        nodes = mesh.state.nodes
        mesh_report = {
            "decoder": asdict(mesh.decoder.counters),
            "tracked_nodes": len(mesh.tracked),
            "evicted": {"nodes": mesh.state.evicted_nodes, "links": mesh.state.evicted_links},
            "topology": {
                "nodes": [
                    {
                        **async_redact_data(node, NODE_POSITION),
                        # Which gateways upload a node's packets tells why it is (not) heard.
                        "heard_by": heard_by(nodes, node["id"]),
                    }
                    for node in topology["nodes"]
                ],
                "links": topology["links"],
            },
        }
    return {"mesh": mesh_report, "links": links}
