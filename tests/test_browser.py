"""Notebooks 3 and 5 in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

Runs each notebook through JupyterLab's own "Run All Cells". Notebook 3: drags the λ slider of
the explorer and checks that the rendered figure changes. Notebook 5 (volumes): drags a slice
slider, checks that the figure changes and the model did not run (the readout's model-run
count), then drags λ and checks that the model ran once more and the figure changed.
Screenshots are kept under ``artifacts/browser/``. Needs Debian's ``chromium`` (``.ci/run``
installs it); skipped where it is missing.
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
from tests.conftest import TINY_FEATURES

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("HYPERMORPH_NB_ARTIFACTS", ROOT / "artifacts")) / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = "03_explore_lambda.ipynb"
NOTEBOOK_3D = "05_your_own_scans.ipynb"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, trained_hypermorph):
    """One fresh folder for both tests, with small parameters: notebook 3 with the session's trained
    2D model, notebook 5 with small synthetic volumes and a saved (untrained) 3D model."""
    import papermill

    folder = tmp_path_factory.mktemp("browser")
    hnb.save_model(trained_hypermorph[0], folder / "model")
    papermill.execute_notebook(
        str(ROOT / "notebooks" / NOTEBOOK), str(folder / NOTEBOOK), prepare_only=True,
        parameters={"model_path": str(folder / "model"), "data_source": "synthetic",
                    "sweep_lams": [0.0, 0.9, 1.0], "n_pairs": 4, "output_dir": str(folder / "out")},
        progress_bar=False)
    shape = (16, 16, 16)
    hnb.save_model(hnb.build_hypermorph(shape, nb_features=TINY_FEATURES, seed=0), folder / "model3d")
    papermill.execute_notebook(
        str(ROOT / "notebooks" / NOTEBOOK_3D), str(folder / NOTEBOOK_3D), prepare_only=True,
        parameters={"model_path": str(folder / "model3d"), "data_source": "synthetic3d",
                    "volume_shape": list(shape), "subset": 6, "sweep_lams": [0.0, 1.0], "n_pairs": 2,
                    "output_dir": str(folder / "out3d")},
        progress_bar=False)
    return folder


@pytest.fixture(scope="module")
def jupyterlab(workspace):
    """One JupyterLab server on 127.0.0.1 serving the workspace for both tests; yields its base URL and token."""
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


def run_all_cells(page, url, token, notebook):
    """Open ``notebook`` in JupyterLab and start Run All Cells.

    Each notebook opens in a workspace of its own (named after it), so the one server shared by the
    tests does not restore the other test's notebook beside it.
    """
    from playwright.sync_api import expect

    workspace = Path(notebook).stem
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{notebook}?token={token}", timeout=120_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
    first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    for attempt in range(3):  # JupyterLab may ignore a command issued while it settles
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        try:
            expect(first_prompt).to_contain_text("1", timeout=20_000)
            return
        except AssertionError:
            page.keyboard.press("Escape")
    pytest.fail("JupyterLab's Run All Cells never started the notebook")


def drag_to_left_end(page, slider, *, right=False):
    """Drag the handle of an ipywidgets slider past the left (or right) end of its track (it clamps there)."""
    handle = slider.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    track = slider.locator(".noUi-target").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    end = track["x"] + track["width"] + 60 if right else track["x"] - 60
    page.mouse.move(end, box["y"] + box["height"] / 2, steps=12)
    page.mouse.up()


@pytest.mark.slow   # JupyterLab and Chromium; test_widgets checks the widget contract in the fast tier
def test_dragging_the_lambda_slider_changes_the_rendered_figure(jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    url, token = jupyterlab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            run_all_cells(page, url, token, NOTEBOOK)
            # the explorer's figure is the first widget image; the sweep panel renders last
            figure = page.locator("img.widget-image").first
            figure.wait_for(timeout=120_000)
            expect(page.locator("img.widget-image")).to_have_count(2, timeout=180_000)
            figure.scroll_into_view_if_needed()
            before_source = figure.get_attribute("src")
            before = figure.screenshot(path=str(ARTIFACTS / "explorer-lam-0.9.png"))

            drag_to_left_end(page, page.locator(".widget-slider").first)

            expect(figure).not_to_have_attribute("src", before_source, timeout=60_000)
            page.wait_for_timeout(1500)  # let the last coalesced update land
            after = figure.screenshot(path=str(ARTIFACTS / "explorer-lam-0.png"))
            lam_shown = float(page.locator(".widget-slider .widget-readout").first.inner_text())
        finally:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab.png"), full_page=True)
            browser.close()
    assert lam_shown < 0.1, f"the slider was dragged to its left end but reads {lam_shown}"
    assert before != after, "dragging λ must change the rendered registration"


@pytest.mark.slow   # a second JupyterLab page; the 2D drag test keeps the browser in the fast tier
def test_3d_slice_slider_redraws_without_the_model_and_lambda_reruns_it(jupyterlab):
    import re

    from playwright.sync_api import expect, sync_playwright

    url, token = jupyterlab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1100})
        try:
            run_all_cells(page, url, token, NOTEBOOK_3D)
            figure = page.locator("img.widget-image").first
            figure.wait_for(timeout=180_000)
            expect(page.locator("img.widget-image")).to_have_count(2, timeout=300_000)  # + the sweep panel
            # the cells that set values ran (the text is in the cell's source too: look in outputs)
            page.locator(".jp-OutputArea-output", has_text="chosen λ =").first.wait_for(timeout=120_000)
            page.wait_for_timeout(1500)
            readout = page.locator(".widget-html", has_text="model run").first

            def model_runs():
                return int(re.search(r"model run (\d+)", readout.text_content()).group(1))   # in view or not

            figure.scroll_into_view_if_needed()
            runs, before_source = model_runs(), figure.get_attribute("src")
            before = figure.screenshot(path=str(ARTIFACTS / "explorer3d-start.png"))

            drag_to_left_end(page, page.locator(".widget-slider").filter(has_text="axial").first)
            expect(figure).not_to_have_attribute("src", before_source, timeout=60_000)
            page.wait_for_timeout(1500)
            after_slice = figure.screenshot(path=str(ARTIFACTS / "explorer3d-axial-0.png"))
            axial_shown = int(page.locator(".widget-slider").filter(has_text="axial").first
                              .locator(".widget-readout").inner_text())
            runs_after_slice = model_runs()

            slice_source = figure.get_attribute("src")
            lam_slider = page.locator(".widget-slider").first
            lam_before = float(lam_slider.locator(".widget-readout").inner_text())
            drag_to_left_end(page, lam_slider, right=lam_before < 0.5)  # to the far end of λ
            expect(figure).not_to_have_attribute("src", slice_source, timeout=60_000)
            expect(readout).not_to_contain_text(f"model run {runs})", timeout=60_000)
            page.wait_for_timeout(1500)
            after_lam = figure.screenshot(path=str(ARTIFACTS / "explorer3d-lam-end.png"))
            runs_after_lam = model_runs()
            lam_after = float(lam_slider.locator(".widget-readout").inner_text())
        finally:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-3d.png"), full_page=True)
            browser.close()
    assert axial_shown == 0, f"the axial slider was dragged to its left end but reads {axial_shown}"
    assert abs(lam_after - lam_before) > 0.5, (lam_before, lam_after)
    assert runs_after_slice == runs, "moving a slice must not run the model"
    assert before != after_slice != after_lam
    assert runs_after_lam > runs, "moving λ must run the model"
