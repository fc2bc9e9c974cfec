"""The 3D recipe: one place for the settings that the notebook, the CLI and the benchmarks share."""
import json

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.cli import main
from hypermorph_nb.training import VOLUMES

SMALL = [[4, 4, 4], [4, 4, 4, 4, 4]]


def test_the_volume_recipe_builds_a_half_resolution_film_model():
    spec = hnb.networks.spec_of(VOLUMES.build((32, 32, 32), nb_features=SMALL, seed=0))
    assert spec.conditioning == "film" and spec.options["downsample"] == 2


def test_label_supervision_only_when_the_data_carry_label_maps():
    labelled = hnb.data.synthetic(4, (24, 24, 24), seed=0)
    unlabelled = hnb.data.Dataset(images=labelled.images)
    assert VOLUMES.train_options(labelled)["label_weight"] == VOLUMES.label_weight > 0
    assert VOLUMES.train_options(unlabelled)["label_weight"] == 0.0
    assert VOLUMES.train_options(labelled)["loss"].image_loss == "ncc"


@pytest.mark.slow   # trains with the 3D recipe; building it stays in the fast tier
def test_the_recipe_trains_and_the_model_records_it():
    data = hnb.data.synthetic(6, (24, 24, 24), seed=0)
    model = VOLUMES.build(data.shape, nb_features=SMALL, seed=0)
    history = hnb.train(model, data, epochs=2, steps_per_epoch=3, seed=0, verbose=False, progress="none",
                        live_plot=False, **VOLUMES.train_options(data))
    assert np.isfinite(history.loss).all() and not history.stop_reason
    training = hnb.networks.spec_of(model).training
    assert training.image_loss == "ncc" and training.ncc_window == 5 and training.label_weight == 1.0


def test_the_train_command_uses_the_recipe_for_volumes_and_options_override_it(tmp_path):
    argv = ["train", "--out", str(tmp_path), "--data", "synthetic3d", "--size", "24", "24", "24", "--images", "4",
            "--epochs", "1", "--steps-per-epoch", "2", "--features", json.dumps(SMALL), "--label-weight", "0.5"]
    assert main(argv) == 0
    spec = hnb.networks.spec_of(hnb.load_model(str(tmp_path / "model")))
    assert spec.options["downsample"] == 2 and spec.conditioning == "film"
    assert spec.training.image_loss == "ncc" and spec.training.label_weight == 0.5


def test_the_train_command_keeps_2d_on_trains_defaults(tmp_path):
    argv = ["train", "--out", str(tmp_path), "--size", "32", "32", "--images", "4", "--epochs", "1",
            "--steps-per-epoch", "2", "--features", "[[4,4,4,4],[4,4,4,4,4,4,4]]"]
    assert main(argv) == 0
    spec = hnb.networks.spec_of(hnb.load_model(str(tmp_path / "model")))
    assert "downsample" not in spec.options and spec.training.image_loss == "mse"


def test_the_volume_recipe_is_for_hypermorph(tmp_path, capsys):
    code = main(["train", "--out", str(tmp_path), "--data", "synthetic3d", "--size", "24", "24", "24",
                 "--images", "4", "--model", "vxm", "--recipe", "volumes", "--epochs", "1", "--steps-per-epoch", "1"])
    assert code != 0 and "--recipe volumes trains a HyperMorph model" in capsys.readouterr().err
