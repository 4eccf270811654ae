"""The exceptions and warnings of randla (API.md §1)."""

from __future__ import annotations

import numpy as np

__all__ = ["ConvergenceWarning", "LinAlgError", "RandlaInternalError"]


class LinAlgError(np.linalg.LinAlgError):
    """A numerical failure: a matrix that is not positive definite where required, a breakdown."""


class ConvergenceWarning(UserWarning):
    """An iterative method stopped at ``maxiter`` without meeting its tolerance."""


class RandlaInternalError(RuntimeError):
    """A bug in randla (a Rust panic contained at the boundary). Please report it."""
