"""The Keras MovieLens-100k recipe, trained once and timed: the Keras side of ``keras_compare.py``.

Keras chooses its backend when it is first imported, so ``keras_compare.py``
runs this file once per (backend, seed, batch size) in a fresh process::

    python benchmarks/keras_recipe.py --backend jax --seed 0 --epochs 100 --batch-size 32 --out run.json

``--model nonneg`` trains the tutorial's second model, the same network with
``embeddings_constraint=keras.constraints.NonNeg()`` on both embeddings: Keras
clips every embedding weight to >= 0 after each optimiser step (the initial
weights are still U(-0.05, 0.05), so the first step reads negative ones).

The model is the recipe's, layer for layer: ids encoded with
``astype("category").cat.codes`` on the whole data set, ``Embedding(n_users + 1,
3)`` and ``Embedding(n_items + 1, 3)`` with Keras' default initialiser
``RandomUniform(-0.05, 0.05)``, ``Flatten``, ``Dot(axes=1)``, compiled with
``Adam(0.001, 0.9, 0.999, 1e-7)`` and mean squared error, fitted with
``shuffle=True``. The split is ``npmf.train_test_split(df, 0.2, seed)``, the one
npmf is trained on. The test metrics use ``np.round(predictions)`` as the recipe
does.
"""

import argparse
import json
import os
import sys
import time
from importlib import metadata

import keras_report  # sibling script (this folder is on sys.path when run as a script)

BACKEND_PACKAGES = {"jax": ("jax", "jaxlib"), "tensorflow": ("tensorflow",), "torch": ("torch",)}


MODELS = ("plain", "nonneg")


def build_model(keras, n_users, n_items, n_factors=3, model="plain"):
    """The recipe's model: two embeddings, flattened, and their dot product; ``"nonneg"`` constrains both >= 0."""

    def embedding(n, name):
        constraint = keras.constraints.NonNeg() if model == "nonneg" else None
        return keras.layers.Embedding(n + 1, n_factors, name=name, embeddings_constraint=constraint)

    user_in = keras.Input(shape=(1,), name="User")
    item_in = keras.Input(shape=(1,), name="Item")
    user_vec = keras.layers.Flatten()(embedding(n_users, "User-Embedding")(user_in))
    item_vec = keras.layers.Flatten()(embedding(n_items, "Item-Embedding")(item_in))
    prod = keras.layers.Dot(axes=1, name="DotProduct")([item_vec, user_vec])
    return keras.Model([user_in, item_in], prod)


def run(backend, seed, epochs, batch_size, test_size=0.2, model_name="plain"):
    """Train the recipe once on ``backend``; the record ``keras_compare.py`` stores.

    Returns
    -------
    dict
        ``loss`` and ``epoch_seconds`` (lists, one entry per epoch), ``fit_seconds``
        (wall time of ``model.fit``, tracing and compilation included), the test
        metrics, and the Keras and backend versions.
    """
    os.environ["KERAS_BACKEND"] = backend
    import keras  # only now: the backend is read at import
    import numpy as np

    import npmf

    keras.utils.set_random_seed(seed)
    df = npmf.load_movielens("ml-100k")
    # As in the recipe: codes over the whole data set, before the split.
    df["user_code"] = df.user_id.astype("category").cat.codes.to_numpy()
    df["item_code"] = df.item_id.astype("category").cat.codes.to_numpy()
    train, test = npmf.train_test_split(df, test_size=test_size, random_state=seed)
    model = build_model(keras, df.user_id.nunique(), df.item_id.nunique(), model=model_name)
    adam = keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    model.compile(optimizer=adam, loss="mean_squared_error")

    clock = _EpochClock(keras)
    start = time.perf_counter()
    history = model.fit(
        [train.user_code.to_numpy(), train.item_code.to_numpy()],
        train.rating.to_numpy(np.float32),
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=[clock.callback],
    )
    fit_seconds = time.perf_counter() - start
    pred = model.predict([test.user_code.to_numpy(), test.item_code.to_numpy()], batch_size=4096, verbose=0).ravel()
    return {
        "library": "keras",
        "variant": backend,
        "model": model_name,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "loss": [float(x) for x in history.history["loss"]],
        "epoch_seconds": clock.seconds,
        "fit_seconds": fit_seconds,
        **keras_report.test_scores(train, test, pred),
        "dtype": keras.backend.floatx(),
        "versions": {"keras": keras.__version__, **backend_versions(backend)},
    }


def backend_versions(backend):
    """Installed versions of the packages behind ``backend``."""
    out = {}
    for name in BACKEND_PACKAGES[backend]:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


class _EpochClock:
    """Wall time of each epoch, from ``on_epoch_begin`` to ``on_epoch_end``.

    ``on_epoch_end`` receives the epoch's logs, which Keras has already fetched
    from the device, so asynchronous dispatch (JAX) cannot hide work from it.
    """

    def __init__(self, keras):
        self.seconds = []
        clock = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                clock.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                clock.seconds.append(time.perf_counter() - clock.start)
                print(f"keras: epoch {epoch + 1} {clock.seconds[-1]:.3f}s loss {logs['loss']:.4f}", file=sys.stderr)

        self.callback = Callback()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True, choices=sorted(BACKEND_PACKAGES))
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--out", required=True, help="JSON file to write the record to")
    parser.add_argument("--model", default="plain", choices=MODELS, help="plain MF (default) or non-negative MF")
    args = parser.parse_args(argv)
    record = run(args.backend, args.seed, args.epochs, args.batch_size, model_name=args.model)
    with open(args.out, "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main()
