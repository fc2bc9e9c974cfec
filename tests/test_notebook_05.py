"""Notebook 05 (your own scans) under papermill on small volumes: what it records and exports."""
import base64
import json
import os
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

from hypermorph_nb.data import find_shared_ixi3d, load_source
from hypermorph_nb.notebooks import NotebookFailed, run_notebook

from tests.conftest import TINY_FEATURES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_your_own_scans.ipynb"
ARTIFACTS = Path(os.environ.get("HYPERMORPH_NB_ARTIFACTS", ROOT / "artifacts")) / "notebooks"
SWEEP_LAMS = [0.0, 0.9, 1.0]
#: Small settings for the fast tier: nine volumes resampled to 16³ (the shared IXI set when it is
#: beside the repository, synthetic volumes otherwise), a narrow U-Net and 2 epochs of 10 steps.
SMALL_3D = {
    "data_source": "ixi3d" if find_shared_ixi3d(ROOT) else "synthetic3d", "volume_shape": [16, 16, 16],
    "subset": 9, "unet_features": TINY_FEATURES, "scale": 0.02, "steps_per_epoch": 10,
    "learning_rate": 1e-3, "sweep_lams": SWEEP_LAMS, "n_pairs": 2, "sweep_batch_size": 2, "seed": 0,
    "model_path": None,
}


def run_fresh(name, parameters):
    """Run the notebook with ``parameters`` into an emptied ``ARTIFACTS/name`` (it resumes checkpoints).

    Returns the output folder, the executed notebook's path and its metrics.
    """
    output_dir = ARTIFACTS / name
    shutil.rmtree(output_dir, ignore_errors=True)
    executed_path = ARTIFACTS / "executed" / f"{name}.ipynb"
    try:
        return output_dir, executed_path, run_notebook(NOTEBOOK, executed_path, {**parameters, "output_dir": str(output_dir)})
    except NotebookFailed as err:
        pytest.fail(str(err), pytrace=False)


def test_05_explores_volumes_in_three_planes_and_exports_nifti():
    nibabel = pytest.importorskip("nibabel")
    output_dir, executed_path, metrics = run_fresh("05_your_own_scans", SMALL_3D)

    assert metrics["volume_shape"] == SMALL_3D["volume_shape"] and metrics["epochs_trained"] == 2
    explorer = metrics["explorer"]
    assert explorer["planes"] == ["axial", "coronal", "sagittal"]
    assert explorer["slice_model_runs"] == 0 and explorer["lam_model_runs"] == 2
    assert metrics["lams"] == SWEEP_LAMS and metrics["n_pairs"] == 2
    assert metrics["chosen_lam"] == metrics["optimal_lam"] == SWEEP_LAMS[int(np.nanargmax(metrics["mean_dice"]))]
    assert len(metrics["folding_percent"]) == len(SWEEP_LAMS) and metrics["optimal_lam_per_label"]

    exported = metrics["exported"]
    assert {"moved", "transform", "jacobian", "moved_labels"} <= set(exported)
    assert exported["moved"]["shape"][:3] == SMALL_3D["volume_shape"]
    assert exported["transform"]["shape"][:3] == SMALL_3D["volume_shape"] and 3 in exported["transform"]["shape"][3:]
    moved = nibabel.load(exported["moved"]["path"])
    assert np.all(np.isfinite(moved.get_fdata())) and np.abs(np.linalg.det(moved.affine[:3, :3])) > 0
    volumes = load_source(SMALL_3D["data_source"], shape=SMALL_3D["volume_shape"], subset=SMALL_3D["subset"],
                          verbose=False)
    np.testing.assert_allclose(moved.affine, volumes.affines[0], atol=1e-4)   # the volumes' own grid
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


#: The shared raw IXI head scans beside the repository (not part of it).
IXI_RAW = ROOT.parent / "shared" / "data" / "ixi_raw"
#: Small settings for the raw path: six raw head scans prepared at 4 mm (the last two of the folder
#: are held out for the raw-to-raw registration), a narrow U-Net, 2 epochs of 10 steps.
SMALL_RAW = {**SMALL_3D, "data_source": "raw", "volume_shape": None, "subset": 6, "spacing": 4.0,
             "refine": 5}


@pytest.mark.slow
@pytest.mark.skipif(not IXI_RAW.is_dir(), reason="needs the raw IXI head scans in ../shared/data/ixi_raw "
                                                  "(not part of the repository)")
def test_05_prepares_raw_scans_and_answers_in_a_raw_scans_own_space():
    nibabel = pytest.importorskip("nibabel")
    output_dir, executed_path, metrics = run_fresh("05_your_own_scans_raw", SMALL_RAW)

    raw = metrics["raw"]
    assert raw["n_input"] == 6 and raw["n_prepared"] == 6 - len(raw["failed"]) >= 5
    assert metrics["n_volumes"] == raw["n_prepared"] and metrics["epochs_trained"] == 2
    scans = sorted(IXI_RAW.glob("*.nii.gz"))
    assert [Path(raw["moving"]).name, Path(raw["fixed"]).name] == [p.name for p in scans[-2:]]
    assert not {p.name for p in scans[-2:]} & {p.name for p in (output_dir / "prepared").glob("*.nii.gz")}

    # trained, explored, swept and exported on the prepared 4 mm grid
    manifest = json.loads((output_dir / "prepared" / "manifest.json").read_text())
    grid = np.array(manifest["grid"]["affine"])
    assert metrics["volume_shape"] == manifest["grid"]["shape"] and np.allclose(np.diag(grid)[:3], 4.0)
    assert metrics["chosen_lam"] in SWEEP_LAMS and len(metrics["mean_dice"]) == len(SWEEP_LAMS)
    moved = nibabel.load(metrics["exported"]["moved"]["path"])
    np.testing.assert_allclose(moved.affine, grid, atol=1e-4)
    sidecar = json.loads((Path(metrics["exported"]["moved"]["path"]).parent / "registration.json").read_text())
    assert sidecar.get("refine_iterations") == 5

    # the held-out raw pair, written on the fixed raw scan's own grid
    fixed = nibabel.load(raw["fixed"])
    for name in ("moved", "moved_labels"):
        written = nibabel.load(raw["native"][name])
        assert written.shape == fixed.shape, (name, written.shape, fixed.shape)
        np.testing.assert_allclose(written.affine, fixed.affine, atol=1e-4)
    assert np.isfinite(nibabel.load(raw["native"]["moved"]).get_fdata()).all()
    dice = raw["dice"]
    assert dice["native"] > 0.2 and abs(dice["native"] - dice["model_space"]) < 0.05, dice

    # the saved notebook shows the QC picture and the raw pair with its outline
    notebook = nbformat.read(executed_path, as_version=4)
    shown = {cell.id: sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))
             for cell in notebook.cells if cell.cell_type == "code"}
    assert shown["b5d2f8e4"] == 1 and shown["d3f7b2c8"] == 1, shown


#: The notebook's own path, small: six raw scans prepared onto the pretrained model's grid, no training.
SMALL_PRETRAINED = {"data_source": "raw", "model_path": "pretrained:ixi-t1-2mm", "subset": 6,
                    "sweep_lams": [0.1, 0.5, 0.9], "n_pairs": 2, "sweep_batch_size": 2, "refine": 5, "seed": 0}


@pytest.mark.slow
@pytest.mark.skipif(not IXI_RAW.is_dir(), reason="needs the raw IXI head scans in ../shared/data/ixi_raw "
                                                  "(not part of the repository)")
def test_05_registers_raw_scans_with_the_pretrained_model_without_training():
    import hypermorph_nb as hnb

    output_dir, executed_path, metrics = run_fresh("05_your_own_scans_pretrained", SMALL_PRETRAINED)

    space = hnb.networks.spec_of(hnb.load_model("pretrained:ixi-t1-2mm")).space
    assert metrics["epochs_trained"] == 0 and metrics["model"] == "pretrained:ixi-t1-2mm"
    assert metrics["volume_shape"] == list(space.shape) == [80, 96, 80]
    manifest = json.loads((output_dir / "prepared" / "manifest.json").read_text())
    np.testing.assert_allclose(np.array(manifest["grid"]["affine"]), space.affine, atol=1e-6)
    assert not (output_dir / "checkpoints").exists()
    assert metrics["chosen_lam"] in SMALL_PRETRAINED["sweep_lams"]
    sidecar = json.loads((Path(metrics["exported"]["moved"]["path"]).parent / "registration.json").read_text())
    assert sidecar.get("refine_iterations") == 5
    dice = metrics["raw"]["dice"]
    assert dice["model_space"] > dice["affine_only_model_space"] + 0.05, dice
    notebook = nbformat.read(executed_path, as_version=4)
    card = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "# pretrained:ixi-t1-2mm" in card   # the model card is shown
