"""Amortization: one λ-conditioned model against a grid of separately trained VoxelMorph models.

Trains K VoxelMorph baselines (one per λ of a grid) and one or more λ-conditioned
variants on the OASIS 2D slices (train/validation split by subject), scores all
of them on the same validation pairs, and reports per λ the Dice and % folding
of each, the optimal λ overall and per structure, the training wall time of
the K models against the one model, steps/s, parameters, peak memory, validation
Dice against training steps, and λ chosen by gradient (``optimize_lambda``)
against a fine λ grid. The variants (``model=``) are HyperMorph as the seed
tutorial builds it (``tutorial``: raw λ into the hypernetwork), HyperMorph with
the magnitude-invariant parametrisation (``mip``, the default of
``build_hypermorph``) and the FiLM-conditioned U-Net (``film``).

Image-noise σ: with the MSE term ``(1 - λ) · MSE / σ² + λ · Grad``, a model
trained at (σ', λ') minimises the same function as one trained at (σ, λ) scaled
by a constant whenever ``(1 - λ') / λ' · 1/σ'² = (1 - λ) / λ · 1/σ²``; Adam is
invariant to that scale (up to its ε). So a HyperMorph variant trained with
another σ is scored at the *equivalent* λ' of each grid value and compared with
the same baselines: changing σ only moves where along [0, 1] the useful
registrations lie, i.e. how much of the λ training distribution lands there.

Run ``python benchmarks/amortization.py --help`` for the options;
``--quick`` is a smoke run of a few minutes, the defaults fit a 2-core CPU
(about 35 minutes), ``--full`` is the 160×192 scale for a GPU.
"""

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import hypermorph_nb as hnb  # noqa: E402
from common import RESULTS_DIR, markdown_table, write_results  # noqa: E402
from hypermorph_nb.data import LambdaSampling, load_npz, random_split, resize  # noqa: E402
from hypermorph_nb import baseline_sweep, compare_sweeps, lambda_sweep  # noqa: E402
from hypermorph_nb.checks import choose_pairs  # noqa: E402
from hypermorph_nb.networks import LossConfig, count_parameters  # noqa: E402
from hypermorph_nb.training import ValidationConfig  # noqa: E402
from hypermorph_nb.training.schedules import StepDecay  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO, "..", "shared", "data", "oasis2d", "oasis2d_300.npz")
DEFAULT_LAMS = (0.5, 0.8, 0.9, 0.95, 0.97, 0.99)
DEFAULT_VARIANTS = ("model=tutorial,sampling=uniform,sigma=0.2", "model=mip,sampling=uniform,sigma=0.2",
                    "model=film,sampling=uniform,sigma=0.2")
#: build_hypermorph options of each model= value
MODELS = {"tutorial": {"hyper_encoding": "tutorial"}, "mip": {"hyper_encoding": "mip"},
          "film": {"conditioning": "film"}}
MODEL_NAMES = {"tutorial": "HyperMorph, tutorial encoding (raw λ)",
               "mip": "HyperMorph, magnitude-invariant ([λ, 1 − λ], residual weights)",
               "film": "FiLM U-Net"}
#: spacing of the fine λ grid that optimize_lambda is checked against
FINE_STEP = 0.025
SAMPLING_FIELDS = ("low", "a", "b", "oversample_rate")


@dataclasses.dataclass
class Variant:
    """One HyperMorph training configuration."""

    text: str
    sampling: LambdaSampling
    sigma: float
    model: str = "mip"


def parse_variant(text, default_sigma):
    """``"sampling=log1m,low=0.003,sigma=0.05"`` -> Variant."""
    fields = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        fields[key.strip()] = value.strip()
    unknown = set(fields) - {"model", "sampling", "sigma", *SAMPLING_FIELDS}
    if unknown:
        raise SystemExit(f"--hyper {text!r}: unknown keys {sorted(unknown)}; use model=M, "
                         f"sampling=MODE, sigma=S and the sampling fields {SAMPLING_FIELDS}")
    if fields.get("model", "mip") not in MODELS:
        raise SystemExit(f"--hyper {text!r}: model must be one of {sorted(MODELS)}")
    sampling = LambdaSampling(mode=fields.get("sampling", "uniform"),
                              **{k: float(fields[k]) for k in SAMPLING_FIELDS if k in fields})
    return Variant(text=text, sampling=sampling, sigma=float(fields.get("sigma", default_sigma)),
                   model=fields.get("model", "mip"))


def equivalent_lams(lams, sigma, new_sigma):
    """λ' that weighs MSE/σ'² against smoothness as λ weighs MSE/σ² (see the module doc)."""
    lams = np.asarray(lams, float)
    odds = (1 - lams) / lams * (new_sigma / sigma) ** 2
    return 1 / (1 + odds)


def load_data(args):
    data = load_npz(args.data)
    if tuple(args.shape) != data.shape:
        data = resize(data, args.shape)
    train, validation = random_split(data, (1 - args.val_fraction, args.val_fraction), seed=args.seed)
    return train, validation


def train_scheduled(model, train, validation, pairs, *, steps, sigma, args, **options):
    """Train once with the "step" recipe: the last ``decay_fraction`` at ``lr * decay_factor``.

    One ``train`` call with a :class:`~hypermorph_nb.training.schedules.StepDecay`
    keyed to the global step (the Adam state is kept across the decay).
    Returns (training seconds without validation, steps, validation record, wall seconds).
    """
    epochs = max(2, round(steps / args.steps_per_epoch))
    total = epochs * args.steps_per_epoch
    schedule = StepDecay(args.learning_rate, total_steps=total, decay_fraction=args.decay_fraction,
                         decay_factor=args.decay_factor)
    start = time.perf_counter()
    history = hnb.train(
        model, train, epochs=epochs, steps_per_epoch=args.steps_per_epoch, lr_schedule=schedule,
        loss=LossConfig(image_sigma=sigma), batch_size=args.batch_size, seed=args.seed,
        validation=ValidationConfig(validation, pairs=pairs, lams=options.pop("validation_lams", None)),
        verbose=False, progress="log" if args.verbose else "none",
        live_plot=False, **options)
    wall = time.perf_counter() - start
    record = [{"steps": epoch * args.steps_per_epoch, "seconds": sum(history.epoch_seconds[:epoch]),
               "dice": dice} for epoch, dice in zip(history.val_epochs, history.val_dice)]
    return sum(history.epoch_seconds), total, record, wall


def peak_training_memory(shape, kind, options, steps, batch_size):
    """Peak RSS (MiB) of a fresh process that builds one model and trains it ``steps`` steps.

    ``kind`` is ``'vxm'`` (trained at λ 0.5) or ``'hypermorph'``; ``options`` go to its
    builder. Synthetic images of the same shape: memory depends on the shape, not the pixels.
    """
    code = (
        "import json, resource, sys\n"
        "import hypermorph_nb as hnb\n"
        "from hypermorph_nb.data import synthetic\n"
        "shape, kind, options, steps, batch = json.loads(sys.argv[1])\n"
        "data = synthetic(8, tuple(shape), seed=0)\n"
        "build = hnb.build_vxm if kind == 'vxm' else hnb.build_hypermorph\n"
        "model = build(data.shape, seed=0, **options)\n"
        "hnb.train(model, data, epochs=1, steps_per_epoch=steps, batch_size=batch,\n"
        "          lam=0.5 if kind == 'vxm' else None, verbose=False)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n")
    settings = json.dumps([list(shape), kind, options, steps, batch_size])
    result = subprocess.run([sys.executable, "-c", code, settings], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        print(f"peak memory of {kind} {options} not measured:\n{result.stderr[-2000:]}", flush=True)
        return float("nan")
    return float(result.stdout.strip().splitlines()[-1])


def tune_against_grid(model, validation, pairs, structures):
    """optimize_lambda against a fine-grid lambda_sweep: overall and for ``structures`` labels."""
    fine = np.round(np.arange(0, 1 + FINE_STEP / 2, FINE_STEP), 4)
    start = time.perf_counter()
    grid = lambda_sweep(model, validation, fine, pairs=pairs, progress=False)
    grid_seconds = time.perf_counter() - start
    rows = []
    for label in [None, *structures]:
        if label is not None and int(label) not in grid.optimal_lam_per_label:
            continue
        start = time.perf_counter()
        found = hnb.optimize_lambda(model, validation, pairs=pairs, label=label)
        seconds = time.perf_counter() - start
        best = grid.optimum(label)
        rows.append({"structure": best.name, "grid λ*": best.lam, "gradient λ*": found.lam,
                     "steps apart": abs(found.lam - best.lam) / FINE_STEP,
                     "grid calls": len(fine) * len(pairs), "gradient calls": found.model_calls,
                     "grid s": grid_seconds, "gradient s": seconds})
    return rows


def main(argv=None):
    args = parse_args(argv)
    train, validation = load_data(args)
    pairs = choose_pairs(len(validation), args.val_pairs, seed=args.seed + 1)
    lams = np.asarray(args.lams, float)
    variants = [parse_variant(text, args.sigma) for text in args.hyper]
    build = {"nb_features": args.nb_features} if args.nb_features else {}
    print(f"{len(train)} training and {len(validation)} validation subjects at {train.shape}, "
          f"{len(pairs)} validation pairs, λ grid {lams.tolist()}", flush=True)

    baselines, baseline_seconds, baseline_record = {}, 0.0, {}
    for lam in lams:
        model = hnb.build_vxm(train.shape, seed=args.seed, **build)
        seconds, steps, record, wall = train_scheduled(
            model, train, validation, pairs, steps=args.baseline_steps, sigma=args.sigma, args=args,
            lam=float(lam))
        baselines[float(lam)] = model
        baseline_seconds += seconds
        baseline_record[float(lam)] = record
        print(f"baseline λ={lam}: {steps} steps, {seconds:.0f} s training ({wall:.0f} s with "
              f"validation), final validation Dice {record[-1]['dice'][0]:.4f}", flush=True)
    baseline_steps = steps
    baseline_info = {"parameters": count_parameters(model), "steps_per_s": steps * len(lams) / baseline_seconds,
                     "peak_mib": peak_training_memory(train.shape, "vxm", build, args.memory_steps,
                                                      args.batch_size)}
    start = time.perf_counter()
    reference = baseline_sweep(baselines, validation, pairs=pairs, progress=False)
    baseline_sweep_seconds = time.perf_counter() - start

    results = []
    for variant in variants:
        variant_lams = equivalent_lams(lams, args.sigma, variant.sigma)
        options = {**build, **MODELS[variant.model]}
        model = hnb.build_hypermorph(train.shape, seed=args.seed, **options)
        seconds, steps, record, wall = train_scheduled(
            model, train, validation, pairs, steps=args.hyper_steps, sigma=variant.sigma, args=args,
            lam_sampling=variant.sampling, validation_lams=variant_lams.tolist())
        start = time.perf_counter()
        sweep = lambda_sweep(model, validation, variant_lams, pairs=pairs, progress=False)
        sweep_seconds = time.perf_counter() - start
        # score on the baselines' λ axis (identical for the reference σ)
        on_grid = dataclasses.replace(sweep, lams=lams.copy())
        structures = reference.labels if args.tune_structures is None \
            else reference.labels[:args.tune_structures]
        results.append({"variant": variant, "steps": steps, "seconds": seconds,
                        "sweep_seconds": sweep_seconds, "record": record, "wall": wall,
                        "comparison": compare_sweeps(on_grid, reference), "lams": variant_lams,
                        "parameters": count_parameters(model), "steps_per_s": steps / seconds,
                        "peak_mib": peak_training_memory(train.shape, "hypermorph", options,
                                                         args.memory_steps, args.batch_size),
                        "tuning": tune_against_grid(model, validation, pairs, structures)})
        print(f"{variant.text}: {steps} steps, {seconds:.0f} s training "
              f"({wall:.0f} s with validation)", flush=True)

    report(args, lams, reference, results, baseline_seconds + baseline_sweep_seconds,
           baseline_seconds, baseline_steps, baseline_record, baseline_info, len(train),
           len(validation))


def report(args, lams, reference, results, k_seconds, baseline_seconds, baseline_steps,
           baseline_record, baseline_info, n_train, n_validation):
    rows = []
    for index, lam in enumerate(lams):
        row = {"λ": float(lam), "baselines Dice": float(reference.mean_dice[index]),
               "baselines fold %": float(100 * reference.folding[index].mean())}
        for number, result in enumerate(results, start=1):
            comparison = result["comparison"]
            row[f"H{number} Dice"] = float(comparison.candidate.mean_dice[index])
            row[f"H{number} Δ"] = float(comparison.dice_difference[index])
            row[f"H{number} ± s.e."] = float(comparison.dice_difference_sem[index])
            row[f"H{number} fold %"] = float(100 * comparison.candidate.folding[index].mean())
        rows.append(row)
    identity = dict.fromkeys(rows[0], "")
    identity.update({"λ": "no registration", "baselines Dice": reference.identity_dice,
                     "baselines fold %": 0.0})
    rows.append(identity)

    summary_rows = [{
        "model(s)": f"{len(lams)} baselines", "steps each": baseline_steps,
        "parameters": baseline_info["parameters"], "steps/s": baseline_info["steps_per_s"],
        "peak MiB": baseline_info["peak_mib"],
        "training s": round(baseline_seconds), "time / K models": 1.0,
        "optimal λ": reference.optimal_lam, "best Dice": float(np.nanmax(reference.mean_dice)),
        "max |Δ Dice|": "", "optimum steps apart": "", "structures within 1 step": "",
        "Dice at 1/3 time: max |Δ|": "", "optimal λ at 1/3 time": "",
    }]
    budget = k_seconds / 3
    for number, result in enumerate(results, start=1):
        comparison, candidate = result["comparison"], result["comparison"].candidate
        apart = comparison.per_label_steps_apart()
        within = sum(1 for steps in apart.values() if steps <= 1)
        early = [r for r in result["record"] if r["seconds"] <= budget]
        if early:
            early_dice = np.asarray(early[-1]["dice"])
            early_gap = f"{np.max(np.abs(early_dice - reference.mean_dice)):.4f} ({early[-1]['steps']} steps)"
            early_lam = float(lams[int(np.nanargmax(early_dice))])
        else:
            early_gap, early_lam = "no epoch fits", ""
        summary_rows.append({
            "model(s)": f"H{number} {MODEL_NAMES[result['variant'].model]}",
            "steps each": result["steps"], "parameters": result["parameters"],
            "steps/s": result["steps_per_s"], "peak MiB": result["peak_mib"],
            "training s": round(result["seconds"]),
            "time / K models": (result["seconds"] + result["sweep_seconds"]) / k_seconds,
            "optimal λ": candidate.optimal_lam, "best Dice": float(np.nanmax(candidate.mean_dice)),
            "max |Δ Dice|": float(np.nanmax(np.abs(comparison.dice_difference))),
            "optimum steps apart": comparison.optimum_steps_apart,
            "structures within 1 step": f"{within}/{len(apart)}",
            "Dice at 1/3 time: max |Δ|": early_gap, "optimal λ at 1/3 time": early_lam,
        })

    level_rows = []
    for lam, record in baseline_record.items():
        row = {"baseline λ": lam}
        for fraction in (0.5, 0.75, 1.0):
            entry = record[min(len(record) - 1, max(0, math.ceil(fraction * len(record)) - 1))]
            row[f"Dice at {entry['steps']} steps"] = entry["dice"][0]
        level_rows.append(row)

    convergence_rows = []
    baseline_mean = [np.mean([record[i]["dice"][0] for record in baseline_record.values()])
                     for i in range(min(len(r) for r in baseline_record.values()))]
    steps_axis = [entry["steps"] for entry in next(iter(baseline_record.values()))]
    convergence_rows.append({"model(s)": f"{len(lams)} baselines (mean)",
                             **{f"{n} steps": d for n, d in zip(steps_axis, baseline_mean)}})
    for number, result in enumerate(results, start=1):
        convergence_rows.append({"model(s)": f"H{number}", **{
            f"{entry['steps']} steps": float(np.mean(entry["dice"])) for entry in result["record"]}})
    columns = []
    for row in convergence_rows:
        columns += [key for key in row if key not in columns]
    convergence_rows = [{key: row.get(key, "") for key in columns} for row in convergence_rows]

    tuning_rows = []
    for number, result in enumerate(results, start=1):
        overall = [row for row in result["tuning"] if row["structure"] == "mean"]
        per_structure = [row for row in result["tuning"] if row["structure"] != "mean"]
        for row in overall:
            tuning_rows.append({"model": f"H{number}", "target": "mean Dice", **{
                key: row[key] for key in ("grid λ*", "gradient λ*", "steps apart", "grid calls",
                                          "gradient calls", "grid s", "gradient s")}})
        if per_structure:
            within = sum(row["steps apart"] <= 1 + 1e-9 for row in per_structure)
            tuning_rows.append({
                "model": f"H{number}", "target": f"{len(per_structure)} structures, one at a time",
                "grid λ*": "", "gradient λ*": "",
                "steps apart": f"{within}/{len(per_structure)} within 1 "
                               f"(max {max(row['steps apart'] for row in per_structure):.1f})",
                "grid calls": per_structure[0]["grid calls"],
                "gradient calls": f"{np.mean([row['gradient calls'] for row in per_structure]):.0f} "
                                  "per structure",
                "grid s": per_structure[0]["grid s"],
                "gradient s": f"{np.mean([row['gradient s'] for row in per_structure]):.1f} per structure"})

    structure_rows = []
    names = [reference.label_name(label) for label in reference.labels]
    optima = [reference.optimal_lam_per_label] + [r["comparison"].candidate.optimal_lam_per_label
                                                  for r in results]
    for label, name in zip(reference.labels, names):
        if int(label) not in optima[0]:
            continue
        row = {"structure": name, "pairs with it": int(np.sum(np.isfinite(reference.dice[0, :, list(reference.labels).index(label)]))),
               "baselines λ*": optima[0][int(label)]}
        for number, optimum in enumerate(optima[1:], start=1):
            row[f"H{number} λ*"] = optimum.get(int(label), "")
        structure_rows.append(row)

    variants_text = "\n".join(
        f"- H{n}: {MODEL_NAMES[r['variant'].model]} (`{r['variant'].text}`), λ sampling {r['variant'].sampling.to_json()}, σ={r['variant'].sigma}"
        + ("" if r["variant"].sigma == args.sigma else
           f" (scored at the equivalent λ' = {np.round(r['lams'], 4).tolist()})")
        for n, r in enumerate(results, start=1))
    notes = f"""
Setting: OASIS 2D slices `{os.path.basename(args.data)}` at {tuple(args.shape)}
({n_train} training / {n_validation} validation subjects, split by subject, seed {args.seed});
{len(reference.pairs)} validation pairs, the same for every model. Baselines: σ={args.sigma},
{baseline_steps} steps each; HyperMorph: {results[0]['steps'] if results else 0} steps each.
Adam at lr {args.learning_rate}, the last {args.decay_fraction:.0%} of each run at
lr × {args.decay_factor} (one `train` call with `lr_schedule=StepDecay(...)`, the "step"
schedule); batch {args.batch_size}. Dice: mean over pairs of the mean over the
structures present in both images of the pair. Δ = HyperMorph − baselines (paired, same pairs).

{variants_text}

Wall time: "training s" counts training steps only (validation during training excluded);
"time / K models" = (HyperMorph training + its λ sweep) / (all K baselines' training + their
evaluation), measured within this one run. "Dice at 1/3 time" reads HyperMorph's validation Dice
at the last epoch that ended within one third of the K-model time (learning rate not yet decayed).
"steps/s": training steps per second (validation excluded; baselines: all K together); "peak MiB":
peak RSS of a fresh process that builds the model and trains {args.memory_steps} steps at this shape
(on a GPU add the device memory); "parameters": trainable parameters.

Summary

{markdown_table(summary_rows)}
Convergence: validation Dice (mean over the λ grid, the same pairs) against training steps

{markdown_table(convergence_rows)}
λ chosen by gradient (`hnb.optimize_lambda`, soft Dice of warped one-hot label maps, same pairs)
against a fine grid (`hnb.lambda_sweep`, λ step {FINE_STEP}) in each model's own λ: "calls" are
registrations (pairs × evaluations; a gradient evaluation adds one backward pass). One grid sweep
scores every structure at once; the gradient search runs once per target.

{markdown_table(tuning_rows)}
Baselines levelling off (validation Dice during training)

{markdown_table(level_rows)}
Optimal λ per structure (structures present in both images of at least one pair)

{markdown_table(structure_rows)}"""
    command = "python benchmarks/amortization.py " + " ".join(argv_for_report(args))
    path = write_results(args.name, "Amortization: HyperMorph vs a grid of VoxelMorph models",
                         rows, notes=notes, command=command)
    print(f"wrote {path}")
    with open(os.path.join(RESULTS_DIR, f"{args.name}.json"), "w") as handle:
        json.dump({
            "args": {k: v for k, v in vars(args).items()},
            "baselines": reference.summary(), "baseline_training_seconds": baseline_seconds,
            "baseline_pair_dice": reference.pair_dice.tolist(),
            "baseline_record": {str(k): v for k, v in baseline_record.items()},
            "baseline_info": baseline_info,
            "hypermorph": [{"variant": r["variant"].text, "sigma": r["variant"].sigma,
                            "parameters": r["parameters"], "steps_per_s": r["steps_per_s"],
                            "peak_mib": r["peak_mib"], "tuning": r["tuning"],
                            "lams": r["lams"].tolist(), "steps": r["steps"],
                            "training_seconds": r["seconds"], "sweep_seconds": r["sweep_seconds"],
                            "record": r["record"], "sweep": r["comparison"].candidate.summary(),
                            "pair_dice": r["comparison"].candidate.pair_dice.tolist(),
                            "comparison": r["comparison"].summary()} for r in results],
        }, handle, indent=1, default=float)


def argv_for_report(args):
    return sys.argv[1:] if args.argv is None else args.argv


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA, help="OASIS 2D .npz with segs and subjects")
    parser.add_argument("--shape", type=int, nargs=2, default=(80, 96),
                        help="image size (H W); images resized linearly, labels by nearest")
    parser.add_argument("--lams", type=float, nargs="+", default=DEFAULT_LAMS, help="the λ grid (K models)")
    parser.add_argument("--baseline-steps", type=int, default=4000, help="training steps per baseline")
    parser.add_argument("--hyper-steps", type=int, default=5000, help="training steps per λ-conditioned model")
    parser.add_argument("--hyper", action="append", default=None,
                        help="a λ-conditioned variant, e.g. 'model=film,sampling=uniform,sigma=0.2' "
                             "or 'model=mip,sampling=beta,a=4,b=1,sigma=0.1' (model: tutorial, mip "
                             "or film; repeatable); default: "
                             + " | ".join(DEFAULT_VARIANTS))
    parser.add_argument("--sigma", type=float, default=0.05, help="image-noise σ of the baselines")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--decay-fraction", type=float, default=0.25,
                        help="share of the steps trained at the decayed learning rate")
    parser.add_argument("--decay-factor", type=float, default=0.1)
    parser.add_argument("--steps-per-epoch", type=int, default=500,
                        help="steps between validations (the levelling-off record)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--nb-features", type=json.loads, default=None,
                        help="U-Net features as JSON, e.g. '[[8,8,8,8],[8,8,8,8,8,8,8]]'")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--val-pairs", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-steps", type=int, default=50,
                        help="training steps of the fresh process that measures peak memory")
    parser.add_argument("--tune-structures", type=int, default=None,
                        help="optimize_lambda per structure for the first N structures (default all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 200/400 steps, 16 pairs, every variant, 3 structures tuned")
    parser.add_argument("--full", action="store_true",
                        help="160x192, 10000/20000 steps, 128 pairs (for a GPU)")
    parser.add_argument("--name", default=None,
                        help="results/<name>.md (default amortization, amortization_quick or "
                             "amortization_full)")
    parser.add_argument("--quiet", dest="verbose", action="store_false")
    args = parser.parse_args(argv)
    args.argv = argv
    if args.quick and args.full:
        parser.error("choose --quick or --full, not both")
    given = set(a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:]))
    if args.quick:
        defaults = {"baseline_steps": 200, "hyper_steps": 400, "steps_per_epoch": 100,
                    "val_pairs": 16, "memory_steps": 10, "tune_structures": 3}
    elif args.full:
        defaults = {"shape": (160, 192), "baseline_steps": 10000, "hyper_steps": 12500,
                    "steps_per_epoch": 1000, "val_pairs": 128}
    else:
        defaults = {}
    for key, value in defaults.items():
        if "--" + key.replace("_", "-") not in given:
            setattr(args, key, value)
    if args.hyper is None:
        args.hyper = list(DEFAULT_VARIANTS)
    if args.name is None:
        args.name = "amortization" + ("_quick" if args.quick else "_full" if args.full else "")
    if not os.path.isfile(args.data):
        parser.error(f"--data {args.data} not found; point it at oasis2d_300.npz")
    if not 0 < args.val_fraction < 1 or not 0 <= args.decay_fraction < 1:
        parser.error("--val-fraction must lie in (0, 1) and --decay-fraction in [0, 1)")
    return args


if __name__ == "__main__":
    main()
