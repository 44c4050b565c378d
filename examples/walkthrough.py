"""The Keras MovieLens recipe, step by step, with npmf.

The recipe (Keras, two ``Embedding`` layers of size 3 joined by a ``Dot``,
Adam, mean squared error, 100 epochs) prints a handful of artefacts along the
way. This script reproduces every step with npmf and prints the same ones:

1. the head of the ratings and the number of distinct users and movies (943, 1682);
2. the ids encoded as category codes, and the sizes of the 80/20 split;
3. a parameter summary, in the spirit of Keras' ``model.summary()``;
4. the epoch log of the fit;
5. the training loss per epoch as a PNG with a log y axis (if matplotlib is installed);
6. the test MAE of the rounded predictions;
7. the head of the learned movie embeddings.

Run it as ``python examples/walkthrough.py`` (``--epochs 2`` for a quick look).
MovieLens-100k is read from ``$NPMF_DATA_DIR/ml-100k``, or downloaded into the
npmf cache on first use. The maths behind step 4 is in ``docs/derivation.md``.
"""

import argparse
import time

import numpy as np
import pandas as pd

import npmf


def step(number, title):
    print(f"\n=== Step {number}: {title} ===")


def load():
    step(1, "the data")
    dataset = npmf.load_movielens("ml-100k")  # user_id, item_id, rating, timestamp
    print(dataset.head())
    print("unique users, movies:", (len(dataset.user_id.unique()), len(dataset.item_id.unique())))
    return dataset


def encode_and_split(dataset, seed):
    step(2, "encode the ids, split 80/20")
    # The recipe's encoding: consecutive integer codes, in sorted order of the raw ids.
    dataset = dataset.assign(
        user_id=dataset.user_id.astype("category").cat.codes.values,
        item_id=dataset.item_id.astype("category").cat.codes.values,
    )
    print(dataset.head())
    train, test = npmf.train_test_split(dataset, test_size=0.2, random_state=seed)
    print("train, test:", (len(train), len(test)))
    return dataset, train, test


def summary(model, train, dataset):
    """Print the parameter blocks as Keras' ``model.summary()`` prints layers."""
    step(3, "the model")
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


def fit(model, train):
    step(4, "fit")
    epochs = model.epochs

    def log(epoch, seconds, loss):
        print(f"Epoch {epoch + 1}/{epochs} - {seconds:.3f}s - loss: {loss:.4f}", flush=True)

    start = time.perf_counter()
    model.fit(train.user_id, train.item_id, train.rating, callback=log)
    print(f"fit in {time.perf_counter() - start:.2f}s")


def plot_loss(model, path):
    step(5, "the loss curve")
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install 'npmf[plot]'); no plot")
        return
    matplotlib.use("Agg")  # write a file; no display needed
    import matplotlib.pyplot as plt

    ax = pd.Series(model.history_["loss"], index=np.arange(1, len(model.history_["loss"]) + 1)).plot(logy=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (MSE)")
    ax.figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(ax.figure)
    print(f"saved {path}")


def evaluate(model, test):
    step(6, "test MAE of the rounded predictions")
    # As the recipe does it; npmf.metrics.rounded_mae(test.rating, pred) is the same number.
    y_hat = np.round(model.predict(test.user_id, test.item_id), 0)
    mae = float(np.mean(np.abs(test.rating - y_hat)))
    print("rounded MAE:", round(mae, 4))
    return mae


def embeddings(model):
    step(7, "the movie embeddings")
    movie_embedding_learnt = model.item_embeddings()  # indexed by movie code, one column per factor
    print(movie_embedding_learnt.head())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs (default 100, the recipe's)")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the split and the model (default 0)")
    parser.add_argument("--plot", default="walkthrough_loss.png", help="PNG of the loss curve")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 120)

    dataset = load()
    dataset, train, test = encode_and_split(dataset, args.seed)
    # The recipe's model: k=3, U(-0.05, 0.05), Adam(0.001), batches of 32, MSE.
    model = npmf.MatrixFactorization(n_factors=3, epochs=args.epochs, random_state=args.seed)
    summary(model, train, dataset)
    fit(model, train)
    plot_loss(model, args.plot)
    evaluate(model, test)
    embeddings(model)


if __name__ == "__main__":
    main()
