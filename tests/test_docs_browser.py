"""The built documentation site in a real browser: headless Chromium (Debian's, through Playwright) over http.

Checks: the site's search finds ``Dense`` and leads to its page; every tutorial opens without a console error,
its pictures decoded and no error in its output; no internal link of the site is broken.
"""

from __future__ import annotations

import functools
import http.server
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest
from docs_site import TUTORIALS, built
from test_report_browser import CHROMIUM, FLAGS


@pytest.fixture(scope="module")
def site():
    """The built site served on 127.0.0.1 (a free port): its base address."""
    handler = functools.partial(Quiet, directory=str(built()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-docs")),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1200, "height": 900},
        )
        yield context
        context.close()


def opened(browser, url):
    """A page loaded at url, and the list its console errors and uncaught exceptions go to."""
    errors = []
    page = browser.new_page()
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(url, wait_until="load")
    assert response.status == 200, url
    return page, errors


def test_searching_for_dense_finds_its_page(browser, site):
    page, errors = opened(browser, site + "search.html?q=Dense")
    try:
        page.wait_for_selector("#search-results li a", timeout=60_000)
        links = page.eval_on_selector_all("#search-results li a", "links => links.map(a => a.href)")
        target = next(link for link in links if "lamina.layers.Dense.html" in link)
        page.goto(target, wait_until="load")
        assert page.inner_text("h1").startswith("Dense") and "lamina.layers.Dense" in page.inner_text("main")
        assert "y = x @ weight + bias" in page.inner_text("main") or "weight" in page.inner_text("main")
        assert errors == []
    finally:
        page.close()


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_each_tutorial_opens_with_its_pictures_decoded_and_no_error(browser, site, tutorial):
    page, errors = opened(browser, site + f"auto_tutorials/{tutorial}.html")
    try:
        images = page.eval_on_selector_all(
            "main img",
            """images => Promise.all(images.map(async i => ({
            src: i.getAttribute('src'), decoded: await i.decode().then(() => true, () => false),
            width: i.naturalWidth, height: i.naturalHeight})))""",
        )
        pictures = [i for i in images if "sphx_glr_" in i["src"]]
        assert pictures, tutorial
        for image in images:
            assert image["decoded"] and image["width"] > 0 and image["height"] > 0, image
        output = page.eval_on_selector_all(".sphx-glr-script-out", "blocks => blocks.map(b => b.innerText)")
        assert output and all(text.strip() for text in output)
        assert not any("Traceback" in text for text in output)
        assert page.query_selector_all(".system-message, .sphx-glr-script-out .error") == []
        assert errors == []
    finally:
        page.close()


class Links(HTMLParser):
    """The links (href, src) and the element ids of one page."""

    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and "preload" in (attrs.get("rel") or "")):
                self.links.append(attrs[key])


def test_no_internal_link_is_broken(browser, site):
    root = built()
    pages = {
        path: Links() for path in root.rglob("*.html") if "_static" not in path.relative_to(root).parts
    }
    for path, parser in pages.items():
        parser.feed(path.read_text(encoding="utf-8"))
    broken = []
    for path, parser in pages.items():
        for link in parser.links:
            if urlparse(link).scheme or link.startswith(("//", "mailto:", "javascript:")):
                continue
            target, fragment = urldefrag(urljoin(path.as_uri(), link))
            file = Path(unquote(urlparse(target).path))
            if file.is_dir():
                file = file / "index.html"
            missing_anchor = (
                fragment and file.suffix == ".html" and fragment not in pages.get(file, Links()).ids
            )
            if not file.exists() or missing_anchor:
                broken.append((str(path.relative_to(root)), link))
    assert broken == []
    assert len(pages) > 100
    # and in the browser: every link of the start page and of the tutorials' index answers
    page, errors = opened(browser, site + "auto_tutorials/index.html")
    try:
        hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
        local = {urldefrag(h)[0] for h in hrefs if h.startswith(site)}
        assert len(local) >= len(TUTORIALS)
        for href in sorted(local):
            assert page.request.get(href).status == 200, href
        assert errors == []
    finally:
        page.close()
