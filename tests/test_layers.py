"""The package's layers hold: the import-linter contracts of pyproject.toml, and imports that stay light."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINT_IMPORTS = pathlib.Path(sys.executable).with_name("lint-imports")


def lint_imports(root: pathlib.Path) -> subprocess.CompletedProcess:
    """``lint-imports`` over the package under ``root``, with ``root``'s pyproject.toml."""
    if not LINT_IMPORTS.exists():
        pytest.skip(f"{LINT_IMPORTS} is missing: pip install -e '.[dev]' (import-linter)")
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_layer_contracts_are_kept():
    result = lint_imports(ROOT)
    broken = result.stdout[result.stdout.find("Broken contracts"):]
    assert result.returncode == 0, f"imports that break the layers (pyproject.toml [tool.importlinter]):\n{broken}"
    assert "0 broken" in result.stdout


def test_the_contracts_catch_an_upward_import(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "hypermorph_nb", tmp_path / "hypermorph_nb",   # the sources only, no weights
                    ignore=lambda folder, names: [name for name in names if not name.endswith(".py")
                                                  and not (pathlib.Path(folder) / name).is_dir()])
    checks = tmp_path / "hypermorph_nb" / "checks" / "values.py"
    checks.write_text(checks.read_text() + "\n\ndef _upward():\n    from ..training import loop\n    return loop\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "hypermorph_nb.checks.values -> hypermorph_nb.training.loop" in result.stdout


def loaded_in_a_fresh_interpreter(code: str, modules: tuple[str, ...] = ("tensorflow",)) -> list[str]:
    """Which of ``modules`` a fresh Python has loaded after running ``code``."""
    probe = f"import sys\n{code}\nprint([name for name in {modules!r} if name in sys.modules])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import hypermorph_nb.data",
    "from hypermorph_nb import prepare_scans",
    "import hypermorph_nb as hnb; hnb.prepare_scans; hnb.data.Dataset; hnb.checks; hnb.metrics",
])
def test_preparing_scans_loads_no_tensorflow(code):
    assert loaded_in_a_fresh_interpreter(code) == []


def test_the_probe_sees_tensorflow_when_it_loads():
    assert loaded_in_a_fresh_interpreter("import hypermorph_nb as hnb; hnb.data.PairBatches") == ["tensorflow"]
