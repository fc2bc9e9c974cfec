"""λ sampling: each mode's distribution, checked through the training pair stream.

Tolerances come from the binomial standard error: an empirical fraction of
``n`` draws with true probability ``p`` has standard error sqrt(p(1-p)/n); we
allow 4 of them (a false alarm about 1 in 16,000 per check; the draws are seeded).
"""
import numpy as np
import pytest
from scipy import stats

from hypermorph_nb.checks import check_lambda
from hypermorph_nb.data import LambdaSampling, PairBatches

N_BATCHES, BATCH = 2500, 8          # 20,000 λ values
PROBES = (0.05, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999)


@pytest.fixture(scope="module")
def images():
    return np.zeros((4, 8, 8, 1), np.float32)


def _stream_lams(images, sampling, seed=0):
    batches = PairBatches(images, batch_size=BATCH, seed=seed, lam_sampling=sampling)
    return np.concatenate([batches.batch(step)["lam"][:, 0] for step in range(N_BATCHES)])


def _assert_fraction(observed_sample, event, p, what):
    n = observed_sample.size
    observed = float(event.mean())
    tolerance = 4 * np.sqrt(max(p * (1 - p), 1e-12) / n)
    assert abs(observed - p) <= tolerance, f"{what}: observed {observed:.4f}, expected {p:.4f} ± {tolerance:.4f}"


def _assert_cdf(lam, cdf, what):
    for x in PROBES:
        _assert_fraction(lam, lam <= x, float(cdf(x)), f"{what}: P(λ <= {x})")


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_oversampling_rate_is_honoured_with_half_of_the_end_points_at_each_end(images, rate):
    lam = _stream_lams(images, {"mode": "oversample", "oversample_rate": rate})
    assert lam.dtype == np.float32 and lam.min() >= 0 and lam.max() <= 1
    _assert_fraction(lam, np.isin(lam, [0.0, 1.0]), rate, "end-point rate")
    _assert_fraction(lam, lam == 0.0, rate / 2, "P(λ = 0)")
    _assert_fraction(lam, lam == 1.0, rate / 2, "P(λ = 1)")
    _assert_cdf(lam, lambda x: rate / 2 + (1 - rate) * x, "oversample")


def test_default_oversample_rate_is_voxelmorphs_0_2(images):
    assert LambdaSampling("oversample").oversample_rate == 0.2
    lam = _stream_lams(images, "oversample", seed=3)
    _assert_fraction(lam, np.isin(lam, [0.0, 1.0]), 0.2, "default end-point rate")


def test_a_wrong_rate_would_be_detected(images):
    """The tolerance is tight enough to tell 0.2 from 0.17."""
    lam = _stream_lams(images, {"mode": "oversample", "oversample_rate": 0.17})
    with pytest.raises(AssertionError):
        _assert_fraction(lam, np.isin(lam, [0.0, 1.0]), 0.2, "end-point rate")


def test_uniform_is_uniform_without_end_point_mass(images):
    lam = _stream_lams(images, "uniform")
    _assert_cdf(lam, lambda x: x, "uniform")
    assert np.isin(lam, [0.0, 1.0]).sum() <= 2


@pytest.mark.parametrize("a, b", [(4.0, 1.0), (0.5, 0.5), (2.0, 5.0)])
def test_beta_follows_the_beta_law(images, a, b):
    lam = _stream_lams(images, {"mode": "beta", "a": a, "b": b})
    _assert_cdf(lam, lambda x: stats.beta.cdf(x, a, b), f"beta({a}, {b})")


@pytest.mark.parametrize("low", [1e-3, 1e-2])
def test_log1m_is_log_uniform_in_one_minus_lambda(images, low):
    lam = _stream_lams(images, {"mode": "log1m", "low": low})
    one_minus = 1.0 - lam.astype(np.float64)
    assert one_minus.min() >= low * (1 - 1e-3) and lam.min() >= 0
    # P(λ <= x) = P(1 − λ >= 1 − x) = log10(1 − x) / log10(low) for 1 − x >= low
    _assert_cdf(lam, lambda x: min(np.log10(1 - x) / np.log10(low), 1.0), f"log1m(low={low})")
    for decade in range(int(round(-np.log10(low)))):   # every decade gets the same share
        inside = (one_minus <= 10.0 ** -decade) & (one_minus > 10.0 ** -(decade + 1))
        _assert_fraction(lam, inside, 1 / -np.log10(low), f"decade {decade}")


def test_fixed_mode_and_plain_numbers_give_a_constant_lambda(images):
    assert (_stream_lams(images, 0.25) == np.float32(0.25)).all()
    assert LambdaSampling.coerce(1).to_json()["value"] == 1.0


def test_same_seed_same_lambdas_different_seed_different(images):
    sampling = {"mode": "beta", "a": 2, "b": 2}
    np.testing.assert_array_equal(_stream_lams(images, sampling, seed=5), _stream_lams(images, sampling, seed=5))
    assert not np.array_equal(_stream_lams(images, sampling, seed=5), _stream_lams(images, sampling, seed=6))


def test_to_json_round_trips_through_coerce():
    sampling = LambdaSampling("log1m", low=1e-4)
    assert LambdaSampling.coerce(sampling.to_json()) == sampling
    assert LambdaSampling.coerce({"mode": "oversample"}).oversample_rate == 0.2   # older records


@pytest.mark.parametrize("value, message", [
    (1.5, r"lam_sampling must lie in \[0, 1\].*\[1.5\]"),
    (-0.1, r"must lie in \[0, 1\]"),
    (float("nan"), r"must lie in \[0, 1\]"),
    ("gaussian", "mode must be one of"),
    ({"mode": "beta", "a": 0}, "beta parameters must be > 0"),
    ({"mode": "oversample", "oversample_rate": 1.2}, r"oversample_rate must lie in \[0, 1\]"),
    ({"mode": "log1m", "low": 0}, r"low .* must lie in \(0, 1\)"),
    ({"mode": "fixed", "value": 2}, r"value \(the λ of 'fixed'\) must lie in \[0, 1\]"),
    ({"mode": "beta", "alpha": 2}, r"unknown λ sampling field\(s\) \['alpha'\]"),
])
def test_bad_lambda_settings_are_refused(value, message):
    with pytest.raises(ValueError, match=message):
        LambdaSampling.coerce(value)


def test_coerce_refuses_other_types_and_check_lambda_checks_arrays():
    with pytest.raises(TypeError, match="lam_sampling must be one of the modes"):
        LambdaSampling.coerce([0.1, 0.2])
    with pytest.raises(TypeError, match="must be a number"):
        check_lambda("high")
    with pytest.raises(ValueError, match=r"lams must lie in \[0, 1\].*\[1.2\]"):
        check_lambda([0.0, 0.5, 1.2], name="lams")
    assert check_lambda(np.array([[0.5]])).shape == (1, 1)
