"""EpochLog: Keras' verbose levels, sweeps labelled, and a history that stays rectangular."""

import io
import math
import sys

import numpy as np
import pandas as pd
import pytest

import npmf
from npmf.core.training import EpochLog, ProgressLine


def _data():
    df = npmf.make_ratings(30, 20, 300, n_factors=2, random_state=0)
    return df.user_id, df.item_id, df.rating


@pytest.fixture
def no_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_verbose_2_prints_one_line_per_epoch_on_stdout(capsys):
    npmf.MatrixFactorization(n_factors=2, epochs=3, random_state=0, verbose=2).fit(*_data())
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("Epoch 1/3 - ") and " - loss: " in lines[2]
    assert err == ""


def test_verbose_0_is_silent(capsys):
    npmf.MatrixFactorization(n_factors=2, epochs=2, random_state=0).fit(*_data())
    assert capsys.readouterr() == ("", "")


def test_verbose_1_without_tqdm_draws_one_line_with_an_eta_on_stderr(capsys, no_tqdm):
    npmf.MatrixFactorization(n_factors=2, epochs=4, random_state=0, verbose=1).fit(*_data())
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\r") == 4 and err.endswith("\n") and err.count("\n") == 1  # rewritten in place, ended once
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith("Epoch 4/4 [####################] 100% ") and " < 0:00" in last and "loss=" in last


def test_verbose_1_uses_tqdm_when_installed(capsys):
    pytest.importorskip("tqdm")
    npmf.MatrixFactorization(n_factors=2, epochs=3, random_state=0, verbose=1).fit(*_data())
    out, err = capsys.readouterr()
    assert out == "" and "3/3" in err and "epoch" in err


def test_progress_line_eta_and_padding():
    f = io.StringIO()
    bar = ProgressLine(10, "Sweep", file=f)
    bar.start -= 20.0  # 20 s for the first two: 80 s to go
    bar.set_postfix_str("loss=1.2345 and more")
    bar.update(2)
    bar.set_postfix_str("")
    bar.update(1)
    bar.close()
    first, second = f.getvalue().split("\r")[1:]
    assert first.startswith("Sweep 2/10 [####................]  20% 0:20 < 1:20 - loss=1.2345")
    assert len(second.rstrip("\n")) == len(first)  # the shorter line covers the longer one
    assert "Sweep 3/10" in second and second.endswith("\n")


def test_sampler_labels_sweeps_and_marks_burn_in(capsys):
    npmf.BayesianMatrixFactorization(n_factors=2, epochs=4, burn_in=2, n_kept_samples=2, random_state=0,
                                     verbose=2).fit(*_data())  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Sweep 1/4 (burn-in)", "Sweep 2/4 (burn-in)", "Sweep 3/4",
                                                        "Sweep 4/4"]  # fmt: skip
    assert "noise_std: " in lines[0]


def test_history_stays_rectangular_through_partial_fit():
    u, i, r = _data()
    model = npmf.MatrixFactorization(n_factors=2, epochs=2, random_state=0).fit(u, i, r)
    model.partial_fit(u, i, r, epochs=2, validation_data=(u, i, r))
    model.partial_fit(u, i, r, epochs=1)
    table = pd.DataFrame(model.history_)
    assert list(table.columns) == ["loss", "seconds", "val_loss", "val_rmse"] and len(table) == 5
    assert table.val_loss.isna().tolist() == [True, True, False, False, True]
    np.testing.assert_allclose(table.val_rmse[2:4], np.sqrt(table.val_loss[2:4]))


def test_epochlog_pads_a_history_kept_before_it_was_rectangular():
    history = {"loss": [1.0, 0.5], "seconds": [0.1, 0.1], "val_loss": [2.0]}
    EpochLog(history, 1).end_epoch(0, 0.2, 0.25)
    assert {k: len(v) for k, v in history.items()} == {"loss": 3, "seconds": 3, "val_loss": 3}
    assert history["val_loss"][0] == 2.0 and all(math.isnan(x) for x in history["val_loss"][1:])
