"""meshbot's own brand icon: served by Home Assistant from 2026.3 on, which 2026.2 cannot do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.loader import IntegrationNotFound, async_get_integration
from homeassistant.setup import async_setup_component
import pytest

from custom_components.meshbot.const import DOMAIN

BRAND = Path(__file__).parents[1] / "custom_components" / DOMAIN / "brand"
# The release whose `brands` integration serves a custom integration's brand/ folder.
LOCAL_BRANDS_SINCE = AwesomeVersion("2026.3.0")


async def test_home_assistant_shows_meshbots_own_icon(
    hass: HomeAssistant, hass_client: Any
) -> None:
    """The integrations page's icon comes from meshbot's brand/ folder where the release can."""
    if AwesomeVersion(HA_VERSION) < LOCAL_BRANDS_SINCE:
        # Before 2026.3 every icon comes from the brands CDN (home-assistant/brands), which knows
        # no meshbot: the README's installation section says what shows there.
        with pytest.raises(IntegrationNotFound):
            await async_get_integration(hass, "brands")
        return
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, "brands", {})
    client = await hass_client()

    # Home Assistant falls back to icon.png for the images meshbot does not ship.
    served = {"icon.png": "icon.png", "icon@2x.png": "icon@2x.png", "dark_icon.png": "icon.png"}
    for image, file in served.items():
        response = await client.get(f"/api/brands/integration/{DOMAIN}/{image}")
        assert response.status == 200, image
        assert await response.read() == (BRAND / file).read_bytes(), image
