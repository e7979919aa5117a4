"""A newcomer's first minutes, in a real browser: the demo, its login, meshbot's integration
page and device pages, and the example dashboard with the topology card and the map.

The demo runs in its own processes (as `script/demo` does) and headless Chromium drives Home
Assistant's real frontend. Screenshots of every step land in artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
import contextlib
import re
from typing import TYPE_CHECKING

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION
import pytest

from demo.simulation import NAMES
from meshbot_dev.browser import (
    BLOCKED_ERROR,
    BRAND_CDN,
    DASHBOARD_PATH,
    ROOT,
    Demo,
    card_stats,
    collected_console,
    drawn_at,
    entity_row_state,
    find_chromium,
    logged_in_browser,
    poll,
    settled_card,
    shows,
    tile_state,
)

from .support.outside_hass import (  # noqa: F401
    auto_enable_custom_integrations,
    configure_event_loop,
    enable_event_loop_debug,
    verify_cleanup,
)
from .test_brand import LOCAL_BRANDS_SINCE

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page, Route

ARTIFACTS = ROOT / "artifacts" / "browser"
# What Home Assistant writes on an entry that is not working; a loaded entry shows no state.
ENTRY_PROBLEMS = (
    "Failed to set up",
    "Failed setup, will retry",
    "Migration error",
    "Not loaded",
    "Failed to unload",
    "Initializing",
)
CARD = "meshbot-topology-card"
# The card's data, asked of Home Assistant the way the card asks: to check what it shows.
GET_TOPOLOGY = """() => document.querySelector("home-assistant").hass.connection
  .sendMessagePromise({type: "call_service", domain: "meshbot", service: "get_topology",
    service_data: {max_age: 86400}, return_response: true})
  .then(result => result.response)"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """Run the demo once for the module; stop it with SIGTERM and check nothing outlives it."""
    try:
        find_chromium()
    except RuntimeError as err:
        pytest.fail(str(err))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    instance = Demo(tmp_path_factory.mktemp("demo-config"), ARTIFACTS / "demo.log")
    try:
        instance.start()
    except RuntimeError as err:
        pytest.fail(str(err))
    yield instance
    left = instance.stop()
    assert not left, f"still running after the demo stopped: {left}"
    assert instance.process is not None
    assert instance.process.returncode == 0, f"the demo exited with {instance.process.returncode}"


@pytest.fixture(scope="module")
def context(demo: Demo) -> Iterator[BrowserContext]:
    """A headless Chromium logged in as the demo user."""
    with contextlib.ExitStack() as stack:
        try:
            context = stack.enter_context(logged_in_browser(demo.url, 30_000))
        except RuntimeError as err:
            pytest.fail(str(err))
        yield context


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Generator[Page]:
    """A new tab; its final state is saved as a screenshot, and meshbot must log no errors."""
    tab = context.new_page()
    with collected_console(tab) as errors:
        yield tab
    tab.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    tab.close()
    (ARTIFACTS / f"{request.node.name}.console.txt").write_text("\n".join(errors) + "\n")
    ours = [e for e in errors if "meshbot" in e.lower() and BLOCKED_ERROR not in e]
    assert not ours, f"meshbot errors in the browser console: {ours}"


def shoot(page: Page, name: str) -> None:
    """Save a full-page screenshot of an intermediate step."""
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def count_in(text: str, noun: str) -> int:
    """Return N from 'N <noun>' in a text, or 0."""
    match = re.search(rf"(\d+) {noun}", text)
    return int(match.group(1)) if match else 0


def count_markers(markers: Locator, prefix: str) -> int:
    """Count the map markers of entities whose id starts with `prefix`."""
    return markers.evaluate_all(
        "(markers, prefix) => markers.filter("
        "m => (m.getAttribute('entity-id') || m.entityId || '').startsWith(prefix)).length",
        prefix,
    )


def test_meshbot_is_set_up_with_devices_and_entities(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/config/integrations/integration/meshbot")
    entry = page.locator("ha-config-entry-row", has_text="meshbot demo")
    entry.wait_for()
    # The integration's summary: "52 devices • 614 entities".
    summary = page.locator("ha-config-integration-page a[href^='/config/']")
    poll(
        page,
        "the integration's device and entity counts",
        lambda: " ".join(summary.all_inner_texts()),
        lambda text: count_in(text, "devices") >= 5 and count_in(text, "entities") >= 20,
    )
    entry_text = entry.inner_text()
    problems = [problem for problem in ENTRY_PROBLEMS if problem in entry_text]
    assert not problems, f"the meshbot entry shows {problems}"
    # The entry lists its devices: the simulated nodes.
    assert page.locator("ha-config-entry-device-row").count() >= 5


def test_the_integration_page_shows_meshbots_own_icon_where_home_assistant_serves_it(
    page: Page, demo: Demo
) -> None:
    page.goto(demo.url + "/config/integrations/integration/meshbot")
    icon = page.locator("ha-config-integration-page img[src*='meshbot']").first
    # Attached, not visible: an icon that fails to load is hidden.
    icon.wait_for(state="attached")
    src, loaded = poll(
        page,
        "meshbot's icon on its integration page",
        lambda: icon.evaluate(
            "img => [img.currentSrc || img.src, img.complete && img.naturalWidth > 0]"
        ),
        lambda shown: bool(shown[1]) or shown[0].startswith(BRAND_CDN),
    )
    if AwesomeVersion(HA_VERSION) >= LOCAL_BRANDS_SINCE:
        assert not src.startswith(BRAND_CDN), src
        assert loaded, f"{src} did not load"
    else:
        # Only the brands CDN, which knows no meshbot (and is offline here): a placeholder.
        assert src.startswith(BRAND_CDN), src


def test_the_hub_device_shows_live_mesh_and_lightning_figures(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/config/integrations/integration/meshbot")
    # The hub is a device named after the entry; its page lists the entry-wide sensors.
    hub_headline = page.locator("div[slot=headline]", has_text=re.compile(r"^\s*meshbot demo\s*$"))
    page.locator("ha-config-entry-device-row").filter(has=hub_headline).first.click()
    page.wait_for_url(re.compile(r"/config/devices/device/"))
    page.get_by_text("Mesh and lightning hub").first.wait_for()
    nodes = poll(
        page,
        "Nodes known on the hub's page",
        lambda: entity_row_state(page, "Nodes known"),
        lambda state: state.isdigit() and int(state) >= 5,
    )
    assert int(nodes) >= 5
    for link in ("Radio link", "Mesh collector", "Lightning monitor"):
        poll(
            page,
            f"{link} on the hub's page",
            lambda link=link: entity_row_state(page, link),
            lambda state: state == "Connected",
        )
    strikes = poll(
        page,
        "Strikes in window",
        lambda: entity_row_state(page, "Strikes in window"),
        lambda state: state.isdigit() and int(state) > 0,
    )
    assert int(strikes) > 0
    nearest = entity_row_state(page, "Nearest strike")
    assert re.fullmatch(r"[\d.]+ km", nearest), f"Nearest strike shows {nearest!r}"


def test_a_node_device_shows_its_radio_figures(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/config/integrations/integration/meshbot")
    # A simulated node whose name has come in a node-info packet (not the radio itself).
    names = re.compile(rf"^\s*({'|'.join(map(re.escape, NAMES))})\s*$")
    headline = page.locator("div[slot=headline]", has_text=names)
    named_row = page.locator("ha-config-entry-device-row").filter(has=headline).first
    # The list re-sorts as nodes get their names, so a row can move under the click: whichever
    # device page opens, go on only once it is a named node's, and read its name there.
    for _ in range(5):
        named_row.click()
        page.wait_for_url(re.compile(r"/config/devices/device/"))
        title = page.get_by_text(names).filter(visible=True).first
        if shows(title, 5_000):
            break
        page.go_back()
    else:
        pytest.fail("five clicks on a named node's row never opened a named node's page")
    name = title.inner_text().strip()
    heard = poll(
        page,
        f"Last heard on {name}'s page",
        lambda: entity_row_state(page, "Last heard"),
        lambda state: "ago" in state or state.lower() == "now",
    )
    assert heard
    snr = poll(
        page,
        f"SNR on {name}'s page",
        lambda: entity_row_state(page, "SNR"),
        lambda state: bool(re.fullmatch(r"-?[\d.]+ dB", state)),
    )
    assert snr


def test_the_dashboard_shows_the_mesh_the_storm_and_the_topology(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/")
    # A newcomer finds the example dashboard in the sidebar. On a busy machine the first click
    # can land before the sidebar's links answer; a user would click again, and so does this.
    sidebar_entry = page.locator("ha-sidebar").get_by_text("meshbot", exact=True)

    def opened() -> bool:
        if DASHBOARD_PATH not in page.url:
            sidebar_entry.click()
            page.wait_for_timeout(500)
        return DASHBOARD_PATH in page.url

    poll(page, "the dashboard, opened from the sidebar", opened, bool, timeout=60)
    known = poll(
        page,
        "the Nodes known tile",
        lambda: tile_state(page, "Nodes known"),
        lambda state: state.isdigit() and int(state) > 0,
    )
    assert int(known) > 0
    nearest = poll(
        page,
        "the Nearest strike tile",
        lambda: tile_state(page, "Nearest strike"),
        lambda state: bool(re.fullmatch(r"[\d.]+ km", state)),
    )
    assert nearest
    shoot(page, "dashboard-overview")

    page.get_by_role("tab", name="Topology").click()
    card = page.locator(CARD)
    drawn = settled_card(page, card, lambda stats: stats["nodes"] >= 20 and stats["links"] >= 20)
    legend = card.inner_text()
    assert re.search(r"\d+ nodes, \d+ links", legend), legend
    # Links are coloured by SNR: more than one colour means SNRs came through.
    assert sum(1 for count in drawn["snrBands"] if count) >= 2, drawn
    shoot(page, "dashboard-topology")

    page.get_by_role("tab", name="Map").click()
    map_card = page.locator("hui-map-card")
    # The map itself is Leaflet up to 2026.9 and Home Assistant's own vector map after; the
    # markers are the same elements on both.
    map_card.wait_for()
    # From 2026.10 the map card shows people, devices or zones, one tab at a time.
    devices_tab = map_card.get_by_text("Devices", exact=True)
    if shows(devices_tab, 5_000):
        devices_tab.click()
    markers = map_card.locator("ha-entity-marker")
    poll(
        page,
        "node markers on the map",
        lambda: count_markers(markers, "device_tracker."),
        lambda count: count >= 10,
    )
    poll(
        page,
        "strike markers on the map",
        lambda: count_markers(markers, "geo_location."),
        lambda count: count >= 1,
    )
    shoot(page, "dashboard-map")


def test_the_topology_card_is_readable_and_answers_the_pointer(page: Page, demo: Demo) -> None:
    page.goto(demo.url + DASHBOARD_PATH + "/topology")
    card = page.locator(CARD)
    # Every demo node reports a position, but not all within the demo's first seconds:
    # `layout: auto` draws the graph until half of them have one, then switches to the map.
    drawn = settled_card(
        page,
        card,
        lambda stats: stats["nodes"] >= 20 and stats["links"] >= 20 and stats["layout"] == "geo",
    )
    assert drawn["labels"] >= 10, drawn
    assert drawn["overlaps"] == 0, drawn
    topology = page.evaluate(GET_TOPOLOGY)
    names = {node["id"]: node["long_name"] or node["id"] for node in topology["nodes"]}

    # Hovering the best-connected node shows its name and its links' SNRs, and lights it up.
    busiest = card.evaluate("card => card.nodeIds[0]")
    panel = card.locator(".mbt-panel")

    def hovered() -> bool:
        # The live card may redraw between reading a node's place and the pointer getting
        # there; a user would simply move again, so the test does too.
        x, y = drawn_at(card, busiest)
        page.mouse.move(x + 30, y + 30)
        page.mouse.move(x, y)
        return panel.is_visible()

    poll(page, "the hovered node's panel", hovered, bool, timeout=30)
    assert panel.locator("h3").inner_text() == names[busiest]
    text = panel.inner_text()
    assert "last heard" in text, text
    snrs = [float(value) for value in re.findall(r"(-?\d+(?:\.\d+)?) dB", text)]
    assert len(snrs) >= 2, text
    assert card_stats(card)["focus"] == busiest

    # A tap pins the panel: it stays when the pointer leaves the node.
    page.mouse.click(*drawn_at(card, busiest))
    box = card.locator("canvas").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 3, box["y"] + box["height"] - 3)
    assert poll(page, "the pinned node", lambda: card_stats(card)["focus"], bool) == busiest
    assert panel.is_visible()

    # A minimum SNR draws fewer links, and the panel lists only links above it.
    links = card_stats(card)["links"]
    card.locator("[data-filter=min-snr]").fill("5")
    settled_card(page, card, lambda stats: stats["links"] < links)
    filtered = [float(value) for value in re.findall(r"(-?\d+(?:\.\d+)?) dB", panel.inner_text())]
    assert all(snr >= 5 for snr in filtered), filtered
    card.locator("[data-filter=min-snr]").fill("-21")
    settled_card(page, card, lambda stats: stats["links"] == links)

    # The wheel zooms in around the pointer, a drag pans, the reset button undoes both.
    fitted = drawn_at(card, busiest)
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*centre)
    page.mouse.wheel(0, -600)
    zoomed = settled_card(page, card, lambda stats: stats["zoom"] > 2)
    assert zoomed["nodesInView"] < drawn["nodesInView"], zoomed
    assert zoomed["overlaps"] == 0, zoomed
    moved = drawn_at(card, busiest)
    assert moved != fitted
    page.mouse.down()
    page.mouse.move(centre[0] + 120, centre[1] + 40, steps=5)
    page.mouse.up()
    panned = drawn_at(card, busiest)
    assert abs(panned[0] - moved[0] - 120) < 2 and abs(panned[1] - moved[1] - 40) < 2
    shoot(page, "topology-zoomed")
    card.locator("[data-action=reset]").click()
    settled_card(page, card, lambda stats: stats["zoom"] == 1)
    back = drawn_at(card, busiest)
    assert abs(back[0] - fitted[0]) < 1 and abs(back[1] - fitted[1]) < 1

    # The graph layout, through the card's toggle: still every node, and labels apart.
    card.locator("[data-layout=graph]").click()
    graph = settled_card(page, card, lambda stats: stats["layout"] == "graph")
    assert graph["nodes"] == drawn["nodes"] and graph["labels"] >= 10, graph
    assert graph["overlaps"] == 0, graph
    shoot(page, "topology-graph")


def test_the_topology_card_appears_when_it_loads_before_the_app(page: Page, demo: Demo) -> None:
    # Home Assistant swaps the custom element registry while its app bundle boots; a card that
    # registered itself before that is invisible to the dashboard ("Configuration error").
    # Holding the bundle back makes the card's module win the race every time.
    def hold_back(route: Route) -> None:
        page.wait_for_timeout(1500)
        route.continue_()

    page.route(re.compile(r"/frontend_latest/app\.[0-9a-f]+\.js$"), hold_back)
    page.goto(demo.url + DASHBOARD_PATH + "/topology")
    settled_card(page, page.locator(CARD), lambda stats: stats["nodes"] > 0)
    assert not page.locator("hui-error-card").count()
