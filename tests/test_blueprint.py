"""The lightning alert blueprint is valid and runs its actions."""

from __future__ import annotations

from pathlib import Path

from homeassistant.components.blueprint import models
from homeassistant.components.blueprint.schemas import BLUEPRINT_SCHEMA
from homeassistant.util.yaml import load_yaml_dict

BLUEPRINT = Path(__file__).parent.parent / "blueprints/automation/meshbot/lightning_alert.yaml"


def test_blueprint_is_valid_for_home_assistant() -> None:
    blueprint = models.Blueprint(
        load_yaml_dict(str(BLUEPRINT)), expected_domain="automation", schema=BLUEPRINT_SCHEMA
    )
    assert blueprint.domain == "automation"
    assert set(blueprint.inputs) >= {"nearest_strike", "distance", "notify_action", "mesh_message"}
    config = blueprint.data
    assert {trigger["id"] for trigger in config["triggers"]} == {"close", "clear"}
