"""The left–right check: a scan whose data were flipped left–right with its header kept is flagged."""
import json
import pathlib
import shutil
import warnings

import nibabel
import numpy as np
import pytest

from hypermorph_nb import prepare_scans
from hypermorph_nb.data.orientation import FLIP_THRESHOLD, check_orientation, mirror_matrix
from hypermorph_nb.data.qc import qc_figure
from hypermorph_nb.data.scans import Reference
from hypermorph_nb.networks.description import ModelSpace
from raw_scans import write_cohort

IXI_RAW = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "ixi_raw"
PRETRAINED = pathlib.Path(__file__).resolve().parents[1] / "hypermorph_nb" / "pretrained" / "ixi-t1-2mm"
#: How far from the threshold a correct and a flipped synthetic head must score (nats).
MARGIN = 0.02


def flip_left_right(source: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    """A copy of a scan whose data are flipped along the voxel axis that runs left–right, header kept."""
    image = nibabel.load(source)
    axis = int(np.argmax(np.abs(image.affine[0, :3])))
    target.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(np.flip(np.asarray(image.dataobj), axis).copy(), image.affine, image.header),
                 target)
    return target


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """Synthetic heads (asymmetric brains): a canonical one, two posed ones and a flipped copy of the first posed one."""
    folder = tmp_path_factory.mktemp("raw")
    write_cohort(folder, np.random.default_rng(3), count=3)
    for name in ("scan1.nii.gz", "labels/scan1.nii.gz"):
        flip_left_right(folder / name, folder / name.replace("scan1", "scan1_flipped"))
    return folder


def test_mirror_matrix_reflects_about_the_reference_brains_mid_plane():
    image = np.zeros((20, 6, 6), np.float32)
    image[3:11] = 1                                          # brain centre at voxel 6.5, x = 2 * 6.5 + 10 mm
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[0, 3] = 10.0
    mirror = mirror_matrix(Reference(image=image, affine=affine, mask=image > 0))
    assert np.allclose(mirror @ mirror, np.eye(4))
    centre = np.array([23.0, 4.0, -1.0, 1.0])
    assert np.allclose(mirror @ centre, centre)
    assert np.allclose(mirror @ [30.0, 4.0, -1.0, 1.0], [16.0, 4.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def prepared(heads, tmp_path_factory):
    """The canonical head (the reference), a posed one and its flipped copy, prepared; what they warned."""
    scans = [heads / f"{name}.nii.gz" for name in ("scan0", "scan1", "scan1_flipped")]
    out = tmp_path_factory.mktemp("prepared")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = prepare_scans(scans, out, reference=0, spacing=4.0)
    return result, [str(warning.message) for warning in caught], out


def test_a_flipped_copy_is_flagged_in_the_manifest_a_warning_and_the_qc_picture(heads, prepared):
    result, said, out = prepared
    flagged = [message for message in said if "flipped left-right" in message]
    assert len(flagged) == 1 and flagged[0].startswith(f"{heads / 'scan1_flipped.nii.gz'}: its mirror image fits")
    assert "fix the header" in flagged[0]
    records = {record["name"]: record for record in json.loads((out / "manifest.json").read_text())["scans"]}
    assert records == {record["name"]: record for record in result.manifest["scans"]}
    assert records["scan0"]["left_right_score"] is None and not records["scan0"]["left_right_flipped"]  # the reference
    assert records["scan1"]["left_right_score"] > FLIP_THRESHOLD + MARGIN and not records["scan1"]["left_right_flipped"]
    assert records["scan1_flipped"]["left_right_score"] < FLIP_THRESHOLD - MARGIN
    assert records["scan1_flipped"]["left_right_flipped"] and records["scan1_flipped"]["status"] == "ok"
    assert "left_right_flipped" in result.manifest["left_right_check"]
    titles = [axis.get_title() for axis in qc_figure(result.scans, result.reference).axes[:3]]
    assert ["L-R FLIPPED?" in title for title in titles] == [False, False, True]


def test_the_check_itself_on_a_prepared_head_and_its_mirror_image(prepared):
    result = prepared[0]
    image = result.dataset.images[1, ..., 0]
    mirrored = image[::-1]                                   # the grid is RAS: axis 0 runs left-right
    correct, flipped = check_orientation(image, result.reference), check_orientation(mirrored, result.reference)
    assert correct.score > FLIP_THRESHOLD + MARGIN and not correct.flipped
    assert flipped.score < FLIP_THRESHOLD - MARGIN and flipped.flipped
    assert check_orientation(mirrored, result.reference, threshold=flipped.score - 0.01).flipped is False
    with pytest.raises(ValueError, match=r"reference's grid.*PreparedScan.image"):
        check_orientation(image[:-1], result.reference)


@pytest.mark.slow   # a cohort of flipped scans; the flipped scan test stays fast
def test_a_flipped_reference_is_named_when_most_scans_fit_its_mirror_image(heads, tmp_path):
    scans = [heads / f"{name}.nii.gz" for name in ("scan1_flipped", "scan0", "scan1", "scan2")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = prepare_scans(scans, tmp_path / "out", reference=0, spacing=4.0)
    said = [str(warning.message) for warning in caught if "flipped left-right" in str(warning.message)]
    assert [message.split(":")[0] for message in said[:3]] == [str(scan) for scan in scans[1:]]
    assert said[3].startswith("3 of 4 scans fit the reference's mirror image") and "reference itself" in said[3]
    assert [record["left_right_flipped"] for record in result.manifest["scans"]] == [False, True, True, True]


@pytest.mark.slow
@pytest.mark.skipif(not IXI_RAW.is_dir(), reason="needs ../shared/data/ixi_raw (not part of the repository)")
def test_real_heads_are_not_flagged_and_their_flipped_copies_are(tmp_path):
    names = [path.name for path in sorted(IXI_RAW.glob("IXI*.nii.gz"))[:3]]
    raw = tmp_path / "raw"
    (raw / "labels").mkdir(parents=True)
    for name in names:
        shutil.copy(IXI_RAW / name, raw / name)
        shutil.copy(IXI_RAW / "labels" / name, raw / "labels" / name)
        flip_left_right(IXI_RAW / name, raw / name.replace("_T1", "_flipped_T1"))
        flip_left_right(IXI_RAW / "labels" / name, raw / "labels" / name.replace("_T1", "_flipped_T1"))
    template = nibabel.load(PRETRAINED / "reference.nii.gz")
    space = ModelSpace(shape=template.shape, affine=template.affine, reference=np.asarray(template.dataobj),
                       reference_mask=np.asarray(nibabel.load(PRETRAINED / "reference_mask.nii.gz").dataobj) > 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = prepare_scans(raw, tmp_path / "out", reference=space)
    records = result.manifest["scans"]
    assert len(records) == 6 and all(record["status"] == "ok" for record in records)
    for record in records:
        flipped = "_flipped" in record["name"]
        assert record["left_right_flipped"] is flipped, record
        assert (record["left_right_score"] < -MARGIN) if flipped else (record["left_right_score"] > MARGIN), record
    flagged = sorted(str(warning.message).split(":")[0] for warning in caught if "flipped left-right" in str(warning.message))
    assert flagged == sorted(str(raw / name.replace("_T1", "_flipped_T1")) for name in names)
