# %% [markdown]
# # The Keras MovieLens recipe, step by step, with npmf
#
# The recipe (Nipun Batra's "Recommender Systems in Keras": two `Embedding` layers of size 3 joined by a `Dot`,
# Adam, mean squared error, 100 epochs) prints a handful of artefacts along the way. Steps 1-7 reproduce every one
# of them with npmf: the head of the ratings and the counts, the category codes and the 80/20 split, a parameter
# summary, the epoch log, the loss curve on a log axis, the test MAE of the rounded predictions and the learned movie
# embeddings. Steps 8-10 add what the tutorial lacks: the gradient check, dense against lazy Adam, and the
# non-negative model.
#
# This notebook and `examples/walkthrough.py` are one source: the script holds the cells (`# %%` markers) and
# `python examples/build_notebook.py` writes and runs the notebook from it (a test keeps the two equal). Run the
# script as `python examples/walkthrough.py` (`--epochs 2` for a quick look). MovieLens-100k is read from
# `$NPMF_DATA_DIR/ml-100k`, or downloaded into the npmf cache on first use. The maths behind step 4 is in
# `docs/derivation.md`.

# %%
import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import npmf

# The script takes its settings from the command line; the notebook takes the defaults, with the number of epochs
# from $NPMF_WALKTHROUGH_EPOCHS when set (the tests run it with 2).
IN_NOTEBOOK = "ipykernel" in sys.modules
parser = argparse.ArgumentParser(description="The Keras MovieLens recipe, step by step, with npmf.")
parser.add_argument("--epochs", type=int, default=int(os.environ.get("NPMF_WALKTHROUGH_EPOCHS", 100)))
parser.add_argument("--seed", type=int, default=0, help="random_state of the split and the models (default 0)")
parser.add_argument(
    "--plot", default="walkthrough_loss.png", help="PNG of the loss curve (the script's; a notebook shows it)"
)
args = parser.parse_args([] if IN_NOTEBOOK else None)
EPOCHS, SEED = args.epochs, args.seed
pd.set_option("display.width", 120)
print(f"npmf {npmf.__version__}, {EPOCHS} epochs, seed {SEED}")

# %% [markdown]
# ## Step 1: the data
# 100,000 ratings (1-5 stars) of 1682 movies by 943 users.

# %%
dataset = npmf.load_movielens("ml-100k")  # user_id, item_id, rating, timestamp
print(dataset.head())
print("unique users, movies:", (len(dataset.user_id.unique()), len(dataset.item_id.unique())))

# %% [markdown]
# ## Step 2: encode the ids, split 80/20
# The recipe's encoding: consecutive integer codes, in sorted order of the raw ids. npmf encodes raw ids the same way
# inside `fit`, so this step is only needed to follow the recipe; `movie_ids[code]` gives a code's raw id back.

# %%
movie_ids = dataset.item_id.astype("category").cat.categories
dataset = dataset.assign(
    user_id=dataset.user_id.astype("category").cat.codes.values,
    item_id=dataset.item_id.astype("category").cat.codes.values,
)
print(dataset.head())
train, test = npmf.train_test_split(dataset, test_size=0.2, random_state=SEED)
print("train, test:", (len(train), len(test)))


# %% [markdown]
# ## Step 3: the model
# The recipe's model: k=3, factors drawn from U(-0.05, 0.05), Adam(0.001), batches of 32, mean squared error. These
# are `MatrixFactorization`'s defaults. The summary lists the parameter blocks as Keras' `model.summary()` lists
# layers.


# %%
def summary(model, train, dataset):
    """Print the parameter blocks as Keras' ``model.summary()`` prints layers."""
    k = model.n_factors
    # npmf holds a row for every user and movie seen in training; the others are predicted the mean rating.
    n_users, n_items = train.user_id.nunique(), train.item_id.nunique()
    blocks = [
        ("user_factors_  W", (n_users, k), True),
        ("item_factors_  H", (n_items, k), True),
        ("user_bias_     b_u", (n_users,), model.biases),
        ("item_bias_     b_i", (n_items,), model.biases),
    ]
    rule = "_" * 72
    print(f'Model: "MatrixFactorization" (n_factors={k}, optimizer={model.optimizer!r}, biases={model.biases})')
    print(rule)
    print(f" {'Block':<28}{'Shape':<16}{'Param #':>10}{'Trainable':>14}")
    print("=" * 72)
    for name, shape, trained in blocks:
        print(f" {name:<28}{str(shape):<16}{int(np.prod(shape)):>10,}{'yes' if trained else 'no (zero)':>14}")
    print("=" * 72)
    total = sum(int(np.prod(s)) for _, s, _ in blocks)
    trainable = sum(int(np.prod(s)) for _, s, t in blocks if t)
    print(f"Total params: {total:,}")
    print(f"Trainable params: {trainable:,}")
    print(f"Non-trainable params: {total - trainable:,}")
    if model.optimizer != "sgd":
        print(f"Optimizer state: {2 * trainable:,} (Adam's m and v for each trainable parameter)")
    print(rule)
    n_all, m_all = dataset.user_id.nunique(), dataset.item_id.nunique()
    print(
        f"(The recipe's Keras model has ({n_all} + 1 + {m_all} + 1) x {k} = {(n_all + 1 + m_all + 1) * k:,} "
        "trainable params: an Embedding row for every id in the whole data set, plus one never used.)"
    )


model = npmf.MatrixFactorization(n_factors=3, epochs=EPOCHS, random_state=SEED)
summary(model, train, dataset)


# %% [markdown]
# ## Step 4: fit
# The callback receives each epoch's number, wall time and loss (the mean over the epoch's ratings of their
# minibatch's loss before its step, which is what Keras prints). Every 10th epoch is printed here; the first one
# includes Numba's compilation of the kernels.


# %%
def epoch_log(epochs, every=10):
    """A ``fit`` callback printing the first epoch, every ``every``-th and the last, as Keras' log lines."""

    def log(epoch, seconds, loss):
        if epoch == 0 or (epoch + 1) % every == 0 or epoch + 1 == epochs:
            print(f"Epoch {epoch + 1}/{epochs} - {seconds:.3f}s - loss: {loss:.4f}", flush=True)

    return log


model.fit(train.user_id, train.item_id, train.rating, callback=epoch_log(EPOCHS))
print(f"fit in {sum(model.history_['seconds']):.2f}s")


# %% [markdown]
# ## Step 5: the loss curve
# The training loss per epoch, on a log axis as in the recipe (with matplotlib: `pip install 'npmf[plot]'`; the
# script writes the PNG named by `--plot`).


# %%
def plot_losses(curves, path=None):
    """Draw the loss curves ``{label: losses}`` on a log axis; write a PNG at ``path``, or show it in a notebook."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install 'npmf[plot]'); no plot")
        return
    if path is not None:
        matplotlib.use("Agg")  # write a file; no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=80)
    for label, losses in curves.items():
        ax.plot(np.arange(1, len(losses) + 1), losses, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (MSE)")
    if len(curves) > 1:
        ax.legend()
    if path is None:
        plt.show()
    else:
        fig.savefig(path, dpi=100, bbox_inches="tight")
        print(f"saved {path}")
    plt.close(fig)


plot_losses({"adam": model.history_["loss"]}, None if IN_NOTEBOOK else args.plot)

# %% [markdown]
# ## Step 6: the test MAE of the rounded predictions
# As the recipe computes it; `npmf.metrics.rounded_mae(test.rating, pred)` is the same number.

# %%
y_hat = np.round(model.predict(test.user_id, test.item_id), 0)
mae = float(np.mean(np.abs(test.rating - y_hat)))
print("rounded MAE:", round(mae, 4))

# %% [markdown]
# ## Step 7: the movie embeddings
# One row per movie code, one column per factor. Their signs and directions are arbitrary: any rotation of W and H
# predicts the same ratings.

# %%
movie_embedding_learnt = model.item_embeddings()  # indexed by movie code, one column per factor
print(movie_embedding_learnt.head())

# %% [markdown]
# ## Step 8: the gradient check
# The recipe trusts Keras' automatic differentiation; npmf's gradients are derived by hand (`docs/derivation.md`), so
# they are checked against central finite differences on a small random float64 problem, in which every user and
# item repeats in the batch and biases and L2 are on. `npmf gradcheck` on the command line prints the same check with
# every entry.

# %%
check = npmf.gradcheck()
for name, block in check["blocks"].items():
    print(f"{name:<3} shape {str(tuple(block['shape'])):<8} max rel. error {block['max_rel_error']:.1e}")
print(f"max rel. error {check['max_rel_error']:.1e} <= {check['tolerance']:.0e}: passed={check['passed']}")

# %% [markdown]
# A learner checks their own gradient function the same way, passing it as `gradients=`: the exercise in
# `examples/exercises/` leaves the body of such a function for the student to write, and the check names the block
# and the likely mistake when it is wrong. Here npmf's own reference, `npmf.sgd.gradients.gradients`, stands in.

# %%
own = npmf.gradcheck(gradients=npmf.sgd.gradients.gradients)
print(f"reference gradients: max rel. error {own['max_rel_error']:.1e}, passed={own['passed']}")

# %% [markdown]
# ## Step 9: dense against lazy Adam
# Keras' Adam is dense: at every step every parameter's moments decay and every parameter moves, also the rows of
# users and movies absent from the batch. `optimizer="lazy_adam"` updates only the rows in the batch (with the global
# step count in the bias correction): far less work per step, and a different loss curve. Both are fitted on the same
# split from the same seed. Seconds per epoch are the median over the epochs after the first (which compiles).

# %%
lazy = npmf.MatrixFactorization(n_factors=3, epochs=EPOCHS, optimizer="lazy_adam", random_state=SEED)
lazy.fit(train.user_id, train.item_id, train.rating, callback=epoch_log(EPOCHS))
fits = {"adam": model, "lazy_adam": lazy}
plot_losses(
    {name: m.history_["loss"] for name, m in fits.items()},
    None if IN_NOTEBOOK else Path(args.plot).with_name(Path(args.plot).stem + "_optimizers.png"),
)
rows = {}
for name, m in fits.items():
    pred = m.predict(test.user_id, test.item_id)
    rows[name] = {
        "final loss": m.history_["loss"][-1],
        "test RMSE": npmf.metrics.rmse(test.rating, pred),
        "rounded MAE": npmf.metrics.rounded_mae(test.rating, pred),
        "s/epoch": float(np.median(m.history_["seconds"][1:] or m.history_["seconds"])),
    }
print(pd.DataFrame(rows).T.round(4))
print(f"lazy Adam takes {rows['lazy_adam']['s/epoch'] / rows['adam']['s/epoch']:.2f}x the time of dense Adam per epoch")

# %% [markdown]
# ## Step 10: the non-negative model
# The tutorial's second model is the same network with `embeddings_constraint=NonNeg()`: Keras clips every weight to
# zero or above after each optimiser step. `non_negative=True` does the same to W and H (the factors start in
# U(-0.05, 0.05), as Keras', and are clipped after the first step).

# %%
nmf = npmf.MatrixFactorization(n_factors=3, epochs=EPOCHS, non_negative=True, random_state=SEED)
nmf.fit(train.user_id, train.item_id, train.rating, callback=epoch_log(EPOCHS))
pred = nmf.predict(test.user_id, test.item_id)
print("rounded MAE:", round(npmf.metrics.rounded_mae(test.rating, pred), 4))
print("smallest factor:", min(nmf.user_factors_.min(), nmf.item_factors_.min()))

# %% [markdown]
# Its movie embeddings, indexed by title (from `u.item`); then, among the movies with at least 100 training ratings
# (the others' factors rest on few ratings), those with the most and the least of each factor:

# %%
items = pd.read_csv(
    npmf.data.get_data_home() / "ml-100k" / "u.item", sep="|", encoding="latin-1", header=None, usecols=[0, 1]
)
titles = pd.Series(items[1].values, index=items[0].values)
nonneg_embeddings = nmf.item_embeddings()  # indexed by movie code
n_ratings = train.item_id.value_counts().reindex(nonneg_embeddings.index).values
nonneg_embeddings.index = pd.Index(titles[movie_ids[nonneg_embeddings.index]].values, name="title")
print(nonneg_embeddings.head(10).round(3))
print(f"exactly zero: {np.mean(nonneg_embeddings.values == 0):.1%} of the entries")
well_known = nonneg_embeddings[n_ratings >= 100]
for factor in well_known.columns:
    print(f"\nfactor {factor}, most:  " + "; ".join(well_known[factor].nlargest(5).index))
    print(f"factor {factor}, least: " + "; ".join(well_known[factor].nsmallest(5).index))

# %% [markdown]
# **Reading them.** Each movie is now an additive mix of three traits, and its predicted rating by a user is the sum,
# trait by trait, of how much of the trait the movie has times how much the user likes it. No trait can cancel
# another, so the embeddings read as parts: a large entry means a lot of that trait, and zero means none of it. The
# titles with the most and the least of a factor name the trait, as Batra's tutorial reads them. The plain model's
# factors (step 7) allow no such reading: a rotation of W and H, sign flips included, predicts the same ratings.
