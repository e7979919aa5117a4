"""Translations: English and French say the same things, and names fit where they are shown."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.translation import async_get_translations
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.meshbot.compat import async_entry_device
from custom_components.meshbot.const import DOMAIN
from custom_components.meshbot.lightning.strikes import COMPASS_POINTS

INTEGRATION = Path(__file__).parent.parent / "custom_components" / DOMAIN
LANGUAGES = ("en", "fr")
# "Messages per minute" (19 characters) showed as "Messages per …" beside its value in the hub
# device's card on Home Assistant's device page; 17 characters fit beside a short value.
MAX_HUB_NAME_LENGTH = 17
PLACEHOLDER = re.compile(r"{(\w+)}")


def load(name: str) -> dict[str, Any]:
    """Return a JSON file of the integration."""
    return json.loads((INTEGRATION / name).read_text(encoding="utf-8"))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Return every string of a translation file by its dotted key."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_english_and_french_have_the_same_keys_and_placeholders() -> None:
    english, french = (flatten(load(f"translations/{lang}.json")) for lang in LANGUAGES)
    assert english.keys() == french.keys()
    for key, text in english.items():
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(french[key])), key


def test_every_strike_direction_has_a_name_and_an_icon() -> None:
    keys = {f"strike_{point.lower()}" for point in COMPASS_POINTS}
    for lang in LANGUAGES:
        names = load(f"translations/{lang}.json")["entity"]["geo_location"]
        assert names.keys() == keys
        assert all("{distance}" in name["name"] for name in names.values())
    assert load("icons.json")["entity"]["geo_location"].keys() == keys


async def test_hub_device_entity_names_fit_its_card(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    hub = async_entry_device(hass, init_integration.entry_id, init_integration.entry_id)
    assert hub is not None
    entities = er.async_entries_for_device(
        er.async_get(hass), hub.id, include_disabled_entities=True
    )
    assert len(entities) > 20, "the lightning, mesh and link entities are all on the hub"
    for lang in LANGUAGES:
        translations = await async_get_translations(hass, lang, "entity", [DOMAIN])
        too_long = {
            name
            for entity in entities
            if len(
                name := translations[
                    f"component.{DOMAIN}.entity.{entity.domain}.{entity.translation_key}.name"
                ]
            )
            > MAX_HUB_NAME_LENGTH
        }
        assert not too_long, lang
