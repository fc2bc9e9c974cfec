"""train's grouped options, the 0.1 keywords they replace, and one progress vocabulary."""
import warnings

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.data import synthetic
from hypermorph_nb.evaluation import sweeps
from hypermorph_nb.networks import LossConfig
from hypermorph_nb.training import CheckpointConfig, ValidationConfig
from hypermorph_nb.training.options import group_legacy_options

TINY = {"nb_features": [[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]]}


def _run(**options):
    data = synthetic(6, (16, 16), seed=0)
    model = hnb.build_vxm(data.shape, seed=0, **TINY)
    history = hnb.train(model, data, epochs=2, steps_per_epoch=2, verbose=False, seed=1, **options)
    return model, history


@pytest.mark.slow   # trains two models to compare them
def test_grouped_and_flat_keywords_train_the_same_model(tmp_path):
    validation = synthetic(4, (16, 16), seed=3)
    grouped, history = _run(loss=LossConfig(image_sigma=0.1),
                            checkpoints=CheckpointConfig(tmp_path / "a", keep=1),
                            validation=ValidationConfig(validation, pairs=2))
    with pytest.warns(DeprecationWarning) as caught:
        flat, flat_history = _run(image_sigma=0.1, checkpoint_dir=tmp_path / "b", keep_checkpoints=1,
                                  validation_data=validation, validation_pairs=2)
    assert {str(w.message).split("(")[1].split("=")[0] for w in caught} == {
        "..., image_sigma", "..., checkpoint_dir", "..., keep_checkpoints", "..., validation_data",
        "..., validation_pairs"}
    for a, b in zip(grouped.get_weights(), flat.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert history.loss == flat_history.loss and history.val_mse == flat_history.val_mse
    assert len(list((tmp_path / "a").iterdir())) == len(list((tmp_path / "b").iterdir())) == 1
    assert hnb.networks.spec_of(flat).training.image_sigma == 0.1


def test_a_path_or_a_dataset_alone_take_the_defaults(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        _, history = _run(checkpoints=tmp_path / "c", validation=synthetic(4, (16, 16), seed=3))
    assert history.val_epochs == [1, 2] and history.checkpoint is not None


def test_mixing_a_group_with_its_old_keyword_or_a_typo_is_refused():
    with pytest.raises(TypeError, match=r"both loss= and image_sigma=; set image_sigma inside LossConfig"):
        group_legacy_options({"image_sigma": 0.1}, loss=LossConfig())
    with pytest.raises(TypeError, match="unexpected keyword argument 'image_sigmaa'"):
        group_legacy_options({"image_sigmaa": 0.1})
    with pytest.raises(ValueError, match="checkpoint_every must be an integer >= 1"):
        CheckpointConfig("x", every=0)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="keep_checkpoints"):
        group_legacy_options({"keep_checkpoints": 0})


@pytest.mark.parametrize("progress, disabled", [(True, None), ("auto", None), ("bar", False),
                                                ("log", False), (False, True), ("none", True)])
def test_sweeps_take_trains_progress_words(progress, disabled, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")   # what 'auto' follows
    with sweeps._progress_bar(2, "x", progress) as bar:
        assert bar.disable == (True if disabled is None else disabled)
    with pytest.raises(ValueError, match=r"progress must be one of \('auto', 'bar', 'log', 'none'\)"):
        sweeps._progress_bar(2, "x", "loud")
