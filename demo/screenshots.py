"""Take the README's screenshots from a fresh demo in headless Chromium.

The storm starts closer than in the plain demo, and the screenshots wait until the dashboard
shows it approaching, so that the map holds nodes and strikes and the tiles hold a trend.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import re
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from meshbot_dev.browser import (
    DASHBOARD_PATH,
    ROOT,
    Demo,
    drawn_at,
    find_chromium,
    logged_in_browser,
    poll,
    settled_card,
    tile_state,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page


def say(message: str) -> None:
    """Report progress; a run takes minutes."""
    print(f"screenshots: {message}", file=sys.stderr, flush=True)


def wait_for_the_storm(page: Page, base: str, settle: float, patience: float) -> None:
    """Wait `settle` seconds, then until the overview shows the storm approaching.

    The trend fits 15 minutes of strikes; its speed needs about 5 of them to be right.
    """
    page.goto(base + DASHBOARD_PATH + "/overview")
    started = reported = time.monotonic()

    def trend() -> str:
        nonlocal reported
        text = f"{tile_state(page, 'Storm trend')} / {tile_state(page, 'Storm arrival')}"
        if time.monotonic() - reported >= 30:
            reported = time.monotonic()
            say(f"storm after {reported - started:.0f} s: {text}")
        return text

    poll(
        page,
        "the storm's trend",
        trend,
        lambda text: (
            time.monotonic() - started >= settle and "Approaching" in text and "Unknown" not in text
        ),
        timeout=patience,
    )


def shoot(page: Page, path: Path) -> None:
    """Save one screenshot and say so."""
    page.screenshot(path=path)
    say(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def zoom_in_once(page: Page) -> None:
    """Zoom the map in one step, as a user would with its + button.

    The card fits the markers with a wide margin; one step in still shows both the storm and
    the mesh, with the node markers apart. A click while the card is re-fitting itself (it does
    at every state change) is undone by that fit, so click until the zoom holds.
    """
    leaflet = page.locator("hui-map-card ha-map")
    fitted = leaflet.evaluate("map => map.leafletMap.getZoom()")
    for _ in range(10):
        page.locator("hui-map-card .leaflet-control-zoom-in").click()
        page.wait_for_timeout(1500)
        if leaflet.evaluate("map => map.leafletMap.getZoom()") > fitted:
            return
    say("the map would not stay zoomed in; keeping the fitted view")


def shoot_topology(page: Page, out: Path) -> None:
    """Save the topology card with one node tapped, its links lit up and listed.

    Not the best-connected node: the demo's gateways hear nearly every node, and lighting up
    all the links shows little.
    """
    card = page.locator("meshbot-topology-card")
    settled_card(page, card, lambda stats: stats["links"] > 0)
    node = card.evaluate("card => card.nodeIds[Math.min(10, card.nodeIds.length - 1)]")
    page.mouse.click(*drawn_at(card, node))
    settled_card(page, card, lambda stats: stats["focus"] is not None)
    page.wait_for_timeout(500)
    shoot(page, out / "dashboard-topology.png")


def take(page: Page, base: str, out: Path) -> None:
    """Visit the pages a newcomer sees and save them."""
    page.goto(base + DASHBOARD_PATH + "/overview")
    page.locator("hui-tile-card", has_text="Nodes known").wait_for()
    page.wait_for_timeout(2000)
    shoot(page, out / "dashboard-overview.png")

    page.get_by_role("tab", name="Topology").click()
    shoot_topology(page, out)

    page.get_by_role("tab", name="Map").click()
    page.locator("hui-map-card ha-entity-marker").first.wait_for()
    page.wait_for_timeout(2000)
    zoom_in_once(page)
    shoot(page, out / "dashboard-map.png")

    page.goto(base + "/config/integrations/integration/meshbot")
    page.locator("ha-config-entry-device-row").first.wait_for()
    page.wait_for_timeout(1000)
    shoot(page, out / "integration.png")

    page.get_by_role("link", name=re.compile(r"^\s*1 service\s*$")).first.click()
    page.get_by_text("Mesh and lightning hub").first.wait_for()
    page.wait_for_timeout(1500)
    shoot(page, out / "hub-device.png")

    page.goto(base + "/config/integrations/integration/meshbot")
    page.get_by_role("button", name="Add hub").click()
    page.locator("dialog-data-entry-flow step-flow-menu").wait_for()
    page.wait_for_timeout(1000)
    shoot(page, out / "config-flow-menu.png")


def main() -> int:
    """Start the demo, wait for the storm, take the screenshots, stop the demo."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "screenshots", help="where to write PNGs"
    )
    parser.add_argument(
        "--storm-km", type=float, default=25.0, help="how far west the storm starts"
    )
    parser.add_argument(
        "--settle", type=float, default=300.0, help="seconds to let the mesh and storm run first"
    )
    parser.add_argument(
        "--patience",
        type=float,
        default=900.0,
        help="seconds to wait at most for the storm trend to show",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # Fail now, not after the demo has started.
    find_chromium()
    with tempfile.TemporaryDirectory(prefix="meshbot-screenshots-") as scratch:
        demo = Demo(
            Path(scratch) / "config",
            Path(scratch) / "demo.log",
            options=("--storm-km", f"{args.storm_km:g}"),
        )
        say("starting the demo")
        demo.start()
        try:
            with logged_in_browser(demo.url, 60_000, tiles=True) as context:
                page = context.new_page()
                say(f"letting the mesh and the storm run for {args.settle:g} s")
                wait_for_the_storm(page, demo.url, args.settle, args.patience)
                take(page, demo.url, args.out)
        finally:
            if left := demo.stop():
                say(f"still running after the demo stopped: {left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
