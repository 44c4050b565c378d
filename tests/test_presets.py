"""Presets: every one is a valid, complete parameter set of its estimator, reachable by name."""

import pytest

import npmf
from npmf.bayes import GibbsConfig
from npmf.presets import ESTIMATORS, PRESETS, get_preset
from npmf.sgd import SGDConfig


def test_seed_is_the_keras_recipe():
    assert npmf.MatrixFactorization.from_preset("seed").get_params() == npmf.MatrixFactorization().get_params()


def test_accurate_is_the_sampler_and_accurate_sgd_the_point_estimate():
    assert type(npmf.from_preset("accurate")) is npmf.BayesianMatrixFactorization
    sgd = npmf.from_preset("accurate_sgd")
    assert type(sgd) is npmf.MatrixFactorization and sgd.biases is True and sgd.reg > 0


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_parameter_set(name):
    params = get_preset(name)
    estimator = getattr(npmf, ESTIMATORS[name])
    assert set(params) <= set(estimator._param_names())
    # Presets describe the model, not the run: no seed, threads or early stopping.
    assert not set(params) & {"random_state", "n_threads", "verbose", "early_stopping_patience"}
    model = estimator.from_preset(name)
    assert type(model) is estimator
    assert isinstance(model._config(), (SGDConfig, GibbsConfig))  # every parameter checks
    assert {k: v for k, v in model.get_params().items() if k in params} == params


def test_preset_is_a_copy_and_overrides_apply():
    get_preset("accurate")["n_factors"] = -1
    assert get_preset("accurate")["n_factors"] > 0
    model = npmf.from_preset("accurate", epochs=3, random_state=7)
    assert (model.epochs, model.random_state) == (3, 7)
    assert model.n_factors == get_preset("accurate")["n_factors"]


def test_preset_of_another_class_and_unknown_overrides_raise():
    with pytest.raises(ValueError, match="preset 'accurate' is a BayesianMatrixFactorization, not a Matrix"):
        npmf.MatrixFactorization.from_preset("accurate")
    with pytest.raises(ValueError, match="'learning_rate' is not a parameter of BayesianMatrixFactorization"):
        npmf.from_preset("accurate", learning_rate=0.1)


@pytest.mark.parametrize("name", ["accurate", "accurate_sgd"])
def test_accurate_presets_fit_and_predict_on_a_half_star_scale(name):
    users, items = [1, 1, 2, 2, 3, 3, 4], [10, 11, 10, 12, 11, 12, 10]
    ratings = [0.5, 4.5, 1.0, 3.5, 5.0, 2.5, 4.0]
    model = npmf.from_preset(name, epochs=4, random_state=0)
    pred = model.fit(users, items, ratings).predict([1, 99], [12, 10], clip=True)
    assert ((pred >= 0.5) & (pred <= 5.0)).all()


def test_unknown_preset_names_the_available_ones():
    with pytest.raises(ValueError, match="unknown preset 'best'.*seed.*accurate.*accurate_sgd"):
        npmf.from_preset("best")
