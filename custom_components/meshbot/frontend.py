"""Serve the topology card to the Home Assistant frontend."""

from __future__ import annotations

from pathlib import Path

from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant

CARD_URL = "/meshbot_static/meshbot-topology-card.js"
CARD_PATH = Path(__file__).parent / "www" / "meshbot-topology-card.js"


async def async_register_card(hass: HomeAssistant) -> None:
    """Serve the card and have the frontend load it, when Home Assistant has a frontend."""
    if "http" not in hass.config.components:
        return
    await hass.http.async_register_static_paths(
        [StaticPathConfig(CARD_URL, str(CARD_PATH), cache_headers=True)]
    )
    if "frontend" in hass.config.components:
        # Imported here: a headless Home Assistant (and the tests) may have no frontend.
        from homeassistant.components.frontend import add_extra_js_url  # noqa: PLC0415

        add_extra_js_url(hass, CARD_URL)
