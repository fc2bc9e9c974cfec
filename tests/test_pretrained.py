"""The shipped pretrained model: loaded by name, checked by checksum, better than affine."""
import json
import pathlib
import shutil

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb import pretrained
from hypermorph_nb.cli import main
from hypermorph_nb.metrics import folding_fraction, mean_dice
from hypermorph_nb.pretrained import registry

NAME = "pretrained:ixi-t1-2mm"
ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
needs_ixi3d = pytest.mark.skipif(not (SHARED / "ixi3d").is_dir(), reason="needs ../shared/data/ixi3d")
needs_ixi_raw = pytest.mark.skipif(not (SHARED / "ixi_raw").is_dir(), reason="needs ../shared/data/ixi_raw")


@pytest.fixture(scope="module")
def model():
    return hnb.load_model(NAME)


def test_the_model_is_a_lambda_conditioned_3d_model_of_the_ixi3d_space(model):
    spec = hnb.networks.spec_of(model)
    assert spec.is_hypermorph and spec.conditioning == "film" and spec.inshape == (80, 96, 80)
    assert spec.space is not None and spec.space.reference is not None and spec.space.reference_mask is not None
    data = hnb.data.load_source("ixi3d", subset=1, verbose=False)
    np.testing.assert_allclose(spec.space.affine, data.affine, atol=1e-6)
    assert spec.training is not None and spec.training.label_weight > 0 and spec.training.steps > 0


def test_every_shipped_file_is_listed_with_its_checksum_and_packaged():
    for name in registry.MODELS:
        model = registry.MODELS[name]
        on_disk = {p.name for p in model.folder.iterdir()}
        assert on_disk == set(model.files), f"{name}: files on disk and in the registry differ"
        assert {"model.json", "weights.h5", "README.md", "LICENSE-DATA.md"} <= on_disk
    pyproject = (ROOT / "pyproject.toml").read_text()
    for name in registry.MODELS:   # the weights must be installed with the package (package-data)
        assert f'"pretrained/{name}/*"' in pyproject.split("[tool.setuptools.package-data]")[1], name


def test_the_card_says_how_it_was_trained_and_the_data_terms_travel():
    card = pretrained.card(NAME)
    assert "scripts/train_pretrained.py" in card and "steps" in card
    terms = (registry.MODELS["ixi-t1-2mm"].folder / "LICENSE-DATA.md").read_text()
    assert "CC BY-SA 3.0" in terms and "SBIA" in terms


@pytest.mark.parametrize("name", ["pretrained:ixi-t1-1mm", "pretrained:"])
def test_an_unknown_name_lists_the_known_ones(name):
    with pytest.raises(ValueError, match=r"no pretrained model is called .*pretrained:ixi-t1-2mm"):
        hnb.load_model(name)


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The registry pointed at a copy of the shipped folders (to damage one safely)."""
    copy = tmp_path / "pretrained"
    for name in registry.MODELS:
        shutil.copytree(registry.MODELS[name].folder, copy / name)
    monkeypatch.setattr(registry, "ROOT", copy)
    return copy / "ixi-t1-2mm"


def test_a_damaged_file_fails_its_checksum(shipped_copy):
    weights = shipped_copy / "weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="weights.h5 of pretrained model pretrained:ixi-t1-2mm fails its checksum"):
        hnb.load_model(NAME)


def test_a_missing_file_is_named(shipped_copy):
    (shipped_copy / "model.json").unlink()
    with pytest.raises(ValueError, match="model.json of pretrained model .* is missing.*reinstall"):
        hnb.load_model(NAME)


def test_the_cli_takes_a_pretrained_name_and_lists_names_for_a_wrong_one(tmp_path, capsys):
    code = main(["register", "--model", "pretrained:nope", "--moving", "a.nii.gz",
                         "--fixed", "b.nii.gz", "--out", str(tmp_path), "--lam", "0.5"])
    assert code != 0 and "pretrained:ixi-t1-2mm" in capsys.readouterr().err


def held_out_ixi3d(count, folder):
    """The first ``count`` ixi3d volumes that scripts/train_pretrained.py held out, loaded alone."""
    with np.load(SHARED / "ixi3d" / "ixi3d_150.npz") as archive:
        subjects = archive["subjects"]
        # the split depends on the subject names only: split stand-ins, then read just the scored volumes
        stand_ins = hnb.data.Dataset(images=np.zeros((len(subjects), 2, 2, 1), np.float32), names=list(subjects))
        _, held_out = hnb.data.random_split(stand_ins, (0.85, 1 - 0.85), seed=0)  # as the script split it
        index = [list(subjects).index(name) for name in held_out.names[:count]]
        np.savez(folder / "held_out.npz", images=archive["images"][index], segs=archive["segs"][index],
                 subjects=subjects[index], affine=archive["affine"])
    return hnb.data.load_npz(folder / "held_out.npz")


@needs_ixi3d
def test_it_registers_held_out_ixi3d_pairs_better_than_affine(model, tmp_path):
    held_out = held_out_ixi3d(4, tmp_path)
    registrar = hnb.registration.Registrar.for_model(model)
    gains = []
    for moving, fixed in ((0, 1), (2, 3)):
        _, flow = hnb.register(model, held_out.images[moving, ..., 0], held_out.images[fixed, ..., 0], lam=0.5)
        warped = registrar.warp(held_out.labels[moving][None], flow[None], interp="nearest")[0]
        gains.append(mean_dice(warped, held_out.labels[fixed]) - mean_dice(held_out.labels[moving],
                                                                           held_out.labels[fixed]))
        assert folding_fraction(flow) < 0.005
    assert min(gains) > 0.05, gains


@pytest.mark.slow
@needs_ixi_raw
def test_it_registers_a_raw_pair_in_its_own_space(model, tmp_path):
    scans = sorted((SHARED / "ixi_raw").glob("*.nii.gz"))
    moving, fixed = scans[0], scans[1]
    paths = hnb.register_scans(model, moving, fixed, tmp_path, lam=0.5,
                               moving_labels=SHARED / "ixi_raw" / "labels" / moving.name,
                               fixed_labels=SHARED / "ixi_raw" / "labels" / fixed.name)
    dice = json.loads(pathlib.Path(paths.sidecar).read_text())["dice"]
    assert dice["model_space"] > dice["affine_only_model_space"] + 0.05, dice


@needs_ixi3d
def test_the_cli_registers_two_volumes_with_the_pretrained_model(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    data = hnb.data.load_source("ixi3d", subset=2, verbose=False)
    for index, name in enumerate(("a", "b")):
        nibabel.save(nibabel.Nifti1Image(data.images[index, ..., 0], data.affine), tmp_path / f"{name}.nii.gz")
    code = main(["register", "--model", NAME, "--moving", str(tmp_path / "a.nii.gz"), "--fixed",
                 str(tmp_path / "b.nii.gz"), "--out", str(tmp_path / "out"), "--lam", "0.5", "--refine", "2"])
    assert code == 0
    sidecar = json.loads((tmp_path / "out" / "registration.json").read_text())
    assert sidecar["refine_iterations"] == 2
    assert nibabel.load(tmp_path / "out" / "moved.nii.gz").shape == (80, 96, 80)


def test_every_listed_name_is_one_load_model_takes():
    listed = pretrained.names()
    assert listed and all(name.startswith(pretrained.PREFIX) for name in listed)
    for name in listed:
        assert hnb.networks.spec_of(hnb.load_model(name)).space is not None
        assert pretrained.card(name)
