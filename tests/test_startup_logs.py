"""TensorFlow's C++ start-up lines stay out of stderr; everything else still shows."""
import os
import subprocess
import sys

import pytest

from hypermorph_nb.runtime.startup_logs import ABSL_NOTICE, quiet_tensorflow_startup

#: What TensorFlow 2.21 prints while it loads, before it reads TF_CPP_MIN_LOG_LEVEL.
STARTUP_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "Could not find cuda drivers",
                 "cudart_stub", "I0000 ")
NOISE = (f"{ABSL_NOTICE}\n"
         "I0000 00:00:1795712579.857730    7050 port.cc:153] oneDNN custom operations are on.\n"
         "I0000 00:00:1795712579.858047    7050 cudart_stub.cc:31] Could not find cuda drivers on your machine\n")
ERROR = "E0000 00:00:1795712579.900000    7050 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
FATAL = "F0000 00:00:1795712579.900000    7050 cpu_feature_guard.cc:1] The TensorFlow library needs AVX\n"


def write_fd2(text):
    os.write(2, text.encode())


def test_start_up_lines_are_dropped_and_the_rest_is_kept(capfd):
    with quiet_tensorflow_startup(environ={"TF_CPP_MIN_LOG_LEVEL": "2"}, module="not_loaded_yet"):
        write_fd2(NOISE + ERROR + "a real problem\n" + FATAL)
        print("Python output", file=sys.stderr)
    err = capfd.readouterr().err
    assert not any(marker in err for marker in STARTUP_NOISE), err
    assert ERROR in err and "a real problem\n" in err and FATAL in err and "Python output" in err


def test_the_level_decides_like_tensorflow_and_zero_keeps_everything(capfd):
    with quiet_tensorflow_startup(environ={"TF_CPP_MIN_LOG_LEVEL": "3"}, module="not_loaded_yet"):
        write_fd2(NOISE + ERROR + FATAL)
    assert capfd.readouterr().err == FATAL
    with quiet_tensorflow_startup(environ={"TF_CPP_MIN_LOG_LEVEL": "0"}, module="not_loaded_yet"):
        write_fd2(NOISE)
    assert capfd.readouterr().err == NOISE


def test_a_failing_import_shows_everything_and_raises(capfd):
    with pytest.raises(ImportError, match="broken"):
        with quiet_tensorflow_startup(environ={"TF_CPP_MIN_LOG_LEVEL": "3"}, module="not_loaded_yet"):
            write_fd2(NOISE)
            raise ImportError("broken")
    assert capfd.readouterr().err == NOISE


@pytest.mark.slow
def test_importing_the_package_prints_no_start_up_lines_and_errors_still_show():
    """A fresh interpreter, as a notebook kernel starts: no start-up noise; a Python error shows."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = ("import hypermorph_nb, tensorflow as tf; print(int(tf.constant(2) * 3), flush=True); "
            "raise ValueError('a real error')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.stdout.strip() == "6"
    assert result.returncode == 1 and "ValueError: a real error" in result.stderr
    assert not any(marker in result.stderr for marker in STARTUP_NOISE), result.stderr
