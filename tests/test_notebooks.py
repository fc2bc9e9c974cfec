"""The tutorial notebooks as regression tests: papermill runs each with small parameters.

Executed notebooks and their outputs are kept under ``artifacts/notebooks/`` (override
with HYPERMORPH_NB_ARTIFACTS) so CI can publish them.
"""
import os
from pathlib import Path

import nbformat
import pytest

from hypermorph_nb.notebooks import NotebookFailed, find_notebooks, run_all, run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = Path(os.environ.get("HYPERMORPH_NB_ARTIFACTS", ROOT / "artifacts")) / "notebooks"

#: Small settings for CI: the embedded synthetic data, a few hundred training steps.
SMALL = {
    "data_source": "synthetic", "image_shape": [64, 64], "seed": 0,
    "epochs": 4, "steps_per_epoch": 50, "learning_rate": 1e-3,
    "lam_sampling": {"mode": "oversample", "oversample_rate": 0.5}, "image_sigma": 0.2,
    "n_pairs": 8, "sweep_lams": [0.0, 0.5, 0.9, 0.99, 1.0],
    "lams": [0.5, 0.9], "baseline_epochs": 2, "hypermorph_epochs": 4,
}
#: Notebooks that load what an earlier one saved.
DEPENDS_ON = {"03_explore_lambda": "02_train_hypermorph"}
EXPECTED = ["01_voxelmorph_baseline", "02_train_hypermorph", "03_explore_lambda",
            "04_hypermorph_vs_separate_models"]


@pytest.fixture(scope="module")
def executed():
    """Run notebooks on demand, in order (03 loads the model 02 saved), each once."""
    results = {}

    def run(stem):
        if stem not in results:
            if stem in DEPENDS_ON:
                run(DEPENDS_ON[stem])
            try:
                results.update(run_all(NOTEBOOKS, ARTIFACTS, parameters=SMALL, names=[stem]))
            except NotebookFailed as err:
                pytest.fail(str(err), pytrace=False)
        return results[stem]

    return run


def png_outputs(stem):
    notebook = nbformat.read(ARTIFACTS / "executed" / f"{stem}.ipynb", as_version=4)
    return sum("image/png" in output.get("data", {})
               for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


def test_notebooks_are_numbered_committed_without_outputs_and_parameterised():
    assert [p.stem for p in find_notebooks(NOTEBOOKS)] == EXPECTED
    for path in find_notebooks(NOTEBOOKS):
        notebook = nbformat.read(path, as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
        assert "output_dir" in tagged[0].source and "seed" in tagged[0].source


def test_small_parameters_exist_in_the_notebooks():
    """A renamed parameter would silently leave the notebook at full scale in CI."""
    import papermill

    declared = set()
    for path in find_notebooks(NOTEBOOKS):
        declared |= set(papermill.inspect_notebook(str(path)))
    assert set(SMALL) <= declared, set(SMALL) - declared


def test_a_failing_cell_is_named(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise ValueError('broken on purpose')"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "00_broken.ipynb"
    nbformat.write(notebook, path)
    with pytest.raises(NotebookFailed, match=r"00_broken.ipynb: the cell starting \"raise ValueError\(.*ValueError: broken on purpose"):
        run_notebook(path, tmp_path / "executed.ipynb", {"output_dir": str(tmp_path)})


@pytest.mark.slow
def test_01_baseline_registers_better_than_no_registration(executed):
    metrics = executed("01_voxelmorph_baseline")
    assert metrics["data"].startswith("synthetic")
    assert metrics["lams"] == [0.5] and metrics["epochs"] == SMALL["epochs"]
    assert metrics["mean_dice"][0] > metrics["identity_dice"] + 0.02
    assert metrics["mse"][0] < metrics["identity_mse"]
    assert png_outputs("01_voxelmorph_baseline") >= 3  # images, loss plot, registered pair


@pytest.mark.slow
def test_02_hypermorph_learns_every_lambda(executed):
    metrics = executed("02_train_hypermorph")
    smooth = metrics["field_smoothness"]
    assert smooth["1"] < 0.5 * smooth["0"], "λ=1 must give a smoother field than λ=0"
    assert len(metrics["lams"]) == 5 and max(metrics["mean_dice"]) > metrics["identity_dice"] + 0.02
    assert (ARTIFACTS / "02_train_hypermorph" / "model" / "model.json").exists()
    assert png_outputs("02_train_hypermorph") >= 2  # loss plot, the λ-row figure


@pytest.mark.slow
def test_03_explorer_and_sweep_choose_lambda(executed):
    metrics = executed("03_explore_lambda")
    assert metrics["lams"] == SMALL["sweep_lams"]
    assert metrics["optimal_lam"] in SMALL["sweep_lams"]
    per_label = metrics["optimal_lam_per_label"]
    assert per_label and set(per_label.values()) <= set(SMALL["sweep_lams"])
    explorer = metrics["explorer"]
    assert explorer["jacobian_spread_at_1"] < explorer["jacobian_spread_at_0"]
    assert explorer["folding_at_1"] <= explorer["folding_at_0"]
    assert max(metrics["mean_dice"]) > metrics["identity_dice"]
    assert png_outputs("03_explore_lambda") >= 2  # explorer and sweep snapshots


@pytest.mark.slow
def test_04_compares_hypermorph_with_separate_models(executed):
    metrics = executed("04_hypermorph_vs_separate_models")
    assert [row["lam"] for row in metrics["rows"]] == SMALL["lams"]
    assert metrics["baseline_seconds"] > 0 and metrics["hypermorph_seconds"] > 0
    identity = metrics["baselines"]["identity_dice"]
    assert max(metrics["hypermorph"]["mean_dice"]) > identity
    assert max(metrics["baselines"]["mean_dice"]) > identity
    assert metrics["optimum_steps_apart"] in range(len(SMALL["lams"]))
    assert png_outputs("04_hypermorph_vs_separate_models") >= 1
