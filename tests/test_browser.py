"""Notebook 3 in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

Runs the notebook through JupyterLab's own "Run All Cells", drags the λ slider of the
explorer, and checks that the rendered figure changes. Screenshots are kept under
``artifacts/browser/``. Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped
where it is missing.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import hypermorph_nb as hnb
from hypermorph_nb.data import synthetic
from tests.conftest import TINY_FEATURES

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("HYPERMORPH_NB_ARTIFACTS", ROOT / "artifacts")) / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = "03_explore_lambda.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def workspace(tmp_path):
    """Notebook 3 with small parameters and a briefly trained model, in a fresh folder."""
    import papermill

    model = hnb.build_hypermorph((64, 64), nb_features=TINY_FEATURES, seed=0)
    hnb.train(model, synthetic(16, (64, 64), seed=0), epochs=2, steps_per_epoch=100, learning_rate=3e-3,
              lam_sampling={"mode": "oversample", "oversample_rate": 0.5}, image_sigma=0.2,
              verbose=False, progress="none", live_plot=False)
    hnb.save_model(model, tmp_path / "model")
    papermill.execute_notebook(
        str(ROOT / "notebooks" / NOTEBOOK), str(tmp_path / NOTEBOOK), prepare_only=True,
        parameters={"model_path": str(tmp_path / "model"), "data_source": "synthetic",
                    "sweep_lams": [0.0, 0.9, 1.0], "n_pairs": 4, "output_dir": str(tmp_path / "out")},
        progress_bar=False)
    return tmp_path


@pytest.fixture
def jupyterlab(workspace):
    """A JupyterLab server on 127.0.0.1 serving the workspace; yields its base URL and token."""
    port, token = free_port(), "hypermorph-nb-test"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(workspace / ".runtime"),
           "JUPYTER_CONFIG_DIR": str(workspace / ".config")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={workspace}", "--LabApp.news_url=",
         "--LabServerApp.extension_manager=readonly", "--allow-root"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(workspace / "jupyterlab.log", "w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("JupyterLab did not start:\n" + (workspace / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield url, token
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def test_dragging_the_lambda_slider_changes_the_rendered_figure(jupyterlab, workspace):
    from playwright.sync_api import expect, sync_playwright

    url, token = jupyterlab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}", timeout=120_000)
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
            first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
            for attempt in range(3):  # JupyterLab may ignore a command issued while it settles
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_text("Run All Cells", exact=True).click()
                try:
                    expect(first_prompt).to_contain_text("1", timeout=20_000)
                    break
                except AssertionError:
                    page.keyboard.press("Escape")
            else:
                pytest.fail("JupyterLab's Run All Cells never started the notebook")

            # the explorer's figure is the first widget image; the sweep panel renders last
            figure = page.locator("img.widget-image").first
            figure.wait_for(timeout=120_000)
            expect(page.locator("img.widget-image")).to_have_count(2, timeout=180_000)
            figure.scroll_into_view_if_needed()
            before_source = figure.get_attribute("src")
            before = figure.screenshot(path=str(ARTIFACTS / "explorer-lam-0.9.png"))

            handle = page.locator(".widget-slider .noUi-handle").first
            handle.scroll_into_view_if_needed()
            box = handle.bounding_box()
            track = page.locator(".widget-slider .noUi-target").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(track["x"] - 60, box["y"] + box["height"] / 2, steps=12)  # past the end: clamps to 0
            page.mouse.up()

            expect(figure).not_to_have_attribute("src", before_source, timeout=60_000)
            page.wait_for_timeout(1500)  # let the last coalesced update land
            after = figure.screenshot(path=str(ARTIFACTS / "explorer-lam-0.png"))
            lam_shown = float(page.locator(".widget-slider .widget-readout").first.inner_text())
        finally:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab.png"), full_page=True)
            browser.close()
    assert lam_shown < 0.1, f"the slider was dragged to its left end but reads {lam_shown}"
    assert before != after, "dragging λ must change the rendered registration"
