"""The viewer in a real browser: headless Chromium (Debian package ``chromium``, driven by Playwright through
``executable_path``; never a browser download; WebGL through SwiftShader). Screenshots go to
``test-artifacts/viewer/``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from viewers.browser import (
    CHROMIUM_ARGS,
    Page,
    ViewerProcess,
    changed_fraction,
    chromium_path,
    drawn_fraction,
    free_port,
)

ART = REPO / "test-artifacts" / "viewer"
CHROMIUM = chromium_path()

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian package chromium (installed by .ci/run)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_4d_run_draws_and_the_timeline_changes_the_picture(browser, small_run):
    with ViewerProcess(small_run, "--port", free_port()) as v:
        pg = Page(browser, v.url, ART)
        first = pg.shot("run_frame0", 6000)
        assert drawn_fraction(first) > 0.05, drawn_fraction(first)
        sent = pg.bytes_in
        slider = pg.page.get_by_role("slider").first             # the timeline's frame slider
        slider.focus()
        slider.press("End")
        last = pg.shot("run_frame_last", 3000)
        assert drawn_fraction(last) > 0.05
        assert changed_fraction(first, last) > 0.005, changed_fraction(first, last)
        assert 0 < pg.bytes_in - sent < 0.8 * sent     # a frame switch does not resend the still Gaussians
        pg.page.get_by_role("button", name="view from input camera").click()
        from_input = pg.shot("run_from_input_camera", 3000)
        assert changed_fraction(last, from_input) > 0.02           # the browser camera jumped to the input camera
        assert pg.real_errors() == [], (pg.errors, pg.failed)
        pg.close()


def test_mesh_draws(browser, mesh_file):
    with ViewerProcess(mesh_file, "--port", free_port()) as v:
        pg = Page(browser, v.url, ART)
        img = pg.shot("mesh", 5000)
        assert drawn_fraction(img) > 0.02, drawn_fraction(img)
        assert pg.real_errors() == [], (pg.errors, pg.failed)
        pg.close()


def test_taken_port_moves_to_the_next_free_one(small_run):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with ViewerProcess(small_run, "--port", taken) as v:
            assert not v.url.endswith(f":{taken}") and any("in use" in line for line in v.lines), v.lines


def test_static_export_plays_without_python(browser, small_run, tmp_path):
    from viewers.serve import export_static

    site = export_static(small_run, tmp_path / "site")
    port = free_port()
    http = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(site),
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        pg = Page(browser, f"http://127.0.0.1:{port}/open.html", ART)
        first = pg.shot("export_start", 12000)   # the client loads the whole recording first
        assert drawn_fraction(first) > 0.05, drawn_fraction(first)
        bar = pg.page.locator(".mantine-Slider-root").last        # the playback timeline at the bottom
        bar.locator("xpath=..").locator("button").first.click()   # pause (the recording loops while playing)
        box = bar.bounding_box()
        pg.page.mouse.click(box["x"] + 0.01 * box["width"], box["y"] + box["height"] / 2)
        a = pg.shot("export_home", 1500)
        pg.page.mouse.click(box["x"] + 0.99 * box["width"], box["y"] + box["height"] / 2)
        b = pg.shot("export_end", 1500)
        assert changed_fraction(a, b) > 0.005, changed_fraction(a, b)
        assert pg.real_errors() == [], (pg.errors, pg.failed)
        # every file of the export loads (a 404 elsewhere — an optional request of the client — is only recorded)
        own = [f for f in pg.failed if any(f.endswith("/" + p.name) for p in site.iterdir())]
        assert own == [], pg.failed
        (ART / "export_http_failures.txt").write_text("\n".join(pg.failed) + "\n")
        pg.close()
    finally:
        http.terminate()
