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
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from . import sketch as _sketch
from ._errors import ConvergenceWarning
from ._rng import RNGLike, key_from_rng
from ._validation import as_dense
from .krylov import _check_maxiter, _operator_spec
from .least_squares import _dense_for_direct, _make_sketch, _sketch_rows

__all__ = [
    "LpRegressionResult",
    "leverage_scores",
    "lewis_weights",
    "lp_regression",
    "sample_rows",
    "sensitivities",
]


def _check_eps(eps: Any) -> float:
    if not isinstance(eps, (numbers.Real, np.floating)) or not (0 < float(eps) <= 1):
        raise ValueError(f"eps must be in (0, 1], got {eps!r}")
    return float(eps)


# The approximate scores err by the sketch's preconditioner, the JL step and
# the rounding of float32 products, given ``0.3 eps``, ``0.3 eps`` and
# ``eps / 4``. Measured (Gaussian matrices with heavy rows, n = 2e3 to 2e5,
# d = 2 to 400), the largest relative error over the n rows is about
# ``2 sqrt(2 ln(n) / k)`` for a sketch of k rows (plus about ``d / k``) and
# ``2 sqrt(ln(n) / t)`` for a JL matrix of t columns: the maximum of n
# fluctuations, not the sketch's worst direction, once d is more than a few.
_SHARE = 0.3


def _sketch_size(n: int, d: int, eps: float) -> int:
    """Rows of the preconditioning sketch: every score off by at most ``0.3 eps``."""
    logn = math.log(max(n, 2))
    return min(n, max(2 * d, math.ceil(4 * d / eps**2), math.ceil(8 * logn / (_SHARE * eps) ** 2)))


def _jl_columns(n: int, eps: float) -> int:
    """Columns of the JL matrix: every squared row norm within ``1 +- 0.3 eps``."""
    return math.ceil(4 * math.log(max(n, 2)) / (_SHARE * eps) ** 2)


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
        ``"approx"``: sparse sign sketch (4 nonzeros per column) of
        ``k = max(2d, 4d/eps^2, 8 ln(n) / (0.3 eps)^2)`` rows, its QR, and a
        Gaussian JL matrix of ``t = 4 ln(n) / (0.3 eps)^2`` columns when that
        is fewer than ``d``: O(nnz(A) (4 + min(d, t)) + k d^2). For a dense
        ``A`` the product by the preconditioner runs in blocks, in float32
        when its rounding error bound (from the condition number of the
        sketch) stays below ``eps / 4``.
    eps : float
        Target relative accuracy of ``"approx"``, in (0, 1]: the sketch and
        the JL matrix are sized so that each moves the largest relative
        error over the n rows by about ``0.3 eps`` (measured maxima
        ``2 sqrt(2 ln(n) / k)`` and ``2 sqrt(ln(n) / t)``), the rounding by
        at most ``eps / 4``: every score within ``1 +- eps`` with high
        probability (measured largest errors 0.1 to 0.2 at ``eps = 0.5``, 0.6
        at ``eps = 1``, for ``d`` from 2 to 400).
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Seeds the sketches (``"approx"`` only).

    Returns
    -------
    ndarray, shape (n,), float64
        In [0, 1] (approximate scores are clipped to 1); they sum to
        ``rank(A)`` (exactly, up to rounding, for ``"exact"``).

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
    # A dense A for the sketched path is checked through its sparse sign
    # sketch, which every entry reaches (as lstsq does): one pass fewer.
    deferred = method == "approx" and isinstance(A, np.ndarray)
    spec, shape, dtype = _operator_spec(A, "A", None, np.dtype(np.float32), not deferred)
    n, d = shape
    if method == "exact" or n < d or _sketch_size(n, d, eps) >= n:
        if deferred:
            as_dense(spec[1], "A", ndim=(2,))
        dense = _dense_for_direct(A, spec, shape, dtype)[1]
        scores, _ = _core.leverage_exact(dense)
        return np.asarray(scores)
    key = key_from_rng(rng)
    # Four nonzeros per column, as lstsq's preconditioner: the measured score
    # errors match eight (W7: max 0.19-0.21 at eps = 0.5 either way) at half
    # the cost of the sketch.
    S = _make_sketch("sparse_sign", _sketch_size(n, d, eps), n, key, dtype, nnz_per_col=4)
    sa = _sketch_rows(S, A, spec, dtype)
    t = _jl_columns(n, eps)
    jl = None
    if t < d:
        # Entries N(0, 1/t); the core uses the first rank(S A) rows.
        jl = np.ascontiguousarray(_sketch.gaussian(t, d, rng=key + 1, dtype=dtype).to_dense().T)
    # A quarter of eps may go to rounding: f32 products where their error
    # bound (from cond(S A)) fits, as for a well-conditioned dense A.
    scores, _ = _core.leverage_sketched(spec, sa, jl, eps / 4)
    return np.minimum(np.asarray(scores), 1.0)


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
        O(n d^2) per iteration with GEMMs: ``R`` from a sketch of ``A``
        makes ``A R^{-1}`` well conditioned once, then each iteration is a
        Cholesky QR of the rescaled rows). ``"approx"``: when
        ``d > 24 ln(n)``, one fixed sparse sign sketch of ``40 d`` rows and a
        JL matrix of ``24 ln(n)`` columns, reused by every iteration, so it
        converges to the Lewis weights of the sketched map (within a constant
        factor of the exact ones, which is what sampling needs) at
        O(n d ln n) per iteration; for smaller ``d`` the exact scores are
        cheaper and are used.
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
    ``max(1 - p/2, 1 - 2/p)`` per iteration), and accelerated by Anderson
    mixing of the last four steps (restarted whenever the residual grows).
    A ``ConvergenceWarning`` is issued when ``maxiter`` is reached first.

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> A = np.random.default_rng(0).standard_normal((500, 4))
    >>> w = rl.lewis_weights(A, 1.0, method="exact")
    >>> round(float(w.sum()), 6)
    4.0
    """
    if method not in ("exact", "approx"):
        raise ValueError(f"method must be 'exact' or 'approx', got {method!r}")
    p = _check_p(p)
    tol = _check_tol(tol)
    limit = _check_maxiter(maxiter, 200)
    spec, shape, dtype = _operator_spec(A, "A", None, np.dtype(np.float32), True)
    n, d = shape
    dense = _dense_for_direct(A, spec, shape, dtype)[1]
    k = min(n, 40 * d)
    # A JL matrix of 6 ln(n) / 0.25 columns: scores within a constant factor
    # are all the approximate Lewis iteration needs.
    t = math.ceil(24 * math.log(max(n, 2)))
    # Sketched scores pay off only where the JL step shrinks the row norms'
    # cost (t < d); otherwise the sketch-preconditioned exact scores are
    # cheaper and exact.
    sketched = method == "approx" and k < n and n >= d and t < d
    core_method = "approx" if sketched else "exact"
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


def _check_tol(tol: Any) -> float:
    if not isinstance(tol, (numbers.Real, np.floating)) or not (float(tol) >= 0):
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    return float(tol)


def _check_p(p: Any) -> float:
    if not isinstance(p, (numbers.Real, np.floating)) or not (1 <= float(p) < math.inf):
        raise ValueError(f"p must be a number with 1 <= p < inf, got {p!r}")
    return float(p)


def _exact_l1_sensitivities(A: np.ndarray) -> np.ndarray:
    """``max |a_i x|`` over ``||A x||_1 <= 1``, one linear program per row (small A)."""
    from scipy.optimize import linprog

    n, d = A.shape
    # Variables (x, t): maximize a_i x subject to -t <= A x <= t, sum t <= 1.
    A_ub = np.block([[A, -np.eye(n)], [-A, -np.eye(n)], [np.zeros((1, d)), np.ones((1, n))]])
    b_ub = np.concatenate([np.zeros(2 * n), [1.0]])
    bounds = [(None, None)] * d + [(0, None)] * n
    out = np.empty(n)
    for i in range(n):
        c = np.concatenate([-A[i], np.zeros(n)])
        res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if res.status != 0:
            raise RuntimeError(f"sensitivities: the linear program for row {i} failed")
        out[i] = -res.fun
    return out


def sensitivities(A: Any, p: float, *, method: str = "approx", rng: RNGLike = None) -> np.ndarray:
    """Upper bounds on the l_p sensitivities ``s_i = max_x |a_i x|^p / ||A x||_p^p``.

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (n, d)
    p : float
        ``1 <= p < inf``.
    method : {"approx", "lewis", "exact"}
        ``"lewis"``: ``d^{max(0, p/2 - 1)} w_i`` with ``w`` the exact l_p Lewis
        weights, an upper bound on every sensitivity (Cohen & Peng 2015;
        total at most ``d^{max(1, p/2)}``). ``"approx"``: the same with
        approximate Lewis weights, inflated by 2 to stay an upper bound.
        ``"exact"``: by optimization, for small problems: p = 2 gives the
        leverage scores, p = 1 one linear program per row (scipy's HiGHS);
        other ``p`` raise ``ValueError``.
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Seeds the sketch of ``"approx"``.

    Returns
    -------
    ndarray, shape (n,), float64

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> A = np.random.default_rng(0).standard_normal((60, 3))
    >>> exact = rl.sensitivities(A, 1.0, method="exact")
    >>> bound = rl.sensitivities(A, 1.0, method="lewis")
    >>> bool(np.all(exact <= bound * (1 + 1e-8)))
    True
    """
    if method not in ("approx", "lewis", "exact"):
        raise ValueError(f"method must be 'approx', 'lewis' or 'exact', got {method!r}")
    p = _check_p(p)
    if method == "exact":
        spec, shape, dtype = _operator_spec(A, "A", None, np.dtype(np.float64), True)
        dense = np.asarray(_dense_for_direct(A, spec, shape, dtype)[1], dtype=np.float64)
        if p == 2.0:
            return leverage_scores(dense)
        if p == 1.0:
            return _exact_l1_sensitivities(dense)
        raise ValueError("method='exact' is available for p = 1 and p = 2")
    w = lewis_weights(A, p, method="exact" if method == "lewis" else "approx", rng=rng)
    d = np.asarray(A.shape)[1]
    bound = float(d) ** max(0.0, p / 2.0 - 1.0) * w
    return bound if method == "lewis" else 2.0 * bound


_SAMPLING_METHODS = ("leverage", "root_leverage", "lewis", "sensitivity", "uniform")


def sample_rows(
    A: Any,
    m: int,
    *,
    p: float = 2,
    method: str = "lewis",
    replace: bool = True,
    rng: RNGLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``m`` rows of ``A`` with weights: an l_p subspace-embedding coreset.

    ``sum_j w_j |a_{idx_j} x|^p`` estimates ``||A x||_p^p`` for every ``x``
    (unbiased with replacement); with enough rows it is within ``1 +- eps``
    for all ``x`` at once.

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (n, d)
    m : int
        Rows to draw (``m <= n`` without replacement).
    p : float
        The l_p norm the coreset preserves, ``1 <= p < inf``.
    method : {"lewis", "leverage", "root_leverage", "sensitivity", "uniform"}
        Sampling probabilities proportional to: l_p Lewis weights (Cohen &
        Peng; about ``d log d`` rows for p <= 2), leverage scores (the l_2
        choice), leverage scores to the power ``p/2`` (root leverage for
        p = 1; Woodruff & Yasuda 2023), sensitivity upper bounds
        (:func:`sensitivities`), or uniform (fails on matrices with a few
        high-leverage rows).
    replace : bool
        With replacement (i.i.d. draws, the default) or ``m`` distinct rows
        (Efraimidis–Spirakis; weights ``1 / (m q_i)`` as with replacement).
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Seeds the draws (and the sketches of approximate scores); the indices
        are a pure function of the seed.

    Returns
    -------
    idx : ndarray of int64, shape (m,)
        Row indices (increasing without replacement).
    w : ndarray of float64, shape (m,)
        ``1 / (m q_idx)`` with ``q`` the sampling probabilities.

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> A = np.random.default_rng(0).standard_normal((10_000, 5))
    >>> idx, w = rl.sample_rows(A, 500, p=1, method="lewis", rng=0)
    >>> x = np.ones(5)
    >>> est = np.sum(w * np.abs(A[idx] @ x)); exact = np.abs(A @ x).sum()
    >>> bool(abs(est / exact - 1) < 0.2)
    True
    """
    if method not in _SAMPLING_METHODS:
        raise ValueError(f"method must be one of {_SAMPLING_METHODS}, got {method!r}")
    p = _check_p(p)
    if isinstance(m, (bool, np.bool_)) or not isinstance(m, numbers.Integral):
        raise TypeError(f"m must be an int, got {type(m).__name__}")
    m = int(m)
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    n = int(np.shape(A)[0]) if hasattr(A, "shape") else int(np.asarray(A).shape[0])
    if not replace and m > n:
        raise ValueError(f"m = {m} must be <= n = {n} without replacement")
    key = key_from_rng(rng)
    if method == "uniform":
        _operator_spec(A, "A", None, np.dtype(np.float32), True)  # validates A
        q = np.full(n, 1.0 / n)
    else:
        if method == "leverage":
            scores = leverage_scores(A)
        elif method == "root_leverage":
            scores = np.maximum(leverage_scores(A), 0.0) ** (p / 2.0)
        elif method == "lewis":
            scores = lewis_weights(A, p, rng=key)
        else:
            scores = sensitivities(A, p, rng=key)
        scores = np.maximum(np.asarray(scores, dtype=np.float64), 0.0)
        total = scores.sum()
        if not (total > 0 and np.isfinite(total)):
            raise ValueError("A has no nonzero row to sample")
        q = scores / total
    idx = _core.sample_indices(key + 2, m, n, None if method == "uniform" else q, bool(replace))
    return idx, 1.0 / (m * q[idx])


@dataclass(frozen=True, repr=False)
class LpRegressionResult:
    """What :func:`lp_regression` returns.

    Attributes
    ----------
    x : ndarray, shape (d,)
    objective : float
        ``||A x - b||_p`` on all rows of ``A`` (also with ``sample``).
    iterations : int
        IRLS iterations.
    converged : bool
    """

    x: np.ndarray
    objective: float
    iterations: int
    converged: bool

    def __repr__(self) -> str:
        return (
            f"LpRegressionResult(objective={self.objective:.6g}, iterations={self.iterations}, "
            f"converged={self.converged}, x=<{self.x.dtype} array of shape {self.x.shape}>)"
        )


def lp_regression(
    A: Any,
    b: Any,
    p: float,
    *,
    method: str = "irls",
    sample: int | None = None,
    tol: float = 1e-8,
    maxiter: int = 100,
    rng: RNGLike = None,
) -> LpRegressionResult:
    """``min_x ||A x - b||_p`` for ``1 <= p < inf`` by iteratively reweighted least squares.

    Each iteration solves a weighted least squares problem (weights
    ``max(|r_i|, eta)^{p-2}``, Householder QR) and backtracks on the true
    objective, so every step decreases it; for ``p < 2`` the smoothing
    ``eta`` halves each iteration down to ``1e-13 max|b|``.

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (n, d), n >= d
        Used dense (a sparse ``A`` is densified up to 5e7 entries).
    b : array_like, shape (n,)
    p : float
    method : {"irls"}
    sample : int, optional
        Solve on an l_p coreset of this many rows of ``[A, b]`` drawn by
        :func:`sample_rows` with Lewis weights (an ``(1 + eps)``-approximate
        minimizer for ``sample`` about ``d log d / eps^2``); ``None`` uses all rows.
    tol : float
        Stop after five consecutive iterations that decrease the objective by
        less than ``tol`` relative to it (once the smoothing has reached its
        floor). IRLS converges linearly near an l1 minimizer: for ``p = 1``,
        ``tol=1e-10`` (and ``maxiter`` of a few hundred) brings the objective
        within about 1e-8 of the linear-programming optimum, the default
        within about 1e-6.
    maxiter : int
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Seeds the coreset.

    Returns
    -------
    LpRegressionResult

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> A = np.ones((7, 1)); b = np.array([1.0, 2, 3, 4, 100, 5, 6])
    >>> res = rl.lp_regression(A, b, 1.0)
    >>> round(float(res.x[0]), 6), res.converged
    (4.0, True)
    """
    if method != "irls":
        raise ValueError(f"method must be 'irls', got {method!r}")
    p = _check_p(p)
    tol = _check_tol(tol)
    if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 1:
        raise ValueError(f"maxiter must be an int >= 1, got {maxiter!r}")
    b_arr = as_dense(b, "b", ndim=(1,))
    spec, shape, dtype = _operator_spec(A, "A", None, b_arr.dtype, True)
    n, d = shape
    if b_arr.shape[0] != n:
        raise ValueError(f"A has shape {shape} but b has shape {b_arr.shape}: b needs {n} rows")
    if n < d:
        raise ValueError(f"lp_regression needs n >= d, got A of shape {shape}")
    dense = np.asarray(_dense_for_direct(A, spec, shape, dtype)[1], dtype=dtype)
    rhs = np.ascontiguousarray(b_arr, dtype=dtype)
    if sample is None:
        rows_a, rows_b, weights = dense, rhs, np.ones(n)
    else:
        if isinstance(sample, bool) or not isinstance(sample, numbers.Integral) or sample < d:
            raise ValueError(f"sample must be an int >= d = {d}, got {sample!r}")
        idx, weights = sample_rows(np.column_stack([dense, rhs]), int(sample), p=p, rng=rng)
        rows_a, rows_b = np.ascontiguousarray(dense[idx]), np.ascontiguousarray(rhs[idx])
    x, _, iterations, converged = _core.lp_regression(
        rows_a, rows_b, np.ascontiguousarray(weights, dtype=np.float64), p, float(tol), int(maxiter)
    )
    if not converged:
        warnings.warn(
            f"lp_regression: maxiter={maxiter} reached before tol={tol:g}",
            ConvergenceWarning,
            stacklevel=2,
        )
    residual = dense.astype(np.float64) @ np.asarray(x, dtype=np.float64) - rhs
    objective = float(np.sum(np.abs(residual) ** p) ** (1.0 / p))
    return LpRegressionResult(
        x=np.asarray(x), objective=objective, iterations=int(iterations), converged=bool(converged)
    )
