"""The checked parameters of one :class:`~npmf.BayesianMatrixFactorization` fit, as one frozen object."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..core.threads import default_threads
from ..core.validation import check_choice, check_float, check_int

__all__ = ["GibbsConfig", "IMPLICIT_FEEDBACK"]

IMPLICIT_FEEDBACK = ("users", "both", "none")


@dataclass(frozen=True)
class GibbsConfig:
    """What one chain samples with, under the estimator's public parameter names.

    Creating one checks every field. ``burn_in`` None becomes a tenth of
    ``epochs``; ``n_kept_samples`` becomes the number of samples actually kept
    (at most the sweeps after burn-in; None keeps them all); ``n_threads`` None
    becomes all cores.
    """

    n_factors: int = 10
    epochs: int = 200
    burn_in: int | None = None
    n_kept_samples: int | None = 100
    implicit_feedback: str = "users"
    init_scale: float = 0.1
    n_threads: int | None = None

    def __post_init__(self) -> None:
        epochs = check_int("epochs", self.epochs)
        burn_in = epochs // 10 if self.burn_in is None else check_int("burn_in", self.burn_in, minimum=0)
        if burn_in >= epochs:
            raise ValueError(f"burn_in must be below epochs ({epochs}) so that samples are kept; got {burn_in}")
        kept = epochs - burn_in
        if self.n_kept_samples is not None:
            kept = min(kept, check_int("n_kept_samples", self.n_kept_samples))
        checked = {
            "n_factors": check_int("n_factors", self.n_factors),
            "epochs": epochs,
            "burn_in": burn_in,
            "n_kept_samples": kept,
            "implicit_feedback": check_choice("implicit_feedback", self.implicit_feedback, IMPLICIT_FEEDBACK),
            "init_scale": check_float("init_scale", self.init_scale, low=0, low_open=False),
            "n_threads": default_threads() if self.n_threads is None else check_int("n_threads", self.n_threads),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_estimator(cls, estimator) -> GibbsConfig:
        """The config of ``estimator``'s current parameters."""
        return cls(**{f.name: getattr(estimator, f.name) for f in dataclasses.fields(cls)})
