"""A model conditioned on (λ, γ) through everything that writes a registration: register_scans (one pair
and a cohort), export_registration, refinement, the inverse, and ``hypermorph-nb register --hyper``."""
import csv
import json
import pathlib
import time

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

import hypermorph_nb as hnb
from hypermorph_nb.cli import main
from hypermorph_nb.networks.description import ModelSpace
from hypermorph_nb.networks.models import describe
from hypermorph_nb.registration.cohort import table_columns
from raw_scans import write_cohort

TINY = dict(nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]], hyper_units=(4, 4))
BOTH = ("lam", "label_weight")


def _varying(model):
    """``model`` with a flow layer whose output varies with its features, so γ visibly changes the field
    (an untrained flow layer outputs next to nothing whatever the hyperparameters)."""
    flow = next(layer for layer in model.submodules if getattr(layer, "name", "") == "hypermorph_flow")
    kernel, bias = flow.get_weights()
    flow.set_weights([np.random.default_rng(0).normal(0, 0.2, kernel.shape).astype(np.float32), bias])
    return model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Three posed raw scans with labels; a tiny diffeomorphic (λ, γ) model given the space of the first."""
    folder = tmp_path_factory.mktemp("raw")
    write_cohort(folder, np.random.default_rng(5), count=3)
    prepared = hnb.prepare_scans([folder / "scan0.nii.gz"], tmp_path_factory.mktemp("prepared"), reference=0,
                                 spacing=4.0)
    model = hnb.build_hypermorph(prepared.dataset.shape, seed=0, hyperparameters=BOTH, diffeomorphic=True, **TINY)
    describe(model, space=ModelSpace.from_dataset(prepared.dataset))
    return folder, _varying(model)


def _field(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _sidecar(files):
    return json.loads(pathlib.Path(files.sidecar).read_text())


@pytest.mark.slow   # three 3D registrations and an inverse; export and the refusals keep the fast tier
def test_register_scans_a_cohort_and_the_command_take_and_record_both_values(setup, tmp_path, capsys):
    folder, model = setup
    moving, fixed = folder / "scan1.nii.gz", folder / "scan2.nii.gz"
    labels = dict(moving_labels=folder / "labels" / "scan1.nii.gz", fixed_labels=folder / "labels" / "scan2.nii.gz")
    light = hnb.register_scans(model, moving, fixed, tmp_path / "light", lam=0.3, label_weight=0.0, inverse=True,
                               **labels)
    sidecar = _sidecar(light)
    assert sidecar["lam"] == 0.3 and sidecar["hyperparameters"] == {"lam": 0.3, "label_weight": 0.0}
    assert 0.0 <= sidecar["dice"]["native"] <= 1.0
    # the inverse integrates the velocity the network gives at (λ, γ)
    assert "velocity" in sidecar["inverse_method"] and pathlib.Path(light.inverse_transform).is_file()
    # a cohort (of one pair here): a column per hyperparameter, every value in each sidecar
    cohort = hnb.register_scans(model, [moving], fixed, tmp_path / "cohort", lam=0.3, label_weight=1.0,
                                moving_labels=[labels["moving_labels"]], fixed_labels=labels["fixed_labels"])
    assert not cohort.failed, [pair.error for pair in cohort.pairs]
    with open(cohort.table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == table_columns(["label_weight"])
    assert (rows[0]["lam"], rows[0]["label_weight"]) == ("0.3", "1")
    heavy = cohort.files["scan1"]
    assert _sidecar(heavy)["hyperparameters"] == {"lam": 0.3, "label_weight": 1.0}
    assert np.abs(_field(light.transform) - _field(heavy.transform)).max() > 0.05, "γ must reach the network"
    # the command line with --hyper writes what the function wrote
    hnb.save_model(model, tmp_path / "model")
    argv = ["register", "--raw", "--model", str(tmp_path / "model"), "--moving", str(moving), "--fixed", str(fixed),
            "--moving-labels", str(labels["moving_labels"]), "--fixed-labels", str(labels["fixed_labels"]),
            "--hyper", "lam=0.3", "label_weight=1", "--out", str(tmp_path / "cli")]
    assert main(argv) == 0
    capsys.readouterr()
    by_command = json.loads((tmp_path / "cli" / "registration.json").read_text())
    assert by_command["hyperparameters"] == {"lam": 0.3, "label_weight": 1.0}
    np.testing.assert_allclose(_field(tmp_path / "cli" / "transform.nii.gz"), _field(heavy.transform), atol=1e-4)


def test_a_missing_unknown_or_out_of_range_value_is_refused_before_any_work(setup, tmp_path):
    folder, model = setup
    cases = [(dict(lam=0.3), r"pass label_weight=<value in \[0, 1\]> too, e.g. lam=0.5, label_weight=0.5"),
             (dict(label_weight=0.5), r"pass lam=<value in \[0, 1\]> too"),
             (dict(lam=0.3, label_weight=1.5), r"label_weight must lie in \[0, 1\]"),
             (dict(lam=0.3, label_weight=0.5, gamma=1.0), "takes no gamma; its hyperparameters are"),
             (dict(lam=0.3, label_weight=0.5, refine=-1), "refine must be a whole number")]
    for moving in (folder / "scan1.nii.gz", [folder / "scan1.nii.gz", folder / "scan2.nii.gz"]):   # a pair, a cohort
        for values, message in cases:
            start = time.perf_counter()
            with pytest.raises(ValueError, match=message):
                hnb.register_scans(model, moving, folder / "scan0.nii.gz", tmp_path / "out", **values)
            assert time.perf_counter() - start < 1.0
    lam_only = hnb.build_hypermorph((16, 16, 16), seed=0, **TINY)
    with pytest.raises(ValueError, match=r'conditioned on λ alone and takes no label_weight; leave it out'):
        hnb.register_scans(lam_only, folder / "scan1.nii.gz", folder / "scan0.nii.gz", tmp_path / "out", lam=0.3,
                           label_weight=0.5)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    """A 2D (λ, γ) model with a varying field and two 32×32 images with a label map."""
    rng = np.random.default_rng(0)
    images = rng.random((2, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 4, (32, 32)).astype(np.int32)
    model = _varying(hnb.build_hypermorph((32, 32), seed=0, hyperparameters=BOTH, **TINY))
    return model, images, labels


def test_export_registration_takes_and_records_every_hyperparameter(flat, tmp_path):
    model, (moving, fixed), labels = flat
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    flows = {}
    for gamma in (0.0, 1.0):
        files = hnb.export_registration(model, moving, fixed, tmp_path / str(gamma), lam=0.4, label_weight=gamma,
                                        moving_labels=labels, fixed_affine=affine)
        assert _sidecar(files)["hyperparameters"] == {"lam": 0.4, "label_weight": gamma}
        flows[gamma] = np.asarray(nibabel.load(files.transform).dataobj)
        _, flow = hnb.register(model, moving, fixed, lam=0.4, label_weight=gamma)
        np.testing.assert_allclose(flows[gamma][:, :, 0, 0, :], flow, atol=1e-5)
    assert np.abs(flows[0.0] - flows[1.0]).max() > 0.05
    refined = hnb.export_registration(model, moving, fixed, tmp_path / "refined", lam=0.4, label_weight=1.0,
                                      refine=3, fixed_affine=affine)
    assert _sidecar(refined)["refine_iterations"] == 3
    assert not np.allclose(np.asarray(nibabel.load(refined.transform).dataobj), flows[1.0])
    for values, message in ((dict(lam=0.4), "pass label_weight="), (dict(lam=0.4, label_weight=2.0), r"\[0, 1\]"),
                            (dict(lam=0.4, label_weight=0.5, gamma=0.1), "takes no gamma")):
        with pytest.raises(ValueError, match=message):
            hnb.export_registration(model, moving, fixed, tmp_path / "refused", fixed_affine=affine, **values)
    assert not (tmp_path / "refused").exists()
    lam_only = hnb.build_hypermorph((32, 32), seed=0, **TINY)   # its sidecar is as before: λ alone
    assert "hyperparameters" not in _sidecar(hnb.export_registration(lam_only, moving, fixed, tmp_path / "lam", lam=0.4,
                                                                     fixed_affine=affine))


def test_the_lambda_row_holds_the_other_hyperparameters(flat):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from hypermorph_nb.viz.plotting import lambda_row_figure

    model, (moving, fixed), labels = flat
    rows = [lambda_row_figure(model, moving, fixed, [0.0, 1.0], moving_labels=labels, fixed_labels=labels,
                              label_weight=gamma) for gamma in (0.0, 1.0)]
    moved = [[image.get_array() for axis in figure.axes[2:] for image in axis.get_images()] for figure in rows]
    assert len(moved[0]) == 2 and np.abs(np.asarray(moved[0]) - np.asarray(moved[1])).max() > 1e-3
    with pytest.raises(ValueError, match="pass label_weight="):
        lambda_row_figure(model, moving, fixed, [0.0, 1.0])
    plt.close("all")


def test_the_register_command_with_hyper_writes_what_export_registration_writes(tmp_path, capsys):
    model = _varying(hnb.build_hypermorph((16, 16, 16), seed=0, hyperparameters=BOTH, **TINY))
    hnb.save_model(model, tmp_path / "model")
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        nibabel.save(nibabel.Nifti1Image(rng.random((16, 16, 16)).astype(np.float32), np.eye(4)),
                     tmp_path / f"{name}.nii.gz")
    scans = ["--moving", str(tmp_path / "a.nii.gz"), "--fixed", str(tmp_path / "b.nii.gz")]
    assert main(["register", "--model", str(tmp_path / "model"), *scans, "--lam", "0.3",
                 "--hyper", "label_weight=0.5", "--out", str(tmp_path / "cli")]) == 0
    assert str(tmp_path / "cli" / "flow.nii.gz") in capsys.readouterr().out
    files = hnb.export_registration(hnb.load_model(str(tmp_path / "model")), tmp_path / "a.nii.gz",
                                    tmp_path / "b.nii.gz", tmp_path / "function", lam=0.3, label_weight=0.5)
    for name in ("flow", "moved", "jacobian"):
        np.testing.assert_allclose(nibabel.load(tmp_path / "cli" / f"{name}.nii.gz").get_fdata(),
                                   nibabel.load(tmp_path / "function" / f"{name}.nii.gz").get_fdata(), atol=1e-6)
    assert json.loads((tmp_path / "cli" / "registration.json").read_text())["hyperparameters"] == \
        _sidecar(files)["hyperparameters"] == {"lam": 0.3, "label_weight": 0.5}


@pytest.mark.slow   # a training run through the command; hnb.train with hyper_sampling is tested fast
def test_the_train_command_trains_a_model_over_lambda_and_gamma(tmp_path, capsys):
    argv = ["train", "--out", str(tmp_path), "--size", "32", "32", "--images", "4", "--epochs", "1",
            "--steps-per-epoch", "2", "--features", "[[4,4,4,4],[4,4,4,4,4,4,4]]",
            "--hyperparameters", "lam", "label_weight", "--hyper-sampling", "label_weight=uniform"]
    assert main(argv) == 0
    spec = hnb.load_model(str(tmp_path / "model")).hypermorph_spec
    assert [hyper.name for hyper in spec.hyperparameters] == list(BOTH)
    assert spec.training.hyper_sampling == {"label_weight": "uniform"} and spec.training.label_weight == 0.0
    assert main(["train", "--out", str(tmp_path / "no"), "--hyper-sampling", "label_weight=uniform"]) == 2
    assert "--hyper-sampling says how --hyperparameters" in capsys.readouterr().err
