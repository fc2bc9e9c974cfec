"""enable_determinism: two trainings with the same seed, in fresh processes, give identical weights."""
import subprocess
import sys

import pytest

import hypermorph_nb as hnb

#: Train a tiny HyperMorph model for a few steps and print a hash of its weights.
TRAIN_AND_HASH = """
import hashlib, sys
import hypermorph_nb as hnb
from hypermorph_nb.data import synthetic
from hypermorph_nb.runtime.reproducibility import determinism_enabled

if sys.argv[1] == "deterministic":
    hnb.enable_determinism(seed=0)
data = synthetic(8, (32, 32), seed=0)
model = hnb.build_hypermorph((32, 32), nb_features=[[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]], seed=0)
history = hnb.train(model, data, epochs=2, steps_per_epoch=4, batch_size=2, seed=0, verbose=False)
weights = b"".join(w.tobytes() for w in model.get_weights())
print(determinism_enabled(), len(history.loss), hashlib.sha256(weights).hexdigest())
"""


def train_in_fresh_processes(mode, runs=2):
    """Start ``runs`` interpreters at once (each imports TensorFlow afresh) and collect their output."""
    processes = [subprocess.Popen([sys.executable, "-c", TRAIN_AND_HASH, mode], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(runs)]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        outputs.append(out.split())
    return outputs


@pytest.mark.slow
def test_two_deterministic_cpu_trainings_give_identical_weights():
    first, second = train_in_fresh_processes("deterministic")
    assert first[:2] == ["True", "2"]
    assert first == second, "same seed, op determinism on: the weights must be bit-identical"


def test_threads_are_checked_before_anything_changes():
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        hnb.enable_determinism(seed=0, threads=0)


def test_threads_after_tensorflow_started_name_the_fix():
    import tensorflow as tf

    tf.constant(1.0) + 1.0   # the runtime is running in this test process
    with pytest.raises(RuntimeError, match="restart the kernel"):
        hnb.enable_determinism(seed=0, threads=1)
