"""One rule, one error: every function that takes the same input refuses the same mistake alike."""
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.checks import check_lambdas, check_model_shape, check_pair, check_pairs
from hypermorph_nb.data import PairBatches, as_dataset, synthetic
from hypermorph_nb.evaluation.sweeps import score_pairs
from hypermorph_nb.viz.plotting import lambda_row_figure
from hypermorph_nb.widgets import LambdaExplorer

from tests.conftest import SHAPE


def message(call):
    """The error ``call`` raises."""
    with pytest.raises((ValueError, TypeError)) as error:
        call()
    return str(error.value)


def train(model, data, **options):
    return hnb.train(model, data, epochs=1, steps_per_epoch=1, verbose=False, **options)


def test_data_of_another_shape_gets_one_message(tiny_hypermorph, small_data):
    other = synthetic(4, (16, 16), seed=0)
    expected = message(lambda: check_model_shape(other.shape, SHAPE, name="data"))
    assert "(16, 16)" in expected and "(32, 32)" in expected
    callers = {
        "lambda_sweep": lambda: hnb.lambda_sweep(tiny_hypermorph, other, [0.5], progress=False),
        "score_pairs": lambda: score_pairs(tiny_hypermorph, other, pairs=[[0, 1]], lam=0.5),
        "optimize_lambda": lambda: hnb.optimize_lambda(tiny_hypermorph, other),
        "train": lambda: train(tiny_hypermorph, other),
        "LambdaExplorer": lambda: LambdaExplorer(tiny_hypermorph, other, display="image"),
    }
    for caller, call in callers.items():
        assert message(call) == expected, caller
    in_validation = message(lambda: train(tiny_hypermorph, small_data, validation_data=other))
    assert in_validation == expected.replace("data has", "validation_data has", 1)


def test_arrays_given_as_data_follow_one_policy(tiny_hypermorph, small_data):
    raw = small_data.images[:4] * 255          # raw intensities: refused, never rescaled silently
    expected = message(lambda: as_dataset(raw, name="data"))
    assert "Dataset.from_arrays" in expected
    assert message(lambda: hnb.lambda_sweep(tiny_hypermorph, raw, [0.5], progress=False)) == expected
    assert message(lambda: LambdaExplorer(tiny_hypermorph, raw, display="image")) == expected
    assert message(lambda: PairBatches(raw)) == expected.replace("data[", "training images[", 1)
    assert message(lambda: train(tiny_hypermorph, small_data, validation_data=raw)) == \
        expected.replace("data[", "validation_data[", 1)
    # arrays already in [0, 1] are taken as they are, by every caller
    images = small_data.images[:4]
    np.testing.assert_array_equal(as_dataset(images).images, images)
    result = hnb.lambda_sweep(tiny_hypermorph, images, [0.5], pairs=[[0, 1]], progress=False)
    assert result.dice is None and result.mse.shape == (1, 1)


def test_lambda_lists_get_one_message(tiny_hypermorph, small_data):
    expected = message(lambda: check_lambdas([0.5, 1.5]))
    image = small_data.images[0]
    assert message(lambda: hnb.lambda_sweep(tiny_hypermorph, small_data, [0.5, 1.5])) == expected
    assert message(lambda: lambda_row_figure(tiny_hypermorph, image, image, [0.5, 1.5])) == expected
    assert message(lambda: train(tiny_hypermorph, small_data, validation_data=small_data,
                                 validation_lams=[0.5, 1.5])) == expected.replace("lams", "validation_lams", 1)
    empty = message(lambda: check_lambdas([]))
    assert message(lambda: lambda_row_figure(tiny_hypermorph, image, image, [])) == empty
    assert message(lambda: hnb.lambda_sweep(tiny_hypermorph, small_data, [])) == empty


def test_pair_indices_get_one_message(tiny_hypermorph, tiny_vxm, small_data):
    expected = message(lambda: check_pairs([[0, 99]], len(small_data)))
    assert message(lambda: hnb.lambda_sweep(tiny_hypermorph, small_data, [0.5], pairs=[[0, 99]])) == expected
    assert message(lambda: score_pairs(tiny_vxm, small_data, pairs=[[0, 99]])) == expected
    assert message(lambda: hnb.optimize_lambda(tiny_hypermorph, small_data, pairs=[[0, 99]])) == expected
    assert message(lambda: train(tiny_vxm, small_data, validation_data=small_data,
                                 validation_pairs=[[0, 99]])) == expected.replace("pairs", "validation_pairs", 1)
    one = message(lambda: check_pair((0, 99), len(small_data)))
    assert one == expected.replace("pairs", "pair", 1)
    assert message(lambda: LambdaExplorer(tiny_hypermorph, small_data, pair=(0, 99), display="image")) == one


def test_label_maps_are_checked_alike_by_the_figure_the_explorer_and_the_export(tiny_hypermorph, small_data,
                                                                               tmp_path):
    image, labels = small_data.images[0, ..., 0], small_data.labels[0]

    def errors(moving_labels):
        return [
            message(lambda: lambda_row_figure(tiny_hypermorph, image, image, moving_labels=moving_labels,
                                              fixed_labels=labels)),
            message(lambda: LambdaExplorer.from_arrays(tiny_hypermorph, image, image, display="image",
                                                       moving_labels=moving_labels, fixed_labels=labels)),
            message(lambda: hnb.export_registration(tiny_hypermorph, image, image, tmp_path, lam=0.5,
                                                    moving_labels=moving_labels)),
        ]

    for error in errors(labels + 0.5):
        assert "label maps must hold whole numbers" in error, error
    for error in errors(labels[:16]):
        assert "has shape (16, 32) but the moving image" in error, error
