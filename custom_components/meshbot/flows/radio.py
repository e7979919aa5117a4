"""The radio's config steps: over TCP, on a USB serial port, and discovered on either."""

from __future__ import annotations

from dataclasses import replace
import glob
import os
from typing import Any

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers import selector
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import voluptuous as vol

from ..const import (
    CONF_CONNECTION,
    CONF_DEVICE,
    CONF_RADIO,
    CONNECTION_SERIAL,
    CONNECTION_TCP,
    DEFAULT_RADIO_PORT,
)
from ..lazy import MESH_PROTOCOL
from ..links.stream import RadioLink
from ..settings import radio_settings
from . import fields
from .base import LinkFlow, entry_title, link_identity

SERIAL_BY_ID = "/dev/serial/by-id/*"
TCP_CHECKS = {CONF_HOST: fields.host, CONF_PORT: fields.port}


def device_path(value: Any) -> str:
    """Return a serial device path; raise FieldError."""
    return fields.path(value, "invalid_device")


def serial_by_id(device: str) -> str:
    """Return the /dev/serial/by-id/ name of a device: it survives re-plugging (blocking)."""
    real = os.path.realpath(device)
    for candidate in sorted(glob.glob(SERIAL_BY_ID)):
        if os.path.realpath(candidate) == real:
            return candidate
    return device


class RadioSteps(LinkFlow):
    """Configure the radio: the address or device, checked by one handshake."""

    def __init__(self) -> None:
        """Start with no radio discovered."""
        super().__init__()
        self._discovered: dict[str, Any] = {}

    async def _check_radio(self, section: dict[str, Any]) -> dict[str, str]:
        if self._taken(CONF_RADIO, section):
            return {"base": "link_in_use"}
        link = RadioLink(replace(radio_settings(section), want_nodes=False))
        if error := await self._probe(link, MESH_PROTOCOL):
            return {"base": error}
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
            section = {
                CONF_CONNECTION: CONNECTION_TCP,
                **fields.read(user_input, TCP_CHECKS, errors),
            }
            if not errors and not (errors := await self._check_radio(section)):
                self._data[CONF_RADIO] = section
                return self._menu()
        current = self._data.get(CONF_RADIO, {})
        schema = vol.Schema(
            {
                vol.Required(CONF_HOST): str,
                vol.Required(CONF_PORT, default=DEFAULT_RADIO_PORT): fields.PORT,
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
            checked = fields.read(user_input, {CONF_DEVICE: device_path}, errors)
            section = {CONF_CONNECTION: CONNECTION_SERIAL, **checked}
            if not errors and not (errors := await self._check_radio(section)):
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
