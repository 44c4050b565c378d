"""Class 1 of issue 12: a saved file is checked in full before use; a bad one is a ValueError naming the file.

Each case damages one thing in a good file (written as ``save`` writes it,
with ``np.savez``) and asserts the ValueError, that it names the file and
what is wrong, and that loading left the file as it was.
"""

import json

import numpy as np
import pytest
from helpers import planted

import npmf

FORMAT = "npmf-matrix-factorization-1"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """(arrays, meta) of a small fitted MatrixFactorization with biases, and of a Bayesian one."""
    u, i, r = planted(n_users=12, n_items=9, n_ratings=200)
    folder = tmp_path_factory.mktemp("good")
    out = {}
    for name, model in (
        ("mf", npmf.MatrixFactorization(epochs=2, biases=True, random_state=0)),
        ("bayes", npmf.BayesianMatrixFactorization(n_factors=2, epochs=4, burn_in=1, n_kept_samples=2, random_state=0)),
    ):
        model.fit(u, i, r)
        model.save(folder / f"{name}.npz")
        with np.load(folder / f"{name}.npz") as data:
            arrays = {k: data[k] for k in data.files}
        out[name] = (arrays, json.loads(str(arrays.pop("meta"))))
    return out


def _write(path, arrays, meta):
    meta = meta if isinstance(meta, str) else json.dumps(meta)
    with open(path, "wb") as f:
        np.savez(f, **{"meta": np.array(meta), **arrays})


def _set(name, value):
    def edit(arrays, meta):
        arrays[name] = value(arrays[name]) if callable(value) else value

    return edit


def _drop(name):
    def edit(arrays, meta):
        del arrays[name]

    return edit


def _meta(edit_meta):
    def edit(arrays, meta):
        edit_meta(meta)

    return edit


def _dup(name):
    def edit(arrays, meta):
        a = arrays[name].copy()
        a[1] = a[0]
        arrays[name] = a

    return edit


def _nan(name, value=np.nan):
    def edit(arrays, meta):
        a = arrays[name].astype(arrays[name].dtype, copy=True)
        a.reshape(-1)[0] = value
        arrays[name] = a

    return edit


# (case id, edit, words the message must hold)
MF_CASES = [
    *[
        (f"no-{n}", _drop(n), n)
        for n in (
            "user_factors",
            "item_factors",
            "user_bias",
            "item_bias",
            "user_ids",
            "item_ids",
            "global_mean",
            "rating_range",
            "seen_users",
            "seen_items",
            "n_steps",
            "m_W",
            "v_H",
            "m_bu",
            "v_bi",
        )
    ],  # fmt: skip
    ("factors-transposed", _set("user_factors", lambda a: a.T.copy()), "user_factors"),
    ("item-k-differs", _set("item_factors", lambda a: a[:, :2].copy()), "item_factors"),
    ("factors-1d", _set("user_factors", lambda a: a.ravel()), "user_factors"),
    ("factors-strings", _set("user_factors", lambda a: a.astype(str)), "user_factors"),
    ("factors-int", _set("item_factors", lambda a: a.astype(np.int64)), "item_factors"),
    ("factors-float16", _set("user_factors", lambda a: a.astype(np.float16)), "user_factors"),
    ("item-float32", _set("item_factors", lambda a: a.astype(np.float32)), "item_factors"),
    ("bias-short", _set("user_bias", lambda a: a[:-1].copy()), "user_bias"),
    ("bias-long", _set("item_bias", lambda a: np.r_[a, 0.0]), "item_bias"),
    ("bias-2d", _set("user_bias", lambda a: a[:, None].copy()), "user_bias"),
    ("bias-float32", _set("item_bias", lambda a: a.astype(np.float32)), "item_bias"),
    ("more-ids-than-rows", _set("user_ids", lambda a: np.r_[a, a.max() + 1]), "user_ids"),
    ("fewer-ids", _set("item_ids", lambda a: a[:-2].copy()), "item_ids"),
    ("dup-user-ids", _dup("user_ids"), "user_ids are not unique"),
    ("dup-item-ids", _dup("item_ids"), "item_ids are not unique"),
    ("ids-2d", _set("user_ids", lambda a: a[:, None].copy()), "user_ids"),
    ("ids-float", _set("item_ids", lambda a: a.astype(float)), "item_ids"),
    ("ids-complex", _set("item_ids", lambda a: a.astype(complex)), "item_ids"),
    ("nan-factor", _nan("user_factors"), "user_factors"),
    ("inf-bias", _nan("item_bias", np.inf), "item_bias"),
    ("nan-m", _nan("m_W"), "m_W"),
    ("inf-v", _nan("v_bi", np.inf), "v_bi"),
    ("inf-mean", _set("global_mean", np.float64(np.inf)), "global_mean"),
    ("mean-vector", _set("global_mean", np.zeros(2)), "global_mean"),
    ("mean-string", _set("global_mean", np.array("3.5")), "global_mean"),
    ("range-nan", _nan("rating_range"), "rating_range"),
    ("range-reversed", _set("rating_range", lambda a: a[::-1].copy()), "rating_range"),
    ("range-three", _set("rating_range", np.array([1.0, 2.0, 3.0])), "rating_range"),
    ("seen-user-too-big", _set("seen_users", lambda a: np.r_[a[:-1], 12]), "seen_users"),
    ("seen-item-negative", _set("seen_items", lambda a: np.r_[a[:-1], -1]), "seen_items"),
    ("seen-huge", _set("seen_items", lambda a: np.r_[a[:-1].astype(np.int64), 2**40]), "seen_items"),
    ("seen-float", _set("seen_users", lambda a: a.astype(float)), "seen_users"),
    ("seen-lengths", _set("seen_users", lambda a: a[:-1].copy()), "seen_users and seen_items"),
    ("seen-2d", _set("seen_items", lambda a: a[:, None].copy()), "seen_items"),
    ("m-shape", _set("m_W", lambda a: a.T.copy()), "m_W"),
    ("v-dtype", _set("v_bi", lambda a: a.astype(np.float32)), "v_bi"),
    ("v-negative", _set("v_H", lambda a: -1 - a), "v_"),
    ("steps-negative", _set("n_steps", np.int64(-1)), "n_steps"),
    ("steps-float", _set("n_steps", np.float64(3)), "n_steps"),
    ("steps-vector", _set("n_steps", np.zeros(2, np.int64)), "n_steps"),
    ("meta-list", lambda a, m: a.__setitem__("meta", np.array("[1, 2]")), "parameters"),
    ("meta-not-json", lambda a, m: a.__setitem__("meta", np.array("{oops")), "JSON"),
    ("meta-number", lambda a, m: a.__setitem__("meta", np.array(5.0)), "meta data"),
    ("no-format", _drop("format"), "format"),
    ("bad-format", _set("format", np.array("npmf-matrix-factorization-0")), "format"),
    ("no-params", _meta(lambda m: m.pop("params")), "parameters"),
    ("params-list", _meta(lambda m: m.__setitem__("params", [3])), "parameters"),
    ("n-factors-zero", _meta(lambda m: m["params"].__setitem__("n_factors", 0)), "n_factors"),
    ("n-factors-string", _meta(lambda m: m["params"].__setitem__("n_factors", "3")), "n_factors"),
    ("n-factors-disagree", _meta(lambda m: m["params"].__setitem__("n_factors", 4)), "n_factors"),
    ("dtype-disagrees", _meta(lambda m: m["params"].__setitem__("dtype", "float32")), "dtype"),
    ("unknown-param", _meta(lambda m: m["params"].__setitem__("colour", 1)), "colour"),
    ("bad-optimizer", _meta(lambda m: m["params"].__setitem__("optimizer", "rmsprop")), "optimizer"),
    ("bad-random-state", _meta(lambda m: m["params"].__setitem__("random_state", "x")), "random_state"),
    ("history-list", _meta(lambda m: m.__setitem__("history", [1.0])), "history"),
    ("history-strings", _meta(lambda m: m["history"].__setitem__("loss", ["a"])), "history"),
    ("history-missing", _meta(lambda m: m.pop("history")), "history"),
    ("estimator-unknown", _meta(lambda m: m.__setitem__("estimator", "Hack")), "Hack"),
    ("estimator-int", _meta(lambda m: m.__setitem__("estimator", 5)), "estimator"),
    ("rng-garbage", _meta(lambda m: m.__setitem__("rng", {"bit_generator": "PCG64", "state": 5})), "generator"),
    ("rng-other", _meta(lambda m: m.__setitem__("rng", "MT19937")), "generator"),
]

BAYES_CASES = [
    ("no-n-samples", _drop("n_samples"), "n_samples"),
    ("n-samples-zero", _set("n_samples", np.int64(0)), "n_samples"),
    ("n-samples-disagree", _set("n_samples", np.int64(3)), "n_samples"),
    ("bayes-n-factors", _meta(lambda m: m["params"].__setitem__("n_factors", 1)), "n_factors"),
    ("bayes-dup-ids", _dup("item_ids"), "item_ids are not unique"),
    ("bayes-seen-range", _set("seen_users", lambda a: np.r_[a[:-1], 99]), "seen_users"),
]


def _check_refused(tmp_path, arrays, meta, edit, words):
    arrays = {k: v.copy() for k, v in arrays.items()}
    meta = json.loads(json.dumps(meta))
    edit(arrays, meta)
    path = tmp_path / "damaged.npz"
    if "meta" in arrays:
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    else:
        _write(path, arrays, meta)
    content = path.read_bytes()
    with pytest.raises(ValueError) as info:
        npmf.load(path)
    assert str(path) in str(info.value), str(info.value)
    assert words in str(info.value), str(info.value)
    assert path.read_bytes() == content


@pytest.mark.parametrize("edit, words", [c[1:] for c in MF_CASES], ids=[c[0] for c in MF_CASES])
def test_a_damaged_sgd_file_is_refused(good, tmp_path, edit, words):
    _check_refused(tmp_path, *good["mf"], edit, words)


@pytest.mark.parametrize("edit, words", [c[1:] for c in BAYES_CASES], ids=[c[0] for c in BAYES_CASES])
def test_a_damaged_bayes_file_is_refused(good, tmp_path, edit, words):
    _check_refused(tmp_path, *good["bayes"], edit, words)


@pytest.mark.parametrize("name", ["mf", "bayes"])
def test_the_good_files_load(good, tmp_path, name):
    _write(tmp_path / "ok.npz", {k: v for k, v in good[name][0].items()}, good[name][1])
    model = npmf.load(tmp_path / "ok.npz")
    assert np.isfinite(model.predict(model.user_ids_, np.resize(model.item_ids_, len(model.user_ids_)))).all()


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "not an npmf model file"),
        (b"hello, this is text\n", "not an npmf model file"),
        ("truncated", "readable"),
        ("pickle", "readable"),
    ],
    ids=["empty", "text", "truncated-zip", "object-array"],
)
def test_unreadable_files_are_refused(good, tmp_path, content, words):
    path = tmp_path / "bad.npz"
    if content == "truncated":
        _write(path, *good["mf"])
        data = path.read_bytes()
        # Cut inside the last member but keep a central directory: rewrite the first half's bytes as garbage.
        path.write_bytes(data[:200] + bytes(len(data) // 2) + data[200 + len(data) // 2 :])
    elif content == "pickle":
        arrays, meta = good["mf"]
        arrays = {**arrays, "user_ids": np.array([object()] * len(arrays["user_ids"]), dtype=object)}
        with open(path, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=words) as info:
        npmf.load(path)
    assert str(path) in str(info.value)


def test_a_folder_is_not_a_model_file(tmp_path):
    with pytest.raises(ValueError, match="folder") as info:
        npmf.load(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_a_missing_file_names_the_path_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="~/none.npz"):
        npmf.load("~/none.npz")


def test_load_expands_the_home_folder(good, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    _write(tmp_path / "m.npz", *good["mf"])
    assert npmf.load("~/m.npz").user_factors_.shape == good["mf"][0]["user_factors"].shape
