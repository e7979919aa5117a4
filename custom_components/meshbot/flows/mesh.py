"""The mesh collector's config steps and options, and the options of the mesh's nodes.

The broker step checks its broker with one connection; reauthentication asks for new
credentials of the same broker. The node options (which nodes become devices, how long they are
kept) apply to any entry that keeps a picture of the mesh, from a radio or a broker.
"""

from __future__ import annotations

from collections.abc import Mapping
import os
from typing import Any

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.helpers import selector
import voluptuous as vol

from ..const import (
    CONF_ACTIVE_MINUTES,
    CONF_CA_CERT,
    CONF_CHANNEL_KEYS,
    CONF_LINK_MAX_AGE_HOURS,
    CONF_MAX_TRACKED_NODES,
    CONF_MESH,
    CONF_MESH_TOPICS,
    CONF_NODE_MAX_AGE_HOURS,
    CONF_NODE_POLICY,
    CONF_NODE_RADIUS_KM,
    CONF_RADIO,
    CONF_TLS,
    CONF_TRACK_POSITIONS,
    CONF_TRACKED_NODES,
    CONF_VERIFY_TLS,
    DEFAULT_ACTIVE_MINUTES,
    DEFAULT_CHANNEL_KEYS,
    DEFAULT_LINK_MAX_AGE_HOURS,
    DEFAULT_MAX_TRACKED_NODES,
    DEFAULT_MESH_HOST,
    DEFAULT_MESH_PASSWORD,
    DEFAULT_MESH_TOPICS,
    DEFAULT_MESH_USERNAME,
    DEFAULT_MQTT_PORT,
    DEFAULT_NODE_MAX_AGE_HOURS,
    DEFAULT_NODE_POLICY,
    DEFAULT_NODE_RADIUS_KM,
    DEFAULT_TRACK_POSITIONS,
    NODE_POLICIES,
)
from ..mesh.channels import ChannelKeyError, format_channel_keys, parse_channel_keys
from ..mesh.models import parse_node_id
from . import fields
from .base import LinkFlow
from .fields import FieldError, OptionsPart

MAX_TOPIC_BYTES = 1024
# Numeric node options: (minimum, maximum, unit).
NODE_NUMBER_OPTIONS = {
    CONF_NODE_RADIUS_KM: (0, 20000, "km"),
    CONF_MAX_TRACKED_NODES: (0, 1000, None),
    CONF_ACTIVE_MINUTES: (5, 10080, "min"),
    CONF_NODE_MAX_AGE_HOURS: (1, 720, "h"),
    CONF_LINK_MAX_AGE_HOURS: (1, 720, "h"),
}
NODE_NUMBER_DEFAULTS = {
    CONF_NODE_RADIUS_KM: DEFAULT_NODE_RADIUS_KM,
    CONF_MAX_TRACKED_NODES: DEFAULT_MAX_TRACKED_NODES,
    CONF_ACTIVE_MINUTES: DEFAULT_ACTIVE_MINUTES,
    CONF_NODE_MAX_AGE_HOURS: DEFAULT_NODE_MAX_AGE_HOURS,
    CONF_LINK_MAX_AGE_HOURS: DEFAULT_LINK_MAX_AGE_HOURS,
}
NODE_INTEGER_OPTIONS = frozenset({CONF_MAX_TRACKED_NODES})


def parse_topics(text: str) -> list[str]:
    """Return the root topics of a comma or line separated list; raise ValueError."""
    topics = [part.strip(" /\t") for part in text.replace(",", "\n").splitlines()]
    topics = [topic for topic in topics if topic]
    if not topics:
        raise ValueError("no topic")
    for topic in topics:
        if (
            any(ch in "+#" or not ch.isprintable() for ch in topic)
            or "//" in topic
            or len(topic.encode(errors="replace")) > MAX_TOPIC_BYTES
        ):
            raise ValueError(topic)
    return list(dict.fromkeys(topics))


def topics(value: Any) -> list[str]:
    """Return the root topics the form lists; raise FieldError."""
    try:
        return parse_topics(value if isinstance(value, str) else "")
    except (ValueError, UnicodeError):
        raise FieldError("invalid_topic") from None


def channel_keys(value: Any) -> dict[str, str]:
    """Return the channel keys the form lists; raise FieldError."""
    if not isinstance(value, str):
        raise FieldError("invalid_channel_key")
    try:
        return parse_channel_keys(value)
    except ChannelKeyError:
        raise FieldError("invalid_channel_key") from None


def username(value: Any) -> str:
    """Return a broker user name; raise FieldError."""
    return fields.mqtt_text(value, "invalid_username")


def password(value: Any) -> str:
    """Return a broker password; raise FieldError."""
    return fields.mqtt_text(value, "invalid_password")


def ca_cert(value: Any) -> str:
    """Return the path of a certificate authority file; raise FieldError."""
    return fields.path(value, "invalid_ca_cert")


BROKER_CHECKS = {
    CONF_HOST: fields.host,
    CONF_PORT: fields.port,
    CONF_USERNAME: username,
    CONF_PASSWORD: password,
    CONF_TLS: fields.boolean,
    CONF_VERIFY_TLS: fields.boolean,
    CONF_CA_CERT: ca_cert,
}
BROKER_OPTIONAL = frozenset({CONF_USERNAME, CONF_PASSWORD, CONF_CA_CERT})
CREDENTIAL_CHECKS = {CONF_USERNAME: username, CONF_PASSWORD: password}
TOPIC_CHECKS = {CONF_MESH_TOPICS: topics, CONF_CHANNEL_KEYS: channel_keys}


class MeshSteps(LinkFlow):
    """Configure the mesh broker, its root topics and channel keys; renew its credentials."""

    async def async_step_mesh(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Configure the Meshtastic MQTT broker, its root topics and channel keys."""
        errors: dict[str, str] = {}
        if user_input is not None:
            # An emptied optional field means "none", as if it had never been filled.
            given = {key: value for key, value in user_input.items() if value != ""}
            section = fields.read(given, BROKER_CHECKS, errors, optional=BROKER_OPTIONAL)
            checked = fields.read({CONF_CHANNEL_KEYS: "", **given}, TOPIC_CHECKS, errors)
            if CONF_CA_CERT in section and not await self.hass.async_add_executor_job(
                os.path.isfile, section[CONF_CA_CERT]
            ):
                errors[CONF_CA_CERT] = "invalid_ca_cert"
            if not errors:
                await self._check_broker(CONF_MESH, section, errors)
            if not errors:
                self._data[CONF_MESH] = section
                self._options.update(checked)
                return self._menu()
        schema = vol.Schema(
            {
                vol.Required(CONF_HOST, default=DEFAULT_MESH_HOST): str,
                vol.Required(CONF_PORT, default=DEFAULT_MQTT_PORT): fields.PORT,
                vol.Optional(CONF_USERNAME): str,
                vol.Optional(CONF_PASSWORD): fields.PASSWORD,
                vol.Required(CONF_TLS, default=False): bool,
                vol.Required(CONF_VERIFY_TLS, default=True): bool,
                vol.Optional(CONF_CA_CERT): str,
                vol.Required(CONF_MESH_TOPICS): fields.TEXT_MULTILINE,
                vol.Optional(CONF_CHANNEL_KEYS): fields.TEXT_MULTILINE,
            }
        )
        current = self._data.get(CONF_MESH)
        if user_input is not None:
            suggested = user_input
        elif current is not None:
            suggested = {**current, **_topic_texts(self._options)}
        else:
            suggested = {
                CONF_USERNAME: DEFAULT_MESH_USERNAME,
                CONF_PASSWORD: DEFAULT_MESH_PASSWORD,
                CONF_MESH_TOPICS: "\n".join(DEFAULT_MESH_TOPICS),
                CONF_CHANNEL_KEYS: format_channel_keys(DEFAULT_CHANNEL_KEYS),
            }
        return self.async_show_form(
            step_id="mesh",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Ask for new broker credentials after the broker rejected the stored ones."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Check and store the new mesh broker credentials."""
        entry = self._get_reauth_entry()
        mesh = dict(entry.data[CONF_MESH])
        errors: dict[str, str] = {}
        if user_input is not None:
            given = {CONF_USERNAME: "", CONF_PASSWORD: "", **user_input}
            mesh.update(fields.read(given, CREDENTIAL_CHECKS, errors))
            if not errors:
                await self._check_broker(CONF_MESH, mesh, errors)
            if not errors:
                return self.async_update_reload_and_abort(entry, data_updates={CONF_MESH: mesh})
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_USERNAME): str,
                        vol.Optional(CONF_PASSWORD): fields.PASSWORD,
                    }
                ),
                {CONF_USERNAME: mesh.get(CONF_USERNAME, "")},
            ),
            description_placeholders={"host": mesh[CONF_HOST]},
            errors=errors,
        )


def _topic_texts(options: Mapping[str, Any]) -> dict[str, str]:
    """Return the stored topics and keys as the lines the user edits."""
    return {
        CONF_MESH_TOPICS: "\n".join(options.get(CONF_MESH_TOPICS, DEFAULT_MESH_TOPICS)),
        CONF_CHANNEL_KEYS: format_channel_keys(options.get(CONF_CHANNEL_KEYS, {})),
    }


def _broker_fields() -> dict[Any, Any]:
    return {
        vol.Required(CONF_MESH_TOPICS): fields.TEXT_MULTILINE,
        vol.Optional(CONF_CHANNEL_KEYS): fields.TEXT_MULTILINE,
    }


def _read_broker_options(user_input: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    return fields.read({CONF_CHANNEL_KEYS: "", **user_input}, TOPIC_CHECKS, errors)


def tracked_nodes(value: Any) -> list[str]:
    """Return the node ids of the 'chosen nodes' list; raise FieldError."""
    chosen = [text.lower() for text in fields.text_list(value)]
    if any(parse_node_id(text) is None for text in chosen):
        raise FieldError("invalid_node_id")
    return chosen


def node_policy(value: Any) -> str:
    """Return one of the node policies; raise FieldError."""
    if value not in NODE_POLICIES:
        raise FieldError("invalid_node_policy")
    return str(value)


NODE_CHECKS = {
    CONF_NODE_POLICY: node_policy,
    CONF_TRACKED_NODES: tracked_nodes,
    CONF_TRACK_POSITIONS: fields.boolean,
    **fields.number_checks(NODE_NUMBER_OPTIONS, NODE_INTEGER_OPTIONS),
}


def _node_fields() -> dict[Any, Any]:
    return {
        vol.Required(CONF_NODE_POLICY, default=DEFAULT_NODE_POLICY): selector.SelectSelector(
            selector.SelectSelectorConfig(options=NODE_POLICIES, translation_key=CONF_NODE_POLICY)
        ),
        vol.Optional(CONF_TRACKED_NODES): selector.TextSelector(
            selector.TextSelectorConfig(multiple=True)
        ),
        vol.Required(CONF_TRACK_POSITIONS, default=DEFAULT_TRACK_POSITIONS): bool,
        **fields.number_fields(NODE_NUMBER_OPTIONS, NODE_NUMBER_DEFAULTS),
    }


def _node_suggestions(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        CONF_NODE_POLICY: options.get(CONF_NODE_POLICY, DEFAULT_NODE_POLICY),
        CONF_TRACKED_NODES: options.get(CONF_TRACKED_NODES, []),
        CONF_TRACK_POSITIONS: options.get(CONF_TRACK_POSITIONS, DEFAULT_TRACK_POSITIONS),
        **{key: options.get(key, NODE_NUMBER_DEFAULTS[key]) for key in NODE_NUMBER_OPTIONS},
    }


def _read_node_options(user_input: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    return fields.read({CONF_TRACKED_NODES: [], **user_input}, NODE_CHECKS, errors)


BROKER_OPTIONS = OptionsPart(
    applies=lambda data: CONF_MESH in data,
    fields=_broker_fields,
    suggested=_topic_texts,
    read=_read_broker_options,
)
NODE_OPTIONS = OptionsPart(
    applies=lambda data: CONF_RADIO in data or CONF_MESH in data,
    fields=_node_fields,
    suggested=_node_suggestions,
    read=_read_node_options,
)
