"""The radio's config steps: over TCP, on a USB serial port, over Bluetooth, and discovered."""

from __future__ import annotations

from dataclasses import replace
import glob
import os
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import SOURCE_REAUTH, ConfigFlowResult
from homeassistant.const import CONF_ADDRESS, CONF_HOST, CONF_PIN, CONF_PORT
from homeassistant.helpers import selector
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
import voluptuous as vol

from ..ble import async_setup_bluetooth, ble_device_lookup
from ..const import (
    CONF_CONNECTION,
    CONF_DEVICE,
    CONF_RADIO,
    CONNECTION_BLUETOOTH,
    CONNECTION_SERIAL,
    CONNECTION_TCP,
    DEFAULT_RADIO_PORT,
)
from ..lazy import BLE_CLIENT, MESH_PROTOCOL
from ..links.stream import RadioLink
from ..settings import radio_settings
from . import fields
from .base import LinkFlow, entry_title, link_identity

if TYPE_CHECKING:
    from homeassistant.components.bluetooth import BluetoothServiceInfoBleak

SERIAL_BY_ID = "/dev/serial/by-id/*"
# The Meshtastic GATT service, which every node advertises (links/ble.py has the rest).
MESHTASTIC_SERVICE_UUID = "6ba1b218-15a8-461f-9fa8-5dcae273eafd"
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
        # A Bluetooth radio that asked for its PIN, and whether it came from discovery.
        self._pairing: dict[str, Any] = {}
        self._pairing_discovered = False

    async def _check_radio(self, section: dict[str, Any]) -> dict[str, str]:
        if self._taken(CONF_RADIO, section):
            return {"base": "link_in_use"}
        link = RadioLink(
            replace(radio_settings(section), want_nodes=False),
            ble_device=ble_device_lookup(self.hass, section),
        )
        modules: tuple[str, ...] = MESH_PROTOCOL
        if section.get(CONF_CONNECTION) == CONNECTION_BLUETOOTH:
            await async_setup_bluetooth(self.hass)
            modules += BLE_CLIENT
        if error := await self._probe(link, modules):
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

    async def async_step_radio_bluetooth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Configure a Meshtastic radio among the Bluetooth devices Home Assistant hears."""
        errors: dict[str, str] = {}
        await async_setup_bluetooth(self.hass)
        # The form only offers what it lists; one taken or gone since is caught by the check.
        if user_input is not None and (address := user_input.get(CONF_ADDRESS)):
            section = {CONF_CONNECTION: CONNECTION_BLUETOOTH, CONF_ADDRESS: address}
            if not (errors := await self._check_radio(section)):
                self._data[CONF_RADIO] = section
                return self._menu()
            if errors["base"] == "pin_required":
                return await self._async_ask_pin(section, discovered=False)
        radios = self._bluetooth_radios()
        if not radios:
            # Nothing to pick: submitting the empty form looks again.
            return self.async_show_form(
                step_id="radio_bluetooth", errors=errors or {"base": "no_bluetooth_radios"}
            )
        schema = vol.Schema(
            {
                vol.Required(CONF_ADDRESS): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[
                            selector.SelectOptionDict(value=address, label=label)
                            for address, label in radios.items()
                        ]
                    )
                )
            }
        )
        return self.async_show_form(
            step_id="radio_bluetooth",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
        )

    def _bluetooth_radios(self) -> dict[str, str]:
        """Return the Meshtastic radios Home Assistant hears and no entry holds, by address."""
        from homeassistant.components import bluetooth  # noqa: PLC0415

        radios: dict[str, str] = {}
        for info in bluetooth.async_discovered_service_info(self.hass, connectable=True):
            section = {CONF_CONNECTION: CONNECTION_BLUETOOTH, CONF_ADDRESS: info.address}
            if MESHTASTIC_SERVICE_UUID in info.service_uuids and not self._taken(
                CONF_RADIO, section
            ):
                radios[info.address] = f"{info.name} ({info.address})"
        return radios

    async def _async_ask_pin(self, section: dict[str, Any], discovered: bool) -> ConfigFlowResult:
        self._pairing = section
        self._pairing_discovered = discovered
        return await self.async_step_radio_bluetooth_pin()

    async def async_step_reauth_radio(self) -> ConfigFlowResult:
        """Ask again for the PIN of a Bluetooth radio that refused the stored one."""
        section = dict(self._get_reauth_entry().data[CONF_RADIO])
        section.pop(CONF_PIN, None)
        return await self._async_ask_pin(section, discovered=False)

    async def async_step_radio_bluetooth_pin(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the PIN of a Bluetooth radio that requires pairing, and pair with it."""
        errors: dict[str, str] = {}
        if user_input is not None:
            checked = fields.read(user_input, {CONF_PIN: fields.pin}, errors)
            section = {**self._pairing, **checked}
            if not errors and not (errors := await self._check_radio(section)):
                if self.source == SOURCE_REAUTH:
                    return self.async_update_reload_and_abort(
                        self._get_reauth_entry(), data_updates={CONF_RADIO: section}
                    )
                if self._pairing_discovered:
                    self._data = {CONF_RADIO: section}
                    return self.async_create_entry(title=entry_title(self._data), data=self._data)
                self._data[CONF_RADIO] = section
                return self._menu()
        return self.async_show_form(
            step_id="radio_bluetooth_pin",
            data_schema=vol.Schema({vol.Required(CONF_PIN): fields.PASSWORD}),
            description_placeholders={"address": self._pairing[CONF_ADDRESS]},
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

    async def async_step_bluetooth(
        self, discovery_info: BluetoothServiceInfoBleak
    ) -> ConfigFlowResult:
        """Offer a Meshtastic node that Home Assistant's Bluetooth heard advertising."""
        section = {CONF_CONNECTION: CONNECTION_BLUETOOTH, CONF_ADDRESS: discovery_info.address}
        return await self._async_discovered(section, discovery_info.name or discovery_info.address)

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
            if errors["base"] == "pin_required":
                return await self._async_ask_pin(section, discovered=True)
        self._set_confirm_only()
        discovered = self._discovered
        target = (
            discovered.get(CONF_HOST) or discovered.get(CONF_ADDRESS) or discovered.get(CONF_DEVICE)
        )
        return self.async_show_form(
            step_id="discovery_confirm",
            description_placeholders={"target": str(target)},
            errors=errors,
        )
