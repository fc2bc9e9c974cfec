"""Notebook 05 (your own scans) under papermill on small volumes: what it records and exports."""
import base64
import os
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from hypermorph_nb.data import find_shared_ixi3d
from hypermorph_nb.notebooks import NotebookFailed, run_notebook

from tests.conftest import TINY_FEATURES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_your_own_scans.ipynb"
ARTIFACTS = Path(os.environ.get("HYPERMORPH_NB_ARTIFACTS", ROOT / "artifacts")) / "notebooks"
SWEEP_LAMS = [0.0, 0.9, 1.0]
#: Small settings for CI: nine volumes resampled to 32³ (the shared IXI set when it is beside
#: the repository, synthetic volumes otherwise), a narrow U-Net and 2 epochs of 10 steps.
SMALL_3D = {
    "data_source": "ixi3d" if find_shared_ixi3d(ROOT) else "synthetic3d", "volume_shape": [32, 32, 32],
    "subset": 9, "unet_features": TINY_FEATURES, "scale": 0.02, "steps_per_epoch": 10,
    "learning_rate": 1e-3, "sweep_lams": SWEEP_LAMS, "n_pairs": 2, "sweep_batch_size": 2, "seed": 0,
}


@pytest.mark.slow
def test_05_explores_volumes_in_three_planes_and_exports_nifti():
    nibabel = pytest.importorskip("nibabel")
    output_dir = ARTIFACTS / "05_your_own_scans"
    shutil.rmtree(output_dir, ignore_errors=True)   # the notebook resumes its checkpoints: start clean
    executed_path = ARTIFACTS / "executed" / NOTEBOOK.name
    try:
        metrics = run_notebook(NOTEBOOK, executed_path, {**SMALL_3D, "output_dir": str(output_dir)})
    except NotebookFailed as err:
        pytest.fail(str(err), pytrace=False)

    assert metrics["volume_shape"] == [32, 32, 32] and metrics["epochs_trained"] == 2
    explorer = metrics["explorer"]
    assert explorer["planes"] == ["axial", "coronal", "sagittal"]
    assert explorer["slice_model_runs"] == 0 and explorer["lam_model_runs"] == 2
    assert metrics["lams"] == SWEEP_LAMS and metrics["n_pairs"] == 2
    assert metrics["chosen_lam"] == metrics["optimal_lam"] == SWEEP_LAMS[int(np.nanargmax(metrics["mean_dice"]))]
    assert len(metrics["folding_percent"]) == len(SWEEP_LAMS) and metrics["optimal_lam_per_label"]

    exported = metrics["exported"]
    assert {"moved", "flow", "jacobian", "moved_labels"} <= set(exported)
    assert exported["moved"]["shape"][:3] == [32, 32, 32]
    assert exported["flow"]["shape"][:3] == [32, 32, 32] and 3 in exported["flow"]["shape"][3:]
    moved = nibabel.load(exported["moved"]["path"])
    assert np.all(np.isfinite(moved.get_fdata())) and np.abs(np.linalg.det(moved.affine[:3, :3])) > 0
    with Image.open(metrics["animation"]) as gif:
        assert gif.n_frames == len(SWEEP_LAMS)

    # the saved notebook shows the explorer and the sweep panel as pictures, without snapshot()
    notebook = nbformat.read(executed_path, as_version=4)
    pictures = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data and "image/png" in data:
                pictures[cell.source.split("(")[0].split()[0]] = base64.b64decode(data["image/png"])
    assert set(pictures) == {"explorer", "panel"}, set(pictures)
    assert all(png[:4] == b"\x89PNG" for png in pictures.values())
