"""The λ explorer on volumes, driven without a browser: three planes, slice sliders, orientation,
the static picture of saved notebooks, and GIF/HTML export (2D and 3D)."""
import base64
import io

import numpy as np
import pytest
from PIL import Image

import hypermorph_nb as hnb
from hypermorph_nb import metrics
from hypermorph_nb.data import synthetic
from hypermorph_nb.viz.drawing import grid_lines, label_outlines
from hypermorph_nb.widgets import PLANES, LambdaExplorer, SweepPanel, plane_views

from tests.conftest import TINY_FEATURES, record_model_lams

VOLUME = (16, 32, 16)  # unequal sides: a swapped axis cannot go unnoticed
#: 2 mm voxels stored (x, y, z) with x running right to left, as some scanners write them
FLIPPED_AFFINE = np.array([[-2.0, 0, 0, 30], [0, 2.0, 0, -31], [0, 0, 2.0, -15], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def volumes():
    data = synthetic(4, VOLUME, seed=0)
    model = hnb.build_hypermorph(VOLUME, nb_features=TINY_FEATURES, seed=0)
    return model, data


@pytest.fixture
def explorer3d(volumes):
    model, data = volumes
    explorer = LambdaExplorer(model, data, pair=(0, 1), lam=0.5, affine=FLIPPED_AFFINE, display="image")
    yield explorer
    explorer.close()


def shown(explorer, panel="moved"):
    return {plane.view.name: np.array(plane.artists[panel].get_array()) for plane in explorer.planes}


def test_slice_sliders_redraw_one_plane_and_lambda_reruns_the_model(explorer3d, monkeypatch):
    explorer = explorer3d
    assert list(explorer.slice_sliders) == list(PLANES)
    sizes = {view.name: view.size for view in explorer.views}
    assert sizes == {"axial": 16, "coronal": 32, "sagittal": 16}  # axes (x, y, z) -> S is z, A is y
    assert all(slider.max == sizes[name] - 1 and slider.value == sizes[name] // 2
               for name, slider in explorer.slice_sliders.items())
    seen = record_model_lams(monkeypatch)
    updates, state = explorer.n_updates, explorer.state

    for name, slider in explorer.slice_sliders.items():
        before, before_jacobian = shown(explorer), shown(explorer, "jacobian")
        slider.value = slider.value - 3
        assert seen == [] and explorer.n_updates == updates and explorer.state is state
        after, after_jacobian = shown(explorer), shown(explorer, "jacobian")
        plane = next(plane for plane in explorer.planes if plane.view.name == name)
        np.testing.assert_array_equal(after[name], plane.view.image(state.moved, slider.value))
        np.testing.assert_array_equal(after_jacobian[name], plane.view.image(state.jacobian, slider.value))
        assert not np.array_equal(after[name], before[name])
        for other in set(PLANES) - {name}:  # the other planes are untouched
            np.testing.assert_array_equal(after[other], before[other])
            np.testing.assert_array_equal(after_jacobian[other], before_jacobian[other])

    before = shown(explorer)
    explorer.lam_slider.value = 0.95
    assert seen == [0.95] and explorer.n_updates == updates + 1
    after = shown(explorer)
    for plane in explorer.planes:  # every plane shows the new registration at its slice
        index = explorer.slices[plane.view.name]
        np.testing.assert_array_equal(after[plane.view.name], plane.view.image(explorer.state.moved, index))
        assert not np.array_equal(after[plane.view.name], before[plane.view.name])

    explorer.slice_sliders["axial"].set_state({"value": 2})  # from the browser: background thread
    assert explorer.wait(20)
    assert seen == [0.95] and explorer.n_updates == updates + 1 and explorer.slices["axial"] == 2


def test_a_slice_change_draws_exactly_what_a_full_redraw_draws(explorer3d):
    """A slice change redraws one plane's area over the cached background; nothing may move or vanish."""
    explorer = explorer3d
    for name in PLANES:
        explorer.slice_sliders[name].value = 3
        partial = np.asarray(explorer.figure.canvas.buffer_rgba()).copy()
        explorer.live.refresh(full=True)
        np.testing.assert_array_equal(partial, np.asarray(explorer.figure.canvas.buffer_rgba()))
    axial = explorer.planes[0].artists
    assert (axial["letter_left"].get_text(), axial["letter_right"].get_text()) == ("R", "L") or \
        (axial["letter_left"].get_text(), axial["letter_right"].get_text()) == ("L", "R")
    assert axial["letter_left"] in explorer.live.animated  # drawn over the images


def test_panels_show_the_volume_numbers(explorer3d):
    explorer = explorer3d
    state, data = explorer.state, explorer.data
    assert state.moved.shape == VOLUME and state.flow.shape == (*VOLUME, 3)
    np.testing.assert_allclose(state.jacobian, metrics.jacobian_determinant(state.flow))
    assert state.folding == pytest.approx(metrics.folding_fraction(state.flow))  # of the whole volume
    expected = metrics.dice_batch(state.warped_labels[None], data.labels[1:2], explorer.label_values)[0]
    np.testing.assert_allclose(state.dice_per_label, expected)
    for plane in explorer.planes:
        view, index = plane.view, explorer.slices[plane.view.name]
        np.testing.assert_array_equal(plane.artists["fixed"].get_array(),
                                      view.image(data.images[1, ..., 0], index))
        np.testing.assert_array_equal(plane.artists["outlines"].get_array(),
                                      label_outlines(view.image(state.warped_labels, index), lut=explorer._lut))
        x, y = plane.artists["grid"].get_data()
        expected_x, expected_y = grid_lines(view.vectors(state.flow, index), step=explorer.grid_step)
        np.testing.assert_array_equal(x, expected_x)
        np.testing.assert_array_equal(y, expected_y)
    texts = [text.get_text() for text in explorer.figure.texts]
    assert any("neurological convention" in text for text in texts)
    assert f"folding {100 * state.folding:.2f}% of the volume" in explorer._summary.get_text()
    assert f"mean Dice {state.dice:.3f} over the volume" in explorer._summary.get_text()
    assert f"{100 * state.folding:.2f}%" in explorer.readout.value


def test_views_follow_the_affine():
    """The same brain stored in two axis orders shows the same pictures."""
    rng = np.random.default_rng(0)
    ras = rng.random((6, 7, 8))  # stored (R, A, S)
    ras_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    # stored as (S, L, A): axis 0 = z, axis 1 = -x, axis 2 = y
    stored = np.transpose(ras[::-1], (2, 0, 1))
    stored_affine = np.array([[0, -2.0, 0, 10], [0, 0, 2.0, 0], [2.0, 0, 0, 0], [0, 0, 0, 1]])
    for convention in ("neurological", "radiological"):
        reference = plane_views(ras.shape, ras_affine, convention=convention)
        other = plane_views(stored.shape, stored_affine, convention=convention)
        for a, b in zip(reference, other):
            assert a.name == b.name and a.size == b.size and a.letters == b.letters
            for index in (0, a.size - 1):
                np.testing.assert_array_equal(a.image(ras, index), b.image(stored, index))
    axial = plane_views(ras.shape, ras_affine)[0]
    # neurological: subject's left (low x) on the left, anterior (high y) at the top
    image = axial.image(ras, 3)
    assert image[0, 0] == ras[0, -1, 3] and image[-1, -1] == ras[-1, 0, 3]
    assert axial.letters == ("L", "R", "A", "P")
    assert plane_views(ras.shape, ras_affine, convention="radiological")[0].letters[:2] == ("R", "L")
    with pytest.raises(ValueError, match="convention must be"):
        plane_views(ras.shape, convention="sideways")
    with pytest.raises(ValueError, match=r"last row of an affine must be \(0, 0, 0, 1\)"):
        plane_views(ras.shape, np.zeros((4, 4)))


def test_in_plane_vectors_follow_the_flips():
    flow = np.zeros((6, 7, 8, 3))
    flow[..., 0] = 1.0  # +1 voxel along array axis 0, which this affine runs right to left
    axial = plane_views((6, 7, 8), FLIPPED_AFFINE)[0]
    assert axial.flip_cols  # the screen runs left to right: the displacement points one column left
    np.testing.assert_array_equal(axial.vectors(flow, 0)[..., 1], -1.0)
    np.testing.assert_array_equal(axial.vectors(flow, 0)[..., 0], 0.0)


def decode_png(bundle):
    data = base64.b64decode(bundle["image/png"])
    assert data[:4] == b"\x89PNG"
    return np.asarray(Image.open(io.BytesIO(data)))


def test_saved_notebooks_get_a_picture_of_the_current_view(explorer3d):
    explorer = explorer3d
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/plain" in bundle
    first = decode_png(bundle)
    assert first.shape[1] > first.shape[0]  # three rows of seven panels
    np.testing.assert_array_equal(decode_png(explorer._repr_mimebundle_()), first)
    explorer.lam_slider.value = 0.1
    after_lam = decode_png(explorer._repr_mimebundle_())
    assert not np.array_equal(after_lam, first)
    explorer.slice_sliders["coronal"].value = 3
    assert not np.array_equal(decode_png(explorer._repr_mimebundle_()), after_lam)
    assert explorer.snapshot().data == base64.b64decode(explorer._repr_mimebundle_()["image/png"])


def test_sweep_panel_over_volumes_carries_its_picture(volumes):
    model, data = volumes
    panel = SweepPanel(model, data, [0.0, 0.9, 1.0], n_pairs=2, batch_size=2, progress=False)
    result = panel.result
    assert result.dice.shape[:2] == (3, 2) and result.folding.shape == (3, 2)
    assert panel.optimal_lam in (0.0, 0.9, 1.0)
    assert sorted(panel.optimal_lam_per_label) == data.label_values().tolist()
    bundle = panel._repr_mimebundle_()
    assert decode_png(bundle).size and "application/vnd.jupyter.widget-view+json" in bundle


@pytest.mark.parametrize("suffix", [".gif", ".html"])
def test_export_a_lambda_sweep_of_the_current_view(explorer3d, tmp_path, suffix):
    explorer = explorer3d
    explorer.slice_sliders["sagittal"].value = 4
    moved, state, updates = shown(explorer), explorer.state, explorer.n_updates
    path = explorer.save_animation(tmp_path / f"sweep{suffix}", lams=[0.0, 0.5, 1.0], fps=2, dpi=40)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"sweep{suffix}"]  # one self-contained file
    if suffix == ".gif":
        with Image.open(path) as gif:
            assert gif.n_frames == 3
            frames = []
            for k in range(3):
                gif.seek(k)
                frames.append(np.asarray(gif.convert("RGB")))
        assert not np.array_equal(frames[0], frames[2])
    else:
        text = path.read_text()
        assert text.count("data:image/png;base64") == 3 and "<script" in text
    # the widget shows what it showed before
    assert explorer.state is state and explorer.n_updates == updates
    for name, array in shown(explorer).items():
        np.testing.assert_array_equal(array, moved[name])
    with pytest.raises(ValueError, match="gif or an .html"):
        explorer.save_animation(tmp_path / "sweep.mp4")


def test_two_nifti_files(volumes, tmp_path):
    nibabel = pytest.importorskip("nibabel")
    model, data = volumes
    paths = {}
    for name, array in (("moving", data.images[0, ..., 0]), ("fixed", data.images[1, ..., 0]),
                        ("moving_labels", data.labels[0].astype(np.int16)),
                        ("fixed_labels", data.labels[1].astype(np.int16))):
        paths[name] = tmp_path / f"{name}.nii.gz"
        nibabel.save(nibabel.Nifti1Image(array, FLIPPED_AFFINE), paths[name])
    explorer = LambdaExplorer.from_arrays(model, paths["moving"], paths["fixed"],
                                          moving_labels=paths["moving_labels"],
                                          fixed_labels=paths["fixed_labels"], display="image")
    assert explorer.views == plane_views(VOLUME, FLIPPED_AFFINE)
    assert not np.isnan(explorer.state.dice)
    explorer.close()
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        LambdaExplorer.from_arrays(model, tmp_path / "missing.nii.gz", paths["fixed"])
    with pytest.raises(ValueError, match="slice 99 is out of range"):
        LambdaExplorer(model, data, slices={"axial": 99}, display="image")


def test_your_own_arrays_get_the_grid_checks_of_register(volumes):
    """LambdaExplorer.from_arrays refuses or resamples another grid exactly as hnb.register does."""
    model, data = volumes
    moving, fixed = data.images[0, ..., 0], data.images[1, ..., 0]
    shifted = FLIPPED_AFFINE.copy()
    shifted[:3, 3] += [4.0, 0.0, 0.0]   # the same voxels, placed 2 voxels apart
    grids = {"moving_affine": shifted, "fixed_affine": FLIPPED_AFFINE}
    with pytest.raises(ValueError, match="different voxel grids") as by_register:
        hnb.register(model, moving, fixed, lam=0.5, **grids)
    with pytest.raises(ValueError, match="different voxel grids") as by_explorer:
        LambdaExplorer.from_arrays(model, moving, fixed, display="image", **grids)
    assert str(by_explorer.value) == str(by_register.value)
    with pytest.raises(ValueError, match="last row of an affine"):
        LambdaExplorer.from_arrays(model, moving, fixed, moving_affine=np.zeros((4, 4)),
                                   fixed_affine=FLIPPED_AFFINE, display="image")
    with pytest.warns(UserWarning, match="resampled onto the grid"):
        explorer = LambdaExplorer.from_arrays(model, moving, fixed, moving_labels=data.labels[0],
                                              fixed_labels=data.labels[1], resample=True,
                                              display="image", **grids)
    moved_labels = explorer.data.labels[0]
    assert moved_labels.dtype == np.int32 and not np.array_equal(moved_labels, data.labels[0])
    np.testing.assert_array_equal(moved_labels[:-2], data.labels[0][2:])  # followed its image
    assert explorer.views == plane_views(VOLUME, FLIPPED_AFFINE)
    explorer.close()
