"""Fixtures for the web page's tests: a headless Chromium, a folder served on 127.0.0.1, watched pages.

    def test_something(serve_folder, new_page):
        base_url = serve_folder(Path("serving/web"))      # http://127.0.0.1:<port>
        watched = new_page()
        watched.page.goto(base_url + "/pixels.js")
        ...
        assert watched.blocked == [] and watched.errors == []

Chromium is the system's (/usr/bin/chromium, else `chromium` on PATH), driven by Playwright's sync API; the
tests skip, saying so, where there is none. A watched page may reach 127.0.0.1 only: every other request is
aborted and recorded, so a page that would fetch anything from the internet fails its test.
"""

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from serve import listen  # serve.py's server: its media types for the page's files, on 127.0.0.1

CHROMIUM_PATHS = ("/usr/bin/chromium", "chromium", "chromium-browser")
LOCAL_HOST = "127.0.0.1"


def chromium_path() -> str | None:
    """The system's Chromium executable, or None."""
    for name in CHROMIUM_PATHS:
        found = shutil.which(name)
        if found:
            return found
    return None


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    """Serve `folder` over http on 127.0.0.1 at an ephemeral port, in a background thread: the base URL
    ("http://127.0.0.1:PORT", no trailing slash) for the block's duration."""
    server = listen(folder, 0)
    thread = threading.Thread(target=server.serve_forever, name=f"serve {folder}", daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def serve_folder() -> Iterator[Callable[[Path], str]]:
    """serve_folder(folder) -> base URL: the folder served until the session ends (see served)."""
    with contextlib.ExitStack() as stack:
        yield lambda folder: stack.enter_context(served(Path(folder)))


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (the system's) driven by Playwright; skips when there is none."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium found (looked for /usr/bin/chromium, chromium, chromium-browser on PATH)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright (Python) is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@dataclass
class WatchedPage:
    """A Playwright page that may reach 127.0.0.1 only.

    blocked: URLs of the requests to anywhere else, each aborted. errors: console messages of type "error" and
    uncaught exceptions ("pageerror"), as text. A test asserts both stay empty.
    """

    page: object  # playwright.sync_api.Page
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def _route(self, route) -> None:
        if urlsplit(route.request.url).hostname == LOCAL_HOST:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


@pytest.fixture
def new_page(browser) -> Iterator[Callable[[], WatchedPage]]:
    """new_page(**options) -> WatchedPage, in a fresh browser context of its own (options: Playwright's
    new_context, e.g. has_touch=True); all closed after the test."""
    contexts = []

    def open_page(**options) -> WatchedPage:
        context = browser.new_context(**options)
        contexts.append(context)
        watched = WatchedPage(context.new_page())
        context.route("**/*", watched._route)
        watched.page.on("console", lambda message: message.type == "error" and watched.errors.append(
            f"console: {message.text} ({message.location.get('url', '')})"))
        watched.page.on("pageerror", lambda error: watched.errors.append(f"pageerror: {error}"))
        return watched

    yield open_page
    for context in contexts:
        context.close()
