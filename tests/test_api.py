"""One way to each thing: one public path per name, deprecated second paths, one-line reprs."""
import importlib
import inspect
import re
import sys
import types
import warnings

import nibabel
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.runtime.deprecation import resolve

PACKAGES = ["hypermorph_nb"] + [f"hypermorph_nb.{name}" for name in hnb._PACKAGES if name != "metrics"]
WRITERS = ("register", "export_registration", "register_scans")


def test_every_public_object_is_listed_once():
    listed = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, (types.ModuleType, types.FunctionType, type)):
                listed.setdefault(id(value), []).append(f"{package}.{name}")
    twice = [paths for paths in listed.values() if len(paths) > 1]
    assert twice == [], "list each in one __all__ only (its canonical path):\n" + "\n".join(map(str, twice))


def test_the_check_sees_an_object_listed_twice():
    assert hnb.checks.check_lambda is importlib.import_module("hypermorph_nb.checks.values").check_lambda
    assert "check_lambda" not in hnb.data.__all__   # removed from data: listing it there would fail above


def _aliases():
    return [(package, name, path) for package in PACKAGES
            for name, path in getattr(importlib.import_module(package), "_DEPRECATED", {}).items()]


@pytest.mark.parametrize("package, name, path", _aliases())
def test_a_deprecated_path_warns_with_the_canonical_one_and_still_works(package, name, path):
    module = importlib.import_module(package)
    if f"{package}.{name}" in sys.modules:   # an alias module imported earlier (e.g. by doctest collection)
        del sys.modules[f"{package}.{name}"]
        vars(module).pop(name, None)
    with pytest.warns(DeprecationWarning, match=re.escape(f"{package}.{name} is deprecated") + ".*" + re.escape(path)):
        value = getattr(importlib.import_module(package), name)
    assert value is resolve(path)
    assert name not in importlib.import_module(package).__all__


def test_the_deprecated_aliases_include_those_of_the_issue():
    paths = {f"{package}.{name}" for package, name, _ in _aliases()}
    assert {"hypermorph_nb.models", "hypermorph_nb.losses", "hypermorph_nb.plotting", "hypermorph_nb.report",
            "hypermorph_nb.environment", "hypermorph_nb.data.prepare_scans", "hypermorph_nb.data.check_lambda",
            "hypermorph_nb.evaluation.choose_pairs", "hypermorph_nb.evaluation.metrics",
            "hypermorph_nb.evaluation.compare_sweeps"} <= paths


def test_the_old_metrics_module_warns_and_is_the_new_one():
    sys.modules.pop("hypermorph_nb.evaluation.metrics", None)
    with pytest.warns(DeprecationWarning, match=r"hypermorph_nb\.evaluation\.metrics is deprecated.*hypermorph_nb\.metrics"):
        old = importlib.import_module("hypermorph_nb.evaluation.metrics")
    assert old.mean_dice is hnb.metrics.mean_dice and old.__all__ == hnb.metrics.__all__


def test_a_missing_name_is_still_an_attribute_error():
    for package in PACKAGES:
        with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
            getattr(importlib.import_module(package), "nonexistent")


def test_the_writers_share_argument_names_and_defaults():
    signatures = [inspect.signature(getattr(hnb, name)).parameters for name in WRITERS]
    for argument in ("lam", "refine", "moving_labels", "fixed_labels", "moving_affine", "fixed_affine"):
        taken = [parameters[argument] for parameters in signatures if argument in parameters]
        assert taken, argument
        assert len({(p.kind, p.default) for p in taken}) == 1, (argument, taken)
    assert all(parameters["lam"].default is None and parameters["refine"].default == 0
               for parameters in signatures)


def test_the_old_affine_keyword_of_export_registration_warns(tiny_vxm, tmp_path):
    image = np.random.default_rng(0).random(hnb.networks.spec_of(tiny_vxm).inshape, dtype="float32")
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    with pytest.warns(DeprecationWarning, match=r"affine=.*deprecated.*fixed_affine="):
        old = hnb.export_registration(tiny_vxm, image, image, tmp_path / "old", affine=affine)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = hnb.export_registration(tiny_vxm, image, image, tmp_path / "new", fixed_affine=affine)
    np.testing.assert_allclose(nibabel.load(old.moved).affine, nibabel.load(new.moved).affine)
    with pytest.raises(ValueError, match="pass fixed_affine= only"):
        hnb.export_registration(tiny_vxm, image, image, tmp_path / "both", affine=affine, fixed_affine=affine)


def test_a_hypermorph_model_without_lam_is_refused_by_every_writer(tiny_hypermorph, tmp_path):
    image = np.zeros(hnb.networks.spec_of(tiny_hypermorph).inshape, "float32")
    with pytest.raises(ValueError, match="pass lam="):
        hnb.register(tiny_hypermorph, image, image)
    with pytest.raises(ValueError, match="pass lam="):
        hnb.export_registration(tiny_hypermorph, image, image, tmp_path / "out")
    with pytest.raises(ValueError, match="pass lam="):
        hnb.register_scans(tiny_hypermorph, tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", tmp_path / "out")


def test_reprs_of_specs_spaces_and_results_are_one_line(tiny_hypermorph):
    from hypermorph_nb.data.scans import PreparedScan, Reference
    from hypermorph_nb.networks.description import ModelSpace
    from hypermorph_nb.networks.models import describe

    volume = np.random.default_rng(0).random((24, 24, 24)).astype("float32")
    space = ModelSpace(shape=volume.shape, affine=np.diag([2.0, 2.0, 2.0, 1.0]), reference=volume,
                       reference_mask=volume > 0.5)
    spec = describe(tiny_hypermorph, space=ModelSpace(shape=hnb.networks.spec_of(tiny_hypermorph).inshape,
                                                      affine=np.eye(4), reference=np.zeros((32, 32))))
    files = hnb.registration.RegistrationFiles.in_folder("out", transform="flow.nii.gz")
    shown = [space, spec, Reference(image=volume, affine=np.eye(4), mask=volume > 0.5),
             PreparedScan("a", "a.nii", image=volume, labels=volume > 0.5, transform=np.eye(4)), files]
    for value in shown:
        text = repr(value)
        assert "\n" not in text and "array(" not in text and len(text) < 1000, text
    assert "float32 (24, 24, 24)" in repr(space) and "voxel_size=(2.0, 2.0, 2.0)" in repr(space)
