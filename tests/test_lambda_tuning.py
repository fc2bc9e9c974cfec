"""optimize_lambda: λ chosen by gradient lands where a fine grid sweep puts the optimum, for less."""
import numpy as np
import pytest
import tensorflow as tf

import hypermorph_nb as hnb
from hypermorph_nb.data import Dataset, synthetic
from hypermorph_nb import metrics
from hypermorph_nb.evaluation.lambda_tuning import _folding_penalty, _jacobian_determinant, _search

from conftest import SHAPE, TINY_FEATURES

FEATURES = [[16, 16, 16, 16], [16, 16, 16, 16, 16, 16, 16]]
GRID = np.round(np.linspace(0, 1, 21), 3)  # the fine sweep: λ step 0.05
N_PAIRS = 12
#: displacements of up to 4 px and image σ 0.3: after 400 steps Dice peaks inside (0, 1)
#: (structure 1 near λ 0.75), where the synthetic default's curves are flat
NOISE, SIGMA = 0.02, 0.3


def _trained_with_sweep(**options):
    """A small HyperMorph trained so that Dice depends on λ, and its fine grid sweep."""
    data = synthetic(24, SHAPE, seed=0, max_displacement=4, noise=NOISE)
    train_data, val_data = data[:16], data[16:]
    model = hnb.build_hypermorph(SHAPE, nb_features=FEATURES, seed=0, **options)
    hnb.train(model, train_data, epochs=4, steps_per_epoch=100, learning_rate=3e-3, loss=hnb.networks.LossConfig(image_sigma=SIGMA),
              seed=0, verbose=False)
    sweep = hnb.lambda_sweep(model, val_data, GRID, n_pairs=N_PAIRS, progress=False)
    return model, val_data, sweep


@pytest.fixture(scope="session")
def tuned_setting():
    return _trained_with_sweep()


@pytest.fixture(scope="session")
def tutorial_setting():
    """The same with the tutorial's raw-λ input: several structures are best at λ = 0."""
    return _trained_with_sweep(hyper_encoding="tutorial")


def _quadratic(peak):
    """score(λ) = −(λ − peak)², with its derivative, counting evaluations."""
    calls = []

    def evaluate(lam):
        calls.append(lam)
        return -(lam - peak) ** 2, -2 * (lam - peak)
    return evaluate, calls


@pytest.mark.parametrize("peak", [0.03, 0.37, 0.5, 0.93])
def test_search_closes_in_on_an_interior_optimum(peak):
    evaluate, calls = _quadratic(peak)
    trace = _search(evaluate, 0.5, steps=12, tol=0.01)
    best = max(trace, key=lambda item: item[1])[0]
    assert abs(best - peak) < 0.01 and len(calls) == len(trace) <= 12


@pytest.mark.parametrize("peak, end", [(-0.2, 0.0), (1.3, 1.0)])
def test_search_returns_the_end_of_the_range_when_the_optimum_lies_beyond_it(peak, end):
    evaluate, calls = _quadratic(peak)
    trace = _search(evaluate, 0.5, steps=12, tol=0.01)
    assert [lam for lam, _ in trace] == [0.5, end], "one probe at the start, one at the uphill end"


def test_search_stops_at_the_step_budget():
    evaluate, calls = _quadratic(0.3141)
    assert len(_search(evaluate, 0.5, steps=3, tol=1e-9)) == 3
    assert len(_search(evaluate, 0.5, steps=1, tol=1e-9)) == 1


@pytest.mark.slow
def test_a_structure_best_at_lambda_zero_is_found_at_zero_in_two_evaluations(tutorial_setting):
    model, val_data, sweep = tutorial_setting
    at_zero = [int(label) for label in sweep.labels if sweep.optimum(int(label)).lam == 0.0]
    assert at_zero, "this fixture has structures whose grid optimum is λ = 0"
    for label in at_zero:
        found = hnb.optimize_lambda(model, val_data, pairs=sweep.pairs, label=label)
        assert found.lam == 0.0 and found.model_calls == 2 * len(sweep.pairs), found.trace


@pytest.mark.slow
@pytest.mark.parametrize("target", ["mean", "one structure"])
def test_lands_within_one_grid_step_of_the_sweep_optimum_for_a_fraction_of_the_calls(tuned_setting, target):
    model, val_data, sweep = tuned_setting
    label = None
    if target == "one structure":  # the structure whose Dice varies most with λ
        spread = np.nanmax(sweep.dice_per_label, axis=0) - np.nanmin(sweep.dice_per_label, axis=0)
        label = int(sweep.labels[int(np.nanargmax(spread))])
    found = hnb.optimize_lambda(model, val_data, pairs=sweep.pairs, label=label)
    best = sweep.optimum(label)
    grid_calls = len(GRID) * len(sweep.pairs)
    print(f"{target}: gradient λ* {found.lam:.3f} in {found.model_calls} registrations, "
          f"grid λ* {best.lam:.3f} in {grid_calls}")
    assert found.model_calls <= 0.6 * grid_calls
    if target == "one structure":
        assert abs(found.lam - best.lam) <= GRID[1] + 1e-6, (found.trace, best.curve)
    else:
        # This fixture's mean-Dice curve is flat to ±0.001 over λ 0.45-0.8 (well inside its
        # standard error over pairs), so its grid argmax is noise: require that the sweep
        # scores the gradient's λ within one standard error of its best.
        nearest = int(np.argmin(np.abs(GRID - found.lam)))
        gap = best.score - sweep.mean_dice[nearest]
        assert gap <= sweep.mean_dice_sem[int(np.argmax(sweep.mean_dice))], (found.trace, best.curve)
    assert found.label == label and found.objective == "dice"


def test_trace_records_every_evaluation_and_the_best_is_returned(small_data):
    model = hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)
    found = hnb.optimize_lambda(model, small_data, n_pairs=3, steps=4, seed=1)
    assert 1 <= len(found.trace) <= 4 and found.model_calls == 3 * len(found.trace)
    assert all(0 <= lam <= 1 for lam, _ in found.trace)
    assert found.value == max(value for _, value in found.trace)
    assert found.lam == found.trace[int(np.argmax([value for _, value in found.trace]))][0]
    np.testing.assert_array_equal(found.pairs, hnb.checks.choose_pairs(len(small_data), 3, seed=1))


def test_without_labels_the_image_objective_is_minimised(small_data):
    unlabelled = Dataset.from_arrays(small_data.images)
    model = hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)
    with pytest.raises(ValueError, match="objective='image'"):
        hnb.optimize_lambda(model, unlabelled, n_pairs=2)
    found = hnb.optimize_lambda(model, unlabelled, n_pairs=2, steps=3, objective="image", image_loss="ncc")
    assert found.objective == "image" and found.value == min(value for _, value in found.trace)


def test_bad_arguments_are_explained(small_data, tiny_vxm):
    model = hnb.build_hypermorph(SHAPE, nb_features=TINY_FEATURES, seed=0)
    with pytest.raises(ValueError, match="λ-conditioned model"):
        hnb.optimize_lambda(tiny_vxm, small_data)
    with pytest.raises(ValueError, match="no structure 99"):
        hnb.optimize_lambda(model, small_data, label=99)
    with pytest.raises(ValueError, match="objective must be"):
        hnb.optimize_lambda(model, small_data, objective="mse")
    with pytest.raises(ValueError, match="init_lam"):
        hnb.optimize_lambda(model, small_data, init_lam=1.0)


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
