"""A cohort in one call: register_scans and prepare_scans over many scans, here, on processes, on Dask."""
import csv
import json
import time
from concurrent.futures import ThreadPoolExecutor

import nibabel
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.cli import main
from hypermorph_nb.data.scan_lists import ScanErrors
from hypermorph_nb.networks.description import ModelSpace
from hypermorph_nb.networks.models import describe
from hypermorph_nb.registration.cohort import TABLE_COLUMNS, CohortRegistration
from raw_scans import write_cohort

TINY = dict(nb_features=[[4, 4, 4, 4], [4, 4, 4, 4, 4, 4, 4]], hyper_units=(4, 4))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Four posed raw scans with labels, and a tiny untrained model given the space of the first at 4 mm."""
    folder = tmp_path_factory.mktemp("raw")
    write_cohort(folder, np.random.default_rng(5), count=4)
    prepared = hnb.prepare_scans([folder / "scan0.nii.gz"], tmp_path_factory.mktemp("prepared"), reference=0,
                                 spacing=4.0)
    model = hnb.build_hypermorph(prepared.dataset.shape, seed=0, **TINY)
    describe(model, space=ModelSpace.from_dataset(prepared.dataset))
    return folder, model


def _scans(folder, names):
    return [folder / f"{name}.nii.gz" for name in names], [folder / "labels" / f"{name}.nii.gz" for name in names]


def _table(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _noise(folder, path):
    affine = nibabel.load(folder / "scan1.nii.gz").affine
    noise = np.random.default_rng(0).random((96, 96, 96)).astype(np.float32) * 3000
    nibabel.save(nibabel.Nifti1Image(noise, affine), path)
    return path


def test_every_bad_file_of_a_cohort_is_named_at_once_before_any_work(setup, tmp_path):
    folder, model = setup
    flat = tmp_path / "flat.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.ones((8, 8), np.float32), np.eye(4)), flat)
    moving = [folder / "scan1.nii.gz", tmp_path / "missing.nii.gz", flat]
    start = time.perf_counter()
    with pytest.raises(ScanErrors, match=r"2 of 4 scans cannot be used") as caught:
        hnb.register_scans(model, moving, folder / "scan0.nii.gz", tmp_path / "out", lam=0.5)
    assert time.perf_counter() - start < 5
    assert len(caught.value.problems) == 2
    assert "missing.nii.gz: no such scan" in caught.value.problems[0]
    assert "flat.nii.gz: is a 2D image" in caught.value.problems[1]
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"moving_labels: 1 files for 3 scans"):
        hnb.register_scans(model, moving, folder / "scan0.nii.gz", tmp_path / "out", lam=0.5,
                           moving_labels=[folder / "labels" / "scan1.nii.gz"])
    with pytest.raises(ValueError, match=r"λ|lam"):
        hnb.register_scans(model, _scans(folder, ["scan1", "scan2"])[0], folder / "scan0.nii.gz", tmp_path / "out",
                           lam=1.5)
    # prepare_scans too names every bad file of a folder at once
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("scan1", "scan2"):
        (raw / f"{name}.nii.gz").write_bytes((folder / f"{name}.nii.gz").read_bytes())
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), raw / "empty.nii.gz")
    (raw / "broken.nii.gz").write_bytes(b"not a scan")
    with pytest.raises(ScanErrors, match=r"2 of 4 scans") as caught:
        hnb.prepare_scans(raw, tmp_path / "prepared", reference=0)
    assert [problem.split(":")[0].rsplit("/", 1)[-1] for problem in caught.value.problems] == [
        "broken.nii.gz", "empty.nii.gz"]
    assert not (tmp_path / "prepared").exists()


def test_a_cohort_writes_a_folder_per_pair_and_a_table_that_agrees_with_them(setup, tmp_path):
    folder, model = setup
    scans, labels = _scans(folder, ["scan1", "scan2"])
    noise = _noise(folder, tmp_path / "noise.nii.gz")
    with pytest.warns(UserWarning, match=r"1 of 3 pairs failed \(noise\).*results\.csv"):
        result = hnb.register_scans(model, [scans[0], noise, scans[1]], folder / "scan0.nii.gz", tmp_path / "out",
                                    lam=0.5, moving_labels=[labels[0], None, labels[1]],
                                    fixed_labels=folder / "labels" / "scan0.nii.gz")
    assert isinstance(result, CohortRegistration)
    assert result.failed == ["noise"] and set(result.files) == {"scan1", "scan2"}
    rows = _table(result.table)
    assert result.table == tmp_path / "out" / "results.csv"
    assert tuple(rows[0]) == TABLE_COLUMNS
    assert [row["pair"] for row in rows] == ["scan1", "noise", "scan2"]
    failed = rows[1]
    assert failed["status"] == "failed" and "alignment to the model's template failed" in failed["error"]
    assert not (tmp_path / "out" / "noise").exists()
    for row in (rows[0], rows[2]):
        files = result.files[row["pair"]]
        assert files.out_dir == tmp_path / "out" / row["pair"] and files.moved.is_file() and files.moved_labels
        sidecar = json.loads(files.sidecar.read_text())
        assert row["status"] == "ok" and row["error"] == ""
        assert row["moving"] == sidecar["moving"] and row["fixed"] == sidecar["fixed"]
        assert float(row["lam"]) == sidecar["lam"] == 0.5
        assert float(row["dice"]) == pytest.approx(sidecar["dice"]["native"], abs=1e-5)
        assert 0.2 < float(row["dice"]) <= 1
        assert float(row["folding_percent"]) == pytest.approx(float(sidecar["folding_percent"]), abs=1e-5)
        assert set(sidecar["left_right"]) == {"moving", "fixed"} and row["left_right_flag"] == ""
        assert not any(check["left_right_flipped"] for check in sidecar["left_right"].values())
        assert 0 < float(row["seconds"]) < 120
    # a pair that fails in a later run into the same folder leaves none of its earlier files behind
    earlier = result.files["scan2"]
    _noise(folder, tmp_path / "scan2.nii.gz")
    with pytest.warns(UserWarning, match=r"1 of 1 pairs failed \(scan2\)"):
        again = hnb.register_scans(model, [tmp_path / "scan2.nii.gz"], folder / "scan0.nii.gz", tmp_path / "out",
                                   lam=0.5)
    assert again.failed == ["scan2"] and not any(path.exists() for path in earlier.written().values())
    assert result.files["scan1"].sidecar.is_file()
    # the single-pair call writes the same files as the cohort's pair
    single = hnb.register_scans(model, scans[0], folder / "scan0.nii.gz", tmp_path / "single", lam=0.5,
                                moving_labels=labels[0], fixed_labels=folder / "labels" / "scan0.nii.gz")
    for name in ("moved", "moved_labels", "transform"):
        assert np.array_equal(np.asarray(nibabel.load(getattr(single, name)).dataobj),
                              np.asarray(nibabel.load(getattr(result.files["scan1"], name)).dataobj))


def test_a_flipped_scan_and_a_bad_one_in_one_cohort_are_both_reported_and_tabled(setup, tmp_path):
    folder, model = setup
    image = nibabel.load(folder / "scan1.nii.gz")
    axis = int(np.argmax(np.abs(image.affine[0, :3])))               # the voxel axis that runs left-right
    flipped = tmp_path / "flipped.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.flip(np.asarray(image.dataobj), axis).copy(), image.affine), flipped)
    noise = _noise(folder, tmp_path / "noise.nii.gz")                # readable, but no head in it
    with pytest.warns(UserWarning) as caught:
        result = hnb.register_scans(model, [flipped, noise], folder / "scan0.nii.gz", tmp_path / "out", lam=0.5)
    said = [str(warning.message) for warning in caught if "flipped left-right" in str(warning.message)]
    assert len(said) == 2                                            # the pair's, then the cohort's
    assert said[0].startswith(f"{flipped}: its mirror image fits the template better")
    assert said[1].startswith("1 of 2 pairs have a scan whose data are probably flipped left-right "
                              "(flipped: moving; column left_right_flag")
    assert any(str(warning.message).startswith("1 of 2 pairs failed (noise)") for warning in caught)
    rows = _table(result.table)
    assert [(row["pair"], row["status"], row["left_right_flag"]) for row in rows] == [
        ("flipped", "ok", "moving"), ("noise", "failed", "")]        # the unflipped: the table test above
    assert "alignment to the model's template failed" in rows[1]["error"]
    checks = json.loads(result.files["flipped"].sidecar.read_text())["left_right"]
    assert checks["moving"]["left_right_flipped"] and checks["moving"]["left_right_score"] < 0
    assert not checks["fixed"]["left_right_flipped"] and checks["fixed"]["left_right_score"] > 0


@pytest.mark.slow   # a second cohort; the cohort table test stays fast
def test_an_atlas_to_each_subject_names_the_pairs_after_the_subjects(setup, tmp_path):
    folder, model = setup
    result = hnb.register_scans(model, folder / "scan0.nii.gz", folder, tmp_path / "out", lam=0.5,
                                moving_labels=folder / "labels" / "scan0.nii.gz", fixed_labels=folder / "labels")
    assert [pair.pair for pair in result.pairs] == ["scan0", "scan1", "scan2", "scan3"]
    assert {pair.moving for pair in result.pairs} == {str(folder / "scan0.nii.gz")}
    assert all(pair.status == "ok" and pair.dice is not None for pair in result.pairs)
    fixed = nibabel.load(folder / "scan2.nii.gz")
    assert nibabel.load(result.files["scan2"].moved).shape == fixed.shape


def _outputs(out):
    return {path.relative_to(out): path for path in sorted(out.rglob("*.nii.gz"))}


@pytest.mark.slow   # each worker process starts TensorFlow and loads the model: about a minute on two cores
def test_local_processes_and_a_dask_cluster_write_the_same_files(setup, tmp_path):
    distributed = pytest.importorskip("distributed")
    folder, model = setup
    scans, labels = _scans(folder, ["scan1", "scan2", "scan3"])
    keywords = dict(lam=0.5, moving_labels=labels, fixed_labels=folder / "labels" / "scan0.nii.gz")
    fixed = folder / "scan0.nii.gz"
    runs = {"here": hnb.register_scans(model, scans, fixed, tmp_path / "here", **keywords),
            "processes": hnb.register_scans(model, scans, fixed, tmp_path / "processes", workers=2, **keywords)}
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        runs["dask"] = hnb.register_scans(model, scans, fixed, tmp_path / "dask", executor=client.get_executor(),
                                          **keywords)
    reference = _outputs(tmp_path / "here")
    assert len(reference) == 3 * 4   # moved, moved_labels, transform, jacobian for each of 3 pairs
    for name in ("processes", "dask"):
        assert not runs[name].failed
        written = _outputs(tmp_path / name)
        assert set(written) == set(reference)
        for relative, path in written.items():
            ours, theirs = (np.asarray(nibabel.load(p).dataobj) for p in (path, reference[relative]))
            # the alignment is the same to the bit (ITK on one thread); the network's TensorFlow kernels
            # may sum in another order with another thread count
            assert ours.dtype == theirs.dtype and np.allclose(ours, theirs, rtol=1e-6, atol=1e-6), (name, relative)
            if "labels" in relative.name:
                assert np.array_equal(ours, theirs), (name, relative)
        assert [row["dice"] for row in _table(runs[name].table)] == [row["dice"] for row in _table(runs["here"].table)]


def test_prepare_scans_gives_the_same_result_on_processes_and_on_dask(setup, tmp_path):
    distributed = pytest.importorskip("distributed")
    folder, _ = setup
    scans = [folder / f"scan{index}.nii.gz" for index in range(3)]
    here = hnb.prepare_scans(scans, tmp_path / "here", reference=0, spacing=4.0)
    processes = hnb.prepare_scans(scans, tmp_path / "processes", reference=0, spacing=4.0, workers=2)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dask = hnb.prepare_scans(scans, tmp_path / "dask", reference=0, spacing=4.0, executor=client.get_executor())
    for other in (processes, dask):   # to the bit, with ITK's default thread count here and one per worker
        assert np.array_equal(other.transforms, here.transforms)
        assert np.array_equal(other.dataset.images, here.dataset.images)
        assert np.array_equal(other.dataset.labels, here.dataset.labels)
    with pytest.raises(ValueError, match="not both"):
        hnb.prepare_scans(scans, tmp_path / "x", reference=0, workers=2, executor=ThreadPoolExecutor(1))


@pytest.mark.slow   # the command over a cohort; the function's cohort test stays fast
def test_register_command_with_several_moving_scans(setup, tmp_path, capsys):
    folder, model = setup
    hnb.save_model(model, tmp_path / "model")
    scans, labels = _scans(folder, ["scan1", "scan2"])
    argv = ["register", "--raw", "--model", str(tmp_path / "model"), "--moving", *map(str, scans),
            "--fixed", str(folder / "scan0.nii.gz"), "--lam", "0.5", "--out", str(tmp_path / "out"),
            "--moving-labels", *map(str, labels)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 of 2 pairs registered" in printed and str(tmp_path / "out" / "results.csv") in printed
    assert [row["status"] for row in _table(tmp_path / "out" / "results.csv")] == ["ok", "ok"]
    assert (tmp_path / "out" / "scan2" / "moved_labels.nii.gz").is_file()
    assert main(["register", "--model", str(tmp_path / "model"), "--moving", *map(str, scans), "--fixed", str(folder / "scan0.nii.gz"), "--lam", "0.5",
                            "--out", str(tmp_path / "plain")]) == 2
    assert "add --raw" in capsys.readouterr().err
