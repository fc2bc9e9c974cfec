"""λ-aware instance optimisation: ``register(..., refine=N)`` and :mod:`hypermorph_nb.registration.refine`.

The pair's loss is recomputed here without the toolkit: the moving image warped with
``scipy.ndimage.map_coordinates`` (linear, edge values outside, as the networks warp), MSE/σ²
and the mean squared forward differences of the field.
"""
import json

import nibabel
import numpy as np
import pytest
from scipy import ndimage

import hypermorph_nb as hnb
from hypermorph_nb.cli import main
from hypermorph_nb.metrics import folding_fraction
from hypermorph_nb.networks.description import ModelSpace, TrainingRecord
from hypermorph_nb.networks.losses import LossConfig
from hypermorph_nb.networks.models import describe
from hypermorph_nb.registration import Registrar
from hypermorph_nb.registration.refine import refine_field, refine_registration, warp_image

FEATURES = [[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]]


def tiny(shape, **options):
    return hnb.build_hypermorph(shape, nb_features=FEATURES, hyper_units=(4, 4), seed=0, **options)


def numpy_warp(image, field):
    grid = np.meshgrid(*[np.arange(n) for n in image.shape], indexing="ij")
    coords = [g + field[..., i] for i, g in enumerate(grid)]
    return ndimage.map_coordinates(image, coords, order=1, mode="nearest")


def numpy_loss(moving, fixed, field, lam, sigma=0.2):
    """(1 − λ)·MSE/σ² + λ·mean squared forward differences, averaged over the axes."""
    image = np.mean((numpy_warp(moving, field) - fixed) ** 2) / sigma ** 2
    smooth = np.mean([np.mean(np.diff(field, axis=axis) ** 2) for axis in range(field.ndim - 1)])
    return (1 - lam) * image + lam * smooth


@pytest.fixture(scope="module")
def pair2d():
    data = hnb.data.synthetic(4, (32, 32), seed=0)
    return data.images[0, ..., 0], data.images[1, ..., 0]


@pytest.fixture(scope="module")
def model2d():
    return tiny((32, 32))


@pytest.mark.parametrize("lam", [0.2, 0.7])
def test_refinement_lowers_the_pair_loss_and_keeps_folding_bounded_2d(model2d, pair2d, lam):
    moving, fixed = pair2d
    _, network = hnb.register(model2d, moving, fixed, lam=lam)
    moved, refined = hnb.register(model2d, moving, fixed, lam=lam, refine=60)
    before, after = numpy_loss(moving, fixed, network, lam), numpy_loss(moving, fixed, refined, lam)
    assert after < 0.6 * before, (before, after)
    assert folding_fraction(refined) <= 0.01
    assert np.abs(moved - numpy_warp(moving, refined)).max() < 1e-4   # moved is the refined field's warp


def test_refinement_lowers_the_pair_loss_3d():
    shape = (16, 16, 16)
    volumes = hnb.data.synthetic(2, shape, seed=1)
    moving, fixed = volumes.images[0, ..., 0], volumes.images[1, ..., 0]
    model = tiny(shape)
    _, network = hnb.register(model, moving, fixed, lam=0.3)
    moved, refined = hnb.register(model, moving, fixed, lam=0.3, refine=40)
    assert refined.shape == (*shape, 3) and moved.shape == shape
    before, after = numpy_loss(moving, fixed, network, 0.3), numpy_loss(moving, fixed, refined, 0.3)
    assert after < 0.7 * before, (before, after)
    assert folding_fraction(refined) <= 0.01


def test_refine_zero_is_the_network_output_bit_for_bit(model2d, pair2d):
    moving, fixed = pair2d
    plain = hnb.register(model2d, moving, fixed, lam=0.4)
    zero = hnb.register(model2d, moving, fixed, lam=0.4, refine=0)
    moved, flow = Registrar.for_model(model2d).predict(moving[None, ..., None], fixed[None, ..., None], lam=0.4)
    for a, b, c in zip(plain, zero, (moved[0, ..., 0], flow[0])):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_zero_iterations_return_the_start_and_warp_as_the_network_does(model2d, pair2d):
    moving, fixed = pair2d
    network_moved, network = hnb.register(model2d, moving, fixed, lam=0.4)
    assert np.array_equal(refine_field(moving, fixed, network, lam=0.4, iterations=0), network)
    assert np.abs(warp_image(moving, network) - network_moved).max() < 1e-5


def test_refining_from_zero_registers_without_a_network(pair2d):
    moving, fixed = pair2d
    start = np.zeros((32, 32, 2), np.float32)
    field = refine_field(moving, fixed, start, lam=0.3, iterations=80)
    assert numpy_loss(moving, fixed, field, 0.3) < 0.6 * numpy_loss(moving, fixed, start, 0.3)


def test_the_coarse_level_helps_with_a_large_displacement():
    """A blob six voxels away: half the iterations at half resolution beat all of them at full."""
    yy, xx = np.mgrid[:48, :48]
    moving, fixed = (np.exp(-((yy - 24) ** 2 + (xx - cx) ** 2) / 60).astype("float32") for cx in (30, 24))
    start = np.zeros((48, 48, 2), np.float32)
    both = refine_field(moving, fixed, start, lam=0.3, iterations=20, levels=2)
    full = refine_field(moving, fixed, start, lam=0.3, iterations=20, levels=1)
    assert numpy_loss(moving, fixed, both, 0.3) < 0.8 * numpy_loss(moving, fixed, full, 0.3)


def test_the_model_loss_settings_are_the_ones_optimised(pair2d):
    """A model trained with NCC is refined for NCC: the recorded LossConfig reaches the optimiser."""
    moving, fixed = pair2d
    model = tiny((32, 32))
    describe(model, training=TrainingRecord(image_loss="ncc", ncc_window=5))
    _, refined = refine_registration(model, moving, fixed, lam=0.5, iterations=10)
    _, start = hnb.register(model, moving, fixed, lam=0.5)
    expected = refine_field(moving, fixed, start, lam=0.5, iterations=10,
                            loss_config=LossConfig(image_loss="ncc", ncc_window=5))
    mse_default = refine_field(moving, fixed, start, lam=0.5, iterations=10)
    assert np.abs(refined - expected).max() < 1e-4
    assert np.abs(refined - mse_default).max() > 1e-3


@pytest.mark.slow   # refines a diffeomorphic model; the other refinement tests stay fast
def test_a_diffeomorphic_model_is_refined_through_its_velocity(pair2d):
    moving, fixed = pair2d
    model = tiny((32, 32), diffeomorphic=True, int_steps=5)
    velocity = model([moving[None, ..., None], fixed[None, ..., None], np.array([[0.3]], np.float32)])[1]
    _, network = hnb.register(model, moving, fixed, lam=0.3)
    # the start integrates as the network integrates ...
    start = refine_field(moving, fixed, velocity[0], lam=0.3, iterations=0, int_steps=5)
    assert np.abs(start - network).max() < 1e-4
    # ... and the refined warp matches the images better, still without folding
    _, refined = hnb.register(model, moving, fixed, lam=0.3, refine=40)
    image_error = [np.mean((numpy_warp(moving, field) - fixed) ** 2) for field in (network, refined)]
    assert image_error[1] < 0.7 * image_error[0], image_error
    assert folding_fraction(refined) == 0.0


def test_a_baseline_is_refined_at_its_training_lambda(pair2d):
    moving, fixed = pair2d
    baseline = hnb.build_vxm((32, 32), nb_features=FEATURES, seed=0)
    describe(baseline, training=TrainingRecord(lam_sampling="fixed", lam=0.8))
    _, refined = hnb.register(baseline, moving, fixed, refine=10)
    _, start = hnb.register(baseline, moving, fixed)
    expected = refine_field(moving, fixed, start, lam=0.8, iterations=10)
    assert np.abs(refined - expected).max() < 1e-4
    with pytest.raises(ValueError, match="takes no lam"):
        hnb.register(baseline, moving, fixed, lam=0.3, refine=5)


@pytest.mark.parametrize("options, message", [
    ({"lam": 1.5, "refine": 5}, r"lam must lie in \[0, 1\]"),
    ({"lam": -0.1, "refine": 5}, r"lam must lie in \[0, 1\]"),
    ({"lam": None, "refine": 5}, "pass lam"),
    ({"lam": 0.5, "refine": -1}, "whole number of iterations >= 0"),
    ({"lam": 0.5, "refine": 2.5}, "whole number of iterations >= 0"),
    ({"lam": 0.5, "refine": True}, "whole number of iterations >= 0"),
])
def test_bad_refine_inputs_are_refused(model2d, pair2d, options, message):
    moving, fixed = pair2d
    with pytest.raises(ValueError, match=message):
        hnb.register(model2d, moving, fixed, **options)


def test_refining_on_a_grid_other_than_the_model_space_is_refused(pair2d):
    moving, fixed = pair2d
    model = tiny((32, 32))
    describe(model, space=ModelSpace(shape=(32, 32), affine=np.diag([2.0, 2.0, 1.0, 1.0])))
    one_mm = np.eye(4)
    with pytest.raises(ValueError, match="model's space has voxels of"):
        hnb.register(model, moving, fixed, lam=0.5, refine=5, moving_affine=one_mm, fixed_affine=one_mm)
    flipped = np.diag([-2.0, 2.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="orientation"):
        hnb.register(model, moving, fixed, lam=0.5, refine=5, moving_affine=flipped, fixed_affine=flipped)
    moved_grid = np.diag([2.0, 2.0, 1.0, 1.0]); moved_grid[:3, 3] = [10.0, -4.0, 3.0]   # noqa: E702
    hnb.register(model, moving, fixed, lam=0.5, refine=2, moving_affine=moved_grid, fixed_affine=moved_grid)
    hnb.register(model, moving, fixed, lam=0.5, moving_affine=one_mm, fixed_affine=one_mm)   # no refine: no check


def test_export_and_the_command_refine(tmp_path, pair2d):
    moving, fixed = pair2d
    model = tiny((32, 32))
    _, flow = hnb.register(model, moving, fixed, lam=0.4, refine=12)
    paths = hnb.export_registration(model, moving, fixed, tmp_path / "py", lam=0.4, refine=12)
    assert np.abs(nibabel.load(paths.transform).get_fdata().reshape(flow.shape) - flow).max() < 1e-4
    assert json.loads(open(paths.sidecar).read())["refine_iterations"] == 12
    hnb.save_model(model, str(tmp_path / "model"))
    for name, image in (("a", moving), ("b", fixed)):
        nibabel.save(nibabel.Nifti1Image(image, np.eye(4)), str(tmp_path / f"{name}.nii.gz"))
    argv = ["register", "--model", str(tmp_path / "model"), "--moving", str(tmp_path / "a.nii.gz"),
            "--fixed", str(tmp_path / "b.nii.gz"), "--lam", "0.4", "--out", str(tmp_path / "cli")]
    assert main(argv + ["--refine", "12"]) == 0
    written = nibabel.load(tmp_path / "cli" / "flow.nii.gz").get_fdata().reshape(flow.shape)
    assert np.abs(written - flow).max() < 1e-4
    assert main(argv[:-1] + [str(tmp_path / "bad"), "--refine", "-2"]) == 2
    assert not (tmp_path / "bad").exists()


def test_the_explorer_refines_the_shown_pair(model2d):
    from hypermorph_nb.widgets import LambdaExplorer

    data = hnb.data.synthetic(3, (32, 32), seed=0)
    explorer = LambdaExplorer(model2d, data, pair=(0, 1), lam=0.3, display="image")
    network = explorer.state.flow
    explorer.refine_box.value = 15
    explorer.refine_button.click()
    moving, fixed = data.images[0, ..., 0], data.images[1, ..., 0]
    _, expected = hnb.register(model2d, moving, fixed, lam=0.3, refine=15)
    assert explorer.refined == 15 and np.abs(explorer.state.flow - expected).max() < 1e-4
    assert explorer.state.warped_labels.shape == (32, 32) and explorer.state.dice is not None
    assert explorer.state.mse < np.mean((numpy_warp(moving, network) - fixed) ** 2)
    explorer.lam_slider.value = 0.6                       # another λ: the network's registration again
    _, at_new_lam = hnb.register(model2d, moving, fixed, lam=0.6)
    assert explorer.refined == 0 and np.array_equal(explorer.state.flow, at_new_lam)
    with pytest.raises(ValueError, match="whole number"):
        explorer.refine(-3)
    explorer.close()
