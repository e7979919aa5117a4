"""What every link's config steps share: the entry being built, the menu, the link checks.

Each link kind keeps its steps in its own module (`radio.py`, `mesh.py`, `lightning.py`) as a
mixin of `LinkFlow`; `config_flow.py` puts them together with the menu's own steps.
"""

from __future__ import annotations

from collections.abc import Mapping
import logging
from typing import Any

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigFlow,
    ConfigFlowResult,
)
from homeassistant.const import CONF_ADDRESS, CONF_HOST, CONF_PORT

from ..const import (
    CONF_CONNECTION,
    CONF_DEVICE,
    CONF_LIGHTNING,
    CONF_MESH,
    CONF_RADIO,
    CONNECTION_BLUETOOTH,
    CONNECTION_SERIAL,
    CONNECTION_TCP,
    VALIDATION_TIMEOUT,
)
from ..errors import form_error
from ..lazy import MQTT_CLIENT, async_import
from ..links.errors import LinkError
from ..links.mqtt import MqttLink
from ..links.probe import probe
from ..links.supervisor import Link
from ..settings import mqtt_settings

_LOGGER = logging.getLogger(__package__)
MENU_FINISH = "finish"
MENU_ADD_LINKS = "add_links"
MENU_REMOVE = "remove_links"
LINK_SECTIONS = (CONF_RADIO, CONF_MESH, CONF_LIGHTNING)


def link_identity(section_name: str, section: Mapping[str, Any]) -> tuple[Any, ...]:
    """Return what makes a link the same link in two entries."""
    if section_name == CONF_RADIO:
        if section.get(CONF_CONNECTION) == CONNECTION_SERIAL:
            return (CONNECTION_SERIAL, section.get(CONF_DEVICE))
        if section.get(CONF_CONNECTION) == CONNECTION_BLUETOOTH:
            return (CONNECTION_BLUETOOTH, section.get(CONF_ADDRESS, "").upper())
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
        where = (
            radio.get(CONF_HOST)
            or radio.get(CONF_ADDRESS)
            or radio.get(CONF_DEVICE, "").rsplit("/", 1)[-1]
        )
        parts.append(f"radio {where}")
    if mesh := data.get(CONF_MESH):
        parts.append(f"mesh {mesh[CONF_HOST]}")
    if CONF_LIGHTNING in data:
        parts.append("lightning")
    return "meshbot: " + ", ".join(parts)


def _ignore(_topic: str, _payload: bytes) -> None:
    """Drop messages that arrive during a connection check."""


class LinkFlow(ConfigFlow):
    """The entry being built and what each link's steps call: the menu and the checks."""

    def __init__(self) -> None:
        """Start with no link configured."""
        self._data: dict[str, Any] = {}
        self._options: dict[str, Any] = {}

    def _menu(self) -> ConfigFlowResult:
        """Return to the menu of links, which every link step ends in."""
        reconfigure = self.source == SOURCE_RECONFIGURE
        configured = self._configured()
        options = []
        if CONF_RADIO not in self._data or reconfigure:
            options += ["radio_tcp", "radio_serial", "radio_bluetooth"]
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

    async def _probe(self, link: Link, modules: tuple[str, ...]) -> str | None:
        """Connect a link once, bounded; return the form error, or None when it works.

        `modules`: what the link imports before it connects, loaded off the event loop first.
        """
        try:
            await async_import(self.hass, modules)
            await probe(link, VALIDATION_TIMEOUT)
        except LinkError as err:
            return form_error(err)
        except Exception:
            # A form must answer with an error, never a traceback; the log keeps the bug.
            _LOGGER.exception("Unexpected error while checking %s", link.describe())
            return "unknown"
        return None

    async def _check_broker(
        self, name: str, section: dict[str, Any], errors: dict[str, str]
    ) -> None:
        """Connect once to the broker of a section; put what went wrong in `errors`."""
        if self._taken(name, section):
            errors["base"] = "link_in_use"
            return
        link = MqttLink(mqtt_settings(section, f"meshbot-check-{self.flow_id[:8]}"), _ignore)
        if error := await self._probe(link, MQTT_CLIENT):
            errors["base"] = error
