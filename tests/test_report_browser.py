"""The report in a real browser: headless Chromium (Debian's, driven by Playwright) opens it as a person
would.

Checks: no console error, every picture decoded, nothing fetched but the file itself, no sideways
scrolling on a phone, the numbers shown equal the recorded data. Screenshots are written to
build/screenshots/ (or $LAMINA_SCREENSHOTS) for a person to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_report import trained

from lamina import diagnostics

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parent.parent
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1100, "height": 900}


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = Path(os.environ.get("LAMINA_SCREENSHOTS") or ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """Headless Chromium, each with a fresh profile: {"phone": a touch screen 390 pixels wide, "desktop":
    ...}."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        contexts = {
            "phone": playwright.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-phone")), executable_path=CHROMIUM, headless=True,
                args=FLAGS,
                viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2),
            "desktop": playwright.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-desktop")), executable_path=CHROMIUM, headless=True,
                args=FLAGS, viewport=DESKTOP),
        }
        yield contexts
        for context in contexts.values():
            context.close()


class Opened:
    """A page with what the browser said while loading it."""

    def __init__(self, context, path: Path):
        self.errors, self.requests = [], []
        self.page = context.new_page()
        self.page.on("console",
                     lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(path.resolve().as_uri(), wait_until="load")

    def images(self) -> list[dict]:
        """Each picture as the browser has it: decoded (its pixels, not only its header), its sizes."""
        return self.page.eval_on_selector_all("img", """images => Promise.all(images.map(async i => ({
            figure: i.dataset.figure, complete: i.complete,
            natural: i.naturalWidth, naturalHeight: i.naturalHeight,
            width: i.getAttribute('width'), shown: i.getBoundingClientRect().width,
            decoded: await i.decode().then(() => true, () => false),
            // a picture cut short decodes only partly: its last rows stay transparent
            lastRowOpaque: (() => {
                const c = document.createElement('canvas');
                c.width = i.naturalWidth; c.height = i.naturalHeight;
                if (!c.width || !c.height) return false;
                const g = c.getContext('2d'); g.drawImage(i, 0, 0);
                const row = g.getImageData(0, c.height - 1, c.width, 1).data;
                for (let k = 3; k < row.length; k += 4) if (row[k] !== 255) return false;
                return true; })()})))""")

    def table(self, name: str) -> list[list[dict]]:
        """Each row's cells as the browser shows them: text and data-value."""
        return self.page.eval_on_selector_all(f'table[data-table="{name}"] tr',
                                              """rows => rows.slice(1).map(r =>
            Array.from(r.children).map(c => ({text: c.innerText.trim(), value: c.dataset.value ?? null})))""")

    def close(self):
        self.page.close()


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    model, history, records, test = trained()
    path = tmp_path_factory.mktemp("report") / "report.html"
    diagnostics.report(path, model, history=history, records=records, data=test, image_shape=(28, 28),
                       title="MNIST (test run): what the network is doing")
    return path


@pytest.mark.parametrize("name, viewport", [("phone", PHONE), ("desktop", DESKTOP)])
def test_the_report_opens_cleanly_with_every_picture_decoded(chromium, full_report, screenshots, name,
                                                             viewport):
    opened = Opened(chromium[name], full_report)
    try:
        assert opened.errors == []
        assert opened.requests == [full_report.resolve().as_uri()]          # nothing fetched but the file
        images = opened.images()
        assert [i["figure"] for i in images] == ["curves", "units", "activations", "gradients", "histograms",
                                                 "filters", "mistakes", "saliency"]
        for image in images:
            assert image["decoded"] and image["lastRowOpaque"] and image["complete"], image
            assert image["natural"] > 0 and image["naturalHeight"] > 0, image
            assert image["natural"] == int(image["width"]), image
            assert 0 < image["shown"] <= viewport["width"], image             # scaled to fit the screen
        # laid out for the screen's width
        assert opened.page.evaluate("window.innerWidth") == viewport["width"]
        overflow = opened.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        # no sideways scrolling of the page
        assert overflow <= 0
        shot = screenshots / f"report-{name}.png"
        opened.page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes().startswith(b"\x89PNG")
    finally:
        opened.close()


def test_the_numbers_shown_are_the_recorded_ones(chromium, full_report):
    model, history, records, (x, y) = trained()
    opened = Opened(chromium["desktop"], full_report)
    try:
        epochs = sorted(set(records["epoch"]))
        for table, section, statistic in (("dead", "layers", "dead"),
                                          ("update_ratio", "parameters", "update_ratio")):
            rows = opened.table(table)
            paths = [p for p, stats in records[section].items() if statistic in stats]
            assert len(rows) == len(paths) and paths
            for row, path in zip(rows, paths):
                assert row[0]["text"].startswith(path)
                expected = dict(diagnostics.by_epoch(records, section, path, statistic))
                for cell, epoch in zip(row[1:], epochs):
                    assert float(cell["value"]) == expected[epoch]
                    assert cell["text"] == f"{expected[epoch]:.4g}"
        history_rows = opened.table("history")
        assert [[c["text"] for c in row] for row in history_rows] == [
            [str(e + 1), *(f"{history[k][e]:.4g}" for k in ("loss", "accuracy", "val_loss", "val_accuracy"))]
            for e in range(len(history["loss"]))]
        # the confusion matrix against a count made here, sample by sample
        predicted = model(x).argmax(axis=1)
        counted = np.zeros((10, 10), dtype=int)
        for true, said in zip(y, predicted):
            counted[true, said] += 1
        shown = [[int(c["text"]) for c in row[1:11]] for row in opened.table("confusion")]
        assert np.array_equal(shown, counted)
        mistakes = diagnostics.confident_mistakes(model, x, y, k=12)
        assert [[int(c["text"]) for c in row[:3]] for row in opened.table("mistakes")] == [
            [int(i), int(t), int(p)] for i, t, p in zip(mistakes.index, mistakes.true, mistakes.predicted)]
        embedded = opened.page.evaluate("JSON.parse(document.getElementById('lamina-data').textContent)")
        assert embedded["records"] == records
    finally:
        opened.close()


def test_a_report_without_records_shows_what_is_missing(chromium, tmp_path, screenshots):
    model, history, _, test = trained()
    path = diagnostics.report(tmp_path / "r.html", model, history=history, data=test, image_shape=(28, 28))
    opened = Opened(chromium["phone"], path)
    try:
        assert opened.errors == []
        note = opened.page.inner_text("[data-missing]")
        assert "Not in this report" in note and "no statistics were recorded" in note
        assert opened.page.is_visible("[data-missing]")
        opened.page.screenshot(path=str(screenshots / "report-without-records-phone.png"), full_page=True)
    finally:
        opened.close()
