"""A custom integration the startup benchmark boots with: it records when Home Assistant has
started, which config entries loaded, and then stops Home Assistant.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import time

from homeassistant.core import HomeAssistant
from homeassistant.helpers.start import async_at_started
from homeassistant.helpers.typing import ConfigType

DOMAIN = "bench_probe"
OUTPUT_ENV = "BENCH_PROBE_OUT"


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Write the started time to $BENCH_PROBE_OUT once Home Assistant has started, then stop."""
    output = Path(os.environ[OUTPUT_ENV])

    async def started(hass: HomeAssistant) -> None:
        # Taken first so nothing the probe does counts towards the startup time.
        started_at = time.time()
        cpu = time.process_time()
        record = {
            "started": started_at,
            # CPU of every thread of this process until started: unlike wall time, barely
            # moved by other processes competing for the cores.
            "cpu_s": cpu,
            "pid": os.getpid(),
            "entries": [
                {"domain": entry.domain, "state": entry.state.value}
                for entry in hass.config_entries.async_entries()
            ],
        }
        await hass.async_add_executor_job(output.write_text, json.dumps(record))
        # Let setups still running after started (the backup entry's flow on a first boot)
        # finish, so stopping does not cancel them and the next boot starts from a settled dir.
        await hass.async_block_till_done()
        hass.async_create_task(hass.async_stop())

    async_at_started(hass, started)
    return True
