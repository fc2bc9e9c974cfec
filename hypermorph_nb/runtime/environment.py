"""Where this Python process runs: Colab, VS Code, JupyterLab, Notebook 7, papermill, CI, a script.

The toolkit behaves the same everywhere except in three places that depend on
the environment:

- **Display path of the widgets** (:func:`ipympl_supported`): JupyterLab and
  Notebook 7 get ipympl's front-end code with the Python package. Colab and
  VS Code load third-party widget code (ipympl's) from a CDN, Colab only after
  its custom widget manager is turned on (:func:`enable_third_party_widgets`),
  and both have broken it across ipywidgets releases; papermill has no
  front-end at all. Everywhere but JupyterLab and Notebook 7 the widgets draw
  into an ``ipywidgets.Image``, which needs the core ipywidgets alone.
- **Progress bars** (:func:`quiet_progress`): off under CI and papermill,
  where they would fill logs or saved notebooks with frames.
- **papermill** runs: :func:`papermill_marker` is what
  :func:`hypermorph_nb.notebooks.run_notebook` sets for its kernels.

Detection reads only environment variables, loaded modules and, on Linux, the
command line of the kernel's parent process; it never imports a front-end.

Examples
--------
>>> detect(environ={}, modules={}).frontend        # a plain Python process
'script'
>>> detect(environ={"CI": "true"}, modules={}).ci
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import os
import sys
from dataclasses import dataclass
from pathlib import Path

#: Front-ends :func:`detect` tells apart.
FRONTENDS = ("colab", "vscode", "jupyterlab", "notebook", "jupyter", "papermill", "ipython", "script")
#: Front-ends whose widget manager has ipympl's code as soon as the package is
#: installed (``'jupyter'``: a Jupyter server whose front-end is not known,
#: JupyterLab or Notebook 7 in practice).
IPYMPL_FRONTENDS = ("jupyterlab", "notebook", "jupyter")
#: Set (to ``"1"``) in the environment of kernels started by
#: :func:`hypermorph_nb.notebooks.run_notebook`.
PAPERMILL_VARIABLE = "HYPERMORPH_NB_PAPERMILL"
#: CI services set one of these (``CI`` by GitHub Actions, GitLab, Travis, CircleCI, ...).
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Environment:
    """What :func:`detect` found.

    Attributes
    ----------
    frontend : str
        One of :data:`FRONTENDS`.
    kernel : bool
        Running inside a Jupyter kernel (any front-end, papermill included).
    ci : bool
        A CI service's variable is set.
    """

    frontend: str
    kernel: bool
    ci: bool

    @property
    def papermill(self) -> bool:
        """True when papermill executes this kernel."""
        return self.frontend == "papermill"


def detect(*, environ: Mapping[str, str] | None = None, modules: Mapping[str, Any] | None = None,
           parent_command: str | None = None) -> Environment:
    """Detect the front-end, whether a kernel runs and whether CI runs.

    Parameters
    ----------
    environ : mapping, optional
        Environment variables (default ``os.environ``).
    modules : mapping, optional
        Loaded modules (default ``sys.modules``).
    parent_command : str, optional
        Command line of the parent process (default: read from ``/proc`` on
        Linux, empty elsewhere); tells papermill, JupyterLab and Notebook 7 apart.

    Returns
    -------
    Environment

    Examples
    --------
    >>> import types
    >>> detect(environ={}, modules={"google.colab": types.ModuleType("google.colab")}).frontend
    'colab'
    >>> detect(environ={"VSCODE_PID": "42"}, modules={}, parent_command="").frontend
    'script'
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    kernel = in_kernel(modules)
    ci = any(environ.get(name, "").lower() not in _FALSE for name in CI_VARIABLES)
    if parent_command is None:
        parent_command = _parent_command() if kernel else ""
    command = parent_command.lower()
    if environ.get(PAPERMILL_VARIABLE, "") not in _FALSE or (kernel and "papermill" in command):
        frontend = "papermill"
    elif "google.colab" in modules or "COLAB_RELEASE_TAG" in environ:
        frontend = "colab"
    elif not kernel:
        frontend = "ipython" if _in_ipython(modules) else "script"
    elif _vscode(environ, modules) or "vscode" in command:
        frontend = "vscode"
    elif "jupyter-lab" in command or "jupyterlab" in command:
        frontend = "jupyterlab"
    elif "jupyter-notebook" in command or "-m notebook" in command or "notebook.app" in command:
        frontend = "notebook"
    else:
        frontend = "jupyter"
    return Environment(frontend=frontend, kernel=kernel, ci=ci)


def ipympl_supported(environment: Environment | None = None) -> bool:
    """True where ipympl's interactive canvas is known to work without set-up (:data:`IPYMPL_FRONTENDS`).

    Examples
    --------
    >>> ipympl_supported(Environment("vscode", kernel=True, ci=False))
    False
    >>> ipympl_supported(Environment("jupyterlab", kernel=True, ci=False))
    True
    """
    environment = detect() if environment is None else environment
    return environment.frontend in IPYMPL_FRONTENDS


def enable_third_party_widgets(environment: Environment | None = None) -> bool:
    """On Colab, turn on the custom widget manager that third-party widgets (ipympl) need.

    Core ipywidgets (sliders, ``Image``) work on Colab without it; a widget asked
    to draw with ipympl (``display="ipympl"``) calls this first. Elsewhere it
    does nothing. Returns True when the manager was enabled.

    Examples
    --------
    >>> enable_third_party_widgets(Environment("jupyterlab", kernel=True, ci=False))
    False
    """
    environment = detect() if environment is None else environment
    if environment.frontend != "colab":
        return False
    from google.colab import output

    output.enable_custom_widget_manager()
    return True


def quiet_progress(environment: Environment | None = None, *,
                   environ: Mapping[str, str] | None = None) -> bool:
    """True when progress bars should stay off: under CI or papermill.

    ``TQDM_DISABLE`` decides when set (``1`` off, ``0`` on), as it does for tqdm.

    Examples
    --------
    >>> quiet_progress(Environment("script", kernel=False, ci=True), environ={})
    True
    >>> quiet_progress(Environment("papermill", kernel=True, ci=False), environ={"TQDM_DISABLE": "0"})
    False
    """
    environ = os.environ if environ is None else environ
    if "TQDM_DISABLE" in environ:
        return environ["TQDM_DISABLE"].lower() not in _FALSE
    environment = detect() if environment is None else environment
    return environment.ci or environment.papermill


def in_kernel(modules: Mapping[str, Any]) -> bool:
    shell = _shell(modules)
    return shell is not None and getattr(shell, "kernel", None) is not None


def _vscode(environ, modules) -> bool:
    # VS Code's kernels inherit VSCODE_* variables and get __vsc_ipynb_file__ in their namespace
    if "VSCODE_PID" in environ or "VSCODE_CWD" in environ:
        return True
    return "__vsc_ipynb_file__" in getattr(_shell(modules), "user_ns", {})


def _in_ipython(modules) -> bool:
    return _shell(modules) is not None


def _shell(modules):
    ipython = modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    return get_ipython() if get_ipython is not None else None


def _parent_command():
    """The parent process's command line (Linux ``/proc``), or ``''``."""
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")
