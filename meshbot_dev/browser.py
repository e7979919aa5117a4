"""The demo in its own processes, and a headless Chromium logged in to it.

Used by the browser test and the README screenshots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, ConsoleMessage, Locator, Page, Playwright

ROOT = Path(__file__).resolve().parents[1]
SETUP_HINT = "run script/setup: it installs Debian's chromium and the pinned playwright package"
# Debian and Ubuntu name the browser differently; GitHub's Ubuntu runners ship Google Chrome.
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
USERNAME = "demo"
PASSWORD = "meshbot-demo"
DASHBOARD_PATH = "/meshbot-demo"
VIEWPORT = {"width": 1280, "height": 900}
READY = re.compile(r"meshbot demo: open (http://127\.0\.0\.1:\d+)")
# A plain land-coloured tile for the map: without internet the real tiles cannot load, and
# Leaflet's grey void would look broken in a screenshot.
OFFLINE_TILE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256">'
    '<rect width="256" height="256" fill="#f2efe9"/>'
    '<path d="M0 0.5H256M0.5 0V256" stroke="#e4dfd6"/></svg>'
)
# The text a user reads in an element, shadow roots included: innerText skips them, and Home
# Assistant renders states (times, tiles) inside shadow roots.
DEEP_TEXT = """element => {
  const parts = [];
  const walk = node => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.trim();
      if (text) parts.push(text);
      return;
    }
    if (node.nodeName === "STYLE" || node.nodeName === "SCRIPT") return;
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(element);
  return parts.join(" ");
}"""
MAP_TILES = "basemaps.cartocdn.com"
# Where the frontend of Home Assistant before 2026.3 takes every integration's icon from; from
# 2026.3 on Home Assistant serves a custom integration's own brand/ folder itself.
BRAND_CDN = "https://brands.home-assistant.io/"
# How Chromium reports the requests refused by block_the_internet().
BLOCKED = "internetdisconnected"
BLOCKED_ERROR = "ERR_INTERNET_DISCONNECTED"


def find_chromium() -> str:
    """Return the path of a Chromium-based browser, or fail with the way to install one."""
    for candidate in CHROMIUM_CANDIDATES:
        if path := shutil.which(candidate):
            return path
    raise RuntimeError(f"No Chromium found ({', '.join(CHROMIUM_CANDIDATES)}): {SETUP_HINT}.")


def start_playwright() -> Playwright:
    """Start Playwright's driver, or fail with the way to install it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        raise RuntimeError(f"The playwright package is missing: {SETUP_HINT}.") from err
    return sync_playwright().start()


@dataclass
class Demo:
    """`python -m demo` on a free port: Mosquitto, the simulators and Home Assistant."""

    config: Path
    log: Path
    options: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    started: list[psutil.Process] = field(default_factory=list)

    def start(self, timeout: float = 240.0) -> Demo:
        """Start the demo and wait until it has printed its URL (Home Assistant is onboarded)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "demo", "--config", str(self.config), "--port", "0"),
                    *self.options,
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
                # A group of its own: if the demo dies badly, its children can still be found.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not (match := READY.search(self.log.read_text(errors="replace"))):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"The demo did not start within {timeout:g} s (exit code"
                    f" {self.process.returncode}); its output:\n{self.tail()}"
                )
            time.sleep(0.2)
        self.url = match.group(1)
        self.started = psutil.Process(self.process.pid).children(recursive=True)
        return self

    def tail(self, lines: int = 40) -> str:
        """Return the end of the demo's output."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 60.0) -> list[str]:
        """Stop the demo with SIGTERM, as a service manager would; return what outlived it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return [f"the demo itself (pid {self.process.pid}) ignored SIGTERM for {timeout:g} s"]
        # Its children get a moment: a process reparented to init is reaped asynchronously.
        deadline = time.monotonic() + 5
        while (left := self._survivors()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.kill()
        return [f"{' '.join(process.cmdline()[:4])} (pid {process.pid})" for process in left]

    def _survivors(self) -> list[psutil.Process]:
        alive = []
        for process in self.started:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        return alive

    def kill(self) -> None:
        """Kill the demo's whole process group; for when it failed, not for a normal stop."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def block_the_internet(context: BrowserContext, base: str, tiles: bool = False) -> None:
    """Answer requests that would leave the machine at once (no waiting for DNS timeouts).

    With `tiles`, the map gets plain tiles instead of none.
    """

    def answer(route: Any) -> None:
        url = route.request.url
        if tiles and MAP_TILES in url:
            route.fulfill(body=OFFLINE_TILE, content_type="image/svg+xml")
        else:
            route.abort(BLOCKED)

    context.route(lambda url: not url.startswith(base), answer)


def log_in(page: Page, base: str) -> None:
    """Log in as the demo user on Home Assistant's login page."""
    page.goto(base + "/")
    page.locator("input[name=username]").fill(USERNAME)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # The app shell replaces the login page once the tokens are stored.
    page.wait_for_url(re.compile(r"^(?!.*/auth/authorize).*$"), timeout=30_000)
    page.locator("ha-sidebar").wait_for(timeout=30_000)


@contextlib.contextmanager
def logged_in_browser(
    base: str, timeout_ms: float, tiles: bool = False
) -> Iterator[BrowserContext]:
    """Yield a headless Chromium context logged in to the demo; close it all afterwards.

    Pages opened in the context share the login. Raises RuntimeError when Chromium or
    Playwright is missing.
    """
    chromium = find_chromium()
    playwright = start_playwright()
    try:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            context.set_default_timeout(timeout_ms)
            block_the_internet(context, base, tiles=tiles)
            page = context.new_page()
            log_in(page, base)
            page.close()
            yield context
        finally:
            browser.close()
    finally:
        playwright.stop()


def shows(locator: Locator, timeout_ms: float) -> bool:
    """Return whether `locator` is visible within `timeout_ms`."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        locator.wait_for(timeout=timeout_ms)
    except PlaywrightTimeoutError:
        return False
    return True


def poll[T](
    page: Page, what: str, probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 60
) -> T:
    """Return probe()'s value once done() accepts it; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout:g} s")
        page.wait_for_timeout(250)


@contextlib.contextmanager
def collected_console(page: Page) -> Iterator[list[str]]:
    """Collect the page's console errors and uncaught exceptions, with where they come from.

    A script's URL names the card that failed.
    """
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url', '?')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error.stack or error}"))
    yield errors


def entity_row_state(page: Page, name: str) -> str:
    """Return the state shown beside an entity's name on a device page or entities card."""
    for row in page.locator("hui-generic-entity-row", has_text=name).all():
        # "SNR" is also in "Best neighbor SNR": the row's text must start with the name.
        text = deep_text(row)
        if text.startswith(name + " "):
            return text.removeprefix(name).strip()
    return ""


def tile_state(page: Page, name: str) -> str:
    """Return the state a dashboard tile shows under its name."""
    tile = page.locator("hui-tile-card", has_text=name).first
    return deep_text(tile).removeprefix(name).strip() if tile.count() else ""


def deep_text(element: Locator) -> str:
    """Return the text a user reads in an element, shadow roots included."""
    return element.evaluate(DEEP_TEXT)


def card_stats(card: Locator) -> dict[str, Any]:
    """Return what the topology card's last frame drew (its read-only `stats`)."""
    return card.evaluate("card => card.stats")


def settled_card(
    page: Page, card: Locator, done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """Return the topology card's stats once its layout has settled and done() accepts them.

    Settled means its links are drawn for the current view.
    """
    return poll(
        page,
        "the topology card's drawing",
        lambda: card_stats(card),
        lambda stats: stats["layoutDone"] and stats["settled"] and done(stats),
        timeout,
    )


def drawn_at(card: Locator, node_id: str) -> tuple[float, float]:
    """Return where the topology card draws a node, in page pixels."""
    position = card.evaluate("(card, id) => card.clientPositionOf(id)", node_id)
    assert position is not None, f"the card does not draw {node_id}"
    return position[0], position[1]
