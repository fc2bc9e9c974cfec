"""Latency of one LambdaExplorer update against the seed tutorial's way of looking at λ.

One explorer update = compiled model call with the label warp + Jacobian + Dice + redraw of
the λ-dependent artists (blitting) + publishing the frame. The tutorial's path for the
three panels it shows (moving, fixed, moved) = ``model.predict`` + ``ne.plot.slices``
creating a new figure + the inline backend rendering it to PNG. Both run in the same
process on the same model (an untrained 160×192 HyperMorph: weights do not change the
cost), with matplotlib's Agg backend.

Run: ``python benchmarks/widget_latency.py`` (``--shape 64 64 --repeats 10`` for a quick check).
"""

import argparse
import io
import os
import statistics
import sys
import time

import matplotlib

matplotlib.use("Agg")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import hypermorph_nb as hnb  # noqa: E402
from common import write_results  # noqa: E402
from hypermorph_nb.data import synthetic  # noqa: E402
from hypermorph_nb.models import ne  # noqa: E402
from hypermorph_nb.widgets import LambdaExplorer  # noqa: E402

LAMS = (0.3, 0.6, 0.9, 0.97, 0.99)


def tutorial_update(model, moving, fixed, lam, *, render_png=True):
    """The tutorial's cell: predict, then a new ne.plot.slices figure, rendered as the inline backend does."""
    import matplotlib.pyplot as plt

    moved, _ = model.predict([moving, fixed, np.array([[lam]], np.float32)], verbose=0)
    fig, _ = ne.plot.slices([moving[0, ..., 0], fixed[0, ..., 0], moved[0, ..., 0]],
                            titles=["Moving", "Fixed", "Moved"], show=False)
    plt.tight_layout()
    if render_png:
        with io.BytesIO() as buffer:
            fig.savefig(buffer, format="png", bbox_inches="tight")
    else:
        fig.canvas.draw()
    plt.close(fig)


def explorer_update(explorer, parts):
    """A callable that moves the slider to a new λ (so the model re-runs) and keeps the explorer's timings."""
    step = iter(range(10 ** 9))

    def update():
        index = next(step)
        explorer.lam_slider.value = LAMS[index % len(LAMS)] - 1e-6 * index
        for key in parts:
            parts[key].append(explorer.state.seconds[key])

    return update


def interleaved_medians(paths, *, repeats, block=5):
    """Median seconds of each callable, over rounds in which every path runs one block in turn.

    Each block starts with one untimed call (the path warms up again after the others ran),
    then ``block`` timed calls; the rounds let every path see the same drift in machine load.
    """
    times = {name: [] for name in paths}
    for _ in range(max(1, -(-repeats // block))):
        for name, fn in paths.items():
            fn()
            for _ in range(block):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=(160, 192))
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    shape = tuple(args.shape)

    data = synthetic(4, shape, seed=0)
    model = hnb.build_hypermorph(shape, seed=0)
    moving, fixed = data.images[0:1], data.images[1:2]
    lam_cycle = iter(range(10 ** 9))

    def tutorial(render_png=True):
        return lambda: tutorial_update(model, moving, fixed, LAMS[next(lam_cycle) % len(LAMS)],
                                       render_png=render_png)

    paths = {
        "tutorial: model.predict + ne.plot.slices + inline PNG": tutorial(),
        "tutorial, figure drawn but not encoded": tutorial(render_png=False),
    }
    panels = {name: 3 for name in paths}
    explorers, parts = [], {"model": [], "metrics": [], "draw": []}
    for display, image_format, name in (
            ("image", "jpeg", "LambdaExplorer update, image display (JPEG)"),
            ("image", "png", "LambdaExplorer update, image display (PNG)"),
            ("ipympl", "jpeg", "LambdaExplorer update, ipympl canvas (diff PNG)")):
        explorer = LambdaExplorer(model, data, display=display, image_format=image_format)
        if display == "ipympl":
            # what a connected browser sends first: ipympl then stops base64-encoding every frame
            canvas = explorer.live.widget
            canvas._handle_message(canvas, {"type": "initialized"}, [])
        # timings of the parts come from the first (JPEG) explorer only
        paths[name] = explorer_update(explorer, parts if not explorers else
                                      {"model": [], "metrics": [], "draw": []})
        panels[name] = 7
        explorers.append(explorer)

    medians = interleaved_medians(paths, repeats=args.repeats)
    tutorial_ms = 1000 * medians["tutorial: model.predict + ne.plot.slices + inline PNG"]
    rows = [{"path": name, "panels": panels[name], "median_ms": 1000 * seconds,
             "speed-up": tutorial_ms / (1000 * seconds)} for name, seconds in medians.items()]
    breakdown = {key: 1000 * statistics.median(values) for key, values in parts.items()}
    parts_named = (("model", "compiled model call + label warp"), ("metrics", "Jacobian + Dice + MSE"),
                   ("draw", "blit λ artists + encode frame"))
    rows += [{"path": f"  of which: {name}", "panels": "", "median_ms": breakdown[key], "speed-up": ""}
             for key, name in parts_named]
    for explorer in explorers:
        explorer.close()
    explorer_ms = 1000 * medians["LambdaExplorer update, image display (JPEG)"]
    speed_up = tutorial_ms / explorer_ms
    notes = (f"Image {shape[0]}×{shape[1]}, untrained HyperMorph (default U-Net), batch 1, "
             f"Agg backend; medians of {args.repeats} or more updates per path, timed in blocks of 5 "
             "that take turns, so all paths share the machine's load. The explorer shows 7 panels "
             "(moving, fixed, moved, |moved − fixed|, deformation grid, Jacobian, warped labels) "
             "and redraws only the 5 that depend on λ; the tutorial draws 3 in a new figure.\n"
             f"Goal: explorer update <= 50 ms: {explorer_ms:.1f} ms "
             f"({'met' if explorer_ms <= 50 else 'NOT met'}); >= 5x faster than the tutorial path: "
             f"{speed_up:.1f}x ({'met' if speed_up >= 5 else 'NOT met'}).")
    write_results("widget_latency", "LambdaExplorer update latency vs the tutorial's figure", rows,
                  notes=notes,
                  command="python benchmarks/widget_latency.py " + " ".join(argv or sys.argv[1:]))


if __name__ == "__main__":
    main()
