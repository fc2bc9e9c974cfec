"""Environment detection (Colab, VS Code, JupyterLab, Notebook 7, papermill, CI) and the display path it picks."""
import sys
import types

import matplotlib
import numpy as np
import pytest

from hypermorph_nb.runtime import environment
from hypermorph_nb.runtime.environment import Environment, detect, enable_third_party_widgets, quiet_progress
from hypermorph_nb.widgets.live_figure import LiveFigure, resolve_mode


def fake_ipython(*, kernel=True, user_ns=None):
    """A stand-in ``IPython`` module whose shell has (or lacks) a kernel."""
    shell = types.SimpleNamespace(kernel=object() if kernel else None, user_ns=user_ns or {})
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell
    return module


def fake_colab(calls):
    """Stand-ins for ``google.colab`` and ``google.colab.output`` recording the widget-manager call."""
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls.append("enabled")
    colab = types.ModuleType("google.colab")
    colab.output = output
    return {"google.colab": colab, "google.colab.output": output}


KERNEL = {"IPython": fake_ipython()}


@pytest.mark.parametrize("environ, modules, parent, expected", [
    ({}, {}, "", "script"),
    ({}, {"IPython": fake_ipython(kernel=False)}, "", "ipython"),
    ({"VSCODE_PID": "7"}, {}, "", "script"),                     # a script in VS Code's terminal
    ({}, KERNEL, "/usr/bin/python3 /usr/local/bin/jupyter-lab --no-browser", "jupyterlab"),
    ({}, KERNEL, "/usr/bin/python3 -m jupyterlab", "jupyterlab"),
    ({}, KERNEL, "/usr/bin/python3 /usr/local/bin/jupyter-notebook", "notebook"),
    ({}, KERNEL, "/usr/bin/python3 -m notebook --port 8888", "notebook"),
    ({}, KERNEL, "/usr/bin/python3 -m jupyter_server", "jupyter"),
    ({"VSCODE_PID": "7", "VSCODE_CWD": "/"}, KERNEL, "/usr/bin/python3 -m ipykernel_launcher", "vscode"),
    ({}, {"IPython": fake_ipython(user_ns={"__vsc_ipynb_file__": "/x/a.ipynb"})}, "", "vscode"),
    ({}, {**KERNEL, "google.colab": types.ModuleType("google.colab")}, "", "colab"),
    ({"COLAB_RELEASE_TAG": "release-colab_20260101"}, KERNEL, "", "colab"),
    ({"HYPERMORPH_NB_PAPERMILL": "1"}, KERNEL, "/usr/bin/python3 -m pytest", "papermill"),
    ({}, KERNEL, "/usr/bin/python3 /usr/local/bin/papermill in.ipynb out.ipynb", "papermill"),
    ({"HYPERMORPH_NB_PAPERMILL": "1", "VSCODE_PID": "7"}, KERNEL, "", "papermill"),
])
def test_detect_frontend(environ, modules, parent, expected):
    found = detect(environ=environ, modules=modules, parent_command=parent)
    assert found.frontend == expected
    assert found.kernel == (expected not in ("script", "ipython") and "IPython" in modules)


@pytest.mark.parametrize("environ, ci", [
    ({}, False), ({"CI": "true"}, True), ({"CI": "1"}, True), ({"CI": "false"}, False),
    ({"GITHUB_ACTIONS": "true"}, True), ({"GITLAB_CI": "true"}, True),
])
def test_detect_ci(environ, ci):
    assert detect(environ=environ, modules={}).ci is ci


def test_detect_reads_the_real_environment_and_modules(monkeypatch):
    for name in (*environment.CI_VARIABLES, environment.PAPERMILL_VARIABLE, "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(name, raising=False)
    assert detect() == Environment("script", kernel=False, ci=False)   # pytest: a plain process
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert detect() == Environment("colab", kernel=False, ci=True)


def test_colab_custom_widget_manager_is_enabled_only_on_colab(monkeypatch):
    calls = []
    for name, module in fake_colab(calls).items():
        monkeypatch.setitem(sys.modules, name, module)
    assert enable_third_party_widgets(Environment("vscode", kernel=True, ci=False)) is False
    assert calls == []
    assert enable_third_party_widgets(Environment("colab", kernel=True, ci=False)) is True
    assert calls == ["enabled"]


@pytest.mark.parametrize("where, environ, quiet", [
    (Environment("jupyterlab", kernel=True, ci=False), {}, False),
    (Environment("papermill", kernel=True, ci=False), {}, True),
    (Environment("script", kernel=False, ci=True), {}, True),
    (Environment("script", kernel=False, ci=True), {"TQDM_DISABLE": "0"}, False),
    (Environment("jupyterlab", kernel=True, ci=False), {"TQDM_DISABLE": "1"}, True),
])
def test_progress_bars_are_quiet_under_ci_and_papermill(where, environ, quiet):
    assert quiet_progress(where, environ=environ) is quiet


@pytest.mark.parametrize("frontend, expected", [
    ("jupyterlab", "ipympl"), ("notebook", "ipympl"), ("jupyter", "ipympl"),
    ("colab", "image"), ("vscode", "image"), ("papermill", "image"), ("script", "image"),
])
def test_auto_uses_ipympl_only_after_matplotlib_widget_where_it_works(monkeypatch, frontend, expected):
    where = Environment(frontend, kernel=True, ci=False)
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://ipympl.backend_nbagg")
    assert resolve_mode("auto", where=where) == expected
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline")
    assert resolve_mode("auto", where=where) == "image"
    assert resolve_mode("ipympl", where=where) == "ipympl"   # asked for explicitly


def test_ipywidgets_only_path_renders_and_updates_without_ipympl(monkeypatch):
    """The default display: an ipywidgets.Image updated in place, with ipympl unimportable."""
    import ipywidgets

    monkeypatch.setitem(sys.modules, "ipympl", None)               # `import ipympl` now fails
    monkeypatch.setitem(sys.modules, "ipympl.backend_nbagg", None)
    monkeypatch.setattr(environment, "detect", lambda **_: Environment("vscode", kernel=True, ci=False))
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://ipympl.backend_nbagg")  # %matplotlib widget
    live = LiveFigure(figsize=(2, 2), dpi=40, mode="auto", image_format="png")
    assert live.mode == "image" and type(live.widget) is ipywidgets.Image
    image = live.figure.subplots().imshow(np.zeros((8, 8)), vmin=0, vmax=1, cmap="gray")
    live.animate(image)
    live.refresh(full=True)
    first = bytes(live.widget.value)
    assert first[:4] == b"\x89PNG"
    widget = live.widget
    image.set_data(np.ones((8, 8)))
    live.refresh()                                                 # blit the changed artist only
    assert live.widget is widget and bytes(live.widget.value) != first
    image.set_data(np.zeros((8, 8)))
    live.refresh()
    assert bytes(live.widget.value) == first                       # same pixels, same bytes
    live.close()


def test_ipympl_on_colab_turns_on_the_custom_widget_manager(monkeypatch):
    pytest.importorskip("ipympl")
    calls = []
    for name, module in fake_colab(calls).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(environment, "detect", lambda **_: Environment("colab", kernel=True, ci=False))
    live = LiveFigure(figsize=(2, 2), dpi=40, mode="ipympl")
    assert calls == ["enabled"] and live.mode == "ipympl"
    live.close()


def test_training_progress_is_a_log_under_papermill_and_a_bar_in_other_kernels(monkeypatch):
    from hypermorph_nb.viz import training_display

    monkeypatch.setitem(sys.modules, "IPython", fake_ipython())
    monkeypatch.delenv(environment.PAPERMILL_VARIABLE, raising=False)
    monkeypatch.setattr(environment, "_parent_command", lambda: "/usr/bin/python3 -m jupyterlab")
    assert training_display.resolve_progress("auto", verbose=True) == "bar"
    monkeypatch.setenv(environment.PAPERMILL_VARIABLE, "1")
    assert training_display.resolve_progress("auto", verbose=True) == "log"


def test_sweep_progress_bars_are_off_under_ci_unless_tqdm_disable_says_otherwise(monkeypatch):
    from hypermorph_nb.evaluation import sweeps as evaluation

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setenv("CI", "true")
    with evaluation._progress_bar(3, "λ sweep", True) as bar:
        assert bar.disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    with evaluation._progress_bar(3, "λ sweep", True) as bar:
        assert not bar.disable
    with evaluation._progress_bar(3, "λ sweep", False) as bar:
        assert bar.disable
