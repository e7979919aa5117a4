"""What the startup benchmark boots instead of `python -m homeassistant`: the same main, plus a
record of Home Assistant's own "initialized in" time, the CPU it took and the entries' states at
`started`, written to $BENCH_BOOT_OUT before Home Assistant is stopped.

Not a custom integration: a baseline boot must load none, or it pays for the loader's custom
integration path and no longer is the Home Assistant users compare with. Run it with
`python -c` from the config dir, so that sys.path starts as `python -m homeassistant` has it.
"""

from __future__ import annotations

from functools import partial
import json
import os
from pathlib import Path
import sys
import time
from typing import Any

from homeassistant import bootstrap
from homeassistant.__main__ import main
from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import Event, HomeAssistant, callback

OUTPUT_ENV = "BENCH_BOOT_OUT"
MODULES_ENV = "BENCH_BOOT_MODULES"

from_config_dict = bootstrap.async_from_config_dict


async def timed_from_config_dict(config: Any, hass: HomeAssistant) -> HomeAssistant | None:
    """Run bootstrap's setup, keeping the span it logs as "Home Assistant initialized in"."""
    start = time.monotonic()
    result = await from_config_dict(config, hass)
    record: dict[str, Any] = {
        "initialized_s": time.monotonic() - start,
        "initialized_cpu_s": time.process_time(),
    }
    if result is not None:
        result.bus.async_listen_once(
            EVENT_HOMEASSISTANT_STARTED, partial(on_started, result, record)
        )
    return result


@callback
def on_started(hass: HomeAssistant, record: dict[str, Any], _event: Event) -> None:
    """Record the started time and the entries, then stop Home Assistant once it is idle."""
    # Taken first so nothing the hook does counts towards the startup time.
    record["started"] = time.time()
    # CPU of every thread until started: unlike wall time, barely moved by other processes.
    record["cpu_s"] = time.process_time()
    record["pid"] = os.getpid()
    record["entries"] = [
        {"domain": entry.domain, "state": entry.state.value}
        for entry in hass.config_entries.async_entries()
    ]
    if os.environ.get(MODULES_ENV):
        record["modules"] = sorted(sys.modules)

    async def write_and_stop() -> None:
        await hass.async_add_executor_job(
            Path(os.environ[OUTPUT_ENV]).write_text, json.dumps(record)
        )
        # Let setups still running after started (the backup entry's flow on a first boot)
        # finish, so stopping does not cancel them and the next boot starts from a settled dir.
        await hass.async_block_till_done()
        hass.async_create_task(hass.async_stop())

    hass.async_create_task(write_and_stop(), "bench boot hook")


if __name__ == "__main__":
    bootstrap.async_from_config_dict = timed_from_config_dict  # type: ignore[assignment]
    sys.exit(main())
