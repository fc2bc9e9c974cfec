"""Metrics against hand-computed cases: Dice of known overlaps, Jacobians of known affine fields."""
import numpy as np
import pytest

from hypermorph_nb.metrics import (dice, dice_batch, folding_fraction, image_mse, image_ncc,
                                   jacobian_determinant, mean_dice)
from hypermorph_nb.networks.models import vxm


def squares():
    """Two 8x8 maps: label 1 is a 4x4 square in both, shifted by 2 columns in ``b``;
    label 2 (a 2x2 block) only in ``a``; label 3 (one voxel) in both at the same place."""
    a = np.zeros((8, 8), int)
    b = np.zeros((8, 8), int)
    a[0:4, 0:4] = 1
    b[0:4, 2:6] = 1
    a[6:8, 0:2] = 2
    a[7, 7] = b[7, 7] = 3
    return a, b


def test_dice_of_known_overlaps():
    a, b = squares()
    # label 1: overlap 4x2 = 8, sizes 16 + 16 -> 16/32; label 2: only in a -> 0; label 3: identical -> 1
    np.testing.assert_allclose(dice(a, b), [0.5, 0.0, 1.0])
    assert dice(a, a).tolist() == [1.0, 1.0, 1.0]


def test_dice_label_subsets_keep_the_given_order_and_absent_labels_are_nan():
    a, b = squares()
    np.testing.assert_allclose(dice(a, b, labels=[3, 1]), [1.0, 0.5])
    result = dice(a, b, labels=[1, 9])
    assert result[0] == 0.5 and np.isnan(result[1]), "a label in neither map is undefined, not 0"
    assert dice(a, b, labels=[]).shape == (0,)


def test_dice_matches_voxelmorph_where_both_define_it():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, (2, 20, 24))
    np.testing.assert_allclose(dice(a, b), vxm.py.utils.dice(a, b))


def test_dice_works_in_3d_and_on_whole_number_floats():
    a = np.zeros((4, 4, 4), int)
    b = np.zeros((4, 4, 4), int)
    a[:2] = 1          # 32 voxels
    b[:, :, :2] = 1    # 32 voxels, overlap 2*4*2 = 16
    np.testing.assert_allclose(dice(a, b), [0.5])
    np.testing.assert_allclose(dice(a.astype(np.float32), b.astype(np.float64)), [0.5])


@pytest.mark.parametrize("bad, message", [
    ((np.zeros((4, 4)), np.zeros((4, 5))), "same shape"),
    ((np.full((4, 4), 0.5), np.zeros((4, 4))), "non-integer"),
    ((np.zeros((4, 4), int), np.full((4, 4), np.nan)), "non-integer"),
])
def test_dice_refuses_bad_label_maps(bad, message):
    with pytest.raises(ValueError, match=message):
        dice(*bad)


def test_dice_refuses_non_integer_labels():
    with pytest.raises(ValueError, match="labels must be integer"):
        dice([1, 0], [1, 0], labels=[1.5])


def test_mean_dice_averages_only_labels_present_in_both():
    a, b = squares()
    assert mean_dice(a, b) == pytest.approx((0.5 + 1.0) / 2), "label 2 is only in a: left out"
    assert mean_dice(a, b, labels=[1, 2]) == pytest.approx(0.5)
    assert np.isnan(mean_dice(a, b, labels=[2]))
    assert np.isnan(mean_dice(np.zeros((3, 3), int), np.zeros((3, 3), int)))


def test_dice_batch_equals_dice_per_pair():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 6, (5, 12, 10))
    b = rng.integers(0, 6, (5, 12, 10))
    b[2] = 0   # an empty map: every label absent from one side -> 0 or NaN
    labels = [5, 1, 2, 7]
    expected = np.stack([dice(x, y, labels) for x, y in zip(a, b)])
    np.testing.assert_allclose(dice_batch(a, b, labels), expected)


def test_dice_batch_handles_large_and_negative_label_values():
    a = np.array([[[2035, 2035], [-1, 0]]])
    b = np.array([[[2035, 0], [-1, 0]]])
    np.testing.assert_allclose(dice_batch(a, b, [2035, -1, 17]), [[2 / 3, 1.0, np.nan]])
    assert dice_batch(a, b, []).shape == (1, 0)


def test_dice_batch_refuses_single_maps():
    with pytest.raises(ValueError, match="use dice"):
        dice_batch(np.zeros(4, int), np.zeros(4, int), [1])


def affine_flow(matrix, shape, shift=None):
    """Displacement of ``x -> matrix @ x + shift`` on a voxel grid (component i along axis i)."""
    matrix = np.asarray(matrix, float)
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij"), -1)
    shift = np.zeros(len(shape)) if shift is None else np.asarray(shift, float)
    return grid @ (matrix - np.eye(len(shape))).T + shift


@pytest.mark.parametrize("matrix", [
    [[1.0, 0.0], [0.0, 1.0]],        # identity
    [[2.0, 0.0], [0.0, 0.5]],        # stretch and squeeze, det 1
    [[1.2, 0.3], [-0.1, 0.8]],       # general, det 1.2*0.8 + 0.03 = 0.99
    [[0.0, 1.0], [1.0, 0.0]],        # axis swap: orientation reversed, det -1
    [[-1.0, 0.0], [0.0, 1.0]],       # mirror: folds, det -1
])
def test_jacobian_of_2d_affine_fields_is_their_determinant_everywhere(matrix):
    flow = affine_flow(matrix, (9, 11), shift=[3.0, -2.0])
    np.testing.assert_allclose(jacobian_determinant(flow), np.linalg.det(matrix), atol=1e-12)


def test_jacobian_of_3d_affine_fields_including_a_fold():
    stretch = [[1.5, 0.2, 0.0], [0.0, 1.0, 0.1], [0.3, 0.0, 0.8]]
    fold = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -0.5]]
    for matrix in (stretch, fold):
        flow = affine_flow(matrix, (5, 6, 7))
        np.testing.assert_allclose(jacobian_determinant(flow), np.linalg.det(matrix), atol=1e-12)
    assert folding_fraction(affine_flow(fold, (5, 6, 7))) == 1.0


def test_jacobian_is_batched_and_agrees_with_voxelmorph():
    rng = np.random.default_rng(0)
    flows = rng.normal(0, 0.5, (3, 10, 12, 2))
    batched = jacobian_determinant(flows)
    assert batched.shape == (3, 10, 12)
    for flow, det in zip(flows, batched):
        np.testing.assert_allclose(det, vxm.py.utils.jacobian_determinant(flow), atol=1e-10)
    flow3d = rng.normal(0, 0.5, (6, 7, 8, 3))
    np.testing.assert_allclose(jacobian_determinant(flow3d),
                               vxm.py.utils.jacobian_determinant(flow3d), atol=1e-10)
    assert jacobian_determinant(flow3d[None]).shape == (1, 6, 7, 8)


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 1), (8, 8, 4), (2, 3, 8, 8, 2), (1, 8, 2)])
def test_jacobian_refuses_fields_of_the_wrong_shape(shape):
    with pytest.raises(ValueError, match="flow"):
        jacobian_determinant(np.zeros(shape))


def test_jacobian_refuses_non_finite_fields():
    flow = np.zeros((4, 4, 2))
    flow[1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        jacobian_determinant(flow)


def test_folding_fraction_counts_the_folded_columns():
    # x -> m(x) with m = 0 1 2 3 4 3 2 1 along the columns: central differences give
    # dm/dx = 1 1 1 1 0 -1 -1 -1, so columns 4..7 (half of them) fold.
    mapped = np.array([0, 1, 2, 3, 4, 3, 2, 1], float)
    flow = np.zeros((6, 8, 2))
    flow[..., 1] = mapped - np.arange(8)
    assert folding_fraction(flow) == 0.5
    batch = np.stack([np.zeros_like(flow), flow, affine_flow([[-1, 0], [0, 1]], (6, 8))])
    np.testing.assert_allclose(folding_fraction(batch), [0.0, 0.5, 1.0])


def test_image_mse_and_ncc_of_known_images():
    a = np.array([[0.0, 0.5], [1.0, 0.5]])
    assert image_mse(a, a) == 0.0
    assert image_mse(a, np.zeros_like(a)) == pytest.approx((0.25 + 1.0 + 0.25) / 4)
    assert image_ncc(a, 3 * a + 1) == pytest.approx(1.0)
    assert image_ncc(a, 1 - a) == pytest.approx(-1.0)
    assert image_ncc(np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0, 0.0])) == pytest.approx(-1 / 3)
    assert np.isnan(image_ncc(a, np.ones_like(a))), "a constant image has no correlation"


def test_image_metrics_per_image():
    batch = np.stack([np.eye(3), np.ones((3, 3))])
    np.testing.assert_allclose(image_mse(batch, np.zeros_like(batch), per_image=True), [1 / 3, 1.0])
    ncc = image_ncc(batch, np.stack([np.eye(3), np.eye(3)]), per_image=True)
    assert ncc[0] == pytest.approx(1.0) and np.isnan(ncc[1])
    with pytest.raises(ValueError, match="same shape"):
        image_mse(batch, batch[:1])
    with pytest.raises(ValueError, match="per_image"):
        image_ncc(np.zeros(3), np.zeros(3), per_image=True)


@pytest.mark.parametrize("shape", [(24, 20, 2), (3, 24, 20, 2), (8, 9, 10, 3)])
def test_closed_form_jacobian_equals_the_matrix_determinant(shape):
    """The closed-form 2x2/3x3 determinants against numpy's det of the full Jacobian."""
    flow = np.random.default_rng(1).normal(scale=2.0, size=shape)
    ndims = shape[-1]
    axes = tuple(range(len(shape) - 1 - ndims, len(shape) - 1))
    matrix = np.stack(np.gradient(flow, axis=axes), axis=-1) + np.eye(ndims)
    np.testing.assert_allclose(jacobian_determinant(flow), np.linalg.det(matrix), atol=1e-10)


def test_3d_scaling_fields_have_the_product_of_their_scales_as_determinant():
    scales = (1.5, 0.8, 0.5)
    flow = affine_flow(np.diag(scales), (6, 7, 8), shift=[1.0, -2.0, 0.5])
    np.testing.assert_allclose(jacobian_determinant(flow), np.prod(scales), atol=1e-12)
    squash = affine_flow(np.diag([1.0, 1.0, 0.0]), (6, 7, 8))      # collapses the k axis: det 0, folds
    batch = np.stack([flow, squash, np.zeros_like(flow)])
    np.testing.assert_allclose(folding_fraction(batch), [0.0, 1.0, 0.0])


def test_3d_smooth_field_determinant_matches_its_analytic_value():
    # u_i = a sin(2π i / n) stretches along i: det = 1 + (2πa / n) cos(2π i / n); the same
    # function in u_k is a shear (du_k/di), which leaves the determinant unchanged
    n, a = 32, 2.0
    i = np.arange(n, dtype=float)[:, None, None] * np.ones((n, 4, 5))
    flow = np.zeros((n, 4, 5, 3))
    flow[..., 0] = a * np.sin(2 * np.pi * i / n)
    flow[..., 2] = a * np.sin(2 * np.pi * i / n)    # shear: does not change the volume
    expected = 1 + 2 * np.pi * a / n * np.cos(2 * np.pi * i / n)
    inner = slice(1, -1)                              # one-sided differences at the border
    np.testing.assert_allclose(jacobian_determinant(flow)[inner], expected[inner], atol=0.01)
    assert folding_fraction(flow) == 0.0
    flow[..., 0] *= 3                                 # 2πa/n > 1: the field folds where cos < -n/(6πa)
    folded = np.mean(1 + 3 * 2 * np.pi * a / n * np.cos(2 * np.pi * np.arange(n) / n) <= 0)
    assert folding_fraction(flow) == pytest.approx(folded, abs=2 / n)
