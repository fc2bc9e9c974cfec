"""The tutorial notebooks as regression tests: papermill runs each with small parameters.

Two tiers: the fast one runs every notebook at :data:`TINY` settings (32×32, a few steps) and
checks its contract (parameters, files, ``metrics.json`` keys, pictures); the slow tier
(``pytest -m slow``) runs them at :data:`SMALL` settings and checks the Dice margins.
Executed notebooks and their outputs are kept under ``artifacts/notebooks/`` (the tiny runs
under ``artifacts/notebooks-tiny/``; override the root with HYPERMORPH_NB_ARTIFACTS) so CI can
publish them.
"""
import os
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from hypermorph_nb.notebooks import QUICK, NotebookFailed, find_notebooks, run_all, run_notebook, scale_epochs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = Path(os.environ.get("HYPERMORPH_NB_ARTIFACTS", ROOT / "artifacts")) / "notebooks"

#: Notebook 06's (λ, γ) grids at small and tiny settings: the surface's axes and the separately trained models.
SMALL_06 = {"surface_lams": [0.0, 0.2, 0.5, 0.8, 1.0], "surface_gammas": [0.0, 0.5, 1.0],
            "baseline_points": [[0.2, 0.0], [0.2, 1.0]]}
TINY_06 = {"surface_lams": [0.0, 0.5, 1.0], "surface_gammas": [0.0, 1.0], "baseline_points": [[0.5, 0.0], [0.5, 1.0]]}
#: Small settings for CI: the embedded synthetic data, a few hundred training steps. The
#: notebooks' one knob, ``scale``, shortens every epoch count: 01 trains 4 epochs of its 100,
#: 02 8 of 200, 04 2 of 40 per baseline and 3 of 80 for HyperMorph.
SMALL = {
    "data_source": "synthetic", "image_shape": [64, 64], "seed": 0,
    "scale": 0.04, "steps_per_epoch": 50, "learning_rate": 1e-3,
    "lam_sampling": {"mode": "oversample", "oversample_rate": 0.5}, "image_sigma": 0.2,
    "n_pairs": 8, "sweep_lams": [0.0, 0.5, 0.9, 0.99, 1.0], "lams": [0.5, 0.9], **SMALL_06,
}
#: Tiny settings for the fast tier: 32×32 images, one epoch of 5 steps per training, 2 pairs.
TINY = {**SMALL, "image_shape": [32, 32], "scale": 0.001, "steps_per_epoch": 5, "n_pairs": 2,
        "sweep_lams": [0.0, 0.5, 1.0], **TINY_06}
TINY_ARTIFACTS = ARTIFACTS.with_name("notebooks-tiny")
#: What TensorFlow prints while it loads (see hypermorph_nb/runtime/startup_logs.py); no output may hold it.
STARTUP_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "Could not find cuda drivers",
                 "cudart_stub", "I0000 ")
#: The first code cell of every notebook: installs the package on Colab, does nothing elsewhere.
COLAB_GUARD = 'if "google.colab" in sys.modules:\n    source = os.environ.get("HYPERMORPH_NB_SOURCE")'
#: Epoch counts that ``scale`` multiplies, per notebook that trains.
EPOCH_PARAMETERS = {"01_voxelmorph_baseline": ["epochs"], "02_train_hypermorph": ["epochs"],
                    "04_hypermorph_vs_separate_models": ["baseline_epochs", "hypermorph_epochs"],
                    "05_your_own_scans": ["epochs"], "06_several_hyperparameters": ["epochs", "baseline_epochs"]}
#: Notebooks that load what an earlier one saved.
DEPENDS_ON = {"03_explore_lambda": "02_train_hypermorph"}
EXPECTED = ["01_voxelmorph_baseline", "02_train_hypermorph", "03_explore_lambda",
            "04_hypermorph_vs_separate_models", "05_your_own_scans", "06_several_hyperparameters"]


def notebook_runner(parameters, artifacts):
    """Run notebooks on demand, in order (03 loads the model 02 saved), each once."""
    results = {}

    def run(stem):
        if stem not in results:
            if stem in DEPENDS_ON:
                run(DEPENDS_ON[stem])
            # a fresh run: checkpoints a notebook left there would be resumed (and refused
            # when an earlier version of the package trained them with other settings)
            shutil.rmtree(artifacts / stem, ignore_errors=True)
            try:
                results.update(run_all(NOTEBOOKS, artifacts, parameters=parameters, names=[stem]))
            except NotebookFailed as err:
                pytest.fail(str(err), pytrace=False)
        return results[stem]

    return run


@pytest.fixture(scope="module")
def executed():
    """The notebooks at :data:`SMALL` settings (the slow tier)."""
    return notebook_runner(SMALL, ARTIFACTS)


@pytest.fixture(scope="module")
def executed_tiny():
    """The notebooks at :data:`TINY` settings (the fast tier)."""
    return notebook_runner(TINY, TINY_ARTIFACTS)


def executed_notebook(stem, artifacts=ARTIFACTS):
    return nbformat.read(artifacts / "executed" / f"{stem}.ipynb", as_version=4)


def png_outputs(stem, artifacts=ARTIFACTS):
    return sum("image/png" in output.get("data", {})
               for cell in executed_notebook(stem, artifacts).cells if cell.cell_type == "code"
               for output in cell.outputs)


def startup_noise(notebook):
    """Outputs of an executed notebook that hold TensorFlow's start-up lines."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "") + "".join(str(v) for v in output.get("data", {}).values())
            found += [line for line in text.splitlines() if any(marker in line for marker in STARTUP_NOISE)]
    return found


def default_of(stem, name):
    import papermill

    return int(papermill.inspect_notebook(str(NOTEBOOKS / f"{stem}.ipynb"))[name]["default"])


def check_executed(stem, artifacts=ARTIFACTS):
    """What every executed notebook must show: no start-up noise, a silent Colab cell."""
    notebook = executed_notebook(stem, artifacts)
    assert not startup_noise(notebook), f"{stem}: TensorFlow start-up lines in the outputs"
    colab_cell = next(c for c in notebook.cells if c.cell_type == "code" and COLAB_GUARD in c.source)
    assert colab_cell.outputs == [], f"{stem}: the Colab install cell printed something outside Colab"


def widget_pictures(stem, names, artifacts=ARTIFACTS):
    """Check that the cells displaying ``names`` on their own line carry an image/png beside the widget view."""
    cells = executed_notebook(stem, artifacts).cells
    for name in names:   # the widgets' own display data carries their last frame
        shown = [c for c in cells if c.cell_type == "code" and c.source.strip().splitlines()[-1] == name]
        assert shown, f"notebook {stem[:2]} no longer displays `{name}` on its own line"
        bundles = [o.get("data", {}) for o in shown[0].outputs]
        assert any("application/vnd.jupyter.widget-view+json" in b and "image/png" in b for b in bundles), \
            f"the cell displaying `{name}` has no image/png beside its widget view"


def test_notebooks_are_numbered_committed_without_outputs_and_parameterised():
    assert [p.stem for p in find_notebooks(NOTEBOOKS)] == EXPECTED
    for path in find_notebooks(NOTEBOOKS):
        notebook = nbformat.read(path, as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs"
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
        assert "output_dir" in tagged[0].source and "seed" in tagged[0].source
        assert COLAB_GUARD in code[0].source, f"{path.name}: the first code cell must be the Colab install cell"


def test_every_training_notebook_scales_all_its_epoch_counts_with_one_knob():
    import papermill

    for stem, names in EPOCH_PARAMETERS.items():
        path = NOTEBOOKS / f"{stem}.ipynb"
        assert papermill.inspect_notebook(str(path))["scale"]["default"] == "1.0", stem
        source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        for name in names:
            assert f"epochs=hnb.scale_epochs({name}, scale)" in source, f"{stem}: {name} is not scaled"


def test_colab_cell_does_nothing_outside_colab_and_installs_on_colab(monkeypatch):
    from IPython.core.inputtransformer2 import TransformerManager

    source = next(c.source for c in nbformat.read(find_notebooks(NOTEBOOKS)[0], as_version=4).cells
                  if c.cell_type == "code")
    python = TransformerManager().transform_cell(source)   # how IPython runs the %pip line
    calls = []
    shell = type("Shell", (), {"run_line_magic": lambda self, *args: calls.append(args)})()
    exec(python, {"get_ipython": lambda: shell})
    assert calls == []                                       # no google.colab here
    colab = type(sys)("google.colab")
    sys.modules["google.colab"] = colab
    try:
        monkeypatch.delenv("HYPERMORPH_NB_SOURCE", raising=False)
        with pytest.raises(RuntimeError, match="set HYPERMORPH_NB_SOURCE"):
            exec(python, {"get_ipython": lambda: shell})      # no source named: says what to set
        monkeypatch.setenv("HYPERMORPH_NB_SOURCE", "git+https://example.org/me/hypermorph-nb")
        exec(python, {"get_ipython": lambda: shell})
    finally:
        del sys.modules["google.colab"]
    assert len(calls) == 1 and calls[0][0] == "pip"
    # IPython expands {source} in a magic's line from the cell's variables
    assert "hypermorph-nb @ git+https://example.org/me/hypermorph-nb" in calls[0][1].format(
        source="git+https://example.org/me/hypermorph-nb")


def test_quick_preset_scales_every_notebook_and_set_overrides_it(monkeypatch, tmp_path):
    from hypermorph_nb import cli
    from hypermorph_nb import notebooks

    seen = {}
    monkeypatch.setattr(notebooks, "run_all", lambda folder, out, *, parameters, names: seen.update(parameters))
    assert cli.main(["notebooks", "--out", str(tmp_path), "--quick", "--set", "image_shape=[64,64]"]) == 0
    assert seen == {**QUICK, "image_shape": [64, 64]} and seen["scale"] < 1
    assert scale_epochs(40, QUICK["scale"]) == 2 and scale_epochs(200, QUICK["scale"]) == 10


@pytest.mark.slow
def test_a_papermill_kernel_is_detected_and_shows_no_tensorflow_start_up_lines(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import hypermorph_nb as hnb\n"
                                  "print(hnb.runtime.environment.detect().frontend, hnb.runtime.environment.quiet_progress())"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "00_environment.ipynb"
    nbformat.write(notebook, path)
    run_notebook(path, tmp_path / "executed.ipynb", {"output_dir": str(tmp_path)})
    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    assert not startup_noise(executed), startup_noise(executed)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert printed.strip() == "papermill True"
    assert "HYPERMORPH_NB_PAPERMILL" not in os.environ   # only the kernel had it


def test_small_parameters_exist_in_the_notebooks():
    """A renamed parameter would silently leave the notebook at full scale in CI."""
    import papermill

    declared = set()
    for path in find_notebooks(NOTEBOOKS):
        declared |= set(papermill.inspect_notebook(str(path)))
    assert set(SMALL) | set(TINY) <= declared, (set(SMALL) | set(TINY)) - declared


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
    assert metrics["lams"] == [0.5]
    assert metrics["epochs"] == scale_epochs(default_of("01_voxelmorph_baseline", "epochs"), SMALL["scale"]) == 4
    check_executed("01_voxelmorph_baseline")
    assert metrics["mean_dice"][0] > metrics["identity_dice"] + 0.02
    assert metrics["mse"][0] < metrics["identity_mse"]
    assert png_outputs("01_voxelmorph_baseline") >= 3  # images, loss plot, registered pair


@pytest.mark.slow
def test_02_hypermorph_learns_every_lambda(executed):
    metrics = executed("02_train_hypermorph")
    assert metrics["epochs"] == scale_epochs(default_of("02_train_hypermorph", "epochs"), SMALL["scale"])
    check_executed("02_train_hypermorph")
    smooth = metrics["field_smoothness"]
    assert smooth["1"] < 0.5 * smooth["0"], "λ=1 must give a smoother field than λ=0"
    assert len(metrics["lams"]) == 5 and max(metrics["mean_dice"]) > metrics["identity_dice"] + 0.02
    assert (ARTIFACTS / "02_train_hypermorph" / "model" / "model.json").exists()
    assert png_outputs("02_train_hypermorph") >= 2  # loss plot, the λ-row figure


@pytest.mark.slow
def test_03_explorer_and_sweep_choose_lambda(executed):
    metrics = executed("03_explore_lambda")
    check_executed("03_explore_lambda")
    assert metrics["lams"] == SMALL["sweep_lams"]
    assert metrics["optimal_lam"] in SMALL["sweep_lams"]
    per_label = metrics["optimal_lam_per_label"]
    assert per_label and set(per_label.values()) <= set(SMALL["sweep_lams"])
    explorer = metrics["explorer"]
    assert explorer["jacobian_spread_at_1"] < explorer["jacobian_spread_at_0"]
    assert explorer["folding_at_1"] <= explorer["folding_at_0"]
    assert max(metrics["mean_dice"]) > metrics["identity_dice"]
    assert png_outputs("03_explore_lambda") >= 2  # explorer and sweep snapshots
    widget_pictures("03_explore_lambda", ("explorer", "panel"))


@pytest.mark.slow
def test_04_compares_hypermorph_with_separate_models(executed):
    metrics = executed("04_hypermorph_vs_separate_models")
    check_executed("04_hypermorph_vs_separate_models")
    assert [row["lam"] for row in metrics["rows"]] == SMALL["lams"]
    assert metrics["baseline_seconds"] > 0 and metrics["hypermorph_seconds"] > 0
    identity = metrics["baselines"]["identity_dice"]
    assert max(metrics["hypermorph"]["mean_dice"]) > identity
    assert max(metrics["baselines"]["mean_dice"]) > identity
    assert metrics["optimum_steps_apart"] in range(len(SMALL["lams"]))
    assert png_outputs("04_hypermorph_vs_separate_models") >= 1


@pytest.mark.slow
def test_06_one_model_learns_lambda_and_gamma_and_the_label_term_helps_the_supervised_structures(executed):
    metrics = executed("06_several_hyperparameters")
    check_executed("06_several_hyperparameters")
    surface = np.asarray(metrics["surface"]["mean_dice"])
    assert surface.shape == (len(SMALL_06["surface_lams"]), len(SMALL_06["surface_gammas"]))
    assert np.nanmax(surface) > metrics["identity_dice"] + 0.02
    folding = np.asarray(metrics["surface"]["folding"])
    assert folding[-1].mean() <= folding[0].mean(), "λ = 1 must fold no more than λ = 0"
    supervised = {(row["lam"], row["label_weight"]): row["one model, with labels in training"] for row in metrics["rows"]}
    assert supervised[0.2, 1.0] > supervised[0.2, 0.0] - 0.01, "γ = 1 must not cost the labelled structures Dice"
    assert png_outputs("06_several_hyperparameters") >= 3


def check_contract(stem, metrics, keys, pictures):
    """The fast tier's check of one notebook run at :data:`TINY` settings: what it wrote and showed."""
    check_executed(stem, TINY_ARTIFACTS)
    assert (TINY_ARTIFACTS / stem / "metrics.json").is_file()
    assert keys <= set(metrics), f"{stem}: metrics.json lacks {keys - set(metrics)}"
    assert metrics["data"].startswith("synthetic")
    assert png_outputs(stem, TINY_ARTIFACTS) >= pictures


def test_01_runs_at_tiny_settings_and_records_its_metrics(executed_tiny):
    metrics = executed_tiny("01_voxelmorph_baseline")
    check_contract("01_voxelmorph_baseline", metrics,
                   {"lam", "epochs", "final_loss", "lams", "mean_dice", "identity_dice", "mse", "identity_mse"}, 3)
    assert metrics["epochs"] == scale_epochs(default_of("01_voxelmorph_baseline", "epochs"), TINY["scale"]) == 1
    assert metrics["lams"] == [0.5] and 0 <= metrics["mean_dice"][0] <= 1


def test_02_runs_at_tiny_settings_and_saves_its_model(executed_tiny):
    metrics = executed_tiny("02_train_hypermorph")
    check_contract("02_train_hypermorph", metrics,
                   {"epochs", "final_loss", "field_smoothness", "lams", "mean_dice", "identity_dice"}, 2)
    assert metrics["epochs"] == 1 and set(metrics["field_smoothness"]) == {"0", "1"}
    assert len(metrics["lams"]) == len(metrics["mean_dice"]) == 5
    assert (TINY_ARTIFACTS / "02_train_hypermorph" / "model" / "model.json").exists()


def test_03_runs_at_tiny_settings_and_shows_its_widgets_as_pictures(executed_tiny):
    metrics = executed_tiny("03_explore_lambda")
    check_contract("03_explore_lambda", metrics,
                   {"explorer", "lams", "mean_dice", "identity_dice", "optimal_lam", "optimal_lam_per_label"}, 2)
    assert metrics["lams"] == TINY["sweep_lams"] and metrics["optimal_lam"] in TINY["sweep_lams"]
    assert set(metrics["optimal_lam_per_label"].values()) <= set(TINY["sweep_lams"])
    assert {"dice_at_0", "dice_at_1", "folding_at_0", "folding_at_1", "jacobian_spread_at_0",
            "jacobian_spread_at_1"} <= set(metrics["explorer"])
    widget_pictures("03_explore_lambda", ("explorer", "panel"), TINY_ARTIFACTS)


def test_04_runs_at_tiny_settings_and_tabulates_each_lambda(executed_tiny):
    metrics = executed_tiny("04_hypermorph_vs_separate_models")
    check_contract("04_hypermorph_vs_separate_models", metrics,
                   {"lams", "baseline_seconds", "hypermorph_seconds", "rows", "hypermorph", "baselines",
                    "optimum_steps_apart"}, 1)
    assert [row["lam"] for row in metrics["rows"]] == TINY["lams"]
    assert metrics["baseline_seconds"] > 0 and metrics["hypermorph_seconds"] > 0
    assert metrics["optimum_steps_apart"] in range(len(TINY["lams"]))


def test_06_runs_at_tiny_settings_and_chooses_lambda_and_gamma(executed_tiny):
    metrics = executed_tiny("06_several_hyperparameters")
    check_contract("06_several_hyperparameters", metrics,
                   {"epochs", "supervised", "unsupervised", "trained_labels", "identity_dice", "surface", "optimum",
                    "optimum_by_group", "optimum_per_structure", "target", "choice", "rows",
                    "hypermorph_seconds", "baseline_seconds"}, 3)
    assert metrics["epochs"] == 1
    supervised, unsupervised = set(metrics["supervised"]), set(metrics["unsupervised"])
    assert supervised and unsupervised and not supervised & unsupervised and len(supervised) - len(unsupervised) in (0, 1)
    assert set(metrics["trained_labels"]) == supervised, "training must see the supervised structures' labels only"
    lams, gammas = TINY["surface_lams"], TINY["surface_gammas"]
    assert np.shape(metrics["surface"]["mean_dice"]) == np.shape(metrics["surface"]["folding"]) == (len(lams), len(gammas))
    for optimum in [metrics["optimum"], *metrics["optimum_by_group"].values(), *metrics["optimum_per_structure"].values()]:
        assert optimum["lam"] in lams and optimum["label_weight"] in gammas
    assert set(map(int, metrics["optimum_per_structure"])) <= supervised | unsupervised
    assert metrics["target"] in unsupervised
    choice = metrics["choice"]
    assert 0 <= choice["values"]["lam"] <= 1 and 0 <= choice["values"]["label_weight"] <= 1
    assert 0 <= choice["dice"] <= 1 and choice["evaluations"] >= 1
    assert [[row["lam"], row["label_weight"]] for row in metrics["rows"]] == TINY["baseline_points"]
    assert all(0 <= value <= 1 for row in metrics["rows"] for key, value in row.items() if key.startswith(("separate", "one")))
    assert metrics["baseline_seconds"] > 0 and metrics["hypermorph_seconds"] > 0
