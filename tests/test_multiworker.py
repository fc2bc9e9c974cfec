"""train() under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1.

The workers find each other through TF_CONFIG (free local ports). One job is
interrupted on one worker, resumed and killed, then resumed to the end; the
result must equal a single-process run on the same global batches.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import hypermorph_nb as hnb
from hypermorph_nb.io.checkpoints import latest_checkpoint, verify_checkpoint
from hypermorph_nb.data import synthetic
from hypermorph_nb.training.launcher import launch_local_workers, local_tf_configs
from hypermorph_nb.training.workers import TEMP_PREFIX, Cluster, WorkerRole, cluster_from_env

FEATURES = [[8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8]]
SETTINGS = dict(epochs=3, steps_per_epoch=4, batch_size=2, learning_rate=1e-3, lam_sampling="oversample")
TIMEOUT = 240  # seconds for one launch of the two workers (2 shared CPU cores)

WORKER = textwrap.dedent("""
    import faulthandler, json, os, sys, time
    faulthandler.dump_traceback_later(%(timeout)d - 10, exit=True)  # a hung worker shows where
    import numpy as np
    import hypermorph_nb as hnb
    from hypermorph_nb.training.workers import cluster_from_env, multiworker_strategy

    multiworker_strategy()  # before any other TensorFlow operation
    from hypermorph_nb.data import synthetic
    from hypermorph_nb.training.engine import Engine

    out, options = sys.argv[1], json.loads(sys.argv[2])
    cluster = cluster_from_env()
    if options.pop("slow"):  # half a second per compiled call, so that the test's signals land mid-run
        run, done = Engine.run, []

        def slow_run(self, iterator, count):
            time.sleep(0.5)
            result = run(self, iterator, count)
            done.append(result[1])
            with open(os.path.join(out, f"steps-{cluster.index}"), "w") as handle:
                handle.write(str(sum(done)))  # steps run by this process
            return result

        Engine.run = slow_run
    # A different initialisation on each worker: train() must start them all from the chief's weights.
    model = hnb.build_hypermorph((32, 32), nb_features=%(features)r, seed=cluster.index)
    history = hnb.train(model, synthetic(12, (32, 32), seed=0), strategy="auto", progress="log",
                        live_plot=False, checkpoints=os.path.join(out, "checkpoints"), **options)
    np.savez(os.path.join(out, f"weights-{cluster.index}.npz"), *model.get_weights())
    with open(os.path.join(out, f"result-{cluster.index}.json"), "w") as handle:
        json.dump({"loss": history.loss, "steps": history.steps, "interrupted": history.interrupted,
                   "resumed_from_step": history.resumed_from_step, "checkpoint": history.checkpoint,
                   "replicas": history.config["replicas"], "val_epochs": history.val_epochs}, handle)
""") % {"features": FEATURES, "timeout": TIMEOUT}


class Job:
    """Two local worker processes of one job; always stopped by :meth:`stop`."""

    def __init__(self, tmp_path, phase, **options):
        self.out = str(tmp_path)
        script = tmp_path / "worker.py"
        script.write_text(WORKER)
        self.logs = [str(tmp_path / f"{phase}-worker-{index}.log") for index in range(2)]
        options = {**SETTINGS, "slow": False, **options}
        self.processes = []
        for config, log in zip(local_tf_configs(2), self.logs):
            with open(log, "w") as handle:
                self.processes.append(subprocess.Popen(
                    [sys.executable, str(script), self.out, json.dumps(options)],
                    env={**os.environ, "TF_CONFIG": config}, stdout=handle, stderr=subprocess.STDOUT))
        self.deadline = time.monotonic() + TIMEOUT

    def log(self, index):
        with open(self.logs[index]) as handle:
            return handle.read()

    def logs_text(self):
        return "\n".join(f"--- worker {i} ---\n{self.log(i)[-4000:]}" for i in range(2))

    def wait_for_checkpoint(self, step):
        path = os.path.join(self.out, "checkpoints", f"ckpt-{step:08d}")
        while not os.path.isdir(path):
            if any(p.poll() is not None for p in self.processes) or time.monotonic() > self.deadline:
                pytest.fail(f"no checkpoint at step {step} while the job ran\n{self.logs_text()}")
            time.sleep(0.05)

    def wait_for_steps(self, index, steps):
        path = os.path.join(self.out, f"steps-{index}")
        while _read_count(path) < steps:
            if any(p.poll() is not None for p in self.processes) or time.monotonic() > self.deadline:
                pytest.fail(f"worker {index} did not reach step {steps} while the job ran\n{self.logs_text()}")
            time.sleep(0.02)

    def wait(self):
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=max(1.0, self.deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                pytest.fail(f"the workers ran past {TIMEOUT} s\n{self.logs_text()}")
        return codes

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()

    def results(self):
        found = []
        for index in range(2):
            with open(os.path.join(self.out, f"result-{index}.json")) as handle:
                found.append(json.load(handle))
        return found


def _read_count(path):
    try:
        with open(path) as handle:
            return int(handle.read())
    except (OSError, ValueError):  # not written yet, or being written
        return 0


def weights(out, index):
    with np.load(os.path.join(out, f"weights-{index}.npz")) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


@pytest.mark.slow
def test_two_workers_interrupted_killed_and_resumed_train_like_one_process(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    # 1. Ctrl-C on worker 1 alone after step 5: both stop at the same step with the chief's checkpoint.
    job = Job(tmp_path, "interrupt", slow=True, steps_per_call=1)
    try:
        job.wait_for_steps(1, 5)
        job.processes[1].send_signal(signal.SIGINT)
        codes = job.wait()
    finally:
        job.stop()
    assert codes == [0, 0], job.logs_text()
    chief, other = job.results()
    assert chief["interrupted"] and other["interrupted"], job.logs_text()
    stopped = chief["steps"]
    assert other["steps"] == stopped and stopped in (5, 6)  # the next check after the signal
    assert chief["checkpoint"] == other["checkpoint"] == str(checkpoints / f"ckpt-{stopped:08d}")
    assert verify_checkpoint(chief["checkpoint"]).state["partial"]["steps"] == stopped - 4  # mid-epoch
    assert not glob.glob(str(checkpoints / f"{TEMP_PREFIX}*")), "worker 1 must remove its temporary checkpoints"
    assert chief["replicas"] == 2 and other["val_epochs"] == []
    assert "[worker 1] epoch 1/3" in job.log(1) and "[worker" not in job.log(0), job.logs_text()
    assert f"[worker 1] interrupted at step {stopped}" in job.log(1)

    # 2. Resume, then kill both workers (SIGKILL) just after the chief's checkpoint of epoch 2.
    job = Job(tmp_path, "kill", slow=True, steps_per_call=1, resume=True)
    try:
        job.wait_for_checkpoint(8)
        for process in job.processes:
            process.kill()
    finally:
        job.stop()
    assert latest_checkpoint(checkpoints).step == 8

    # 3. Resume to the end.
    job = Job(tmp_path, "resume", resume=True)
    try:
        codes = job.wait()
    finally:
        job.stop()
    assert codes == [0, 0], job.logs_text()
    chief, other = job.results()
    assert chief["resumed_from_step"] == other["resumed_from_step"] == 8
    assert chief["steps"] == other["steps"] == 12 and not chief["interrupted"]

    # (a) Both workers end with identical weights.
    for a, b in zip(weights(job.out, 0), weights(job.out, 1)):
        np.testing.assert_array_equal(a, b)
    # (b, c) The weights and loss stream of one process training on the same global batches.
    single = hnb.build_hypermorph((32, 32), nb_features=FEATURES, seed=0)
    reference = hnb.train(single, synthetic(12, (32, 32), seed=0), strategy=None, verbose=False, **SETTINGS)
    np.testing.assert_allclose(chief["loss"], reference.loss, rtol=1e-4)
    difference = max(float(np.abs(a - b).max()) for a, b in zip(single.get_weights(), weights(job.out, 0)))
    assert difference < 1e-4


def test_tf_config_names_the_chief_and_the_workers():
    configs = [json.loads(text) for text in local_tf_configs(3, ports=[7001, 7002, 7003])]
    clusters = [cluster_from_env({"TF_CONFIG": json.dumps(config)}) for config in configs]
    assert [c.is_chief for c in clusters] == [True, False, False]
    assert [c.index for c in clusters] == [0, 1, 2] and clusters[2].label == "worker 2"
    with_chief = {"cluster": {"chief": ["h:1"], "worker": ["h:2", "h:3"]}, "task": {"type": "worker", "index": 0}}
    cluster = cluster_from_env({"TF_CONFIG": json.dumps(with_chief)})
    assert cluster.num_workers == 3 and cluster.index == 1 and not cluster.is_chief


@pytest.mark.parametrize("text, message", [
    ("{not json", "not a valid cluster description"),
    ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "names no 'chief' or 'worker' tasks"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "ps", "index": 0}}', "task type 'ps' does not train"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 3}}', "task index 3 is outside"),
])
def test_a_bad_tf_config_is_explained(text, message):
    with pytest.raises(ValueError, match=message):
        cluster_from_env({"TF_CONFIG": text})


def test_a_worker_writes_its_checkpoint_copy_to_a_temporary_folder_it_removes(tiny_vxm, tmp_path):
    role = WorkerRole(None, Cluster(("h:1", "h:2"), "worker", 1))
    stale = tmp_path / f"{TEMP_PREFIX}1-left-by-a-killed-run"
    stale.mkdir()
    path = role.write_checkpoint(str(tmp_path), model=tiny_vxm, optimizer_weights=[], state={"step": 5})
    assert path == str(tmp_path / "ckpt-00000005")  # the chief's checkpoint
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_the_train_command_starts_two_local_workers(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "hypermorph_nb.cli", "train", "--workers", "2", "--out", str(out),
               "--size", "32", "32", "--images", "8", "--features", json.dumps(FEATURES), "--epochs", "1",
               "--steps-per-epoch", "2", "--batch-size", "2", "--model", "vxm"]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = launcher.communicate(timeout=TIMEOUT)
    finally:
        if launcher.poll() is None:
            launcher.terminate()  # the launcher terminates its workers on SIGTERM
            launcher.communicate(timeout=30)
    assert launcher.returncode == 0, stderr[-3000:]
    assert "[worker 1] epoch 1/1" in stdout and "starting 2 local workers" in stderr
    with open(out / "history.json") as handle:
        history = json.load(handle)
    assert history["config"]["replicas"] == 2 and len(history["loss"]) == 1 and history["steps"] == 2
    assert hnb.load_model(out / "model").count_params() > 0
    assert latest_checkpoint(out / "checkpoints").step == 2


def test_when_one_local_worker_fails_the_others_are_stopped():
    program = ("import json, os, sys, time\n"
               "index = json.loads(os.environ['TF_CONFIG'])['task']['index']\n"
               "sys.exit(3) if index == 1 else time.sleep(120)")
    start = time.monotonic()
    status = launch_local_workers([sys.executable, "-c", program], 2, grace=0.5)
    assert status == 3 and time.monotonic() - start < 60


@pytest.mark.slow
def test_a_strategy_created_after_other_tensorflow_work_is_explained():
    program = ("import hypermorph_nb, tensorflow as tf\n"
               "from hypermorph_nb.training.workers import multiworker_strategy\n"
               "tf.constant(1.0) + 1\n"
               "multiworker_strategy()")
    completed = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=TIMEOUT,
                               env={**os.environ, "TF_CONFIG": local_tf_configs(2)[0]})
    assert completed.returncode != 0
    assert "call hypermorph_nb.training.workers.multiworker_strategy() at the start" in completed.stderr
