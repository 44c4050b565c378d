"""The bookkeeping of an epoch (a sweep, for the sampler), written once for both families.

After each epoch a model calls :meth:`EpochLog.end_epoch`, which appends to
``history_``, scores the validation data, reports progress, calls the user's
callback and keeps track of early stopping, in that order.

``verbose`` has Keras' meanings: 0 silent, 1 a progress bar (tqdm's when it is
installed, else :class:`ProgressLine`, one line on stderr rewritten in place,
with an ETA), 2 one line per epoch on stdout.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

import numpy as np

__all__ = ["EpochLog", "ProgressLine"]


class EpochLog:
    """History, progress, validation scores, callback and early stopping of one run of epochs.

    Parameters
    ----------
    history : dict of lists
        The model's ``history_``, appended to in place. It stays rectangular:
        a name first seen in this run (``val_loss`` in a ``partial_fit``) is
        padded with NaN for the epochs before it, and a name missing from an
        epoch gets NaN, so ``pandas.DataFrame(history)`` always works.
    n_epochs : int
        For the label ``Epoch e/n``.
    verbose : int
        0 silent, 1 a progress bar, 2 one line per epoch.
    callback : callable or None
        Called as ``callback(epoch, seconds, loss)`` after each epoch.
    patience : int or None
        Early stopping: :attr:`stop` turns true after this many epochs without
        a lower validation loss.
    label : str, default "Epoch"
        What an epoch is called (the sampler's are ``"Sweep"``).
    burn_in : int, default 0
        The first ``burn_in`` epochs are marked ``(burn-in)``.
    """

    def __init__(
        self,
        history: dict,
        n_epochs: int,
        verbose: int = 0,
        callback: Callable | None = None,
        patience: int | None = None,
        label: str = "Epoch",
        burn_in: int = 0,
    ) -> None:
        self.history, self.n_epochs, self.verbose = history, n_epochs, verbose
        self.callback, self.patience = callback, patience
        self.label, self.burn_in = label, burn_in
        self.best, self.waited, self.stop = np.inf, 0, False
        self.bar = None
        if verbose == 1:
            self.bar = _progress_bar(n_epochs, label)

    def end_epoch(self, epoch: int, seconds: float, loss: float, extra=(), val_loss: float | None = None) -> bool:
        """Record one epoch; returns whether its validation loss is the best so far.

        ``extra`` are further ``(name, value)`` pairs for the history and the
        line (the sampler's ``noise_std``); ``val_loss`` the mean squared error
        on the validation data, when there is any.
        """
        values = {"loss": loss, **dict(extra)}
        if val_loss is not None:
            values["val_loss"], values["val_rmse"] = val_loss, float(np.sqrt(val_loss))
        values["seconds"] = seconds
        self._append(values)
        improved = False
        if val_loss is not None:
            if val_loss < self.best:
                self.best, self.waited, improved = val_loss, 0, True
            else:
                self.waited += 1
                self.stop = self.patience is not None and self.waited >= self.patience
        shown = {name: value for name, value in values.items() if name != "seconds"}
        burn = " (burn-in)" if epoch < self.burn_in else ""
        if self.verbose >= 2:
            line = f"{self.label} {epoch + 1}/{self.n_epochs}{burn} - {seconds:.3f}s"
            print(line + "".join(f" - {name}: {value:.4f}" for name, value in shown.items()), flush=True)
        elif self.bar is not None:
            self.bar.set_postfix_str(
                ("burn-in, " if burn else "") + ", ".join(f"{n}={v:.4f}" for n, v in shown.items())
            )
            self.bar.update(1)
            if self.stop or epoch + 1 >= self.n_epochs:
                self.close()
        if self.callback is not None:
            self.callback(epoch, seconds, loss)
        return improved

    def close(self) -> None:
        """End the progress bar (done by :meth:`end_epoch` after the last epoch or an early stop)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _append(self, values):
        h = self.history
        before = max((len(v) for v in h.values()), default=0)
        for name in values:
            h.setdefault(name, [])
        for name, column in h.items():
            column.extend([math.nan] * (before - len(column)))  # a name new in this epoch, or an old history
            column.append(values.get(name, math.nan))


def _progress_bar(total, label):
    """tqdm's bar on stderr when tqdm is installed, else :class:`ProgressLine`."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return ProgressLine(total, label)
    return tqdm(total=total, unit=label.lower(), file=sys.stderr, leave=True)


class ProgressLine:
    """A one-line progress bar with an ETA, rewritten in place on ``file`` (stderr); tqdm's calls, the few used.

    ``Epoch 37/100 [#######.............] 37% 0:04 < 0:07 - loss=0.8123``
    """

    width = 20

    def __init__(self, total: int, label: str = "Epoch", file=None) -> None:
        self.total, self.label, self.file = total, label, sys.stderr if file is None else file
        self.n, self.postfix, self.start, self.shown = 0, "", time.perf_counter(), 0

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def update(self, n: int = 1) -> None:
        self.n += n
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.n * (self.total - self.n) if self.n else 0.0
        done = int(self.width * self.n / max(self.total, 1))
        bar = "#" * done + "." * (self.width - done)
        line = (
            f"\r{self.label} {self.n}/{self.total} [{bar}] {100 * self.n // max(self.total, 1):3d}% "
            f"{_clock(elapsed)} < {_clock(eta)}"
        )
        line += f" - {self.postfix}" if self.postfix else ""
        self.file.write(line.ljust(self.shown))  # spaces over the end of a longer previous line
        self.shown = len(line)
        self.file.flush()

    def close(self) -> None:
        self.file.write("\n")
        self.file.flush()


def _clock(seconds):
    """``m:ss`` (``h:mm:ss`` past an hour)."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
