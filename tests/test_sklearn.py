"""npmf.sklearn: the regressors in scikit-learn's own tools, and its estimator checks."""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install 'npmf[test]')")

from sklearn.base import clone, is_regressor  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import npmf  # noqa: E402
from npmf.sklearn import (  # noqa: E402
    BAYES_EXPECTED_FAILED_CHECKS,
    BayesianMatrixFactorizationRegressor,
    MatrixFactorizationRegressor,
)


@pytest.fixture(scope="module")
def data():
    df = npmf.make_ratings(150, 80, 3000, random_state=0)
    df["user_id"] = "u" + df.user_id.astype(str)  # string users, int items
    return df


def small():
    return MatrixFactorizationRegressor(n_factors=2, epochs=5, biases=True, learning_rate=0.01, random_state=0)


def test_fit_predict_score_equal_the_wrapped_model(data):
    X, y = data[["user_id", "item_id"]], data.rating
    reg = small().fit(X, y)
    model = npmf.MatrixFactorization(n_factors=2, epochs=5, biases=True, learning_rate=0.01, random_state=0)
    model.fit(data.user_id, data.item_id, data.rating)
    np.testing.assert_array_equal(reg.predict(X), model.predict(data.user_id, data.item_id))
    assert reg.score(X, y) == pytest.approx(r2_score(y, reg.predict(X)))
    assert reg.columns_ == ("user_id", "item_id") and reg.n_features_in_ == 2
    assert is_regressor(reg) and reg.model_.recommend("u1", n=3).shape[0] == 3


def test_columns_are_found_by_name_or_position(data):
    y = data.rating
    by_default = small().fit(data[["user_id", "item_id"]], y)
    swapped = data[["item_id", "user_id", "timestamp"]] if "timestamp" in data else data[["item_id", "user_id"]]
    by_name = small().fit(swapped, y)
    assert by_name.columns_ == ("user_id", "item_id")
    np.testing.assert_array_equal(by_name.predict(swapped), by_default.predict(data[["user_id", "item_id"]]))
    other = data.rename(columns={"user_id": "a", "item_id": "b"})[["b", "a"]]
    given = small().set_params(user_column="a", item_column="b").fit(other, y)
    np.testing.assert_array_equal(given.predict(other), by_default.predict(data[["user_id", "item_id"]]))
    arr = data[["user_id", "item_id"]].to_numpy()
    np.testing.assert_array_equal(small().fit(arr, y).predict(arr), by_default.predict(data[["user_id", "item_id"]]))
    with pytest.raises(ValueError, match="user_column='nope' is not a column of X"):
        small().set_params(user_column="nope").fit(data[["user_id", "item_id"]], y)
    with pytest.raises(ValueError, match="both come from column 'item_id'"):
        small().fit(data[["item_id", "rating"]], y)


def test_clone_cross_val_score_and_grid_search(data):
    X, y = data[["user_id", "item_id"]], data.rating
    reg = small()
    assert clone(reg).get_params() == reg.get_params()
    scores = cross_val_score(reg, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    search = GridSearchCV(reg, {"n_factors": [1, 3], "reg": [0.0, 0.05]}, cv=3).fit(X, y)
    assert search.best_params_.keys() == {"n_factors", "reg"} and np.isfinite(search.best_score_)
    assert search.best_estimator_.model_.n_factors == search.best_params_["n_factors"]
    neg = cross_val_score(reg, X, y, cv=3, scoring="neg_root_mean_squared_error")
    assert (neg < 0).all()


def test_pipeline_selects_the_id_columns(data):
    wide = data.assign(noise=np.arange(len(data)))[["noise", "item_id", "user_id"]]
    pipe = Pipeline(
        [
            ("ids", ColumnTransformer([("keep", "passthrough", ["user_id", "item_id"])])),
            ("mf", small()),
        ]
    )
    pipe.fit(wide, data.rating)
    direct = small().fit(data[["user_id", "item_id"]], data.rating)
    np.testing.assert_array_equal(pipe.predict(wide), direct.predict(data[["user_id", "item_id"]]))
    assert pipe.score(wide, data.rating) == pytest.approx(direct.score(data[["user_id", "item_id"]], data.rating))


def test_bayesian_regressor_in_cross_val_score(data):
    reg = BayesianMatrixFactorizationRegressor(n_factors=2, epochs=8, n_kept_samples=4, random_state=0)
    scores = cross_val_score(reg, data[["user_id", "item_id"]], data.rating, cv=2)
    assert np.all(np.isfinite(scores)) and is_regressor(reg)


def _failures(estimator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, on_fail=None)
    return {r["check_name"] for r in results if r["status"] == "failed"}


@pytest.mark.slow
def test_check_estimator_passes_for_matrix_factorization():
    assert _failures(MatrixFactorizationRegressor(epochs=3, random_state=0)) == set()


@pytest.mark.slow
def test_check_estimator_bayesian_fails_only_the_documented_checks():
    failed = _failures(BayesianMatrixFactorizationRegressor(epochs=6, n_kept_samples=3, random_state=0))
    assert failed == set(BAYES_EXPECTED_FAILED_CHECKS), failed ^ set(BAYES_EXPECTED_FAILED_CHECKS)


@pytest.mark.slow
def test_clear_import_error_without_sklearn():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import npmf, npmf.sklearn as s\n"
        "df = npmf.make_ratings(20, 10, 50, random_state=0)\n"
        "try:\n    s.MatrixFactorizationRegressor().fit(df[['user_id', 'item_id']], df.rating)\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install scikit-learn" in out and "npmf[test]" in out


def test_y_none_and_wrong_width_raise():
    X = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [1, 1, 2]})
    with pytest.raises(ValueError, match="requires y to be passed"):
        small().fit(X, None)
    reg = small().fit(X, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="X has 1 features, but MatrixFactorizationRegressor is expecting 2"):
        reg.predict(X[["user_id"]].to_numpy())
