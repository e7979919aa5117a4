"""Config, reconfigure, reauthentication and options flows for meshbot.

One entry configures up to three links. The user adds them one at a time from a menu; every
step checks its link with one bounded connection attempt before it is accepted. Each link's
steps and options live with the link in `flows/`; this file puts them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.helpers import selector
import voluptuous as vol

from .const import (
    CONF_CHANNEL_KEYS,
    CONF_LIGHTNING,
    CONF_MESH,
    CONF_MESH_TOPICS,
    CONF_RADIO,
    CONF_RADIUS_KM,
    DOMAIN,
    LinkKind,
)
from .flows.base import MENU_REMOVE, entry_title
from .flows.lightning import LIGHTNING_OPTIONS, LightningSteps
from .flows.mesh import BROKER_OPTIONS, NODE_OPTIONS, MeshSteps
from .flows.radio import RadioSteps

# What a link leaves in the options, removed with it.
LINK_OPTIONS = {
    CONF_RADIO: (),
    CONF_MESH: (CONF_MESH_TOPICS, CONF_CHANNEL_KEYS),
    CONF_LIGHTNING: (CONF_RADIUS_KM,),
}
# In the order the options form shows them.
OPTIONS_PARTS = (BROKER_OPTIONS, LIGHTNING_OPTIONS, NODE_OPTIONS)


class MeshbotConfigFlow(RadioSteps, MeshSteps, LightningSteps, domain=DOMAIN):
    """Add links one by one from a menu, then create (or update) the entry."""

    VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> MeshbotOptionsFlow:
        """Return the options flow."""
        return MeshbotOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the menu of links to add."""
        return self._menu()

    # The menu once a link is configured has its own text; Home Assistant wants a step of the
    # menu's name, though it only ever calls the steps the menu offers.
    async_step_add_links = async_step_user

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Ask for what the link that refused the stored secret needs: a PIN or credentials."""
        if entry_data.get("link") == LinkKind.RADIO:
            return await self.async_step_reauth_radio()
        return await MeshSteps.async_step_reauth(self, entry_data)

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


class MeshbotOptionsFlow(OptionsFlowWithReload):
    """Tune the links without new connection checks: topics, channel keys, radius, nodes."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the tunables of the links this entry has."""
        entry = self.config_entry
        parts = [part for part in OPTIONS_PARTS if part.applies(entry.data)]
        options = dict(entry.options)
        errors: dict[str, str] = {}
        if user_input is not None:
            for part in parts:
                options.update(part.read(user_input, errors))
            if not errors:
                return self.async_create_entry(data=options)
        fields: dict[Any, Any] = {}
        suggested: dict[str, Any] = {}
        for part in parts:
            fields.update(part.fields())
            suggested.update(part.suggested(options))
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), user_input or suggested
            ),
            errors=errors,
        )
