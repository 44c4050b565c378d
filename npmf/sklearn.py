r"""scikit-learn regressors: npmf models that take ``fit(X, y)`` with X the (user, item) pairs.

:class:`MatrixFactorizationRegressor` wraps :class:`~npmf.MatrixFactorization`
and :class:`BayesianMatrixFactorizationRegressor` wraps
:class:`~npmf.BayesianMatrixFactorization`, with the same parameters plus
``user_column`` and ``item_column``. ``X`` is an (n, 2) array of raw ids
(user, item) or a DataFrame whose user and item columns are found by name;
``y`` holds the ratings. ``predict(X)`` returns the predicted ratings and
``score`` the R² (as every scikit-learn regressor), so ``GridSearchCV``,
``cross_val_score``, ``clone`` and ``Pipeline`` work on them. The fitted npmf
model is ``model_`` (``model_.recommend(...)``, ``model_.save(...)``).

scikit-learn is not a dependency of npmf: this module imports without it,
and ``fit`` raises one ImportError saying ``pip install scikit-learn`` (or
the ``test`` extra) when it is missing.

scikit-learn's ``check_estimator`` (``tests/test_sklearn.py`` runs it):
:class:`MatrixFactorizationRegressor` passes every check. Two notes on what
the checks mean here, since ids are categories (a user is a row of factors),
not numeric features:

- ``check_regressors_train`` fits continuous random X, where every row is a
  new user and a new item: nothing learnt carries over, so the regressors
  declare ``poor_score=True`` and are held only to fitting and predicting.
- sparse X has no meaning for ids; it is refused by ``validate_data``.

:class:`BayesianMatrixFactorizationRegressor` passes them too
(:data:`BAYES_EXPECTED_FAILED_CHECKS` is empty). Seven once failed with
LinAlgError on their data (100 ratings, each by a new user of a new item):
the chain's factors grew to about 1e6 and the Normal-Wishart draw
(``npmf/bayes/gibbs.py`` ``sample_normal_wishart``) inverted a scale matrix
conditioned at 1e13; it now factorises that matrix without inverting it.

Examples
--------
>>> import npmf
>>> from npmf.sklearn import MatrixFactorizationRegressor
>>> from sklearn.model_selection import GridSearchCV  # doctest: +SKIP
>>> df = npmf.make_ratings(200, 100, 4000, random_state=0)
>>> X, y = df[["user_id", "item_id"]], df["rating"]
>>> search = GridSearchCV(MatrixFactorizationRegressor(epochs=20, biases=True),
...                       {"n_factors": [2, 5]}, cv=3).fit(X, y)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings

import numpy as np

from .bayes import BayesianMatrixFactorization
from .core.base import BaseEstimator
from .sgd import MatrixFactorization

__all__ = ["MatrixFactorizationRegressor", "BayesianMatrixFactorizationRegressor", "BAYES_EXPECTED_FAILED_CHECKS"]

USER_NAMES = ("user_id", "user", "userid", "user id", "userId", "UserID")
ITEM_NAMES = ("item_id", "item", "itemid", "itemId", "movie_id", "movieId", "MovieID", "movie")

# check name -> why it cannot apply; none since the Normal-Wishart draw stopped inverting its scale matrix.
BAYES_EXPECTED_FAILED_CHECKS: dict[str, str] = {}


def _sklearn():
    try:
        import sklearn  # noqa: F401
        from sklearn.utils.validation import validate_data
    except ImportError:
        raise ImportError(
            "npmf.sklearn needs scikit-learn: pip install scikit-learn (or pip install 'npmf[test]')"
        ) from None
    return validate_data


def _is_ids(X):
    """Is ``X`` a list of rows mixing types (e.g. string users, int items)? Then keep each id as given."""
    return isinstance(X, (list, tuple)) and len(X) > 0 and np.asarray(X).dtype.kind in "US"


class _Regressor(BaseEstimator):
    """fit(X, y)/predict(X)/score over the wrapped estimator ``_estimator``."""

    _estimator = None

    def _model_params(self):
        params = self.get_params()
        del params["user_column"], params["item_column"]
        return params

    def fit(self, X, y, **fit_params):
        """Fit the wrapped npmf model on the (user, item) pairs in ``X`` and the ratings ``y``.

        Parameters
        ----------
        X : array of shape (n, 2) or DataFrame
            Raw ids; for a DataFrame, the columns ``user_column`` and
            ``item_column``, or those named like user/item (``user_id``,
            ``userId``, ``movieId``, ...), or else its first two columns.
        y : array-like of shape (n,)
            Ratings.
        **fit_params
            Passed to the wrapped ``fit`` (``validation_data``, ``callback``).

        Returns
        -------
        self
        """
        validate_data = _sklearn()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            from sklearn.exceptions import DataConversionWarning

            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; it is ravelled.",
                DataConversionWarning,
                stacklevel=2,
            )
            y = y.ravel()
        X = X if hasattr(X, "columns") else np.asarray(X, dtype=object if _is_ids(X) else None)
        validate_data(self, X, y, dtype=None, ensure_min_features=2, y_numeric=True)
        columns = self._columns(X)
        users, items = self._ids(X, columns)
        model = self._estimator(**self._model_params()).fit(users, items, np.asarray(y, np.float64), **fit_params)
        self.model_, self.columns_ = model, columns
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted ratings for the (user, item) pairs in ``X`` (as in :meth:`fit`); unknown ids never raise."""
        validate_data = _sklearn()
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first")
        X = X if hasattr(X, "columns") else np.asarray(X, dtype=object if _is_ids(X) else None)
        validate_data(self, X, dtype=None, reset=False)
        return self.model_.predict(*self._ids(X, self.columns_))

    def score(self, X, y, sample_weight=None) -> float:
        """R² of :meth:`predict` on ``X`` against ``y``: :math:`1 - \\sum (y - \\hat y)^2 / \\sum (y - \\bar y)^2`."""
        _sklearn()
        from sklearn.metrics import r2_score

        return float(r2_score(y, self.predict(X), sample_weight=sample_weight))

    def __sklearn_tags__(self):
        _sklearn()
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags

        return Tags(
            estimator_type="regressor",
            target_tags=TargetTags(required=True),
            regressor_tags=RegressorTags(poor_score=True),
            input_tags=InputTags(two_d_array=True, categorical=True, string=True),
        )

    # ------------------------------------------------------------- helpers
    def _columns(self, X):
        """The positions (array) or names (DataFrame) of the user and item columns of ``X``."""
        names = list(X.columns) if hasattr(X, "columns") else None
        n_cols = np.shape(X)[1]
        chosen = []
        for side, given, known in (("user", self.user_column, USER_NAMES), ("item", self.item_column, ITEM_NAMES)):
            if given is not None:
                if names is not None and given not in names:
                    raise ValueError(f"{side}_column={given!r} is not a column of X; its columns are {names}")
                if names is None and not (isinstance(given, (int, np.integer)) and 0 <= given < n_cols):
                    raise ValueError(f"{side}_column must be a column position in [0, {n_cols}) for an array X")
                chosen.append(given)
                continue
            found = [c for c in (names or []) if str(c) in known or str(c).lower() in known]
            if found:
                chosen.append(found[0])
            else:
                position = 0 if side == "user" else 1
                chosen.append(names[position] if names is not None else position)
        if chosen[0] == chosen[1]:
            raise ValueError(f"the user and item ids would both come from column {chosen[0]!r}; pass user_column=")
        return tuple(chosen)

    @staticmethod
    def _ids(X, columns):
        if hasattr(X, "columns"):
            return X[columns[0]].to_numpy(), X[columns[1]].to_numpy()
        X = np.asarray(X)
        return X[:, columns[0]], X[:, columns[1]]


class MatrixFactorizationRegressor(_Regressor):
    """:class:`~npmf.MatrixFactorization` as a scikit-learn regressor on (user, item) pairs.

    Parameters
    ----------
    user_column, item_column : column name or position, optional
        Where X holds the user and item ids (see :meth:`fit`).
    n_factors, epochs, ... : as :class:`~npmf.MatrixFactorization`

    Attributes
    ----------
    model_ : MatrixFactorization
        The fitted model.
    columns_ : (user, item)
        The columns of X the ids were read from.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When X was a DataFrame.
    """

    _estimator = MatrixFactorization

    def __init__(
        self,
        n_factors=3,
        epochs=100,
        batch_size=32,
        optimizer="adam",
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        init_scale=0.05,
        biases=False,
        reg=0.0,
        non_negative=False,
        early_stopping_patience=None,
        n_threads=None,
        dtype="float64",
        random_state=None,
        verbose=0,
        user_column=None,
        item_column=None,
    ):
        self.n_factors = n_factors
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.init_scale = init_scale
        self.biases = biases
        self.reg = reg
        self.non_negative = non_negative
        self.early_stopping_patience = early_stopping_patience
        self.n_threads = n_threads
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.user_column = user_column
        self.item_column = item_column


class BayesianMatrixFactorizationRegressor(_Regressor):
    """:class:`~npmf.BayesianMatrixFactorization` as a scikit-learn regressor on (user, item) pairs.

    Parameters
    ----------
    user_column, item_column : column name or position, optional
        Where X holds the user and item ids (see :meth:`fit`).
    n_factors, epochs, ... : as :class:`~npmf.BayesianMatrixFactorization`

    Attributes
    ----------
    model_ : BayesianMatrixFactorization
    columns_, n_features_in_, feature_names_in_ : as :class:`MatrixFactorizationRegressor`
    """

    _estimator = BayesianMatrixFactorization

    def __init__(
        self,
        n_factors=10,
        epochs=200,
        burn_in=None,
        n_kept_samples=100,
        implicit_feedback="users",
        init_scale=0.1,
        n_threads=None,
        random_state=None,
        verbose=0,
        user_column=None,
        item_column=None,
    ):
        self.n_factors = n_factors
        self.epochs = epochs
        self.burn_in = burn_in
        self.n_kept_samples = n_kept_samples
        self.implicit_feedback = implicit_feedback
        self.init_scale = init_scale
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.user_column = user_column
        self.item_column = item_column
