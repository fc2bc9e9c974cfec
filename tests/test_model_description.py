"""A model carries its training (loss, σ, λ sampling) and its space, saved and read back."""
import json
import os
import warnings

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.data import Dataset, synthetic
from hypermorph_nb.networks.description import ModelSpace, TrainingRecord, resolve_image_sigma
from hypermorph_nb.networks.models import spec_of

TINY = {"nb_features": [[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]]}
FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "model_0.1.0_hypermorph_2d")


@pytest.fixture(scope="module")
def trained_3d():
    data = synthetic(6, (16, 16, 16), seed=0)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-16.0, -20.0, -12.0]
    data = Dataset(images=data.images, labels=data.labels, affines=np.repeat(affine[None], len(data), 0))
    model = hnb.build_hypermorph(data.shape, hyper_units=(4, 4), seed=0, **TINY)
    hnb.train(model, data, epochs=1, steps_per_epoch=2, verbose=False, lam_sampling="oversample",
              loss=hnb.networks.LossConfig(image_sigma=0.1))
    return model, data, affine


def test_training_records_loss_sampling_steps_and_space(trained_3d):
    model, data, affine = trained_3d
    spec = spec_of(model)
    assert spec.training == TrainingRecord(image_loss="mse", image_sigma=0.1, ncc_window=9,
                                           lam_sampling="oversample", lam=None, steps=2)
    assert spec.space.shape == data.shape
    np.testing.assert_allclose(spec.space.affine, affine)
    np.testing.assert_allclose(spec.space.reference, data.images.mean(axis=0)[..., 0], rtol=1e-6)
    expected_mask = (data.labels > 0).mean(axis=0) >= 0.5
    np.testing.assert_array_equal(spec.space.reference_mask, expected_mask)


def test_a_baseline_records_its_fixed_lambda():
    data = synthetic(4, (16, 16), seed=1)
    model = hnb.build_vxm(data.shape, seed=0, **TINY)
    hnb.train(model, data, epochs=1, steps_per_epoch=1, verbose=False, lam=0.3)
    record = spec_of(model).training
    assert (record.lam_sampling, record.lam, record.steps) == ("fixed", 0.3, 1)


def test_description_survives_save_and_load(trained_3d, tmp_path):
    model, _, _ = trained_3d
    folder = hnb.save_model(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "model.json").read_text())
    assert config["training"]["image_sigma"] == 0.1 and config["space"]["reference"] is True
    loaded = spec_of(hnb.load_model(folder))
    original = spec_of(model)
    assert loaded.training == original.training
    np.testing.assert_allclose(loaded.space.affine, original.space.affine)
    np.testing.assert_allclose(loaded.space.reference, original.space.reference, rtol=1e-6)
    np.testing.assert_array_equal(loaded.space.reference_mask, original.space.reference_mask)


def test_a_missing_reference_file_is_named(trained_3d, tmp_path):
    model, _, _ = trained_3d
    folder = hnb.save_model(model, tmp_path / "m")
    os.remove(os.path.join(folder, "reference.nii.gz"))
    with pytest.raises(FileNotFoundError, match="reference.nii.gz not found"):
        hnb.load_model(folder)


def test_a_model_saved_by_version_0_1_0_loads_without_a_description():
    spec = spec_of(hnb.load_model(FIXTURE))
    assert (spec.kind, spec.inshape, spec.training, spec.space) == ("hypermorph", (16, 16), None, None)


def test_a_space_must_match_the_model_shape():
    model = hnb.build_hypermorph((16, 16), hyper_units=(4, 4), seed=0, **TINY)
    with pytest.raises(ValueError, match=r"grid \(8, 8\) is not the model's input shape \(16, 16\)"):
        hnb.networks.models.describe(model, space=ModelSpace(shape=(8, 8), affine=np.eye(4)))
    with pytest.raises(ValueError, match="singular"):
        ModelSpace(shape=(8, 8), affine=np.zeros((4, 4)))


def test_sigma_comes_from_the_model_and_a_disagreeing_one_warns():
    record = TrainingRecord(image_sigma=0.1)
    assert resolve_image_sigma(record, "model") == 0.1
    assert resolve_image_sigma(TrainingRecord(image_loss="ncc"), "model") is None
    with pytest.warns(UserWarning, match="differs from the σ = 0.1 the model was trained with"):
        assert resolve_image_sigma(record, 0.2) == 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_image_sigma(record, 0.1) == 0.1
        assert resolve_image_sigma(None, 0.3) == 0.3


def test_the_explorer_shows_the_models_own_sigma(trained_3d):
    pytest.importorskip("ipywidgets")
    model, data, _ = trained_3d
    explorer = hnb.widgets.LambdaExplorer(model, data, lam=0.5)
    assert explorer.controls.image_sigma == 0.1
    with pytest.warns(UserWarning, match="differs from"):
        explorer = hnb.widgets.LambdaExplorer(model, data, lam=0.5, image_sigma=0.2)
    assert explorer.controls.image_sigma == 0.2


def test_optimize_lambda_tunes_with_the_models_own_image_term():
    from hypermorph_nb.networks.description import resolve_image_loss

    ncc = TrainingRecord(image_loss="ncc")
    assert resolve_image_loss(ncc, None) == "ncc"
    assert resolve_image_loss(None, None) == "mse"
    with pytest.warns(UserWarning, match="differs from the 'ncc' the model was trained with"):
        assert resolve_image_loss(ncc, "mse") == "mse"
