"""Label supervision in training: ``train(..., label_weight=w)`` adds a Dice term on warped one-hot label maps."""
import json

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.data import Dataset, PairBatches, synthetic
from hypermorph_nb.networks.losses import label_term, weighted_terms

FEATURES = [[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]]


@pytest.fixture(scope="module")
def labelled():
    return synthetic(8, (32, 32), seed=0)


def baseline(seed=0):
    return hnb.build_vxm((32, 32), nb_features=FEATURES, seed=seed)


@pytest.mark.slow
def test_label_supervision_raises_dice(labelled):
    """The same run with and without the Dice term: with it, the warped label maps overlap more."""
    dice = {}
    for weight in (0.0, 1.0):
        model = baseline()
        history = hnb.train(model, labelled, epochs=1, steps_per_epoch=300, learning_rate=2e-3, lam=0.2,
                            label_weight=weight, validation=hnb.training.ValidationConfig(labelled, pairs=16), verbose=False)
        dice[weight] = history.val_dice[-1][0]
        assert model.hypermorph_spec.training.label_weight == weight
    assert dice[1.0] > dice[0.0] + 0.01, dice


def test_the_label_term_joins_the_similarity_side():
    fixed = np.zeros((2, 8, 8, 2), np.float32)
    fixed[:, :4, :, 0] = 1
    moved = np.zeros_like(fixed)
    moved[:, :, :, 0] = 1                                  # structure 0 too large; channel 1 empty in both
    images = np.zeros((2, 8, 8, 1), np.float32)
    flow = np.zeros((2, 8, 8, 2), np.float32)
    label = 1 - 2 * 32 / (32 + 64)                         # Dice of 32 voxels inside 64, channel 1 left out
    assert np.allclose(label_term(fixed, moved).numpy(), label)
    terms = weighted_terms(images, images + 0.2, flow, [0.25, 1.0], labels=(fixed, moved), label_weight=2.0)
    assert np.allclose(terms["total"].numpy(), [0.75 * (1.0 + 2.0 * label), 0.0], atol=1e-6)


def test_pairs_draw_a_subset_of_structures_and_keep_the_image_stream(labelled):
    plain = PairBatches(labelled, batch_size=2, seed=3, lam_sampling="uniform")
    subset = PairBatches(labelled, batch_size=2, seed=3, lam_sampling="uniform", include_labels=True,
                         label_structures=3)
    seen = set()
    for step in range(20):
        batch, labelled_batch = plain.batch(step), subset.batch(step)
        for key in ("moving", "fixed", "lam"):
            assert np.array_equal(batch[key], labelled_batch[key])
        for ids, moving, fixed in zip(labelled_batch["label_ids"], labelled_batch["moving_labels"],
                                      labelled_batch["fixed_labels"]):
            present = set(np.union1d(moving, fixed)) - {0}
            assert len(set(ids)) == 3 and set(ids) <= present
            seen |= set(ids.tolist())
    assert seen == set(np.unique(labelled.labels)) - {0}
    wide = PairBatches(labelled, include_labels=True, label_structures=12).batch(0)   # more room than structures
    ids, present = wide["label_ids"][0], np.union1d(wide["moving_labels"][0], wide["fixed_labels"][0])[1:]
    assert ids[:len(present)].tolist() == present.tolist() and (ids[len(present):] == -1).all()


def test_resume_needs_the_same_label_weight(labelled, tmp_path):
    settings = dict(epochs=1, steps_per_epoch=2, lam=0.2, verbose=False, checkpoints=tmp_path)
    hnb.train(baseline(), labelled, label_weight=0.5, **settings)
    with pytest.raises(ValueError, match="label_weight: checkpoint 0.5, this call 0.0"):
        hnb.train(baseline(), labelled, resume=True, **settings)
    history = hnb.train(baseline(), labelled, resume=True, label_weight=0.5, **{**settings, "epochs": 2})
    assert history.epochs == 2 and history.resumed_from_step == 2


@pytest.mark.parametrize("change, error, message", [
    ({"data": "images"}, ValueError, "needs training data with label maps"),
    ({"data": "unlabelled"}, ValueError, "needs training data with label maps"),
    ({"label_weight": -1.0}, ValueError, "finite number >= 0"),
    ({"label_weight": float("nan")}, ValueError, "finite number >= 0"),
    ({"label_weight": "lots"}, TypeError, "label_weight must be a number"),
    ({"label_structures": 0}, ValueError, "label_structures"),
    ({"data": "mismatched"}, ValueError, r"label maps have shape \(8, 16, 16\) but the images \(8, 32, 32\)"),
])
def test_bad_label_supervision_is_refused(labelled, change, error, message):
    mismatched = Dataset(images=labelled.images, labels=labelled.labels)
    mismatched.labels = labelled.labels[:, :16, :16]          # changed after the Dataset checked it
    datasets = {"images": labelled.images, "unlabelled": Dataset(images=labelled.images),
                "mismatched": mismatched}
    options = {"label_weight": 1.0, **change}
    data = datasets[options.pop("data")] if "data" in options else labelled
    with pytest.raises(error, match=message):
        hnb.train(baseline(), data, epochs=1, steps_per_epoch=1, lam=0.2, verbose=False, **options)


def test_the_train_command_takes_a_label_weight(tmp_path):
    from hypermorph_nb.cli import main

    argv = ["train", "--out", str(tmp_path), "--size", "32", "32", "--images", "4", "--epochs", "1",
            "--steps-per-epoch", "2", "--features", "[[4,4,4,4],[4,4,4,4,4,4,4]]", "--label-weight", "0.5"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "history.json").read_text())["config"]["label_weight"] == 0.5
    assert hnb.load_model(str(tmp_path / "model")).hypermorph_spec.training.label_weight == 0.5


DISTRIBUTED = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import hypermorph_nb as hnb
from hypermorph_nb.data import synthetic

data = synthetic(6, (32, 32), seed=0)
losses = {}
for name, strategy in (("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])), ("one", None)):
    model = hnb.build_hypermorph((32, 32), nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]], seed=0)
    history = hnb.train(model, data, epochs=1, steps_per_epoch=3, batch_size=2, strategy=strategy,
                        label_weight=1.0, label_structures=3, verbose=False)
    losses[name] = (history.loss[0], history.config["replicas"])
print("RESULTS" + json.dumps(losses))
"""


@pytest.mark.slow
def test_label_supervision_splits_over_replicas_like_one_device():
    """Each pair carries its own structures, so a replica's slice of the batch is self-contained."""
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-c", DISTRIBUTED], capture_output=True, text=True, timeout=600)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULTS")]
    assert completed.returncode == 0 and lines, completed.stderr[-3000:]
    losses = json.loads(lines[0][len("RESULTS"):])
    assert losses["two"][1] == 2 and losses["one"][1] == 1
    assert abs(losses["two"][0] - losses["one"][0]) < 1e-5
