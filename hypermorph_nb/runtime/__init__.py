"""Where and how the toolkit runs: the front-end, determinism, the notebooks runner, the stack.

- :mod:`.environment`: which front-end a kernel runs in (JupyterLab, VS Code, Colab, papermill);
- :mod:`.reproducibility`: :func:`~.reproducibility.enable_determinism`;
- :mod:`.notebooks`: run the tutorial notebooks with papermill, ``scale_epochs``;
- :mod:`.compat`: voxelmorph/neurite 0.2 on today's TensorFlow (legacy Keras, neurite fixes);
- :mod:`.startup_logs`: TensorFlow's start-up log lines, filtered.

Importing this package loads nothing heavy (no TensorFlow).
"""
