"""Lint and types: ``ruff check`` over the package, tests and benchmarks, ``mypy`` over the package.

Rules and settings in pyproject.toml.
"""
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
