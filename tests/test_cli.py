"""The command line: hypermorph-nb demo / register / --version, and its one-line errors."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel
import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.cli import main

from tests.conftest import TINY_FEATURES


def test_demo_writes_metrics_figures_and_model(tmp_path):
    code = main(["demo", "--out", str(tmp_path), "--epochs", "1", "--steps-per-epoch", "5",
                 "--images", "8", "--size", "32", "32"])
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["sweep"]["lams"][0] == 0.0 and len(metrics["sweep"]["mean_dice"]) == 7
    assert 0 < metrics["identity_dice"] < 1 and 0 <= metrics["best_dice"] <= 1
    # every λ of the demo's grid gives another registration (λ = 0, 0.1, 0.2 were identical
    # with the tutorial's raw-λ hypernetwork input)
    assert np.all(np.abs(np.diff(metrics["sweep"]["mse"])) > 0), metrics["sweep"]["mse"]
    assert (tmp_path / "lambda_row.png").stat().st_size > 1000
    assert (tmp_path / "dice_vs_lambda.png").stat().st_size > 1000
    assert (tmp_path / "model" / "model.json").exists()


def console_script():
    # The script sits beside the interpreter running the tests; CI calls .venv/bin/python
    # directly, so the venv's bin directory need not be on PATH.
    scripts = Path(sys.executable).parent
    exe = shutil.which("hypermorph-nb", path=str(scripts)) or shutil.which("hypermorph-nb")
    assert exe, f"pip install -e . provides the hypermorph-nb command in {scripts}"
    return exe


def test_console_script_is_installed():
    result = subprocess.run([console_script(), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "demo" in result.stdout and "register" in result.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"hypermorph-nb {hnb.__version__}"


def run_fresh(code):
    """Run ``code`` in a fresh interpreter (what is imported matters) and return its last stdout line."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


HEAVY = "('tensorflow', 'tf_keras', 'keras', 'voxelmorph', 'neurite', 'matplotlib')"


def test_version_and_help_load_no_tensorflow():
    loaded = run_fresh(
        "import sys, hypermorph_nb.cli as cli\n"
        "for argv in (['--version'], ['--help']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0\n"
        f"print([name for name in {HEAVY} if name in sys.modules])")
    assert loaded == "[]"


def test_subcommand_help_still_lists_its_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--epochs" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["register", "--help"])
    assert "--lam" in capsys.readouterr().out


def test_the_package_loads_tensorflow_on_first_use_and_offers_every_name():
    result = run_fresh(
        "import sys, os, hypermorph_nb as hnb\n"
        f"light = [name for name in {HEAVY} if name in sys.modules]\n"
        "routed = os.environ['TF_USE_LEGACY_KERAS']\n"
        "from hypermorph_nb import api, training\n"
        "public = {name for name in vars(api) if not name.startswith('_')}\n"
        "assert public == set(hnb.__all__), public ^ set(hnb.__all__)\n"
        "assert hnb.train is training.loop.train and hnb.save_model is hnb.io.persistence.save_model\n"
        "assert all(getattr(hnb, name) is getattr(api, name) for name in hnb.__all__)\n"
        "import tensorflow as tf\n"
        "print(light, routed, 'tensorflow' in sys.modules, tf.keras.layers.Dense.__module__.split('.')[0])")
    assert result == "[] 1 True tf_keras"


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """A saved tiny 3D model and two 16^3 NIfTI volumes (8-bit) with a label map."""
    folder = tmp_path_factory.mktemp("scans")
    hnb.save_model(hnb.build_hypermorph((16, 16, 16), nb_features=TINY_FEATURES, seed=0),
                   str(folder / "model"))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        volume = rng.integers(0, 256, (16, 16, 16)).astype(np.uint8)
        nibabel.save(nibabel.Nifti1Image(volume, affine), str(folder / f"{name}.nii.gz"))
    nibabel.save(nibabel.Nifti1Image(rng.integers(0, 4, (16, 16, 16)).astype(np.int16), affine),
                 str(folder / "a_seg.nii.gz"))
    nibabel.save(nibabel.Nifti1Image(np.zeros((16, 16), np.float32), affine), str(folder / "slice.nii.gz"))
    return folder


def test_register_command_writes_nifti_files(scans, tmp_path, capsys):
    out = tmp_path / "out"
    result = subprocess.run(
        [console_script(), "register", "--model", str(scans / "model"), "--moving", str(scans / "a.nii.gz"),
         "--fixed", str(scans / "b.nii.gz"), "--lam", "0.3", "--out", str(out),
         "--moving-labels", str(scans / "a_seg.nii.gz")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["flow.nii.gz", "jacobian.nii.gz", "moved.nii.gz",
                                                     "moved_labels.nii.gz", "registration.json"]
    assert "hypermorph-nb: note:" in result.stderr and "divided by 255" in result.stderr
    assert nibabel.load(out / "flow.nii.gz").shape == (16, 16, 16, 1, 3)   # a NIfTI vector image
    assert json.loads((out / "registration.json").read_text())["lam"] == 0.3
    # the same command on a 2D image, in this process (a second interpreter would load TensorFlow again)
    code = main(["register", "--model", str(scans / "model"), "--moving", str(scans / "slice.nii.gz"),
                 "--fixed", str(scans / "b.nii.gz"), "--lam", "0.3", "--out", str(out)])
    failed = capsys.readouterr().err
    assert code == 2 and "Traceback" not in failed
    assert failed.startswith(f"hypermorph-nb: error: {scans / 'slice.nii.gz'} is a 2D image")


@pytest.mark.parametrize("change, message", [
    ({"--model": "nowhere"}, "nowhere"),
    ({"--moving": "missing.nii.gz"}, "missing.nii.gz: no such file"),
    ({"--lam": "1.5"}, r"[0, 1]"),
    ({"--lam": None}, "HyperMorph model, which registers at a λ you choose: give it with --lam"),
])
def test_register_errors_are_one_line(scans, tmp_path, capsys, change, message):
    options = {"--model": str(scans / "model"), "--moving": str(scans / "a.nii.gz"),
               "--fixed": str(scans / "b.nii.gz"), "--lam": "0.5", "--out": str(tmp_path / "out")}
    options.update(change)
    argv = ["register"] + [item for key, value in options.items() if value is not None
                           for item in (key, value)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hypermorph-nb: error: ") and message in err[-1]
    assert not (tmp_path / "out").exists(), "nothing is written when the registration fails"


def test_bad_arguments_exit_with_usage():
    result = subprocess.run([sys.executable, "-m", "hypermorph_nb.cli", "demo"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "--out" in result.stderr


HYPER_MISTAKES = [
    (["--hyper", "lam=0.3"], "is conditioned on lam in [0, 1], label_weight in [0, 1]: pass --hyper "
                             "label_weight=<value in [0, 1]> too, e.g. --hyper lam=0.5 label_weight=0.5"),
    (["--raw", "--hyper", "label_weight=0.5"], "pass --hyper lam=<value in [0, 1]> too"),
    (["--hyper", "lam=0.3", "label_weight=1.5"], "--hyper label_weight must lie in [0, 1]"),
    (["--hyper", "lam=0.3", "label_weight=0.5", "sigma=1"], "takes no sigma; its hyperparameters are"),
    (["--hyper", "lam"], "--hyper lam: give NAME=VALUE pairs"),
    (["--hyper", "lam=0.3", "label_weight=half"], "'half' is not a number"),
    (["--lam", "0.5", "--hyper", "lam=0.3", "label_weight=0.5"], "--lam 0.5 and --hyper lam=0.3 disagree"),
    (["--model", "pretrained:ixi-t1-2mm", "--lam", "0.5", "--hyper", "label_weight=0.5"],
     "is conditioned on λ alone and takes no label_weight"),
]


@pytest.mark.parametrize("case", range(len(HYPER_MISTAKES)))
def test_register_refuses_each_bad_hyper_fast_without_tensorflow(tmp_path, case):
    from hypermorph_nb.networks.hyperparameters import resolve

    change, message = HYPER_MISTAKES[case]
    (tmp_path / "model").mkdir()   # the model.json of a (λ, γ) model: what the check reads
    options = {"hyperparameters": [hyper.to_json() for hyper in resolve(("lam", "label_weight"))]}
    (tmp_path / "model" / "model.json").write_text(json.dumps({"kind": "hypermorph", "options": options}))
    argv = ["register", "--model", str(tmp_path / "model"), "--moving", "a.nii.gz", "--fixed", "b.nii.gz",
            "--out", str(tmp_path / "out"), *change]
    script = ("import sys, time; from hypermorph_nb.cli import main; start = time.process_time(); "
              "code = main(sys.argv[1:]); seconds = time.process_time() - start; "
              "print('tensorflow loaded' if 'tensorflow' in sys.modules else 'light', seconds); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("hypermorph-nb: error: ") and message in result.stderr, result.stderr
    loaded, seconds = result.stdout.split()
    assert loaded == "light"
    assert float(seconds) < 1.0, seconds   # the command's own CPU time (a busy machine leaves it), start left out
    assert not (tmp_path / "out").exists()


def test_the_demo_function_leaves_matplotlibs_backend_to_the_caller(tmp_path, monkeypatch):
    import matplotlib

    from hypermorph_nb.demo import run_demo

    def refuse(*args, **kwargs):
        raise AssertionError("run_demo switched matplotlib's backend")

    monkeypatch.setattr(matplotlib, "use", refuse)
    backend = matplotlib.get_backend()
    run_demo(tmp_path, n_images=8, shape=(32, 32), epochs=1, steps_per_epoch=1, verbose=False)
    assert matplotlib.get_backend() == backend
    assert (tmp_path / "lambda_row.png").exists()
