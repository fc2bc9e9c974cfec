"""Lint and types: ``ruff check`` over the package, tests and benchmarks, ``mypy`` over the package,
annotations on every public function and method, ``py.typed`` shipped.

Rules and settings in pyproject.toml.
"""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ruff_command():
    """``python -m ruff`` from this environment (the dev extra installs it), else ``ruff`` on PATH."""
    probe = subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "ruff"]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed: pip install -e '.[dev]'")


def test_project_rules_include_pyflakes_and_syntax_errors():
    tomllib = pytest.importorskip("tomllib")
    rules = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]["select"]
    assert {"F", "E9"} <= set(rules)


def test_ruff_check_passes():
    result = subprocess.run(
        [*ruff_command(), "check", "--no-cache", "hypermorph_nb", "tests", "benchmarks"],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"ruff check found problems (fix them or see pyproject.toml):\n{result.stdout}{result.stderr}"


def test_mypy_passes_on_the_package():
    if subprocess.run([sys.executable, "-m", "mypy", "--version"], capture_output=True).returncode:
        pytest.skip("mypy is not installed: pip install -e '.[dev]'")
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"mypy found problems (settings in pyproject.toml):\n{result.stdout}{result.stderr}"


def test_public_api_is_annotated():
    import inspect

    import hypermorph_nb as hnb

    missing = []
    for name in hnb.__all__:
        value = getattr(hnb, name)
        if inspect.isfunction(value):
            signature = inspect.signature(value)
            unannotated = [p for p in signature.parameters.values()
                           if p.annotation is inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD]
            if unannotated or signature.return_annotation is inspect.Signature.empty:
                missing.append(f"hnb.{name}: " + ", ".join(p.name for p in unannotated))
    assert missing == [], "annotate the public functions:\n" + "\n".join(missing)


def unannotated_public_functions(source: str) -> list[str]:
    """``'name (line): what is missing'`` for each public function or method of ``source`` that
    lacks an annotation on a parameter or its return.

    Public: module-level functions and methods of public classes whose names do not start with
    ``_``, plus ``__init__`` and ``__call__`` (their parameters are the public signature).
    ``self``/``cls`` need none; functions nested in functions are not part of the API.
    """
    missing = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef) and not child.name.startswith("_"):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    not child.name.startswith("_") or child.name in ("__init__", "__call__")):
                arguments = child.args
                parameters = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                              *(a for a in (arguments.vararg, arguments.kwarg) if a is not None)]
                if prefix and parameters and parameters[0].arg in ("self", "cls"):
                    parameters = parameters[1:]
                absent = [p.arg for p in parameters if p.annotation is None]
                if child.returns is None:
                    absent.append("return")
                if absent:
                    missing.append(f"{prefix}{child.name} (line {child.lineno}): {', '.join(absent)}")

    visit(ast.parse(source), "")
    return missing


def test_the_annotation_check_finds_what_is_missing():
    source = (
        "def typed(a: int, *args: str, b: float = 1.0, **kwargs: object) -> None: ...\n"
        "def untyped(a, b: int): ...\n"
        "def _private(a): ...\n"
        "class Public:\n"
        "    def __init__(self, size): ...\n"
        "    def method(self, x: int): ...\n"
        "    @classmethod\n"
        "    def make(cls) -> 'Public': ...\n"
        "    def __repr__(self): ...\n"
        "class _Private:\n"
        "    def method(self, x): ...\n"
        "def outer() -> None:\n"
        "    def inner(x): ...\n"
    )
    assert unannotated_public_functions(source) == [
        "untyped (line 2): a, return",
        "Public.__init__ (line 5): size, return",
        "Public.method (line 6): return",
    ]


def test_every_public_function_and_method_is_annotated():
    missing = [f"{path.relative_to(ROOT)}: {entry}"
               for path in sorted((ROOT / "hypermorph_nb").rglob("*.py"))
               for entry in unannotated_public_functions(path.read_text(encoding="utf-8"))]
    assert missing == [], "annotate every parameter and the return of:\n" + "\n".join(missing)


def test_the_package_ships_py_typed():
    tomllib = pytest.importorskip("tomllib")
    assert (ROOT / "hypermorph_nb" / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["hypermorph_nb"]


def test_mypy_settings_check_every_body_and_are_strict_on_the_lower_layers():
    tomllib = pytest.importorskip("tomllib")
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy["check_untyped_defs"] is True
    strict = {module for override in mypy["overrides"] if override.get("disallow_untyped_defs")
              for module in override["module"]}
    assert {"hypermorph_nb.checks.*", "hypermorph_nb.io.*", "hypermorph_nb.metrics",
            "hypermorph_nb.registration.*"} <= strict
