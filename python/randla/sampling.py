"""Leverage scores and l_p Lewis weights of the rows of a matrix.

``rl.leverage_scores`` and ``rl.lewis_weights`` are exported at the top level.
Exact scores are squared row norms of an orthonormal basis of ``range(A)``
(Householder QR, or an SVD when ``A`` is rank-deficient), never the normal
equations; approximate ones follow Drineas, Magdon-Ismail, Mahoney & Woodruff
(2012): a sparse sign sketch ``S A`` gives ``R`` with ``A R^{-1}`` nearly
orthonormal, and (when ``d`` is large) a Gaussian JL matrix shrinks it before
the row norms. Lewis weights iterate Cohen & Peng's (2015) fixed point with a
damped step, which converges for every ``p >= 1``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from . import _core
from . import sketch as _sketch
from ._errors import ConvergenceWarning
from ._rng import RNGLike, key_from_rng
from .krylov import _operator_spec
from .least_squares import _dense_for_direct, _make_sketch, _sketch_rows

__all__ = ["leverage_scores", "lewis_weights"]


def _check_eps(eps: Any) -> float:
    if not isinstance(eps, (numbers.Real, np.floating)) or not (0 < float(eps) <= 1):
        raise ValueError(f"eps must be in (0, 1], got {eps!r}")
    return float(eps)


def _sketch_size(n: int, d: int, eps: float) -> int:
    """Rows of the preconditioning sketch: distortion about ``eps / 2``."""
    return min(n, max(2 * d, math.ceil(4 * d / eps**2)))


def _jl_columns(n: int, eps: float) -> int:
    """Columns of the JL matrix: squared row norms within ``1 +- eps`` for all ``n`` rows."""
    return math.ceil(6 * math.log(max(n, 2)) / eps**2)


def leverage_scores(
    A: Any, *, method: str = "exact", eps: float = 0.5, rng: RNGLike = None
) -> np.ndarray:
    """Leverage scores of the rows of ``A``: ``tau_i = ||U_i||^2``, ``U`` a basis of range(A).

    Parameters
    ----------
    A : array_like, scipy.sparse matrix or LinearOperator, shape (n, d)
        ``method="exact"`` densifies a sparse or operator ``A`` (up to 5e7
        entries).
    method : {"exact", "approx"}
        ``"exact"``: Householder QR (SVD when rank-deficient), O(n d^2).
        ``"approx"``: sparse sign sketch of ``max(2d, 4d/eps^2)`` rows, its QR,
        and a Gaussian JL matrix of ``6 ln(n) / eps^2`` columns when that is
        fewer than ``d``: O(nnz(A) (8 + min(d, ln(n)/eps^2)) + d^3 / eps^2).
    eps : float
        Target relative accuracy of ``"approx"``, in (0, 1].
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Seeds the sketches (``"approx"`` only).

    Returns
    -------
    ndarray, shape (n,), float64
        In [0, 1]; they sum to ``rank(A)`` (exactly, up to rounding, for ``"exact"``).

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> A = np.random.default_rng(0).standard_normal((1000, 5))
    >>> tau = rl.leverage_scores(A)
    >>> round(float(tau.sum()), 10)
    5.0
    >>> Q = np.linalg.qr(A)[0]
    >>> bool(np.allclose(tau, (Q**2).sum(axis=1)))
    True
    """
    if method not in ("exact", "approx"):
        raise ValueError(f"method must be 'exact' or 'approx', got {method!r}")
    eps = _check_eps(eps)
    spec, shape, dtype = _operator_spec(A, "A", None, np.dtype(np.float32), True)
    n, d = shape
    if method == "exact" or n < d or _sketch_size(n, d, eps) >= n:
        dense = _dense_for_direct(A, spec, shape, dtype)[1]
        scores, _ = _core.leverage_exact(dense)
        return np.asarray(scores)
    key = key_from_rng(rng)
    S = _make_sketch("sparse_sign", _sketch_size(n, d, eps), n, key, dtype)
    sa = _sketch_rows(S, A, spec, dtype)
    t = _jl_columns(n, eps)
    jl = None
    if t < d:
        # Entries N(0, 1/t); the core uses the first rank(S A) rows.
        jl = np.ascontiguousarray(_sketch.gaussian(t, d, rng=key + 1, dtype=dtype).to_dense().T)
    scores, _ = _core.leverage_sketched(spec, sa, jl)
    return np.asarray(scores)


def lewis_weights(
    A: Any,
    p: float,
    *,
    method: str = "approx",
    maxiter: int | None = None,
    tol: float = 1e-8,
    rng: RNGLike = None,
) -> np.ndarray:
    """l_p Lewis weights of the rows of ``A``: ``w_i = tau_i(W^{1/2 - 1/p} A)``.

    The weights sum to ``rank(A)``; ``p = 2`` gives the leverage scores. They
    drive l_p row sampling: sampling rows with probabilities proportional to
    ``w`` gives l_p subspace embeddings (Cohen & Peng 2015).

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (n, d)
        Used dense (a sparse ``A`` is densified up to 5e7 entries).
    p : float
        ``1 <= p < inf``.
    method : {"approx", "exact"}
        Leverage scores inside the iteration: ``"exact"`` (QR each iteration,
        O(n d^2)) or ``"approx"`` (one fixed sparse sign sketch of ``40 d``
        rows reused by every iteration, so the iteration converges to the
        Lewis weights of the sketched map: within a constant factor of the
        exact ones, which is what sampling needs; O(n d) per iteration plus
        the sketch's QR).
    maxiter : int, optional
        Iteration limit (default 200).
    tol : float
        Stop when the largest relative change of a weight is below ``tol``.
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Seeds the sketch (``"approx"`` only).

    Returns
    -------
    ndarray, shape (n,), float64

    Notes
    -----
    Cohen & Peng iterate ``w_i <- (a_i^T (A^T W^{1-2/p} A)^+ a_i)^{p/2}``, a
    contraction for ``p < 4``; the step is taken in log space with length
    ``min(1, 2/p)``, which contracts for every ``p >= 1`` (by at most
    ``max(1 - p/2, 1 - 2/p)`` per iteration). A ``ConvergenceWarning`` is
    issued when ``maxiter`` is reached first.

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> A = np.random.default_rng(0).standard_normal((500, 4))
    >>> w = rl.lewis_weights(A, 1.0, method="exact")
    >>> round(float(w.sum()), 8)
    4.0
    """
    if method not in ("exact", "approx"):
        raise ValueError(f"method must be 'exact' or 'approx', got {method!r}")
    if not isinstance(p, (numbers.Real, np.floating)) or not (1 <= float(p) < math.inf):
        raise ValueError(f"p must be a number with 1 <= p < inf, got {p!r}")
    if not isinstance(tol, (numbers.Real, np.floating)) or not (float(tol) >= 0):
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    if maxiter is None:
        limit = 200
    else:
        if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 1:
            raise ValueError(f"maxiter must be an int >= 1, got {maxiter!r}")
        limit = int(maxiter)
    spec, shape, dtype = _operator_spec(A, "A", None, np.dtype(np.float32), True)
    n, d = shape
    dense = _dense_for_direct(A, spec, shape, dtype)[1]
    k = min(n, 40 * d)
    core_method = "exact" if (method == "exact" or k >= n or n < d) else "approx"
    t = _jl_columns(n, 0.5)
    weights, iterations, converged, change = _core.lewis_weights(
        dense, float(p), float(tol), limit, core_method, k, t if t < d else 0, key_from_rng(rng)
    )
    if not converged:
        warnings.warn(
            f"lewis_weights: maxiter={limit} reached with relative change "
            f"{change:.2e} > tol={tol:g}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return np.asarray(weights)
