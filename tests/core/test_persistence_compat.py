"""Model files written by npmf 0.1.0 (before the layout of 0.2.0) load and predict the numbers they did."""

import json
from pathlib import Path

import numpy as np
import pytest

import npmf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORD = json.loads((FIXTURES / "saved-0.1.0.json").read_text())


@pytest.mark.parametrize(
    "name, cls",
    [
        ("mf-0.1.0.npz", npmf.MatrixFactorization),
        ("mf-strings-0.1.0.npz", npmf.MatrixFactorization),
        ("bayes-0.1.0.npz", npmf.BayesianMatrixFactorization),
    ],
)
def test_files_saved_by_0_1_0_still_load_and_predict_the_same(name, cls):
    model = npmf.load(FIXTURES / name)
    assert type(model) is cls
    if "strings" in name:
        users, items = RECORD["string_users"], RECORD["string_items"]
    else:
        users, items = RECORD["users"], RECORD["items"]
    expected = np.array([float(x) for x in RECORD["predictions"][name]])
    np.testing.assert_array_equal(model.predict(users, items), expected)
    assert type(cls.load(FIXTURES / name)) is cls


def test_an_old_sgd_file_continues_training():
    model = npmf.load(FIXTURES / "mf-0.1.0.npz")
    steps = model.n_steps_
    model.partial_fit(RECORD["users"], RECORD["items"], np.full(len(RECORD["users"]), 4.0), epochs=1)
    assert model.n_steps_ > steps
