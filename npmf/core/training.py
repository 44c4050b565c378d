"""The bookkeeping of an epoch (a sweep, for the sampler), written once for both families.

After each epoch a model calls :meth:`EpochLog.end_epoch`, which appends to
``history_``, scores the validation data, prints the verbose line, calls the
user's callback and keeps track of early stopping, in that order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["EpochLog"]


class EpochLog:
    """History, verbose lines, validation scores, callback and early stopping of one run of epochs.

    Parameters
    ----------
    history : dict of lists
        The model's ``history_``, appended to in place (new keys are added).
    n_epochs : int
        For the verbose line ``Epoch e/n``.
    verbose : int
        Nonzero prints one line per epoch.
    callback : callable or None
        Called as ``callback(epoch, seconds, loss)`` after each epoch.
    patience : int or None
        Early stopping: :attr:`stop` turns true after this many epochs without
        a lower validation loss.
    """

    def __init__(
        self,
        history: dict,
        n_epochs: int,
        verbose: int = 0,
        callback: Callable | None = None,
        patience: int | None = None,
    ) -> None:
        self.history, self.n_epochs, self.verbose = history, n_epochs, verbose
        self.callback, self.patience = callback, patience
        self.best, self.waited, self.stop = np.inf, 0, False

    def end_epoch(self, epoch: int, seconds: float, loss: float, extra=(), val_loss: float | None = None) -> bool:
        """Record one epoch; returns whether its validation loss is the best so far.

        ``extra`` are further ``(name, value)`` pairs for the history and the
        line (the sampler's ``noise_std``); ``val_loss`` the mean squared error
        on the validation data, when there is any.
        """
        h = self.history
        h["loss"].append(loss)
        for name, value in extra:
            h.setdefault(name, []).append(value)
        h["seconds"].append(seconds)
        line = f"Epoch {epoch + 1}/{self.n_epochs} - {seconds:.3f}s - loss: {loss:.4f}"
        line += "".join(f" - {name}: {value:.4f}" for name, value in extra)
        improved = False
        if val_loss is not None:
            h.setdefault("val_loss", []).append(val_loss)
            h.setdefault("val_rmse", []).append(float(np.sqrt(val_loss)))
            line += f" - val_loss: {val_loss:.4f} - val_rmse: {np.sqrt(val_loss):.4f}"
            if val_loss < self.best:
                self.best, self.waited, improved = val_loss, 0, True
            else:
                self.waited += 1
                self.stop = self.patience is not None and self.waited >= self.patience
        if self.verbose:
            print(line, flush=True)
        if self.callback is not None:
            self.callback(epoch, seconds, loss)
        return improved
