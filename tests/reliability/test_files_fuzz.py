"""Fuzzing saved model files (issue 12, class 1): no mutation crashes the process that loads and uses it.

Hypothesis mutates a good file (arrays dropped, reshaped, retyped,
truncated, swapped; ids duplicated; codes out of range; NaN; bytes cut).
One subprocess loads each, predicts, ranks and trains one epoch: each must
either work, with finite predictions, or raise ValueError (training may
also raise FloatingPointError, for a valid file with extreme values). A segfault or any
other exception fails the test, naming the mutation.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import planted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npmf

USE = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    import npmf
    warnings.simplefilter("ignore")
    for path in sys.argv[1:]:
        print("start", path, flush=True)
        try:
            model = npmf.load(path)
        except ValueError:
            print("refused", path, flush=True)
            continue
        users = list(model.user_ids_[:5]) + list(model.user_ids_[:1])
        items = list(model.item_ids_[:5]) + list(model.item_ids_[-1:])
        pred = model.predict(users, items)
        assert np.isfinite(pred).all(), pred
        model.recommend(model.user_ids_[0], n=3)
        if hasattr(model, "partial_fit"):
            try:  # a valid but extreme file (a factor of 1e308) may diverge: a clear error, nothing changed
                model.partial_fit(users, items, np.full(len(users), 3.0), epochs=1)
            except FloatingPointError:
                pass
            assert np.isfinite(model.predict(users, items)).all()
        print("used", path, flush=True)
    """
)

ARRAYS = ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids", "item_ids", "global_mean",
          "rating_range", "seen_users", "seen_items", "n_steps", "m_W", "v_W", "m_H", "v_H", "m_bu", "v_bu",
          "m_bi", "v_bi")  # fmt: skip


def _mutate(arrays, op, name, x):
    a = arrays.get(name)
    if a is None:
        return
    if op == "drop":
        del arrays[name]
    elif op == "transpose":
        arrays[name] = a.T.copy()
    elif op == "ravel":
        arrays[name] = a.ravel()
    elif op == "add-axis":
        arrays[name] = a[None]
    elif op == "truncate":
        arrays[name] = a.reshape(-1)[: x % (a.size + 1)] if a.ndim <= 1 else a[: x % (len(a) + 1)]
    elif op == "extend":
        arrays[name] = np.concatenate([a.reshape(-1), a.reshape(-1)[:1]]) if a.ndim <= 1 else np.vstack([a, a[:1]])
    elif op in ("int32", "int64", "float32", "float16", "uint8", "bool", "complex128", "U5"):
        try:
            arrays[name] = a.astype(op)
        except (ValueError, TypeError, OverflowError):  # e.g. text that is no number: the mutation does not apply
            return
    elif op == "duplicate" and a.size > 1:
        b = a.copy().reshape(-1)
        b[1] = b[0]
        arrays[name] = b.reshape(a.shape)
    elif op == "out-of-range" and a.size and a.dtype.kind in "iuf":
        b = a.astype(np.int64 if a.dtype.kind in "iu" else a.dtype).reshape(-1).copy()
        b[x % b.size] = [-1, 10**6, -(10**9), 2**40][x % 4]
        arrays[name] = b.reshape(a.shape)
    elif op == "nan" and a.size and a.dtype.kind == "f":
        b = a.copy().reshape(-1)
        b[x % b.size] = [np.nan, np.inf, -np.inf, 1e308][x % 4]
        arrays[name] = b.reshape(a.shape)
    elif op == "swap":
        other = ARRAYS[x % len(ARRAYS)]
        if other in arrays:
            arrays[name], arrays[other] = arrays[other], a


OPS = ("drop", "transpose", "ravel", "add-axis", "truncate", "extend", "int32", "int64", "float32", "float16",
       "uint8", "bool", "complex128", "U5", "duplicate", "out-of-range", "nan", "swap")  # fmt: skip
mutation = st.tuples(st.sampled_from(OPS), st.sampled_from(ARRAYS), st.integers(0, 10**6))


@pytest.mark.slow
def test_mutated_files_load_and_work_or_are_refused_and_never_crash(tmp_path):
    u, i, r = planted(n_users=12, n_items=9, n_ratings=200)
    model = npmf.MatrixFactorization(epochs=2, biases=True, optimizer="lazy_adam", random_state=0).fit(u, i, r)
    model.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as data:
        good = {k: data[k] for k in data.files}
    files = {}

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(mutation, min_size=1, max_size=3), st.integers(0, 10**6))
    def write(mutations, cut):
        arrays = {k: v.copy() for k, v in good.items()}
        for op, name, x in mutations:
            _mutate(arrays, op, name, x)
        path = tmp_path / f"m{len(files)}.npz"
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        if cut % 7 == 0:  # and sometimes cut the bytes too
            data = path.read_bytes()
            path.write_bytes(data[: cut % len(data)])
        files[str(path)] = json.dumps(mutations) + (f" cut at {cut % 7 == 0 and cut}" if cut % 7 == 0 else "")

    write()
    paths = list(files)
    run = subprocess.run([sys.executable, "-c", USE, *paths], capture_output=True, text=True, timeout=300)
    lines = run.stdout.splitlines()
    started = [line.split(" ", 1)[1] for line in lines if line.startswith("start ")]
    ended = [line.split(" ", 1)[1] for line in lines if line.startswith(("refused ", "used "))]
    if run.returncode != 0:
        culprit = started[-1] if started else None
        pytest.fail(f"exit {run.returncode} on {files.get(culprit)}:\n{run.stderr[-3000:]}")
    assert started == ended == paths
    used = sum(line.startswith("used ") for line in lines)
    print(f"{used} of {len(paths)} mutated files loaded and worked")
    assert 0 < used < len(paths)  # some mutations are harmless (e.g. int32 ids), most are refused
