"""``plot_history``: a fitted model's training curve, with matplotlib (``pip install npmf[plot]``)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_history"]


def plot_history(model, ax=None, metric: str = "loss"):
    """Plot ``model.history_``: the training loss per epoch (log axis), and the validation loss if recorded.

    Parameters
    ----------
    model : a fitted npmf model, or its ``history_`` dict
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.
    metric : str, default "loss"
        The history column to draw; its ``val_`` twin is drawn too when it has values.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    ImportError
        When matplotlib is not installed, saying how to install it.
    """
    history = model if isinstance(model, dict) else getattr(model, "history_", None)
    if not history or not history.get(metric):
        raise ValueError(f"the model has no {metric!r} history to plot; fit it first")
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "plot_history needs matplotlib, which is not installed: pip install 'npmf[plot]' (or matplotlib)"
        ) from None
    if ax is None:
        _, ax = plt.subplots()
    label = "sweep" if "noise_std" in history else "epoch"
    epochs = np.arange(1, len(history[metric]) + 1)
    ax.plot(epochs, history[metric], label=metric)
    val = np.asarray(history.get(f"val_{metric}", []), dtype=float)
    if len(val) and np.isfinite(val).any():
        ax.plot(epochs[: len(val)], val, label=f"val_{metric}")
    ax.set_yscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel(metric)
    ax.legend()
    return ax
