"""The README's main job: hypermorph-nb demo --out DIR."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hypermorph_nb.cli import main


@pytest.mark.slow
def test_demo_writes_metrics_figures_and_model(tmp_path):
    code = main(["demo", "--out", str(tmp_path), "--epochs", "2", "--steps-per-epoch", "30",
                 "--images", "12", "--size", "32", "32"])
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["sweep"]["lams"][0] == 0.0 and len(metrics["sweep"]["mean_dice"]) == 7
    assert 0 < metrics["identity_dice"] < 1 and 0 <= metrics["best_dice"] <= 1
    assert (tmp_path / "lambda_row.png").stat().st_size > 1000
    assert (tmp_path / "dice_vs_lambda.png").stat().st_size > 1000
    assert (tmp_path / "model" / "model.json").exists()


def test_console_script_is_installed():
    # The script sits beside the interpreter running the tests; CI calls .venv/bin/python
    # directly, so the venv's bin directory need not be on PATH.
    scripts = Path(sys.executable).parent
    exe = shutil.which("hypermorph-nb", path=str(scripts)) or shutil.which("hypermorph-nb")
    assert exe, f"pip install -e . provides the hypermorph-nb command in {scripts}"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "demo" in result.stdout


def test_bad_arguments_exit_with_usage():
    result = subprocess.run([sys.executable, "-m", "hypermorph_nb.cli", "demo"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "--out" in result.stderr
