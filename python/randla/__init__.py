"""randla: fast randomized and structured numerical linear algebra.

A numpy-style Python API over a Rust core. See ``randla.sketch`` for
sketching operators; ``rl.show_config()`` describes the build.

>>> import randla as rl
>>> S = rl.sketch.sparse_sign(100, 10_000, rng=0)
"""

from __future__ import annotations

from . import _core, dpp, householder, krylov, monarch, sketch
from ._config import backends, show_config
from ._errors import ConvergenceWarning, LinAlgError, RandlaInternalError
from ._threads import _init_from_environment, get_num_threads, num_threads, set_num_threads
from .completion import CompletionInfo, CompletionResult, MatrixCompleter, complete
from .least_squares import LstsqResult, lstsq
from .lowrank import eigh, range_finder, svd
from .sampling import (
    LpRegressionResult,
    leverage_scores,
    lewis_weights,
    lp_regression,
    sample_rows,
    sensitivities,
)

__version__: str = _core.__version__

__all__ = [
    "CompletionInfo",
    "CompletionResult",
    "ConvergenceWarning",
    "LinAlgError",
    "MatrixCompleter",
    "LpRegressionResult",
    "LstsqResult",
    "RandlaInternalError",
    "__version__",
    "backends",
    "complete",
    "get_num_threads",
    "dpp",
    "eigh",
    "householder",
    "krylov",
    "leverage_scores",
    "lewis_weights",
    "lp_regression",
    "lstsq",
    "monarch",
    "num_threads",
    "range_finder",
    "sample_rows",
    "sensitivities",
    "set_num_threads",
    "show_config",
    "sketch",
    "svd",
]

_init_from_environment()
