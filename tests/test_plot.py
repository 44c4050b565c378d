"""plot_history: the curves drawn, and one clear message without matplotlib."""

import sys

import numpy as np
import pytest

import npmf


def _model():
    df = npmf.make_ratings(30, 20, 300, n_factors=2, random_state=0)
    model = npmf.MatrixFactorization(n_factors=2, epochs=3, random_state=0).fit(df.user_id, df.item_id, df.rating)
    model.partial_fit(df.user_id, df.item_id, df.rating, epochs=2, validation_data=(df.user_id, df.item_id, df.rating))
    return model


def test_plot_history_draws_loss_and_validation_on_a_log_axis():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    model = _model()
    ax = npmf.plot_history(model)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"loss", "val_loss"} and ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"
    np.testing.assert_array_equal(lines["loss"].get_ydata(), model.history_["loss"])
    np.testing.assert_array_equal(lines["val_loss"].get_xdata(), [1, 2, 3, 4, 5])
    assert np.isnan(lines["val_loss"].get_ydata()[:3]).all()


def test_plot_history_without_matplotlib_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'npmf\[plot\]'"):
        npmf.plot_history(_model())


def test_plot_history_of_an_unfitted_model():
    with pytest.raises(ValueError, match="fit it first"):
        npmf.plot_history(npmf.MatrixFactorization())
