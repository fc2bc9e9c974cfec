"""Latency of LambdaExplorer updates against the plain way of looking at λ, in 2D and 3D.

2D: one explorer update = compiled model call with the label warp + Jacobian + Dice + redraw
of the λ-dependent artists (blitting) + publishing the frame. The tutorial's path for the
three panels it shows (moving, fixed, moved) = ``model.predict`` + ``ne.plot.slices``
creating a new figure + the inline backend rendering it to PNG. Both run in the same
process on the same model (an untrained 160×192 HyperMorph: weights do not change the
cost), with matplotlib's Agg backend.

3D (80×96×80 by default; the shared ixi3d volumes with their 148-structure label maps when
they are found, synthetic volumes otherwise): a λ change (model + label warp + Jacobian of
the whole field + Dice + redraw of three planes), a slice change (redraw of one plane from
the cached volumes, no model run), the bare compiled model call, and the plain path
(``model.predict`` on the volume + a new matplotlib figure of three planes rendered to PNG),
all in the same run, with ratios.

Run: ``python benchmarks/widget_latency.py`` (both; ``--only 3d`` for the volumes only,
``--volume 160 192 224`` on a GPU); ``--quick`` for a smoke run at small shapes, written
to ``results/widget_latency*_quick.md``.
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
from hypermorph_nb.networks.models import ne  # noqa: E402
from hypermorph_nb.widgets import LambdaExplorer  # noqa: E402
from hypermorph_nb.widgets.step import RegistrationStep  # noqa: E402

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


def run_2d(args, command, suffix):
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
    write_results("widget_latency" + suffix, "LambdaExplorer update latency vs the tutorial's figure", rows,
                  notes=notes, command=command)


def plain_3d_update(model, moving, fixed, lam, slices, views):
    """The plain path for a volume: model.predict, then a new figure of three planes, rendered to PNG."""
    import matplotlib.pyplot as plt

    moved, _ = model.predict([moving, fixed, np.array([[lam]], np.float32)], verbose=0)
    volumes = [("moving", moving[0, ..., 0]), ("fixed", fixed[0, ..., 0]), ("moved", moved[0, ..., 0])]
    fig, axes = plt.subplots(len(views), len(volumes), figsize=(6, 6))
    for row, view in zip(axes, views):
        for ax, (title, volume) in zip(row, volumes):
            ax.imshow(view.image(volume, slices[view.name]), cmap="gray", vmin=0, vmax=1)
            ax.set_title(title)
            ax.axis("off")
    fig.tight_layout()
    with io.BytesIO() as buffer:
        fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)


def volumes_for(shape, source):
    """ixi3d volumes when asked for (or 'auto' at their shape and found), else synthetic ones."""
    if source in ("auto", "ixi3d") and (source == "ixi3d" or shape == (80, 96, 80)):
        try:
            data = hnb.data.load_source("ixi3d")
            if data.shape == shape:
                return data[:4], "ixi3d (real T1 volumes, 148-structure label maps)"
            if source == "ixi3d":
                raise SystemExit(f"ixi3d volumes are {data.shape}; pass --volume {' '.join(map(str, data.shape))}")
        except (FileNotFoundError, ValueError, AttributeError) as err:
            if source == "ixi3d":
                raise SystemExit(f"could not load ixi3d: {err}")
    return synthetic(4, shape, seed=0), "synthetic volumes with label maps"


def run_3d(args, command, suffix):
    shape = tuple(args.volume)
    data, described = volumes_for(shape, args.data)
    model = hnb.build_hypermorph(shape, seed=0)
    moving, fixed = data.images[0:1], data.images[1:2]
    explorer = LambdaExplorer(model, data, display="image")
    step = RegistrationStep.for_model(model)
    views, slices = explorer.views, explorer.slices
    lam_cycle, slice_cycle = iter(range(10 ** 9)), iter(range(10 ** 9))
    parts = {"model": [], "metrics": [], "draw": []}

    def lam_change():
        index = next(lam_cycle)
        explorer.lam_slider.value = LAMS[index % len(LAMS)] - 1e-6 * index
        for key in parts:
            parts[key].append(explorer.state.seconds[key])

    def slice_change():
        index = next(slice_cycle)
        view = views[index % len(views)]
        slider = explorer.slice_sliders[view.name]
        slider.value = (slider.value + 7) % view.size  # a different slice every time

    def bare_model():
        step(moving, fixed, LAMS[next(lam_cycle) % len(LAMS)])

    def plain():
        plain_3d_update(model, moving, fixed, LAMS[next(lam_cycle) % len(LAMS)], slices, views)

    updates = explorer.n_updates
    paths = {"λ change (model + label warp + Jacobian + Dice + redraw)": lam_change,
             "slice change (redraw one plane, no model run)": slice_change,
             "bare model call (compiled, batch 1)": bare_model,
             "plain: model.predict + new 3-plane figure + PNG": plain}
    slice_repeats = 4 * args.repeats  # cheap: more samples for a stable median
    medians = interleaved_medians({name: fn for name, fn in paths.items() if "slice" not in name},
                                  repeats=args.repeats)
    medians.update(interleaved_medians({name: fn for name, fn in paths.items() if "slice" in name},
                                       repeats=slice_repeats))
    model_runs = explorer.n_updates - updates
    lam_ms = 1000 * medians["λ change (model + label warp + Jacobian + Dice + redraw)"]
    slice_ms = 1000 * medians["slice change (redraw one plane, no model run)"]
    bare_ms = 1000 * medians["bare model call (compiled, batch 1)"]
    plain_ms = 1000 * medians["plain: model.predict + new 3-plane figure + PNG"]
    rows = [{"path": name, "median_ms": 1000 * medians[name], "vs bare model call": medians[name] * 1000 / bare_ms,
             "vs plain path": medians[name] * 1000 / plain_ms} for name in paths]
    breakdown = {key: 1000 * statistics.median(values) for key, values in parts.items()}
    for key, name in (("model", "compiled model call + label warp"),
                      ("metrics", "Jacobian (whole field) + Dice + MSE"),
                      ("draw", "set_data of 3 planes + blit + encode frame")):
        rows.append({"path": f"  of which: {name}", "median_ms": breakdown[key], "vs bare model call": "",
                     "vs plain path": ""})
    explorer.close()
    ratio = lam_ms / bare_ms
    notes = (f"Volumes {'×'.join(map(str, shape))}: {described}; untrained HyperMorph (default U-Net), "
             f"batch 1, Agg backend, JPEG frames. Medians of {args.repeats} or more λ changes and "
             f"{slice_repeats} or more slice changes (cycling the three planes), timed in blocks of 5 that "
             f"take turns so all paths share the machine's load. The explorer shows 7 panels per plane "
             f"in 3 planes; the plain path draws 3 per plane in a new figure. The model ran "
             f"{model_runs} times for the explorer's λ changes and never for its slice changes.\n"
             f"Goals: λ change <= 1000 ms: {lam_ms:.0f} ms ({'met' if lam_ms <= 1000 else 'NOT met'}); "
             f"<= 1.3x the bare model call: {ratio:.2f}x ({'met' if ratio <= 1.3 else 'NOT met'}); "
             f"slice change <= 25 ms: {slice_ms:.1f} ms ({'met' if slice_ms <= 25 else 'NOT met'}). "
             f"λ change vs the plain path: {plain_ms / lam_ms:.2f}x faster.")
    write_results("widget_latency_3d" + suffix, "LambdaExplorer on volumes: λ and slice changes vs the plain path",
                  rows, notes=notes, command=command)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=(160, 192), help="2D image shape")
    parser.add_argument("--volume", type=int, nargs=3, default=(80, 96, 80), help="3D volume shape")
    parser.add_argument("--data", choices=("auto", "ixi3d", "synthetic"), default="auto",
                        help="3D volumes: ixi3d when found at its shape (auto), or synthetic")
    parser.add_argument("--only", choices=("2d", "3d"), help="run one of the two benchmarks")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 64x64 and 32x32x32, 5 repeats, results/*_quick.md")
    args = parser.parse_args(argv)
    suffix = ""
    if args.quick:
        args.shape, args.volume, args.repeats, args.data, suffix = (64, 64), (32, 32, 32), 5, "synthetic", "_quick"
    command = "python benchmarks/widget_latency.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.only != "3d":
        run_2d(args, command, suffix)
    if args.only != "2d":
        run_3d(args, command, suffix)


if __name__ == "__main__":
    main()
