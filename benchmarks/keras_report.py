"""Summary, Markdown table and loss plot of ``keras_compare.py``'s runs.

Re-render ``keras.md`` and ``keras_loss.png`` from a ``keras.json`` without
training anything::

    python benchmarks/keras_report.py benchmarks/results/keras.json
"""

import json
import sys
from pathlib import Path

import numpy as np

# The acceptance criteria.
FIDELITY_FROM_EPOCH = 5  # 1-based: the curves are compared from this epoch on
FIDELITY_LOSS_RTOL = 0.03
FIDELITY_ROUNDED_MAE_ATOL = 0.01
# Per (npmf optimizer, Keras backend, npmf dtype), at the recipe's batch size: issue 11's minimums.
SPEED_TARGETS = {("adam", "jax", "float64"): 60, ("adam", "jax", "float32"): 100, ("lazy_adam", "jax", "float64"): 120,
                 ("lazy_adam", "jax", "float32"): 120}  # fmt: skip


def test_scores(train, test, pred):
    """Rounded MAE, MAE and RMSE of ``pred`` on ``test``, also without the cold test ratings.

    A test rating is cold when its user or item never occurs in ``train``:
    Keras leaves their embeddings at the initial values, npmf predicts the
    training mean. Both sides of the comparison score with this one function.
    """
    import npmf

    y = test.rating.to_numpy(np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    cold = ~(test.user_id.isin(train.user_id) & test.item_id.isin(train.item_id)).to_numpy()
    return {
        "rounded_mae": npmf.metrics.rounded_mae(y, pred),
        "rounded_mae_warm": npmf.metrics.rounded_mae(y[~cold], pred[~cold]),
        "mae": npmf.metrics.mae(y, pred),
        "rmse": npmf.metrics.rmse(y, pred),
        "n_test_cold": int(cold.sum()),
    }


def summarize(runs, batch_size, speed_targets=True):
    """Per-configuration aggregates, the fidelity check and the speed ratios.

    Parameters
    ----------
    runs : list of dict
        Records from ``keras_compare.run_npmf`` and ``keras_recipe.run``.
    batch_size : int
        The recipe's batch size, at which fidelity and the speed targets are judged.
    speed_targets : bool
        Judge the speed ratios against ``SPEED_TARGETS`` (the plain model's; the non-negative one has none).

    Returns
    -------
    dict with ``rows`` (one per library/variant/batch size), ``fidelity`` and ``speed``.
    """
    groups = {}
    for run in runs:
        groups.setdefault((run["library"], run["variant"], run["batch_size"]), []).append(run)
    rows = [_row(key, group) for key, group in groups.items()]
    rows.sort(key=lambda r: (r["batch_size"], r["library"] != "keras", r["median_epoch_seconds"]))
    by_key = {(r["library"], r["variant"], r["batch_size"]): r for r in rows}
    speed = _speed(rows, batch_size, SPEED_TARGETS if speed_targets else {})
    return {"rows": rows, "fidelity": _fidelity(by_key, groups, batch_size), "speed": speed}


def _row(key, group):
    library, variant, batch_size = key
    losses = np.array([g["loss"] for g in group])
    return {
        "library": library,
        "variant": variant,
        "batch_size": batch_size,
        "seeds": [g["seed"] for g in group],
        "epochs": group[0]["epochs"],
        "dtype": group[0].get("dtype"),
        "versions": group[0]["versions"],
        # Pooled over every epoch of every seed; the median shrugs off the first (compiling) epoch.
        "median_epoch_seconds": float(np.median(np.concatenate([_epoch_seconds(g) for g in group]))),
        "median_epoch_seconds_by_seed": {g["seed"]: float(np.median(_epoch_seconds(g))) for g in group},
        "median_fit_seconds": float(np.median([g["fit_seconds"] for g in group])),
        "mean_loss": losses.mean(axis=0).tolist(),
        "final_loss": float(losses[:, -1].mean()),
        "rounded_mae": float(np.mean([g["rounded_mae"] for g in group])),
        "rounded_mae_std": float(np.std([g["rounded_mae"] for g in group])),
        "rounded_mae_warm": float(np.mean([g["rounded_mae_warm"] for g in group])),
        "mae": float(np.mean([g["mae"] for g in group])),
        "rmse": float(np.mean([g["rmse"] for g in group])),
        "n_test_cold": [g["n_test_cold"] for g in group],
    }


def _epoch_seconds(run):
    """Every epoch time of a run, with those of its timing-only repeat (npmf, fitted again after Keras)."""
    return np.concatenate([run["epoch_seconds"], run.get("epoch_seconds_repeat", [])])


def _fidelity(by_key, groups, batch_size):
    """npmf's curves and rounded MAE against each Keras backend's mean over seeds."""
    out = {}
    for (library, backend, bs), keras_row in by_key.items():
        if library != "keras" or bs != batch_size:
            continue
        keras_curve = np.array(keras_row["mean_loss"])
        for optimizer in ("adam", "lazy_adam"):
            row = by_key.get(("npmf", optimizer, batch_size))
            if row is None:
                continue
            check = {"rounded_mae_diff": row["rounded_mae"] - keras_row["rounded_mae"]}
            check["rounded_mae_warm_diff"] = row["rounded_mae_warm"] - keras_row["rounded_mae_warm"]
            if len(keras_curve) >= FIDELITY_FROM_EPOCH:
                tail = slice(FIDELITY_FROM_EPOCH - 1, None)
                rel = np.array(row["mean_loss"])[tail] / keras_curve[tail] - 1
                per_seed = [
                    np.abs(np.array(g["loss"])[tail] / keras_curve[tail] - 1).max()
                    for g in groups[("npmf", optimizer, bs)]
                ]
                check["max_rel_loss_diff"] = float(np.abs(rel).max())
                check["max_rel_loss_diff_epoch"] = int(np.abs(rel).argmax()) + FIDELITY_FROM_EPOCH
                check["final_rel_loss_diff"] = float(rel[-1])
                check["max_rel_loss_diff_single_seed"] = float(max(per_seed))
                check["passes"] = bool(
                    check["max_rel_loss_diff"] <= FIDELITY_LOSS_RTOL
                    and abs(check["rounded_mae_diff"]) <= FIDELITY_ROUNDED_MAE_ATOL
                )
            out[f"npmf {optimizer} vs keras {backend}"] = check
    return out


def _speed(rows, batch_size, targets):
    """Per batch size: each Keras backend's median epoch time over each npmf optimizer's."""
    out = {}
    for bs in sorted({r["batch_size"] for r in rows}):
        keras_rows = [r for r in rows if r["library"] == "keras" and r["batch_size"] == bs]
        npmf_rows = [r for r in rows if r["library"] == "npmf" and r["batch_size"] == bs]
        ratios = {}
        for n in npmf_rows:
            for k in keras_rows:
                ratio = k["median_epoch_seconds"] / n["median_epoch_seconds"]
                # Paired: each seed's Keras median over npmf's median measured around it.
                paired = [
                    k["median_epoch_seconds_by_seed"][seed] / n["median_epoch_seconds_by_seed"][seed]
                    for seed in k["median_epoch_seconds_by_seed"]
                    if seed in n["median_epoch_seconds_by_seed"]
                ]
                entry = {"ratio": ratio, "ratio_by_seed": paired}
                target = targets.get((n["variant"], k["variant"], n.get("dtype"))) if bs == batch_size else None
                if target:
                    entry.update(target=target, passes=bool(ratio >= target))
                ratios[f"npmf {n['variant']} vs keras {k['variant']}"] = entry
        fastest = min(keras_rows, key=lambda r: r["median_epoch_seconds"])["variant"] if keras_rows else None
        out[str(bs)] = {"fastest_keras": fastest, "ratios": ratios}
    return out


# ----------------------------------------------------------------- output
def write(experiment, out, append=False):
    """Save ``experiment`` to ``out/keras.json`` (added to it with ``append``), then render the rest."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "keras.json"
    data = {"experiments": []}
    if append and path.exists():
        data = json.loads(path.read_text())
    data["experiments"].append(experiment)
    path.write_text(json.dumps(data, indent=1) + "\n")
    render(data, out)
    print(
        f"wrote {path}, {out / 'keras.md'}" + ("" if _has_matplotlib() else " (no plot: matplotlib is not installed)")
    )


def render(data, out):
    (out / "keras.md").write_text(markdown(data))
    if _has_matplotlib():
        plot(data, out / "keras_loss.png")


def _has_matplotlib():
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


NONNEG = (
    "The tutorial's second model, non-negative MF: Keras' `Embedding(..., embeddings_constraint=NonNeg())` on "
    "both embeddings against npmf's `MatrixFactorization(non_negative=True)`, both clipping every factor to >= 0 "
    "after each optimiser step from a U(-0.05, 0.05) start."
)


def _is_nonneg(exp):
    return exp["settings"].get("model", "plain") == "nonneg"


def markdown(data):
    """The results as Markdown: per experiment, the machine, the table, fidelity and speed."""
    nonneg = any(_is_nonneg(exp) for exp in data["experiments"])
    title = "npmf against the Keras MovieLens-100k recipe" + (", non-negative MF" if nonneg else "")
    lines = [f"# {title}", ""] + ([NONNEG, ""] if nonneg else [])
    lines += ["Generated by `benchmarks/keras_compare.py` from `keras.json`; do not edit by hand.", ""]
    for exp in data["experiments"]:
        lines += _experiment_md(exp)
    return "\n".join(lines)


def _experiment_md(exp):
    m, s, summary = exp["machine"], exp["settings"], exp["summary"]
    skip = ("cpu", "cores", "load_avg_1_5_15", "platform")
    libs = ", ".join(f"{k} {v}" for k, v in m.items() if k not in skip and v != "not installed")
    loads = [r["loadavg_before"][0] for r in exp["runs"]] + [exp["loadavg_end"][0]]
    lines = [
        f"## `{exp['command'].strip()}`",
        "",
        f"- Run {exp['started_utc']} to {exp['finished_utc']} on **{m['cpu']}, {m['cores']} cores** "
        f"({m['platform']}); {libs}. The machine was shared: 1-minute load average "
        f"{min(loads):.2f} to {max(loads):.2f} during the run.",
        f"- {len(s['seeds'])} seed(s) x {s['epochs']} epochs; "
        f"Keras backends run: {', '.join(s['backends_run']) or 'none'}. "
        "Same split, k=3, U(-0.05, 0.05), Adam(0.001, 0.9, 0.999, 1e-7) on both sides"
        + (
            ", factors clipped to >= 0 after every step (Keras `NonNeg`, npmf `non_negative=True`)."
            if _is_nonneg(exp)
            else "."
        ),
        "- s/epoch: median over all epochs of all seeds (npmf's include a timing-only second fit right after "
        "the Keras runs of the same seed, to sample the load around them); fit s: median over seeds of the wall time "
        "of `fit` "
        "(Keras: tracing and XLA/graph compilation included; npmf: kernels already loaded from Numba's cache).",
        "",
        "| Run | dtype | Batch | s/epoch (median) | Fit s (median) | Final loss | Rounded MAE | MAE | RMSE | "
        "Fastest Keras s/epoch ÷ this |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    fastest = {
        bs: min((r for r in summary["rows"] if r["library"] == "keras" and r["batch_size"] == bs),
                key=lambda r: r["median_epoch_seconds"], default=None)
        for bs in {r["batch_size"] for r in summary["rows"]}
    }  # fmt: skip
    for r in summary["rows"]:
        name = (
            f"Keras {r['versions'].get('keras', '')} on {r['variant']}"
            if r["library"] == "keras"
            else f"npmf `{r['variant']}`"
        )
        ref = fastest[r["batch_size"]]
        ratio = (
            f"{_times(ref['median_epoch_seconds'] / r['median_epoch_seconds'])} (vs {ref['variant']})" if ref else "-"
        )
        lines.append(
            f"| {name} | {r['dtype']} | {r['batch_size']} | {r['median_epoch_seconds']:.4f} "
            f"| {r['median_fit_seconds']:.2f} | {r['final_loss']:.4f} "
            f"| {r['rounded_mae']:.4f} ± {r['rounded_mae_std']:.4f} | {r['mae']:.4f} | {r['rmse']:.4f} | {ratio} |"
        )
    lines += [
        "",
        "Metrics are means over seeds on the 20% test split; rounded MAE is the recipe's `np.round(pred)`.",
        "",
    ]
    if summary["fidelity"]:
        lines += [f"**Fidelity** (batch {s['batch_sizes'][0]}; loss curves from epoch {FIDELITY_FROM_EPOCH} on, "
                  f"against the Keras mean over seeds; target {FIDELITY_LOSS_RTOL:.0%} and rounded MAE within "
                  f"{FIDELITY_ROUNDED_MAE_ATOL} for `adam`):", ""]  # fmt: skip
        for name, c in summary["fidelity"].items():
            text = f"- {name}: rounded MAE {c['rounded_mae_diff']:+.4f}"
            if "max_rel_loss_diff" in c:
                text += (
                    f"; mean loss curve within {c['max_rel_loss_diff']:.2%} (largest at epoch "
                    f"{c['max_rel_loss_diff_epoch']}), final loss {c['final_rel_loss_diff']:+.2%}, "
                    f"any single seed within {c['max_rel_loss_diff_single_seed']:.2%}"
                )
                if "adam vs" in name and "lazy" not in name:
                    text += " — **meets the target**" if c["passes"] else " — **misses the target**"
            lines.append(text + ".")
        lines.append("")
    for bs, sp in summary["speed"].items():
        if not sp["ratios"]:
            continue
        lines.append(f"**Speed** at batch {bs} (Keras median s/epoch ÷ npmf median s/epoch, same run):")
        lines.append("")
        for name, e in sp["ratios"].items():
            text = f"- {name}: {e['ratio']:.1f}x"
            if len(e.get("ratio_by_seed", [])) > 1:
                text += f" (per seed, paired: {', '.join(f'{x:.1f}x' for x in e['ratio_by_seed'])})"
            if "target" in e:
                text += f" (target {e['target']}x: {'met' if e['passes'] else 'not met'})"
            lines.append(text)
        lines.append("")
    return lines


def _times(ratio):
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2f}x"


def plot(data, path):
    """Loss curves on a log axis, one panel per batch size; Keras' band spans its seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exp = max(data["experiments"], key=lambda e: (e["settings"]["epochs"], len(e["settings"]["backends_run"])))
    batch_sizes = exp["settings"]["batch_sizes"]
    fig, axes = plt.subplots(1, len(batch_sizes), figsize=(6 * len(batch_sizes), 4.2), squeeze=False)
    styles = {"adam": ("k", "--"), "lazy_adam": ("tab:red", ":")}
    for ax, bs in zip(axes[0], batch_sizes):
        for row in (r for r in exp["summary"]["rows"] if r["batch_size"] == bs):
            runs = [
                r
                for r in exp["runs"]
                if (r["library"], r["variant"], r["batch_size"]) == (row["library"], row["variant"], bs)
            ]
            losses = np.array([r["loss"] for r in runs])
            epochs = np.arange(1, losses.shape[1] + 1)
            if row["library"] == "keras":
                label = f"Keras ({row['variant']}), mean of {len(runs)} seeds"
                line = ax.plot(epochs, losses.mean(0), lw=2.5, alpha=0.6, label=label)[0]
                ax.fill_between(epochs, losses.min(0), losses.max(0), color=line.get_color(), alpha=0.2)
            else:
                color, ls = styles.get(row["variant"], (None, "-"))
                ax.plot(
                    epochs,
                    losses.mean(0),
                    color=color,
                    ls=ls,
                    lw=1.5,
                    label=f"npmf {row['variant']}, mean of {len(runs)} seeds",
                )
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (MSE)")
        ax.set_title(f"MovieLens-100k, k=3, Adam 0.001, batch {bs}" + (", non-negative" if _is_nonneg(exp) else ""))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/keras_report.py path/to/keras.json")
    json_path = Path(sys.argv[1])
    render(json.loads(json_path.read_text()), json_path.parent)
