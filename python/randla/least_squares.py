"""Least squares ``min ||A x - b||``: sketch-and-precondition, sketch-and-solve, direct.

``rl.lstsq`` is exported at the top level. Sketch-and-precondition
(Rokhlin & Tygert 2008; Blendenpik, Avron, Maymounkov & Toledo 2010; LSRN,
Meng, Saunders & Mahoney 2014) sketches ``A`` to ``k = ceil(oversampling * d)``
rows, factors the sketch (QR, or an SVD when it is rank-deficient) into a
preconditioner ``P`` with ``A P`` well conditioned, and runs LSQR on ``A P``
from the sketch-and-solve solution; the iteration count depends on the
oversampling, not on ``cond(A)``. For dense tall ``A`` with few columns the
sketch's ``R`` is refined by the Cholesky factor of ``A R^{-1}``'s Gram
matrix (sketch-preconditioned Cholesky QR, as in randomized Cholesky QR,
Fan, Guo & Lin 2021 and Balabanov 2022, here used only as a preconditioner),
which cuts LSQR to a few iterations. Wide problems (``n < d``) sketch ``A^T`` and
precondition on the left, which gives the minimum-norm solution.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import _core
from . import sketch as _sketch
from ._errors import ConvergenceWarning
from ._rng import RNGLike, key_from_rng
from ._validation import as_dense
from .krylov import _block_function, _check_maxiter, _operator_spec

__all__ = ["LstsqResult", "lstsq"]

_METHODS = ("auto", "sketch_precondition", "sketch_solve", "direct")
_SKETCHES: dict[str, Callable[..., _sketch.SketchOperator]] = {
    "gaussian": _sketch.gaussian,
    "rademacher": _sketch.rademacher,
    "srht": _sketch.srht,
    "countsketch": _sketch.countsketch,
    "sparse_sign": _sketch.sparse_sign,
    "sparse_rp": _sketch.sparse_rp,
}
# A sparse or operator A is densified for method="direct" only up to this many entries.
_DENSIFY_LIMIT = 50_000_000


@dataclass(frozen=True, repr=False)
class LstsqResult:
    """What :func:`lstsq` returns.

    Attributes
    ----------
    x : ndarray, shape (d,) or (d, m)
        The solution (the minimum-norm one when ``A`` is rank-deficient).
    residual_norm : float or ndarray of shape (m,)
        ``||A x - b||`` per column, computed from ``x``.
    iterations : int
        LSQR iterations (0 for ``sketch_solve`` and ``direct``).
    converged : bool
        Whether every column met the tolerance.
    method : str
        The method that ran (``"auto"`` resolved).
    rank : int
        Numerical rank of the factored matrix (the sketch, or ``A`` for ``direct``).
    preconditioner : str or None
        The preconditioner LSQR ran with (an addition to API.md's fields):
        ``"qr"`` or ``"svd"`` of the sketch, ``"qr+cholesky"`` when the
        sketch's ``R`` was refined by the Cholesky factor of the
        preconditioned Gram matrix (dense tall ``A``, see :func:`lstsq`);
        ``None`` for ``sketch_solve`` and ``direct``.
    """

    x: np.ndarray
    residual_norm: Any
    iterations: int
    converged: bool
    method: str
    rank: int
    preconditioner: str | None = None

    def __repr__(self) -> str:
        res = np.asarray(self.residual_norm)
        res_text = f"{float(res):.3e}" if res.ndim == 0 else f"array of {res.size}"
        return (
            f"LstsqResult(method={self.method!r}, converged={self.converged}, "
            f"iterations={self.iterations}, rank={self.rank}, "
            f"preconditioner={self.preconditioner!r}, residual_norm={res_text}, "
            f"x=<{self.x.dtype} array of shape {self.x.shape}>)"
        )


def _make_sketch(
    name: str, k: int, n: int, key: int, dtype: np.dtype, nnz_per_col: int = 8
) -> _sketch.SketchOperator:
    if name == "sparse_sign":
        return _sketch.sparse_sign(k, n, nnz_per_col=min(nnz_per_col, k), rng=key, dtype=dtype)
    return _SKETCHES[name](k, n, rng=key, dtype=dtype)


def _sketch_rows(
    S: _sketch.SketchOperator, A: Any, spec: tuple[Any, ...], dtype: np.dtype
) -> np.ndarray:
    """``S @ A`` for a dense, sparse or operator ``A`` (operators: ``(A^T S^T)^T``)."""
    if spec[0] == "callable":
        rmatmat = _block_function(A, "rmatvec", "rmatmat")
        if rmatmat is None:
            raise TypeError("A: sketch-and-precondition needs A^T x (rmatvec or rmatmat)")
        St = np.ascontiguousarray(S.to_dense().T)
        return np.ascontiguousarray(np.asarray(rmatmat(St), dtype=dtype).T)
    return np.asarray(S @ (spec[1] if spec[0] == "dense" else A), dtype=dtype)


def _sketch_columns(
    S: _sketch.SketchOperator, A: Any, spec: tuple[Any, ...], dtype: np.dtype
) -> np.ndarray:
    """``S @ A^T`` (``S`` of shape (k, d)) for the wide case (operators: ``(A S^T)^T``)."""
    if spec[0] == "callable":
        matmat = _block_function(A, "matvec", "matmat")
        St = np.ascontiguousarray(S.to_dense().T)
        return np.ascontiguousarray(np.asarray(matmat(St), dtype=dtype).T)  # type: ignore[misc]
    At = spec[1].T if spec[0] == "dense" else A.T
    return np.asarray(S @ At, dtype=dtype)


def _dense_for_direct(
    A: Any, spec: tuple[Any, ...], shape: tuple[int, int], dtype: np.dtype
) -> tuple[Any, ...]:
    if spec[0] == "dense":
        return spec
    if shape[0] * shape[1] > _DENSIFY_LIMIT:
        raise ValueError(
            f"method='direct' would densify A of shape {shape}; use method='sketch_precondition'"
        )
    if spec[0] == "sparse":
        return ("dense", np.asarray(A.toarray(), dtype=dtype))
    matmat = _block_function(A, "matvec", "matmat")
    if matmat is None:
        raise TypeError("A: an operator needs matvec or matmat")
    columns = matmat(np.eye(shape[1], dtype=dtype))
    return ("dense", np.ascontiguousarray(np.asarray(columns, dtype=dtype)))


def lstsq(
    A: Any,
    b: Any,
    *,
    method: str = "auto",
    sketch: str = "sparse_sign",
    oversampling: float = 4.0,
    rtol: float = 1e-12,
    maxiter: int | None = None,
    rng: RNGLike = None,
    check_finite: bool = True,
) -> LstsqResult:
    """Least squares solution of ``A x = b``: minimizes ``||A x - b||_2``.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix or LinearOperator, shape (n, d)
        Dense, sparse (any format) or an operator with ``matvec``/``matmat``
        and ``rmatvec``/``rmatmat`` (sketch methods only).
    b : array_like, shape (n,) or (n, m)
        Right-hand side(s); each column is solved.
    method : {"auto", "sketch_precondition", "sketch_solve", "direct"}
        ``"sketch_precondition"``: sketch of ``ceil(oversampling * d)`` rows,
        QR (or SVD if rank-deficient) of the sketch as preconditioner, LSQR to
        ``rtol`` from the sketch-and-solve start: full accuracy, cost
        O(nnz(A) * iterations + k d^2). For a dense tall ``A`` whose sketch
        shows a moderate condition number (``eps * cond(R)^2 <= 0.1``, with
        ``R``'s columns scaled to unit norm: cond up to about 2e7 in float64)
        and when the ``n d^2`` flops of ``A^T A`` cost less than the
        iterations they save (``d`` up to about 500 at the defaults), the
        sketch's ``R`` is refined by the Cholesky factor of ``R^{-T} A^T A
        R^{-1}``: ``A`` times the refined ``R^{-1}`` is orthonormal up to the
        rounding of ``A^T A``, and LSQR needs 3 to 7 iterations instead of
        about 35 (``result.preconditioner == "qr+cholesky"``). The answer
        meets the same ``rtol`` either way. ``"sketch_solve"``: the solution of the
        sketched problem only (residual within a factor ``1 + O(1/sqrt(oversampling))``
        of the optimum; not for ``n < d``). ``"direct"``: Householder QR of
        ``A`` (SVD when rank-deficient), densifying a sparse ``A``.
        ``"auto"``: sketch_precondition for sparse matrices and operators and
        for tall dense ``A`` (``n >= 4 k``), direct otherwise.
    sketch : {"sparse_sign", "gaussian", "rademacher", "srht", "countsketch", "sparse_rp"}
        The sketching operator (see :mod:`randla.sketch`); ``"sparse_sign"``
        puts 4 nonzeros in each column for tall problems (8 for wide ones).
    oversampling : float
        Sketch rows per column of ``A``; at least 1 (2 to 4 is typical).
    rtol : float
        LSQR's ``atol`` and ``btol`` on the preconditioned system
        (Paige–Saunders backward-error tests).
    maxiter : int, optional
        LSQR iteration limit (default 1000, Blendenpik's).
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Seeds the sketch.
    check_finite : bool
        Check ``A`` and ``b`` for NaN and infinity (``ValueError``).

    Returns
    -------
    LstsqResult
        ``x`` has shape (d,) for a 1-D ``b``, (d, m) otherwise; for
        rank-deficient or underdetermined ``A`` it is the minimum-norm solution.

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((2000, 20)); b = rng.standard_normal(2000)
    >>> res = rl.lstsq(A, b, rng=0)
    >>> bool(np.allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0], atol=1e-10))
    True
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if sketch not in _SKETCHES:
        raise ValueError(f"sketch must be one of {tuple(_SKETCHES)}, got {sketch!r}")
    if not (isinstance(oversampling, (int, float, np.floating, np.integer)) and oversampling >= 1):
        raise ValueError(f"oversampling must be a number >= 1, got {oversampling!r}")
    if not (isinstance(rtol, (int, float, np.floating)) and rtol >= 0):
        raise ValueError(f"rtol must be >= 0, got {rtol!r}")
    limit = _check_maxiter(maxiter, 1000)
    b_arr = as_dense(b, "b", ndim=(1, 2), check_finite=check_finite)
    # A dense A sketched by an operator that reaches every entry is checked
    # through its sketch (a NaN or infinity in A makes S A non-finite, and the
    # sketch then reports A): one pass over A fewer.
    deferred = (
        check_finite
        and method != "direct"
        and sketch not in _sketch._SKIPS_ROWS
        and isinstance(A, np.ndarray)
    )
    spec, shape, dtype = _operator_spec(A, "A", None, b_arr.dtype, check_finite and not deferred)
    n, d = shape
    if b_arr.shape[0] != n:
        raise ValueError(f"A has shape {shape} but b has shape {b_arr.shape}: b needs {n} rows")
    one = b_arr.ndim == 1
    b2 = np.ascontiguousarray(b_arr.reshape(n, -1), dtype=dtype)

    k = math.ceil(oversampling * min(n, d))
    if method == "auto":
        if spec[0] == "dense" and not (n >= 4 * k or d >= 4 * math.ceil(oversampling * n)):
            method = "direct"
        else:
            method = "sketch_precondition"
    if method == "sketch_solve" and n < d:
        raise ValueError(
            f"method='sketch_solve' sketches the rows of A and needs n >= d, got A of shape {shape}"
        )
    key = key_from_rng(rng)
    if deferred and method == "direct":  # "auto" chose the direct solver
        as_dense(spec[1], "A", ndim=(2,))
    if method == "direct":
        raw = _core.lstsq_solve("direct", _dense_for_direct(A, spec, shape, dtype), b2)
    elif n >= d:
        # sparse_sign with 4 nonzeros per column: k >= 4d rows embed as well
        # as with 8 here (RandBLAS: 2 to 8 for k about 2d) at half the cost.
        S = _make_sketch(sketch, min(k, n), n, key, dtype, nnz_per_col=4)
        sa = _sketch_rows(S, A, spec, dtype)
        try:
            sb = np.asarray(S @ b2, dtype=dtype)
        except ValueError:  # the sketch checks its input (as "A"); name b
            raise ValueError("b contains NaN or infinity") from None
        core_method = "sketch_solve" if method == "sketch_solve" else "sketch_precondition"
        raw = _core.lstsq_solve(core_method, spec, b2, sa, sb, rtol=float(rtol), maxiter=limit)
    else:
        S = _make_sketch(sketch, min(k, d), d, key, dtype)
        sat = _sketch_columns(S, A, spec, dtype)
        raw = _core.lstsq_solve(
            "sketch_precondition_wide", spec, b2, sat, None, rtol=float(rtol), maxiter=limit
        )
    x, residual, iterations, converged, rank, preconditioner = raw
    converged_all = bool(all(converged))
    if not converged_all:
        warnings.warn(
            f"lstsq: LSQR reached maxiter={limit} before rtol={rtol:g}",
            ConvergenceWarning,
            stacklevel=2,
        )
    norms = np.asarray(residual, dtype=np.float64)
    return LstsqResult(
        x=x[:, 0] if one else x,
        residual_norm=float(norms[0]) if one else norms,
        iterations=int(iterations),
        converged=converged_all,
        method=method,
        rank=int(rank),
        preconditioner=preconditioner,
    )
