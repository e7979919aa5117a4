"""Autouse fixture overrides for tests that run no Home Assistant in their own process.

The harness's autouse fixtures guard an in-process Home Assistant; the browser tests have none
(the demo runs in other processes, the card's page needs none). Playwright's sync API also keeps
its own event loop marked as running between calls, which the harness's event-loop checks would
take for a leak. Import these into such a test module.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No in-process Home Assistant: nothing to enable."""


@pytest.fixture(autouse=True)
def verify_cleanup() -> None:
    """Nothing of Home Assistant's to check; browser tests check their own processes."""


@pytest.fixture(autouse=True)
def enable_event_loop_debug() -> None:
    """No event loop of ours to debug."""


@pytest.fixture(autouse=True)
def configure_event_loop() -> None:
    """No event loop of ours to configure (the harness of Home Assistant 2026.10 has one)."""
