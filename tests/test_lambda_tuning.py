"""optimize_lambda: a coarse sweep, then the gradient, find a bumpy λ curve's optimum for less than a fine grid.

Three layers: the search on plain numpy curves whose optimum is known independently
(no model), the function's contract on an untrained model, and on small trained models a
comparison with independent computations on the same model and pairs: a fine
``lambda_sweep`` (the Dice the toolkit reports) and the soft Dice that ``optimize_lambda``
maximises, computed here from the registrations on the same fine grid.
"""
import numpy as np
import pytest
import tensorflow as tf

import hypermorph_nb as hnb
from hypermorph_nb.data import Dataset, synthetic
from hypermorph_nb import metrics
from hypermorph_nb.evaluation.lambda_tuning import (
    _coarse_lambdas, _Evaluator, _DiceTarget, _folding_penalty, _jacobian_determinant, _search)
from hypermorph_nb.registration.pairs import Registrar

from conftest import SHAPE, TINY_FEATURES

COARSE = _coarse_lambdas(5)  # optimize_lambda's default first sweep: 0, 0.25, ..., 1
STEPS, TOL = 12, 0.01  # optimize_lambda's defaults


class Curve:
    """A score of λ with its derivative, evaluated as optimize_lambda's objective is (several λ at once)."""

    def __init__(self, score, slope):
        self.score, self.slope, self.calls = score, slope, 0

    def __call__(self, lams):
        self.calls += len(lams)
        return [(float(self.score(lam)), float(self.slope(lam))) for lam in lams]

    def truth(self):
        """The maximum on a grid of 100 001 λ: where it is, and its score."""
        grid = np.linspace(0.0, 1.0, 100_001)
        scores = np.broadcast_to(self.score(grid), grid.shape)
        return float(grid[np.argmax(scores)]), float(scores.max())


def bumps(*peaks, offset=0.0, trend=0.0):
    """offset + trend × λ + Σ height · exp(−(λ − centre)² / (2 width²)) over ``peaks`` (centre, width, height)."""
    def score(lam):
        return offset + trend * lam + sum(h * np.exp(-(lam - c) ** 2 / (2 * w * w)) for c, w, h in peaks)

    def slope(lam):
        return trend + sum(-h * (lam - c) / (w * w) * np.exp(-(lam - c) ** 2 / (2 * w * w)) for c, w, h in peaks)
    return Curve(score, slope)


def best_of(trace):
    return max(trace, key=lambda item: item[1])


@pytest.mark.parametrize("peak", [0.03, 0.37, 0.5, 0.93])
def test_search_closes_in_on_an_interior_optimum(peak):
    curve = Curve(lambda lam: -(lam - peak) ** 2, lambda lam: -2 * (lam - peak))
    trace = _search(curve, COARSE, STEPS, TOL)
    assert [lam for lam, _ in trace[:len(COARSE)]] == COARSE, "the coarse sweep comes first"
    assert abs(best_of(trace)[0] - peak) < TOL and curve.calls == len(trace) <= STEPS


#: Curves on which following the slope from λ = 0.5 leads away from the optimum: a local
#: optimum (or a bump) near the middle, the global one elsewhere, inside or at an end.
BUMPY = {
    "global at 0.8, local at 0.45": bumps((0.8, 0.12, 0.5), (0.45, 0.06, 0.3)),
    "global at 0.3, local at 0.55": bumps((0.3, 0.12, 0.5), (0.55, 0.06, 0.3)),
    "best at 0, a bump at 0.55": bumps((0.55, 0.05, 0.1), offset=0.3, trend=-0.3),
    "best at 1, a bump at 0.45": bumps((0.45, 0.05, 0.1), trend=0.3),
}


@pytest.mark.parametrize("name", list(BUMPY))
def test_search_finds_the_global_optimum_of_a_bumpy_curve(name):
    curve = BUMPY[name]
    lam_true, score_true = curve.truth()
    assert np.sign(curve.slope(0.5)) != np.sign(lam_true - 0.5), "the slope at 0.5 points away from the optimum"
    trace = _search(curve, COARSE, STEPS, TOL)
    lam, score = best_of(trace)
    assert abs(lam - lam_true) < TOL and score >= score_true - 1e-3 and len(trace) <= STEPS, trace
    if lam_true in (0.0, 1.0):
        assert lam == lam_true and len(trace) == len(COARSE), "an end of [0, 1] is found by the coarse sweep alone"


@pytest.mark.parametrize("peak, end", [(-0.2, 0.0), (1.3, 1.0)])
def test_search_returns_the_end_of_the_range_when_the_optimum_lies_beyond_it(peak, end):
    curve = Curve(lambda lam: -(lam - peak) ** 2, lambda lam: -2 * (lam - peak))
    trace = _search(curve, COARSE, STEPS, TOL)
    assert [lam for lam, _ in trace] == COARSE and best_of(trace)[0] == end, "the coarse sweep only"


@pytest.mark.parametrize("name, curve, optimal", [
    ("flat", Curve(lambda lam: 0.7, lambda lam: 0.0), (0.0, 1.0)),
    # the tutorial's raw λ input: the same registration for every λ up to 0.3, worse beyond
    ("plateau, then down", Curve(lambda lam: 0.7 - np.maximum(lam - 0.3, 0) ** 2,
                                 lambda lam: -2 * np.maximum(lam - 0.3, 0)), (0.0, 0.3)),
])
def test_search_stops_after_the_coarse_sweep_on_a_flat_curve(name, curve, optimal):
    trace = _search(curve, COARSE, STEPS, TOL)
    assert len(trace) == len(COARSE) and optimal[0] <= best_of(trace)[0] <= optimal[1], trace


@pytest.mark.parametrize("seed", range(30))
def test_search_lands_within_the_wiggles_of_the_maximum_of_a_wiggly_curve(seed):
    """A broad peak (maybe beyond [0, 1]) plus wiggles that make local maxima near the top."""
    rng = np.random.default_rng(seed)
    centre, width, amplitude = rng.uniform(-0.1, 1.1), rng.uniform(0.15, 0.4), 0.05
    freqs, phases = rng.uniform(15, 40, 3), rng.uniform(0, 2 * np.pi, 3)
    peak = bumps((centre, width, 1.0))
    curve = Curve(lambda lam: peak.score(lam) + amplitude / 3 * np.sin(np.multiply.outer(lam, freqs) + phases).sum(-1),
                  lambda lam: peak.slope(lam) + amplitude / 3 * (freqs * np.cos(np.multiply.outer(lam, freqs) + phases)).sum(-1))
    trace = _search(curve, COARSE, STEPS, TOL)
    assert best_of(trace)[1] >= curve.truth()[1] - 2 * amplitude and len(trace) <= STEPS, trace


def test_search_stops_at_the_step_budget():
    curve = bumps((0.3141, 0.2, 1.0))
    assert len(_search(curve, COARSE, 7, 1e-9)) == 7 and len(_search(curve, COARSE, 6, 1e-9)) == 6
    assert len(_search(curve, COARSE, len(COARSE), 1e-9)) == len(COARSE)


@pytest.fixture(scope="module")
def untrained():
    """One tiny HyperMorph for this file's contract tests: its compiled steps are traced once."""
    return hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)


def test_coarse_sweep_takes_the_starting_lambda_along():
    assert _coarse_lambdas(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert _coarse_lambdas(3, 0.3) == [0.0, 0.3, 0.5, 1.0] and _coarse_lambdas(2, 0.5) == [0.0, 0.5, 1.0]


def test_the_batched_coarse_sweep_scores_every_lambda_as_alone(small_data, untrained):
    """λ and pairs mixed in one batch: each registration gets its own score and derivative."""
    evaluate = _Evaluator(untrained, _DiceTarget(small_data, np.array([[0, 1], [2, 3], [4, 5]]), None), batch_size=4)
    together = np.array(evaluate([0.1, 0.6, 0.9]))
    alone = np.array([evaluate([lam])[0] for lam in (0.1, 0.6, 0.9)])
    assert np.all(np.abs(together[:, 1]) > 0), "the derivative reaches λ"
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-7)


def test_trace_records_every_evaluation_and_the_best_is_returned(small_data, untrained):
    found = hnb.optimize_lambda(untrained, small_data, n_pairs=3, coarse=3, steps=5, seed=1)
    assert found.lams[:3].tolist() == [0.0, 0.5, 1.0], "the coarse sweep first"
    assert 3 <= len(found.trace) <= 5 and found.model_calls == 3 * len(found.trace)
    assert all(0 <= lam <= 1 for lam, _ in found.trace)
    assert found.value == max(value for _, value in found.trace)
    assert found.lam == found.trace[int(np.argmax([value for _, value in found.trace]))][0]
    np.testing.assert_array_equal(found.pairs, hnb.checks.choose_pairs(len(small_data), 3, seed=1))


def test_without_labels_the_image_objective_is_minimised(small_data, untrained):
    unlabelled = Dataset.from_arrays(small_data.images)
    with pytest.raises(ValueError, match="objective='image'"):
        hnb.optimize_lambda(untrained, unlabelled, n_pairs=2)
    found = hnb.optimize_lambda(untrained, unlabelled, n_pairs=2, coarse=3, steps=4, objective="image",
                                image_loss="ncc")
    assert found.objective == "image" and found.value == min(value for _, value in found.trace)


def test_bad_arguments_are_explained(small_data, tiny_vxm, untrained):
    with pytest.raises(ValueError, match="λ-conditioned model"):
        hnb.optimize_lambda(tiny_vxm, small_data)
    with pytest.raises(ValueError, match="no structure 99"):
        hnb.optimize_lambda(untrained, small_data, label=99)
    with pytest.raises(ValueError, match="objective must be"):
        hnb.optimize_lambda(untrained, small_data, objective="mse")
    with pytest.raises(ValueError, match="init_lam"):
        hnb.optimize_lambda(untrained, small_data, init_lam=1.0)
    with pytest.raises(ValueError, match="coarse must be at least 2"):
        hnb.optimize_lambda(untrained, small_data, coarse=1)
    with pytest.raises(ValueError, match="steps=3 is fewer than the 5 λ of the coarse sweep"):
        hnb.optimize_lambda(untrained, small_data, steps=3)


# Small trained models, and independent computations on the same model and pairs.

FEATURES = [[16, 16, 16, 16], [16, 16, 16, 16, 16, 16, 16]]
GRID = np.round(np.linspace(0, 1, 21), 3)  # the fine sweep: λ step 0.05
N_PAIRS = 12
#: displacements of up to 4 px and image σ 0.3: after 400 steps Dice depends on λ (peaks
#: inside (0, 1) for some structures, at 0 for others), where the synthetic default's curves are flat
NOISE, SIGMA = 0.02, 0.3


def soft_dice_on_grid(model, data, pairs, lams):
    """``(L, P, K)`` soft Dice of linearly warped one-hot label maps (NaN where a pair lacks a structure).

    optimize_lambda's objective, computed here without it: registrations by the model's
    Registrar, one structure at a time.
    """
    registrar, labels = Registrar.for_model(model), data.label_values()
    moving, fixed = data.labels[pairs[:, 0]], data.labels[pairs[:, 1]]
    present = np.stack([[np.isin(k, m) and np.isin(k, f) for k in labels] for m, f in zip(moving, fixed)])
    out = np.empty((len(lams), len(pairs), len(labels)))
    for i, lam in enumerate(lams):
        _, flow = registrar.predict(data.images[pairs[:, 0]], data.images[pairs[:, 1]], lam)
        for k, label in enumerate(labels):
            warped = registrar.warp((moving == label).astype(np.float32), flow)  # linear
            target = (fixed == label).astype(np.float32)
            size = warped.sum((1, 2)) + target.sum((1, 2))
            out[i, :, k] = 2 * (warped * target).sum((1, 2)) / np.maximum(size, 1e-6)
    return np.where(present, out, np.nan)


def curve_of(per_pair, label_index):
    """The mean over pairs (for one structure, or of the per-pair mean over structures)."""
    values = np.nanmean(per_pair, axis=-1) if label_index is None else per_pair[..., label_index]
    return np.nanmean(values, axis=-1)


@pytest.fixture(scope="module", params=["default encoding", "tutorial encoding"])
def searched(request):
    """A small trained HyperMorph, its fine sweep, the soft Dice on the same grid, and
    optimize_lambda for the mean Dice and for every structure on the sweep's pairs.

    The tutorial's raw-λ input leaves several structures best at λ = 0.
    """
    data = synthetic(24, SHAPE, seed=0, max_displacement=4, noise=NOISE)
    train_data, val_data = data[:16], data[16:]
    options = {"hyper_encoding": "tutorial"} if request.param == "tutorial encoding" else {}
    model = hnb.build_hypermorph(SHAPE, nb_features=FEATURES, seed=0, **options)
    hnb.train(model, train_data, epochs=4, steps_per_epoch=100, learning_rate=3e-3,
              loss=hnb.networks.LossConfig(image_sigma=SIGMA), seed=0, verbose=False)
    sweep = hnb.lambda_sweep(model, val_data, GRID, n_pairs=N_PAIRS, progress=False)
    soft = soft_dice_on_grid(model, val_data, sweep.pairs, GRID)
    targets = [None] + [int(label) for label in sweep.labels]
    found = {label: hnb.optimize_lambda(model, val_data, pairs=sweep.pairs, label=label) for label in targets}
    at_found = hnb.lambda_sweep(model, val_data, sorted({f.lam for f in found.values()}),
                                pairs=sweep.pairs, progress=False)
    return sweep, soft, found, at_found


@pytest.mark.slow
def test_finds_the_maximum_of_its_objective_on_a_fine_grid_for_less(searched):
    """For the mean and every structure, the soft Dice found is the fine grid's best (or better)."""
    sweep, soft, found, _ = searched
    grid_calls = len(GRID) * len(sweep.pairs)
    for label, search in found.items():
        k = None if label is None else int(np.flatnonzero(sweep.labels == label)[0])
        curve = curve_of(soft, k)
        for lam, value in search.trace[:len(COARSE)]:  # the same objective, computed twice
            assert value == pytest.approx(curve[np.flatnonzero(GRID == lam)[0]], abs=1e-4), (label, lam)
        assert search.value >= np.nanmax(curve) - 1e-3, (label, search.trace, curve)
        assert search.model_calls <= 0.6 * grid_calls and search.label == label and search.objective == "dice"
    calls = [search.model_calls for search in found.values()]
    print(f"registrations per target: mean {np.mean(calls):.1f}, most {max(calls)}; fine grid {grid_calls}")


@pytest.mark.slow
def test_the_sweep_scores_the_lambda_found_within_its_noise_of_its_best(searched):
    """For the mean and every structure, the sweep's own Dice at the λ found is within 0.01
    plus two standard errors (paired over the pairs) of the sweep's best: whether the
    optimum is at λ = 0, inside, or the curve is bumpy."""
    sweep, _, found, at_found = searched
    found_lams = list(at_found.lams)
    for label, search in found.items():
        best = sweep.optimum(label)
        if label is None:
            ours, theirs = at_found.pair_dice[found_lams.index(search.lam)], sweep.pair_dice
        else:
            k = int(np.flatnonzero(sweep.labels == label)[0])
            ours, theirs = at_found.dice[found_lams.index(search.lam), :, k], sweep.dice[:, :, k]
        difference = theirs[int(np.flatnonzero(GRID == best.lam)[0])] - ours
        difference = difference[np.isfinite(difference)]
        sem = difference.std(ddof=1) / np.sqrt(len(difference))
        print(f"{best.name}: sweep λ* {best.lam:.2f} Dice {best.score:.4f}; found λ {search.lam:.3f} "
              f"Dice {np.mean(ours[np.isfinite(ours)]):.4f} ({-difference.mean():+.4f}, s.e. {sem:.4f}) "
              f"in {len(search.trace)} evaluations")
        assert difference.mean() <= 0.01 + 2 * sem, (best.name, search.trace, best.curve)


@pytest.mark.parametrize("ndims", [2, 3])
def test_jacobian_determinant_of_a_linear_field_is_exact(ndims):
    matrix = np.random.default_rng(0).normal(scale=0.2, size=(ndims, ndims))
    grid = np.stack(np.meshgrid(*[np.arange(6.0)] * ndims, indexing="ij"), axis=-1)
    flow = tf.constant((grid @ matrix.T)[None], tf.float32)  # u(x) = A x
    det = _jacobian_determinant(flow).numpy()
    assert det.shape == (1, *[6] * ndims)
    np.testing.assert_allclose(det, np.linalg.det(np.eye(ndims) + matrix), rtol=1e-4)


def smooth_folding_fields(ndims, batch=2):
    """Smooth random fields (sums of sines), the second strong enough to fold in places."""
    rng = np.random.default_rng(ndims)
    axes = np.meshgrid(*[np.arange(12.0)] * ndims, indexing="ij")
    fields = []
    for amplitude in (0.5, 4.0)[:batch]:
        components = [amplitude * sum(np.sin(rng.uniform(0.2, 0.6) * x + rng.uniform(0, 6)) for x in axes)
                      for _ in range(ndims)]
        fields.append(np.stack(components, axis=-1))
    return np.stack(fields).astype(np.float32)


@pytest.mark.parametrize("ndims", [2, 3])
def test_folding_penalty_uses_the_jacobian_the_sweeps_report(ndims):
    """λ tuning penalises the folding that metrics (sweeps, explorer) measure, voxel for voxel."""
    flow = smooth_folding_fields(ndims)
    expected = metrics.jacobian_determinant(flow)
    det = _jacobian_determinant(tf.constant(flow)).numpy()
    assert det.shape == expected.shape
    np.testing.assert_allclose(det, expected, rtol=1e-4, atol=1e-4)
    folding = metrics.folding_fraction(flow)
    assert folding[0] == 0 and folding[1] > 0.01, "the test fields must cover both cases"
    np.testing.assert_allclose((det <= 0).reshape(2, -1).mean(1), folding)
    penalty = _folding_penalty(tf.constant(flow)).numpy()
    np.testing.assert_allclose(penalty, np.maximum(-expected, 0).reshape(2, -1).mean(1), rtol=1e-4, atol=1e-6)
