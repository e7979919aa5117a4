"""Config, reconfigure, reauthentication and options flows for meshbot.

One entry configures up to three links. The user adds them one at a time from a menu; every
step checks its link with one bounded connection attempt before it is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
import glob
import os
from typing import Any

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import (
    CONF_HOST,
    CONF_LATITUDE,
    CONF_LONGITUDE,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_USERNAME,
)
from homeassistant.core import callback
from homeassistant.helpers import selector
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import voluptuous as vol

from .const import (
    CONF_ACTIVE_MINUTES,
    CONF_ALERT_DISTANCE_KM,
    CONF_ALERT_MINUTES,
    CONF_ALERT_STRIKES,
    CONF_CA_CERT,
    CONF_CHANNEL_KEYS,
    CONF_CONNECTION,
    CONF_DEVICE,
    CONF_FOLLOW_ENTITY,
    CONF_LIGHTNING,
    CONF_LINK_MAX_AGE_HOURS,
    CONF_LOCATION,
    CONF_LOCATION_MODE,
    CONF_MAP_STRIKES,
    CONF_MAX_TRACKED_NODES,
    CONF_MESH,
    CONF_MESH_ALERT_TARGETS,
    CONF_MESH_TOPICS,
    CONF_NODE_MAX_AGE_HOURS,
    CONF_NODE_POLICY,
    CONF_NODE_RADIUS_KM,
    CONF_QUIET_MINUTES,
    CONF_RADIO,
    CONF_RADIUS_KM,
    CONF_TLS,
    CONF_TRACK_POSITIONS,
    CONF_TRACKED_NODES,
    CONF_VERIFY_TLS,
    CONF_WINDOW_MINUTES,
    CONNECTION_SERIAL,
    CONNECTION_TCP,
    DEFAULT_ACTIVE_MINUTES,
    DEFAULT_ALERT_DISTANCE_KM,
    DEFAULT_ALERT_MINUTES,
    DEFAULT_ALERT_STRIKES,
    DEFAULT_CHANNEL_KEYS,
    DEFAULT_LIGHTNING_HOST,
    DEFAULT_LINK_MAX_AGE_HOURS,
    DEFAULT_MAP_STRIKES,
    DEFAULT_MAX_TRACKED_NODES,
    DEFAULT_MESH_HOST,
    DEFAULT_MESH_PASSWORD,
    DEFAULT_MESH_TOPICS,
    DEFAULT_MESH_USERNAME,
    DEFAULT_MQTT_PORT,
    DEFAULT_NODE_MAX_AGE_HOURS,
    DEFAULT_NODE_POLICY,
    DEFAULT_NODE_RADIUS_KM,
    DEFAULT_QUIET_MINUTES,
    DEFAULT_RADIO_PORT,
    DEFAULT_RADIUS_KM,
    DEFAULT_TRACK_POSITIONS,
    DEFAULT_WINDOW_MINUTES,
    DOMAIN,
    LOCATION_ENTITY,
    LOCATION_FIXED,
    LOCATION_HOME,
    MAX_MAP_STRIKES,
    MAX_RADIUS_KM,
    NODE_POLICIES,
    VALIDATION_TIMEOUT,
)
from .errors import form_error
from .links.errors import LinkError
from .links.mqtt import MqttLink
from .links.probe import probe
from .links.stream import RadioLink
from .mesh.channels import ChannelKeyError, format_channel_keys, parse_channel_keys
from .mesh.models import parse_node_id
from .settings import mqtt_settings, parse_target, radio_settings

SERIAL_BY_ID = "/dev/serial/by-id/*"
MENU_FINISH = "finish"
MENU_ADD_LINKS = "add_links"
MENU_REMOVE = "remove_links"
LINK_SECTIONS = (CONF_RADIO, CONF_MESH, CONF_LIGHTNING)
LINK_OPTIONS = {
    CONF_RADIO: (),
    CONF_MESH: (CONF_MESH_TOPICS, CONF_CHANNEL_KEYS),
    CONF_LIGHTNING: (CONF_RADIUS_KM,),
}

TEXT_MULTILINE = selector.TextSelector(selector.TextSelectorConfig(multiline=True))
PASSWORD = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
PORT = vol.All(
    selector.NumberSelector(
        selector.NumberSelectorConfig(min=1, max=65535, mode=selector.NumberSelectorMode.BOX)
    ),
    vol.Coerce(int),
)


# Numeric mesh options: (minimum, maximum, unit).
MESH_NUMBER_OPTIONS = {
    CONF_NODE_RADIUS_KM: (0, 20000, "km"),
    CONF_MAX_TRACKED_NODES: (0, 1000, None),
    CONF_ACTIVE_MINUTES: (5, 10080, "min"),
    CONF_NODE_MAX_AGE_HOURS: (1, 720, "h"),
    CONF_LINK_MAX_AGE_HOURS: (1, 720, "h"),
}
LIGHTNING_NUMBER_OPTIONS = {
    CONF_WINDOW_MINUTES: (5, 240, "min"),
    CONF_ALERT_DISTANCE_KM: (1, 500, "km"),
    CONF_ALERT_STRIKES: (1, 100, None),
    CONF_ALERT_MINUTES: (1, 120, "min"),
    CONF_QUIET_MINUTES: (1, 240, "min"),
    CONF_MAP_STRIKES: (0, MAX_MAP_STRIKES, None),
}
LIGHTNING_NUMBER_DEFAULTS = {
    CONF_WINDOW_MINUTES: DEFAULT_WINDOW_MINUTES,
    CONF_ALERT_DISTANCE_KM: DEFAULT_ALERT_DISTANCE_KM,
    CONF_ALERT_STRIKES: DEFAULT_ALERT_STRIKES,
    CONF_ALERT_MINUTES: DEFAULT_ALERT_MINUTES,
    CONF_QUIET_MINUTES: DEFAULT_QUIET_MINUTES,
    CONF_MAP_STRIKES: DEFAULT_MAP_STRIKES,
}
# Counts are whole numbers; everything else is stored as a float.
INTEGER_OPTIONS = {CONF_MAX_TRACKED_NODES, CONF_ALERT_STRIKES, CONF_MAP_STRIKES}
MESH_NUMBER_DEFAULTS = {
    CONF_NODE_RADIUS_KM: DEFAULT_NODE_RADIUS_KM,
    CONF_MAX_TRACKED_NODES: DEFAULT_MAX_TRACKED_NODES,
    CONF_ACTIVE_MINUTES: DEFAULT_ACTIVE_MINUTES,
    CONF_NODE_MAX_AGE_HOURS: DEFAULT_NODE_MAX_AGE_HOURS,
    CONF_LINK_MAX_AGE_HOURS: DEFAULT_LINK_MAX_AGE_HOURS,
}


def has_mesh_state(data: Mapping[str, Any]) -> bool:
    """Return whether an entry keeps a picture of the mesh (from a radio or a broker)."""
    return CONF_RADIO in data or CONF_MESH in data


def serial_by_id(device: str) -> str:
    """Return the /dev/serial/by-id/ name of a device: it survives re-plugging (blocking)."""
    real = os.path.realpath(device)
    for candidate in sorted(glob.glob(SERIAL_BY_ID)):
        if os.path.realpath(candidate) == real:
            return candidate
    return device


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
            or len(topic.encode()) > 1024
        ):
            raise ValueError(topic)
    return list(dict.fromkeys(topics))


def link_identity(section_name: str, section: Mapping[str, Any]) -> tuple[Any, ...]:
    """Return what makes a link the same link in two entries."""
    if section_name == CONF_RADIO:
        if section.get(CONF_CONNECTION) == CONNECTION_SERIAL:
            return (CONNECTION_SERIAL, section.get(CONF_DEVICE))
        return (
            CONNECTION_TCP,
            section.get(CONF_HOST, "").lower(),
            section.get(CONF_PORT),
        )
    return (section.get(CONF_HOST, "").lower(), section.get(CONF_PORT))


def entry_title(data: Mapping[str, Any]) -> str:
    """Name the entry after what it connects to, never after coordinates."""
    parts = []
    if radio := data.get(CONF_RADIO):
        parts.append(
            f"radio {radio.get(CONF_HOST) or radio.get(CONF_DEVICE, '').rsplit('/', 1)[-1]}"
        )
    if mesh := data.get(CONF_MESH):
        parts.append(f"mesh {mesh[CONF_HOST]}")
    if CONF_LIGHTNING in data:
        parts.append("lightning")
    return "meshbot: " + ", ".join(parts)


class MeshbotConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add links one by one from a menu, then create (or update) the entry."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with no link configured."""
        self._data: dict[str, Any] = {}
        self._discovered: dict[str, Any] = {}
        self._options: dict[str, Any] = {}
        self._lightning_pending: dict[str, Any] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> MeshbotOptionsFlow:
        """Return the options flow."""
        return MeshbotOptionsFlow()

    # Menus

    def _menu(self) -> ConfigFlowResult:
        reconfigure = self.source == SOURCE_RECONFIGURE
        configured = self._configured()
        options = []
        if CONF_RADIO not in self._data or reconfigure:
            options += ["radio_tcp", "radio_serial"]
        options += [
            name for name in (CONF_MESH, CONF_LIGHTNING) if name not in self._data or reconfigure
        ]
        if reconfigure and len(configured) > 1:
            options.append(MENU_REMOVE)
        if not configured:
            # A new entry has nothing to list: its own menu text says so in every language,
            # which a placeholder (never translated) could not.
            return self.async_show_menu(step_id="user", menu_options=options)
        options.append(MENU_FINISH)
        return self.async_show_menu(
            step_id="reconfigure" if reconfigure else MENU_ADD_LINKS,
            menu_options=options,
            description_placeholders={"configured": ", ".join(configured)},
        )

    def _configured(self) -> list[str]:
        return [name for name in LINK_SECTIONS if name in self._data]

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the menu of links to add."""
        return self._menu()

    # The menu once a link is configured has its own text; Home Assistant wants a step of the
    # menu's name, though it only ever calls the steps the menu offers.
    async_step_add_links = async_step_user

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the menu of links to change, starting from the entry's settings."""
        entry = self._get_reconfigure_entry()
        self._data = {key: dict(value) for key, value in entry.data.items()}
        self._options = dict(entry.options)
        return self._menu()

    async def async_step_finish(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Create the entry, or save the reconfigured one and reload it."""
        if self.source == SOURCE_RECONFIGURE:
            entry = self._get_reconfigure_entry()
            if self._duplicate(exclude=entry.entry_id):
                return self.async_abort(reason="already_configured")
            return self.async_update_reload_and_abort(
                entry,
                title=entry_title(self._data),
                data=self._data,
                options=self._options,
            )
        if self._duplicate():
            return self.async_abort(reason="already_configured")
        return self.async_create_entry(
            title=entry_title(self._data), data=self._data, options=self._options
        )

    async def async_step_remove_links(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Remove links from the entry being reconfigured."""
        if user_input is not None:
            remove = user_input.get("links", [])
            if len(remove) < len(self._configured()):
                for name in remove:
                    self._data.pop(name, None)
                    for option in LINK_OPTIONS[name]:
                        self._options.pop(option, None)
                return self._menu()
            errors = {"links": "keep_one_link"}
        else:
            errors = {}
        return self.async_show_form(
            step_id=MENU_REMOVE,
            data_schema=vol.Schema(
                {
                    vol.Optional("links", default=[]): selector.SelectSelector(
                        selector.SelectSelectorConfig(
                            options=self._configured(),
                            multiple=True,
                            translation_key="link",
                        )
                    )
                }
            ),
            errors=errors,
        )

    def _taken(self, name: str, section: Mapping[str, Any], exclude: str | None = None) -> bool:
        """Return whether another entry already runs this link."""
        if exclude is None and self.source == SOURCE_RECONFIGURE:
            exclude = self._get_reconfigure_entry().entry_id
        elif exclude is None and self.source == SOURCE_REAUTH:
            exclude = self._get_reauth_entry().entry_id
        identity = link_identity(name, section)
        node_num = section.get("node_num") if name == CONF_RADIO else None
        for entry in self._async_current_entries(include_ignore=False):
            other = entry.data.get(name)
            if entry.entry_id == exclude or other is None:
                continue
            if link_identity(name, other) == identity or (
                node_num is not None and other.get("node_num") == node_num
            ):
                return True
        return False

    def _duplicate(self, exclude: str | None = None) -> bool:
        return any(
            self._taken(name, self._data[name], exclude)
            for name in LINK_SECTIONS
            if name in self._data
        )

    # Radio

    async def _check_radio(self, section: dict[str, Any]) -> dict[str, str]:
        if self._taken(CONF_RADIO, section):
            return {"base": "link_in_use"}
        link = RadioLink(replace(radio_settings(section), want_nodes=False))
        try:
            await probe(link, VALIDATION_TIMEOUT)
        except LinkError as err:
            return {"base": form_error(err)}
        section["node_num"] = link.info.node_num
        # The same radio may be reachable under another address; its node number tells.
        if self._taken(CONF_RADIO, section):
            return {"base": "link_in_use"}
        return {}

    async def async_step_radio_tcp(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Configure a radio reached over TCP."""
        errors: dict[str, str] = {}
        if user_input is not None:
            section = {CONF_CONNECTION: CONNECTION_TCP, **user_input}
            if not (errors := await self._check_radio(section)):
                self._data[CONF_RADIO] = section
                return self._menu()
        current = self._data.get(CONF_RADIO, {})
        schema = vol.Schema(
            {
                vol.Required(CONF_HOST): str,
                vol.Required(CONF_PORT, default=DEFAULT_RADIO_PORT): PORT,
            }
        )
        suggested = user_input or (
            current if current.get(CONF_CONNECTION) == CONNECTION_TCP else {}
        )
        return self.async_show_form(
            step_id="radio_tcp",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    async def async_step_radio_serial(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Configure a radio on a USB serial port."""
        errors: dict[str, str] = {}
        if user_input is not None:
            section = {CONF_CONNECTION: CONNECTION_SERIAL, **user_input}
            if not (errors := await self._check_radio(section)):
                self._data[CONF_RADIO] = section
                return self._menu()
        ports = sorted(await self.hass.async_add_executor_job(glob.glob, SERIAL_BY_ID))
        schema = vol.Schema(
            {
                vol.Required(CONF_DEVICE): selector.SelectSelector(
                    selector.SelectSelectorConfig(options=ports, custom_value=True)
                )
            }
        )
        current = self._data.get(CONF_RADIO, {})
        suggested = user_input or (
            current if current.get(CONF_CONNECTION) == CONNECTION_SERIAL else {}
        )
        return self.async_show_form(
            step_id="radio_serial",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    # Mesh collector

    async def _check_broker(
        self, name: str, section: dict[str, Any], errors: dict[str, str]
    ) -> None:
        if self._taken(name, section):
            errors["base"] = "link_in_use"
            return
        link = MqttLink(mqtt_settings(section, f"meshbot-check-{self.flow_id[:8]}"), _ignore)
        try:
            await probe(link, VALIDATION_TIMEOUT)
        except LinkError as err:
            errors["base"] = form_error(err)

    async def async_step_mesh(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Configure the Meshtastic MQTT broker, its root topics and channel keys."""
        errors: dict[str, str] = {}
        if user_input is not None:
            section = {key: value for key, value in user_input.items() if value != ""}
            topics_text = section.pop(CONF_MESH_TOPICS, "")
            keys_text = section.pop(CONF_CHANNEL_KEYS, "")
            try:
                topics = parse_topics(topics_text)
            except ValueError:
                errors[CONF_MESH_TOPICS] = "invalid_topic"
            try:
                keys = parse_channel_keys(keys_text)
            except ChannelKeyError:
                errors[CONF_CHANNEL_KEYS] = "invalid_channel_key"
            if not errors:
                await self._check_broker(CONF_MESH, section, errors)
            if not errors:
                self._data[CONF_MESH] = section
                self._options[CONF_MESH_TOPICS] = topics
                self._options[CONF_CHANNEL_KEYS] = keys
                return self._menu()
        schema = vol.Schema(
            {
                vol.Required(CONF_HOST, default=DEFAULT_MESH_HOST): str,
                vol.Required(CONF_PORT, default=DEFAULT_MQTT_PORT): PORT,
                vol.Optional(CONF_USERNAME): str,
                vol.Optional(CONF_PASSWORD): PASSWORD,
                vol.Required(CONF_TLS, default=False): bool,
                vol.Required(CONF_VERIFY_TLS, default=True): bool,
                vol.Optional(CONF_CA_CERT): str,
                vol.Required(CONF_MESH_TOPICS): TEXT_MULTILINE,
                vol.Optional(CONF_CHANNEL_KEYS): TEXT_MULTILINE,
            }
        )
        current = self._data.get(CONF_MESH)
        if user_input is not None:
            suggested = user_input
        elif current is not None:
            suggested = {
                **current,
                CONF_MESH_TOPICS: "\n".join(self._options.get(CONF_MESH_TOPICS, [])),
                CONF_CHANNEL_KEYS: format_channel_keys(self._options.get(CONF_CHANNEL_KEYS, {})),
            }
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

    # Lightning monitor

    async def async_step_lightning(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Configure the Blitzortung relay, the radius and where to watch."""
        errors: dict[str, str] = {}
        if user_input is not None:
            section = {
                CONF_HOST: user_input[CONF_HOST],
                CONF_PORT: user_input[CONF_PORT],
                CONF_LOCATION_MODE: user_input[CONF_LOCATION_MODE],
            }
            await self._check_broker(CONF_LIGHTNING, section, errors)
            if not errors:
                self._lightning_pending = section
                self._options[CONF_RADIUS_KM] = float(user_input[CONF_RADIUS_KM])
                if section[CONF_LOCATION_MODE] == LOCATION_FIXED:
                    return await self.async_step_lightning_location()
                if section[CONF_LOCATION_MODE] == LOCATION_ENTITY:
                    return await self.async_step_lightning_entity()
                self._data[CONF_LIGHTNING] = section
                return self._menu()
        current = self._data.get(CONF_LIGHTNING, {})
        schema = vol.Schema(
            {
                vol.Required(CONF_LOCATION_MODE, default=LOCATION_HOME): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[LOCATION_HOME, LOCATION_FIXED, LOCATION_ENTITY],
                        translation_key=CONF_LOCATION_MODE,
                    )
                ),
                vol.Required(CONF_RADIUS_KM, default=DEFAULT_RADIUS_KM): selector.NumberSelector(
                    selector.NumberSelectorConfig(
                        min=1,
                        max=MAX_RADIUS_KM,
                        step=1,
                        unit_of_measurement="km",
                        mode=selector.NumberSelectorMode.BOX,
                    )
                ),
                vol.Required(CONF_HOST, default=DEFAULT_LIGHTNING_HOST): str,
                vol.Required(CONF_PORT, default=DEFAULT_MQTT_PORT): PORT,
            }
        )
        suggested = user_input or {
            **current,
            CONF_RADIUS_KM: self._options.get(CONF_RADIUS_KM, DEFAULT_RADIUS_KM),
        }
        return self.async_show_form(
            step_id="lightning",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    async def async_step_lightning_location(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick fixed coordinates to watch."""
        if user_input is not None:
            location = user_input[CONF_LOCATION]
            self._data[CONF_LIGHTNING] = {
                **self._lightning_pending,
                CONF_LOCATION: {
                    CONF_LATITUDE: location[CONF_LATITUDE],
                    CONF_LONGITUDE: location[CONF_LONGITUDE],
                },
            }
            return self._menu()
        current = self._data.get(CONF_LIGHTNING, {}).get(CONF_LOCATION) or {
            CONF_LATITUDE: self.hass.config.latitude,
            CONF_LONGITUDE: self.hass.config.longitude,
        }
        return self.async_show_form(
            step_id="lightning_location",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_LOCATION, default=current): selector.LocationSelector(
                        selector.LocationSelectorConfig(radius=False)
                    )
                }
            ),
        )

    async def async_step_lightning_entity(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick a person, device tracker or zone whose location to follow."""
        if user_input is not None:
            self._data[CONF_LIGHTNING] = {
                **self._lightning_pending,
                CONF_FOLLOW_ENTITY: user_input[CONF_FOLLOW_ENTITY],
            }
            return self._menu()
        schema = vol.Schema(
            {
                vol.Required(CONF_FOLLOW_ENTITY): selector.EntitySelector(
                    selector.EntitySelectorConfig(domain=["device_tracker", "person", "zone"])
                )
            }
        )
        return self.async_show_form(
            step_id="lightning_entity",
            data_schema=self.add_suggested_values_to_schema(
                schema, self._data.get(CONF_LIGHTNING, {})
            ),
        )

    # Discovery: a radio announced on the network or plugged in, confirmed by the user

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """Offer a Meshtastic node that announced its API on the network."""
        section = {
            CONF_CONNECTION: CONNECTION_TCP,
            CONF_HOST: discovery_info.host,
            CONF_PORT: discovery_info.port or DEFAULT_RADIO_PORT,
        }
        name = discovery_info.name.split(".", 1)[0]
        return await self._async_discovered(section, name or discovery_info.host)

    async def async_step_usb(self, discovery_info: UsbServiceInfo) -> ConfigFlowResult:
        """Offer a USB serial device that looks like a Meshtastic board."""
        device = await self.hass.async_add_executor_job(serial_by_id, discovery_info.device)
        section = {CONF_CONNECTION: CONNECTION_SERIAL, CONF_DEVICE: device}
        label = discovery_info.description or discovery_info.manufacturer or device
        return await self._async_discovered(section, label)

    async def _async_discovered(self, section: dict[str, Any], label: str) -> ConfigFlowResult:
        identity = link_identity(CONF_RADIO, section)
        await self.async_set_unique_id(f"radio:{':'.join(map(str, identity))}")
        self._abort_if_unique_id_configured()
        if self._taken(CONF_RADIO, section):
            return self.async_abort(reason="already_configured")
        self._discovered = section
        self.context["title_placeholders"] = {"name": label}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Connect to the discovered radio once the user agrees, then create the entry."""
        errors: dict[str, str] = {}
        if user_input is not None:
            section = dict(self._discovered)
            if not (errors := await self._check_radio(section)):
                self._data = {CONF_RADIO: section}
                return self.async_create_entry(title=entry_title(self._data), data=self._data)
        self._set_confirm_only()
        target = self._discovered.get(CONF_HOST) or self._discovered.get(CONF_DEVICE)
        return self.async_show_form(
            step_id="discovery_confirm",
            description_placeholders={"target": str(target)},
            errors=errors,
        )

    # Reauthentication

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
            mesh[CONF_USERNAME] = user_input[CONF_USERNAME]
            mesh[CONF_PASSWORD] = user_input.get(CONF_PASSWORD, "")
            await self._check_broker(CONF_MESH, mesh, errors)
            if not errors:
                return self.async_update_reload_and_abort(entry, data_updates={CONF_MESH: mesh})
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Required(CONF_USERNAME): str,
                        vol.Optional(CONF_PASSWORD): PASSWORD,
                    }
                ),
                {CONF_USERNAME: mesh.get(CONF_USERNAME, "")},
            ),
            description_placeholders={"host": mesh[CONF_HOST]},
            errors=errors,
        )


def _ignore(_topic: str, _payload: bytes) -> None:
    """Drop messages that arrive during a connection check."""


class MeshbotOptionsFlow(OptionsFlowWithReload):
    """Tune the links without new connection checks: topics, channel keys and radius."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the tunables of the links this entry has."""
        entry = self.config_entry
        options = dict(entry.options)
        errors: dict[str, str] = {}
        if user_input is not None:
            if CONF_MESH in entry.data:
                try:
                    options[CONF_MESH_TOPICS] = parse_topics(user_input[CONF_MESH_TOPICS])
                except ValueError:
                    errors[CONF_MESH_TOPICS] = "invalid_topic"
                try:
                    options[CONF_CHANNEL_KEYS] = parse_channel_keys(
                        user_input.get(CONF_CHANNEL_KEYS, "")
                    )
                except ChannelKeyError:
                    errors[CONF_CHANNEL_KEYS] = "invalid_channel_key"
            if CONF_LIGHTNING in entry.data:
                options[CONF_RADIUS_KM] = float(user_input[CONF_RADIUS_KM])
                for key in LIGHTNING_NUMBER_OPTIONS:
                    options[key] = _number(key, user_input[key])
                # A blank line the form's list leaves behind is no target, nor an error.
                typed = (text.strip() for text in user_input.get(CONF_MESH_ALERT_TARGETS, []))
                targets = [target for target in typed if target]
                if any(parse_target(target)[0] is None for target in targets):
                    errors[CONF_MESH_ALERT_TARGETS] = "invalid_target"
                options[CONF_MESH_ALERT_TARGETS] = targets
            if has_mesh_state(entry.data):
                chosen = [text.strip().lower() for text in user_input.get(CONF_TRACKED_NODES, [])]
                if any(parse_node_id(text) is None for text in chosen):
                    errors[CONF_TRACKED_NODES] = "invalid_node_id"
                options[CONF_TRACKED_NODES] = chosen
                options[CONF_NODE_POLICY] = user_input[CONF_NODE_POLICY]
                options[CONF_TRACK_POSITIONS] = user_input[CONF_TRACK_POSITIONS]
                for key in MESH_NUMBER_OPTIONS:
                    options[key] = _number(key, user_input[key])
            if not errors:
                return self.async_create_entry(data=options)
        fields: dict[Any, Any] = {}
        if CONF_MESH in entry.data:
            fields[vol.Required(CONF_MESH_TOPICS)] = TEXT_MULTILINE
            fields[vol.Optional(CONF_CHANNEL_KEYS)] = TEXT_MULTILINE
        if CONF_LIGHTNING in entry.data:
            fields[vol.Required(CONF_RADIUS_KM)] = selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=1,
                    max=MAX_RADIUS_KM,
                    step=1,
                    unit_of_measurement="km",
                    mode=selector.NumberSelectorMode.BOX,
                )
            )
        if CONF_LIGHTNING in entry.data:
            fields.update(_number_fields(LIGHTNING_NUMBER_OPTIONS, LIGHTNING_NUMBER_DEFAULTS))
            fields[vol.Optional(CONF_MESH_ALERT_TARGETS)] = selector.TextSelector(
                selector.TextSelectorConfig(multiple=True)
            )
        if has_mesh_state(entry.data):
            fields[vol.Required(CONF_NODE_POLICY, default=DEFAULT_NODE_POLICY)] = (
                selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=NODE_POLICIES, translation_key=CONF_NODE_POLICY
                    )
                )
            )
            fields[vol.Optional(CONF_TRACKED_NODES)] = selector.TextSelector(
                selector.TextSelectorConfig(multiple=True)
            )
            fields[vol.Required(CONF_TRACK_POSITIONS, default=DEFAULT_TRACK_POSITIONS)] = bool
            fields.update(_number_fields(MESH_NUMBER_OPTIONS, MESH_NUMBER_DEFAULTS))
        suggested = user_input or {
            CONF_MESH_TOPICS: "\n".join(options.get(CONF_MESH_TOPICS, DEFAULT_MESH_TOPICS)),
            CONF_CHANNEL_KEYS: format_channel_keys(options.get(CONF_CHANNEL_KEYS, {})),
            CONF_RADIUS_KM: options.get(CONF_RADIUS_KM, DEFAULT_RADIUS_KM),
            CONF_NODE_POLICY: options.get(CONF_NODE_POLICY, DEFAULT_NODE_POLICY),
            CONF_TRACKED_NODES: options.get(CONF_TRACKED_NODES, []),
            CONF_TRACK_POSITIONS: options.get(CONF_TRACK_POSITIONS, DEFAULT_TRACK_POSITIONS),
            CONF_MESH_ALERT_TARGETS: options.get(CONF_MESH_ALERT_TARGETS, []),
            **{key: options.get(key, MESH_NUMBER_DEFAULTS[key]) for key in MESH_NUMBER_OPTIONS},
            **{
                key: options.get(key, LIGHTNING_NUMBER_DEFAULTS[key])
                for key in LIGHTNING_NUMBER_OPTIONS
            },
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(vol.Schema(fields), suggested),
            errors=errors,
        )


def _number(key: str, value: float) -> float | int:
    return int(value) if key in INTEGER_OPTIONS else float(value)


def _number_fields(
    table: Mapping[str, tuple[float, float, str | None]], defaults: dict[str, float]
) -> dict[Any, Any]:
    """Return number-box form fields for a table of (minimum, maximum, unit)."""
    fields: dict[Any, Any] = {}
    for key, (minimum, maximum, unit) in table.items():
        config = selector.NumberSelectorConfig(
            min=minimum, max=maximum, step=1, mode=selector.NumberSelectorMode.BOX
        )
        if unit is not None:
            config["unit_of_measurement"] = unit
        fields[vol.Required(key, default=defaults[key])] = selector.NumberSelector(config)
    return fields
