"""The Keras recipe on real MovieLens-100k (skipped when the data is absent)."""

import numpy as np
import pytest

import npmf
from npmf import metrics


@pytest.mark.slow
def test_recipe_reproduces_keras(ml100k_home):
    df = npmf.load_movielens("ml-100k", data_home=ml100k_home, download=False)
    # The recipe's encoding: category codes, then a random 80/20 split.
    assert df.user_id.astype("category").cat.codes.max() == 942
    train, test = npmf.train_test_split(df, test_size=0.2, random_state=0)
    model = npmf.MatrixFactorization(random_state=0).fit(train.user_id, train.item_id, train.rating)
    loss = model.history_["loss"]
    # Keras reports 12.5, 5.0, 2.0, 1.34, 1.09, 0.99 over the first epochs and 0.7185 at epoch 100.
    np.testing.assert_allclose(loss[:6], [12.5, 5.0, 2.0, 1.34, 1.09, 0.99], rtol=0.08)
    assert 0.69 <= loss[-1] <= 0.75
    pred = model.predict(test.user_id, test.item_id)
    assert 0.68 <= metrics.rounded_mae(test.rating, pred) <= 0.72
    assert model.item_embeddings().shape == (train.item_id.nunique(), 3)


@pytest.mark.slow
def test_npmf_train_prints_the_recipes_pinned_figures(ml100k_home, monkeypatch, capsys):
    """What ``python -m npmf train`` prints on ML-100k, pinned (the final loss to 5e-5, rounded MAE to 1e-3)."""
    import json

    from npmf.cli import main

    monkeypatch.setenv("NPMF_DATA_DIR", str(ml100k_home))
    assert main(["train", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    loss = result["history"]["loss"]
    assert abs(loss[-1] - 0.714638) <= 5e-5, loss[-1]
    # The first epochs move most with the step sizes; as recorded by this code (0.2.0) on ML-100k.
    np.testing.assert_allclose(loss[:3], [12.194286258872438, 4.69817631794348, 1.9679976186398345], rtol=1e-6)
    assert abs(result["rounded_mae"] - 0.69505) <= 1e-3, result["rounded_mae"]
