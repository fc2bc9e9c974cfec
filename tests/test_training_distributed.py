"""The same train() call runs under a 2-replica MirroredStrategy (2 logical CPU devices).

Logical devices must be configured before TensorFlow initialises its devices,
so the distributed run happens in a fresh Python process.
"""
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf

from hypermorph_nb.training.strategy import resolve_strategy

SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import hypermorph_nb as hnb
    from hypermorph_nb.io.checkpoints import latest_checkpoint
    from hypermorph_nb.data import synthetic

    features = [[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]]
    data = synthetic(12, (32, 32), seed=0)
    settings = dict(epochs=2, steps_per_epoch=4, batch_size=2, learning_rate=1e-3, verbose=False,
                    lam_sampling="oversample")
    results = {}
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    model = hnb.build_hypermorph((32, 32), nb_features=features, seed=0)
    before = model.get_weights()
    history = hnb.train(model, data, strategy=strategy, checkpoints=sys.argv[1], **settings)
    saved = hnb.load_model(latest_checkpoint(sys.argv[1]).model_path)
    results["distributed"] = {
        "replicas": history.config["replicas"], "loss": history.loss,
        "changed": any(bool((a != b).any()) for a, b in zip(before, model.get_weights())),
        "checkpoint_matches": all(bool((a == b).all())
                                  for a, b in zip(saved.get_weights(), model.get_weights())),
    }
    single = hnb.build_hypermorph((32, 32), nb_features=features, seed=0)
    results["single"] = {"loss": hnb.train(single, data, strategy=None, **settings).loss}
    results["max_weight_difference"] = max(float(abs(a - b).max())
                                           for a, b in zip(single.get_weights(), model.get_weights()))
    try:
        hnb.train(single, data, strategy=strategy, epochs=1, steps_per_epoch=1, batch_size=3)
    except ValueError as err:
        results["odd_batch_error"] = str(err)
    print("RESULTS" + json.dumps(results))
""")


@pytest.mark.slow
def test_two_replicas_train_like_one_device_on_the_global_batch(tmp_path):
    completed = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "checkpoints")],
                               capture_output=True, text=True, timeout=600)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULTS")]
    assert completed.returncode == 0 and lines, completed.stderr[-3000:]
    results = json.loads(lines[-1][len("RESULTS"):])
    distributed = results["distributed"]
    assert distributed["replicas"] == 2
    assert distributed["changed"], "the caller's model must receive the trained weights"
    assert distributed["checkpoint_matches"]
    # Per-sample losses summed over replicas / global batch = the single-device mean.
    np.testing.assert_allclose(distributed["loss"], results["single"]["loss"], rtol=1e-4)
    assert results["max_weight_difference"] < 1e-4
    assert "does not split over the strategy's 2 replicas" in results["odd_batch_error"]


def test_auto_stays_on_one_gpu_when_the_batch_does_not_split(monkeypatch):
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: ["/gpu:0", "/gpu:1"] if kind == "GPU" else [])
    with pytest.warns(RuntimeWarning, match="pass batch_size=2"):
        strategy, is_default = resolve_strategy("auto", 1)
    assert is_default and strategy.num_replicas_in_sync == 1


def test_auto_without_gpus_uses_the_default_strategy():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        strategy, is_default = resolve_strategy("auto", 1)
    assert is_default and strategy is tf.distribute.get_strategy()
