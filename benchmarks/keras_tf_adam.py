r"""Why Keras on TensorFlow starts faster at batch 1024: Adam's v fed with squared slices.

On TensorFlow an embedding's gradient is a ``tf.IndexedSlices`` with one slice per
occurrence of a row in the batch, and Keras 3 computes Adam's ``ops.square(gradient)``
slice by slice (``keras/src/backend/tensorflow/sparse.py``, ``elementwise_unary``)
before the slices of a repeated row are summed. So the second moment sees

.. math:: \sum_j g_j^2 \quad\text{instead of}\quad \Big(\sum_j g_j\Big)^2

over the occurrences j of a row. JAX (and npmf) use the latter, the textbook's.
This script runs dense Adam both ways in plain NumPy, on npmf's split,
initialisation and shuffles, and prints the first epochs' loss::

    python benchmarks/keras_tf_adam.py --batch-size 1024 --epochs 6
"""

import argparse

import numpy as np

import npmf


def train(u, i, r, batch_size, epochs, seed, squared_slices, k=3):
    """Per-epoch loss of dense Keras Adam (0.001, 0.9, 0.999, 1e-7), drawn as npmf draws."""
    rng = np.random.default_rng(seed)
    params = [rng.uniform(-0.05, 0.05, (u.max() + 1, k)), rng.uniform(-0.05, 0.05, (i.max() + 1, k))]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t, losses = 0, []
    for _ in range(epochs):
        perm, total = rng.permutation(len(r)), 0.0
        for start in range(0, len(r), batch_size):
            j = perm[start : start + batch_size]
            W, H = params
            e = (W[u[j]] * H[i[j]]).sum(1) - r[j]
            total += float(e @ e)
            # One gradient slice per occurrence: d(mean e^2)/dw_u and /dh_i.
            slices = [(2 / len(j)) * e[:, None] * H[i[j]], (2 / len(j)) * e[:, None] * W[u[j]]]
            t += 1
            alpha = 0.001 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            for q, rows in enumerate((u[j], i[j])):
                g = np.zeros_like(params[q])
                np.add.at(g, rows, slices[q])
                if squared_slices:
                    g2 = np.zeros_like(params[q])
                    np.add.at(g2, rows, slices[q] ** 2)
                else:
                    g2 = g * g
                m[q] += (g - m[q]) * 0.1
                v[q] += (g2 - v[q]) * 0.001
                params[q] -= alpha * m[q] / (np.sqrt(v[q]) + 1e-7)
        losses.append(total / len(r))
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    df = npmf.load_movielens("ml-100k")
    train_df, _ = npmf.train_test_split(df, test_size=0.2, random_state=args.seed)
    u = train_df.user_id.astype("category").cat.codes.to_numpy()
    i = train_df.item_id.astype("category").cat.codes.to_numpy()
    r = train_df.rating.to_numpy(np.float64)
    for name, squared in (("(sum g)^2, as JAX and npmf", False), ("sum g^2, as Keras on TensorFlow", True)):
        losses = train(u, i, r, args.batch_size, args.epochs, args.seed, squared)
        print(f"{name:34s}", " ".join(f"{x:.3f}" for x in losses))


if __name__ == "__main__":
    main()
