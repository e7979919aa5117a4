"""The suite fails a test during which Home Assistant reports meshbot using a deprecated API."""

from __future__ import annotations

import logging

from homeassistant.core import HomeAssistant
from homeassistant.helpers import frame
from homeassistant.loader import async_get_integration
import pytest

from custom_components.meshbot.const import DOMAIN

from .support.deprecations import DeprecationReports


@pytest.mark.deprecation_reports_expected
async def test_home_assistants_own_report_is_caught(hass: HomeAssistant) -> None:
    """A report through Home Assistant's frame helper, naming meshbot, is collected."""
    await async_get_integration(hass, DOMAIN)
    reports = DeprecationReports()
    logging.getLogger().addHandler(reports)
    try:
        frame.report_usage(
            "calls a deprecated helper", integration_domain=DOMAIN, breaks_in_ha_version="2099.1"
        )
    finally:
        logging.getLogger().removeHandler(reports)

    assert len(reports.reports) == 1
    assert "custom integration 'meshbot'" in reports.reports[0]


@pytest.mark.parametrize(
    ("logger", "message", "caught"),
    [
        ("homeassistant.helpers.frame", "Detected that custom integration 'meshbot' calls x", True),
        (
            "homeassistant.helpers.deprecation",
            "X was used from meshbot, a deprecated constant",
            True,
        ),
        ("homeassistant.helpers.frame", "Detected that custom integration 'other' calls x", False),
        ("custom_components.meshbot.runtime", "meshbot lost its radio", False),
    ],
)
def test_only_deprecation_reports_about_meshbot_count(
    logger: str, message: str, caught: bool
) -> None:
    """Reports about other integrations and meshbot's own log lines do not fail tests."""
    reports = DeprecationReports()
    reports.handle(logging.LogRecord(logger, logging.WARNING, __file__, 1, message, None, None))
    assert bool(reports.reports) is caught
