"""λ sweeps in 2D and 3D: batching, the Dice convention, optimal λ per structure, comparisons, bad input."""
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.data import Dataset, synthetic
from hypermorph_nb.evaluation import sweeps as evaluation
from hypermorph_nb import baseline_sweep, compare_sweeps, lambda_sweep
from hypermorph_nb.checks import choose_pairs
from hypermorph_nb.evaluation import PairScores, SweepResult
from hypermorph_nb.evaluation.sweeps import auto_batch_size, identity_scores, score_pairs
from hypermorph_nb.registration.pairs import Registrar

from tests.conftest import SHAPE, TINY_FEATURES


def test_choose_pairs_are_distinct_and_never_self_pairs():
    pairs = choose_pairs(5, 20, seed=3)
    assert pairs.shape == (20, 2)
    assert len({tuple(p) for p in pairs}) == 20, "5 images give exactly 20 ordered pairs"
    assert (pairs[:, 0] != pairs[:, 1]).all() and pairs.min() >= 0 and pairs.max() < 5
    assert len(choose_pairs(3, 100)) == 6, "capped at n(n-1)"
    np.testing.assert_array_equal(choose_pairs(9, 5, seed=1), choose_pairs(9, 5, seed=1))
    with pytest.raises(ValueError, match="at least 2 images"):
        choose_pairs(1, 1)
    with pytest.raises(ValueError, match="n_pairs"):
        choose_pairs(4, 0)


def test_an_untrained_baseline_barely_moves_so_it_scores_like_no_registration(small_data, tiny_vxm):
    # VoxelMorph's flow layer starts with weights ~1e-5: the field is ~0, the warp is the identity.
    pairs = np.array([[0, 1], [2, 3], [4, 5], [6, 7]])
    scores = score_pairs(tiny_vxm, small_data, pairs=pairs)
    unregistered = identity_scores(small_data, pairs=pairs)
    np.testing.assert_allclose(scores.dice, unregistered.dice)
    np.testing.assert_allclose(scores.mse, unregistered.mse, rtol=1e-3)
    np.testing.assert_allclose(scores.ncc, unregistered.ncc, rtol=1e-3)
    assert (scores.folding == 0).all()


def test_a_structure_missing_from_one_image_of_a_pair_is_not_scored(tiny_vxm):
    images = np.zeros((3, *SHAPE, 1), np.float32)
    labels = np.zeros((3, *SHAPE), np.int32)
    labels[:, 4:12, 4:12] = 1
    labels[0, 20:24, 20:24] = 2      # structure 2 only in image 0
    labels[1:, 2:6, 20:30] = 3       # structure 3 only in images 1 and 2
    data = Dataset(images=images, labels=labels)
    scores = score_pairs(tiny_vxm, data, pairs=[[0, 1], [1, 2]])
    np.testing.assert_allclose(scores.dice, [[1.0, np.nan, np.nan], [1.0, np.nan, 1.0]])
    np.testing.assert_allclose(identity_scores(data, pairs=[[0, 1], [1, 2]]).dice, scores.dice)


def test_lambda_sweep_batches_lambda_and_pairs_like_one_call_per_lambda(small_data, tiny_hypermorph):
    lams = [0.0, 0.3, 1.0]
    result = lambda_sweep(tiny_hypermorph, small_data, lams, n_pairs=5, batch_size=4, progress=False)
    assert result.dice.shape == (3, 5, len(small_data.label_values()))
    assert result.mse.shape == result.folding.shape == result.ncc.shape == (3, 5)
    for index, lam in enumerate(lams):
        alone = score_pairs(tiny_hypermorph, small_data, pairs=result.pairs, lam=lam)
        np.testing.assert_allclose(result.dice[index], alone.dice)
        np.testing.assert_allclose(result.mse[index], alone.mse, rtol=1e-5)
        np.testing.assert_allclose(result.folding[index], alone.folding)
    assert result.identity_dice == pytest.approx(
        np.nanmean(np.nanmean(identity_scores(small_data, pairs=result.pairs).dice, axis=1)))


def hand_made_sweep():
    """Three λ, two pairs, two structures: 'near' peaks at λ=0.2, 'far' at λ=0.8.

    Pair 1 lacks structure 'far' (NaN); the mean over structures skips it.
    """
    near = np.array([0.9, 0.7, 0.5])
    far = np.array([0.4, 0.6, 0.8])
    dice = np.empty((3, 2, 2))
    dice[:, 0, 0], dice[:, 0, 1] = near, far
    dice[:, 1, 0], dice[:, 1, 1] = near - 0.1, np.nan
    zeros = np.zeros((3, 2))
    identity = PairScores(dice=np.array([[0.3, 0.2], [0.5, np.nan]]), mse=np.ones(2),
                          folding=np.zeros(2), ncc=np.ones(2))
    return SweepResult(lams=np.array([0.2, 0.5, 0.8]), pairs=np.array([[0, 1], [1, 0]]),
                       labels=np.array([3, 7]), label_names={3: "near", 7: "far"}, dice=dice,
                       mse=zeros + 0.01, folding=zeros, identity=identity, ncc=zeros + 0.9)


def test_optimal_lambda_per_structure_with_its_curve():
    result = hand_made_sweep()
    # pair 0: mean of near and far; pair 1: near - 0.1 only
    expected_mean = ((np.array([0.9, 0.7, 0.5]) + [0.4, 0.6, 0.8]) / 2 + [0.8, 0.6, 0.4]) / 2
    np.testing.assert_allclose(result.mean_dice, expected_mean)
    assert result.optimal_lam == 0.2
    assert result.optimal_lam_per_label == {3: 0.2, 7: 0.8}
    far = result.optimum("far")
    assert (far.lam, far.label, far.name) == (0.8, 7, "far")
    assert far.score == pytest.approx(0.8)
    np.testing.assert_allclose(far.curve, [0.4, 0.6, 0.8])
    assert result.optimum(7).lam == 0.8 and result.optimum().name == "mean"
    assert result.identity_dice == pytest.approx((0.25 + 0.5) / 2)
    summary = result.summary()
    assert summary["optimal_lam_per_label"] == {"3": 0.2, "7": 0.8}
    assert summary["dice_per_structure"]["far"] == pytest.approx([0.4, 0.6, 0.8])
    table = result.table()
    assert list(table.index) == [0.2, 0.5, 0.8] and "dice[near]" in table.columns


def test_optimum_errors_name_the_problem():
    result = hand_made_sweep()
    with pytest.raises(ValueError, match="no structure 'missing'"):
        result.optimum("missing")
    result.dice[:, :, 1] = np.nan
    with pytest.raises(ValueError, match="undefined at every λ"):
        result.optimum("far")
    assert result.optimal_lam_per_label == {3: 0.2}
    unlabelled = hand_made_sweep()
    unlabelled.dice = None
    with pytest.raises(ValueError, match="no label maps"):
        unlabelled.optimum()
    assert unlabelled.optimal_lam == 0.2, "without labels the lowest MSE (all equal: first) wins"


def test_compare_sweeps_reports_differences_and_optima_steps_apart():
    ours, theirs = hand_made_sweep(), hand_made_sweep()
    theirs.dice = theirs.dice[::-1].copy()   # the reference peaks at the other end
    comparison = compare_sweeps(ours, theirs)
    np.testing.assert_allclose(comparison.dice_difference, ours.mean_dice - theirs.mean_dice)
    assert comparison.optimum_steps_apart == 2
    assert comparison.per_label_steps_apart() == {"near": 2, "far": 2}
    rows = comparison.rows()
    assert [row["lam"] for row in rows] == [0.2, 0.5, 0.8]
    assert rows[1]["difference"] == pytest.approx(0.0)
    assert comparison.summary()["optimum_steps_apart"] == 2
    assert compare_sweeps(ours, hand_made_sweep()).optimum_steps_apart == 0


def test_compare_sweeps_refuses_mismatched_sweeps():
    ours, other = hand_made_sweep(), hand_made_sweep()
    other.lams = np.array([0.1, 0.5, 0.8])
    with pytest.raises(ValueError, match="different λ grids"):
        compare_sweeps(ours, other)
    other = hand_made_sweep()
    other.pairs = other.pairs[::-1]
    with pytest.raises(ValueError, match="pairs=reference.pairs"):
        compare_sweeps(ours, other)
    with pytest.raises(TypeError, match="SweepResult"):
        compare_sweeps(ours, {"lams": [0.2]})


def test_baseline_sweep_scores_one_model_per_lambda(small_data, tiny_vxm):
    other = hnb.build_vxm(SHAPE, nb_features=TINY_FEATURES, seed=1)
    result = baseline_sweep({0.9: other, 0.5: tiny_vxm}, small_data, n_pairs=4, progress=False)
    assert result.lams.tolist() == [0.5, 0.9]
    np.testing.assert_allclose(result.dice[0], score_pairs(tiny_vxm, small_data, pairs=result.pairs).dice)
    np.testing.assert_allclose(result.dice[1], score_pairs(other, small_data, pairs=result.pairs).dice)


def test_bad_inputs_raise_clear_errors(small_data, tiny_vxm, tiny_hypermorph):
    with pytest.raises(ValueError, match="needs a HyperMorph model"):
        lambda_sweep(tiny_vxm, small_data, [0.5])
    with pytest.raises(ValueError, match="Dataset.from_arrays"):
        lambda_sweep(tiny_hypermorph, small_data.images * 255, [0.5])
    with pytest.raises(TypeError, match="Dataset.from_arrays"):
        lambda_sweep(tiny_hypermorph, "images.npz", [0.5])
    with pytest.raises(ValueError, match=r"lams must lie in \[0, 1\]"):
        lambda_sweep(tiny_hypermorph, small_data, [0.5, 1.5])
    with pytest.raises(ValueError, match="repeated"):
        lambda_sweep(tiny_hypermorph, small_data, [0.5, 0.5])
    with pytest.raises(ValueError, match="valid indices 0..11"):
        lambda_sweep(tiny_hypermorph, small_data, [0.5], pairs=[[0, 12]])
    with pytest.raises(ValueError, match=r"\(P, 2\)"):
        score_pairs(tiny_vxm, small_data, pairs=[[0, 1, 2]])
    with pytest.raises(ValueError, match="batch_size"):
        score_pairs(tiny_vxm, small_data, pairs=[[0, 1]], batch_size=0)
    with pytest.raises(ValueError, match="takes no lam"):
        score_pairs(tiny_vxm, small_data, pairs=[[0, 1]], lam=0.5)
    with pytest.raises(ValueError, match="HyperMorph model"):
        baseline_sweep({0.5: tiny_hypermorph}, small_data)
    with pytest.raises(TypeError, match="non-empty dict"):
        baseline_sweep([tiny_vxm], small_data)


def test_a_sweep_without_label_maps_still_scores_images(tiny_hypermorph):
    data = synthetic(4, SHAPE, seed=0)
    data = Dataset(images=data.images)
    result = lambda_sweep(tiny_hypermorph, data, [0.2, 0.8], n_pairs=3, progress=False)
    assert result.dice is None and result.mse.shape == (2, 3)
    assert "mean_dice" not in result.summary() and result.optimal_lam in (0.2, 0.8)


@pytest.mark.slow
def test_a_trained_hypermorph_registers_better_than_nothing_and_smoother_at_high_lambda():
    data = synthetic(24, SHAPE, seed=0)
    model = hnb.build_hypermorph(SHAPE, seed=0)
    # 900 steps: the default (magnitude-invariant) model learns a registration per λ; after
    # 300 its λ = 0 fields, fitted to the image noise, still scored below no registration here,
    # and after 600 the gain over no registration sat at the 0.02 margin on some CPUs' kernels
    hnb.train(model, data[:20], epochs=6, steps_per_epoch=150, learning_rate=1e-3, seed=0,
              lam_sampling={"mode": "oversample", "oversample_rate": 0.5}, loss=hnb.networks.LossConfig(image_sigma=0.1),
              verbose=False)
    result = lambda_sweep(model, data[20:], [0.0, 0.5, 1.0], n_pairs=12, progress=False)
    assert result.mean_dice.max() > result.identity_dice + 0.02, "some λ registers better than nothing"
    assert result.mse[0].mean() < result.mse[2].mean(), "λ=0 matches the images more closely than λ=1"
    assert result.folding[0].mean() >= result.folding[2].mean()
    assert result.optimal_lam < 1.0


# ---- 3D sweeps, batch sizes and progress --------------------------------------------------

VOLUME = (16, 16, 16)


@pytest.fixture(scope="module")
def volumes():
    """Six labelled 16^3 volumes made with numpy: a bright ball at a different place in each."""
    grid = np.stack(np.meshgrid(*[np.arange(16.0)] * 3, indexing="ij"), -1)
    rng = np.random.default_rng(0)
    images, labels = [], []
    for _ in range(6):
        centre = 8 + rng.uniform(-2, 2, 3)
        distance = np.linalg.norm(grid - centre, axis=-1)
        images.append(np.clip(1.2 - distance / 6, 0, 1))
        labels.append(np.digitize(distance, [3, 5, 7])[::-1] * (distance < 7))
    return Dataset(images=np.array(images, np.float32)[..., None], labels=np.array(labels, np.int32))


def test_a_3d_lambda_sweep_scores_volumes_like_one_call_per_lambda(volumes, monkeypatch):
    model = hnb.build_hypermorph(VOLUME, nb_features=TINY_FEATURES, seed=0)
    totals = []
    real_tqdm = evaluation.tqdm

    def recording_tqdm(*args, **kwargs):
        totals.append((kwargs.get("total"), kwargs.get("desc")))
        return real_tqdm(*args, **kwargs)

    monkeypatch.setattr(evaluation, "tqdm", recording_tqdm)
    result = lambda_sweep(model, volumes, [0.1, 0.9], n_pairs=3, batch_size=2, progress=True)
    assert totals[0] == (6, "λ sweep"), "one bar counting every λ × pair registration"
    assert result.dice.shape == (2, 3, len(volumes.label_values()))
    assert result.mse.shape == result.folding.shape == (2, 3)
    assert np.isfinite(result.mean_dice).all() and 0 <= result.identity_dice <= 1
    for index, lam in enumerate([0.1, 0.9]):
        alone = score_pairs(model, volumes, pairs=result.pairs, lam=lam)
        np.testing.assert_allclose(result.dice[index], alone.dice)
        np.testing.assert_allclose(result.mse[index], alone.mse, rtol=1e-5)
    grid = baseline_sweep({0.5: hnb.build_vxm(VOLUME, nb_features=TINY_FEATURES, seed=0)}, volumes,
                          pairs=result.pairs, progress=False)
    assert grid.dice.shape == (1, 3, len(volumes.label_values()))


def test_batch_size_follows_the_volume_size_and_2d_keeps_eight(small_data, tiny_hypermorph, monkeypatch):
    assert auto_batch_size((32, 32)) == auto_batch_size((160, 192)) == 8
    assert auto_batch_size((80, 96, 80)) == 3 and auto_batch_size((160, 192, 224)) == 1
    sizes = []
    real_predict = Registrar.predict

    def spy(self, moving, fixed, lam=None):
        sizes.append(len(moving))
        return real_predict(self, moving, fixed, lam)

    monkeypatch.setattr(Registrar, "predict", spy)
    lambda_sweep(tiny_hypermorph, small_data, [0.2, 0.8], n_pairs=10, progress=False)
    assert sizes == [8, 2, 8, 2], "batches of 8 pairs at one λ"


def test_a_model_for_another_shape_or_dimension_is_refused(volumes, small_data, tiny_hypermorph, tiny_vxm):
    with pytest.raises(ValueError, match=r"data has shape \(16, 16, 16\), but the model was built "
                                         r"for 2D images of shape \(32, 32\)"):
        lambda_sweep(tiny_hypermorph, volumes, [0.5], n_pairs=2)
    with pytest.raises(ValueError, match="build a model for their shape"):
        score_pairs(tiny_vxm, volumes, pairs=[[0, 1]])
