"""The topology card is served to the frontend."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from custom_components.meshbot.frontend import CARD_URL
from meshbot_dev.entries import broker_section, entry_for


async def test_the_topology_card_is_served(
    hass: HomeAssistant, hass_client: Any, broker: Any
) -> None:
    assert await async_setup_component(hass, "http", {})
    entry = entry_for(mesh=broker_section(broker.port))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    client = await hass_client()
    response = await client.get(CARD_URL)
    assert response.status == 200
    body = await response.text()
    assert 'const CARD_TAG = "meshbot-topology-card"' in body
    assert "customElements.define(CARD_TAG, MeshbotTopologyCard)" in body
    assert "get_topology" in body, "the card reads the graph through the action"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_no_http_no_card_and_no_error(hass: HomeAssistant, broker: Any) -> None:
    entry = entry_for(mesh=broker_section(broker.port))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert "http" not in hass.config.components
    await hass.config_entries.async_unload(entry.entry_id)
