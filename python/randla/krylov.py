"""Krylov solvers.

Conventions follow ``scipy.sparse.linalg``: the stopping rule is
``||b - A x|| <= max(rtol * ||b||, atol)``, ``maxiter`` defaults to ``10 * n``,
``info`` is 0 on convergence, > 0 (the iteration count) without convergence
and < 0 on breakdown. Beyond scipy:

- ``b`` of shape ``(n, m)`` solves the ``m`` systems together, with one pass
  over ``A`` per iteration; each column stops on its own tolerance.
- ``callback(info)`` receives an :class:`IterationInfo` after every iteration
  and stops the solve by returning ``True``.
- the result is a :class:`KrylovResult` with iteration counts and the
  residual history.

``A`` and ``M`` may be dense arrays, scipy.sparse matrices (native threaded
kernels, no Python in the loop), :class:`scipy.sparse.linalg.LinearOperator`
objects (anything with ``shape`` and ``matvec``/``matmat``) or plain callables
``x -> A @ x``; the GIL is taken only around calls into Python.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import scipy.sparse as sp

from . import _core
from ._errors import ConvergenceWarning
from ._validation import as_dense, as_sparse

__all__ = [
    "IterationInfo",
    "KrylovResult",
    "bicgstab",
    "cg",
    "gmres",
    "lsmr",
    "lsqr",
    "minres",
]

FloatOrArray = Union[float, np.ndarray]


@dataclass(frozen=True)
class IterationInfo:
    """What a callback sees after each iteration.

    Attributes
    ----------
    iteration : int
        Completed iterations, counted from 1.
    x : numpy.ndarray
        The current iterate, shape ``(n,)`` or ``(n, m)`` (a copy).
    residual_norm : float or numpy.ndarray
        The (recursively updated) residual norm of each column.
    """

    iteration: int
    x: np.ndarray
    residual_norm: FloatOrArray


@dataclass(frozen=True, repr=False)
class KrylovResult:
    """The outcome of a Krylov solve.

    Attributes
    ----------
    x : numpy.ndarray
        The solution: the shape of ``b`` for square systems; ``(n,)`` or
        ``(n, k)`` for ``lsqr``/``lsmr`` with ``A`` of shape ``(m, n)``.
    converged : bool or numpy.ndarray
        Whether each column met its tolerance.
    iterations : int or numpy.ndarray
        Iterations each column ran.
    residual_norm : float or numpy.ndarray
        Final residual norm of each column.
    residual_history : numpy.ndarray
        Residual norms after 0, 1, ... iterations of the solve: shape
        ``(k + 1,)``, or ``(k + 1, m)`` with one column per right-hand side,
        ``k`` the largest iteration count (a column that stopped earlier keeps
        its last value).
    stopped : bool
        A callback returned ``True``.
    info : int or numpy.ndarray
        scipy's code: 0 converged, > 0 iterations without convergence, < 0 breakdown.
    """

    x: np.ndarray
    converged: Any
    iterations: Any
    residual_norm: Any
    residual_history: np.ndarray
    stopped: bool
    info: Any

    def __repr__(self) -> str:
        return (
            f"KrylovResult(converged={self.converged!r}, iterations={self.iterations!r}, "
            f"residual_norm={self.residual_norm!r}, stopped={self.stopped}, info={self.info!r}, "
            f"x=<array {self.x.shape} {self.x.dtype}>, "
            f"residual_history=<array {self.residual_history.shape}>)"
        )


def _callable_spec(
    shape: tuple[int, int],
    dtype: np.dtype,
    matmat: Callable[[np.ndarray], Any],
    rmatmat: Any,
    name: str,
) -> tuple[Any, ...]:
    def checked(f: Callable[[np.ndarray], Any], rows: int) -> Callable[[np.ndarray], np.ndarray]:
        def call(x: np.ndarray) -> np.ndarray:
            y = np.asarray(f(x))
            if y.ndim == 1 and x.shape[1] == 1:
                y = y.reshape(-1, 1)
            if y.shape != (rows, x.shape[1]):
                raise ValueError(
                    f"{name} returned an array of shape {y.shape}, expected {(rows, x.shape[1])}"
                )
            if np.iscomplexobj(y):
                raise TypeError(f"{name}: complex output is not supported")
            return np.ascontiguousarray(y, dtype=dtype)

        return call

    def transposed(X: np.ndarray) -> np.ndarray:
        try:
            return checked(rmatmat, shape[1])(X)
        except NotImplementedError as exc:
            raise TypeError(f"{name} has no rmatvec/rmatmat, and A^T x is needed") from exc

    return ("callable", shape, checked(matmat, shape[0]), None if rmatmat is None else transposed)


def _columnwise(f: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], np.ndarray]:
    """A function of a 2-D block from a function of one vector."""
    return lambda X: np.column_stack([np.asarray(f(X[:, j])) for j in range(X.shape[1])])


def _block_function(obj: Any, single: str, block: str) -> Callable[[np.ndarray], Any] | None:
    """A function of a 2-D block: one vector goes through ``matvec`` as a 1-D array (as
    scipy's solvers call it), several through ``matmat`` when the object has one."""
    vector = getattr(obj, single, None)
    matrix = getattr(obj, block, None)
    if vector is None and matrix is None:
        return None
    columns = _columnwise(vector) if vector is not None else None

    def apply(X: np.ndarray) -> Any:
        if columns is not None and (X.shape[1] == 1 or matrix is None):
            return columns(X)
        return matrix(X)  # type: ignore[misc]

    return apply


def _operator_spec(
    A: Any, name: str, n: int | None, dtype: np.dtype, check_finite: bool
) -> tuple[tuple[Any, ...], tuple[int, int], np.dtype]:
    """The tuple the core reads for an operator, its shape and dtype."""
    if sp.issparse(A):
        parts = as_sparse(A, name, check_finite=check_finite)
        dt = np.result_type(parts.dtype, dtype)
        data = parts.data.astype(dt, copy=False)
        spec = ("sparse", parts.format, parts.shape, parts.indptr, parts.indices, data)
        return spec, parts.shape, np.dtype(dt)
    if hasattr(A, "shape") and (hasattr(A, "matvec") or hasattr(A, "matmat")):
        shape = (int(A.shape[0]), int(A.shape[1]))
        a_dtype = np.dtype(getattr(A, "dtype", None) or np.float64)
        if a_dtype.kind == "c":
            raise TypeError(f"{name}: complex input is not supported")
        dt = np.dtype(np.result_type(a_dtype if a_dtype.kind == "f" else np.float64, dtype))
        matmat = _block_function(A, "matvec", "matmat")
        rmatmat = _block_function(A, "rmatvec", "rmatmat")
        return _callable_spec(shape, dt, matmat, rmatmat, name), shape, dt  # type: ignore[arg-type]
    if callable(A) and not isinstance(A, np.ndarray):
        if n is None:
            raise TypeError(f"{name}: a plain callable needs the size from b")
        return _callable_spec((n, n), dtype, _columnwise(A), None, name), (n, n), dtype
    dense = as_dense(A, name, ndim=(2,), check_finite=check_finite)
    dt = np.dtype(np.result_type(dense.dtype, dtype))
    return ("dense", dense.astype(dt, copy=False)), dense.shape, dt


def _make_system(
    A: Any, b: Any, x0: Any, M: Any, *, square: bool
) -> tuple[tuple[Any, ...], np.ndarray, np.ndarray | None, tuple[Any, ...] | None, bool, np.dtype]:
    """Normalize A, b, x0, M the way every solver needs (scipy's make_system)."""
    b_arr = as_dense(b, "b", ndim=(1, 2))
    one = b_arr.ndim == 1
    n = b_arr.shape[0]
    spec, shape, dtype = _operator_spec(A, "A", n, b_arr.dtype, check_finite=True)
    if square and shape[0] != shape[1]:
        raise ValueError(f"A must be square, got shape {shape}")
    if shape[0] != n:
        raise ValueError(f"A has shape {shape} but b has shape {b_arr.shape}: need {shape[0]} rows")
    b2 = np.ascontiguousarray(b_arr.reshape(n, -1), dtype=dtype)
    x2 = None
    if x0 is not None:
        x_arr = as_dense(x0, "x0", ndim=(1, 2))
        expected = (shape[1],) + b_arr.shape[1:]
        if x_arr.shape != expected:
            raise ValueError(f"x0 has shape {x_arr.shape}, expected {expected}")
        x2 = np.ascontiguousarray(x_arr.reshape(shape[1], -1), dtype=dtype)
    m_spec = None
    if M is not None:
        m_spec, m_shape, _ = _operator_spec(M, "M", n, dtype, check_finite=True)
        if m_shape != (n, n):
            raise ValueError(f"M has shape {m_shape}, expected {(n, n)}")
    # Refresh the operator spec so that its dtype matches b's final dtype.
    if spec[0] == "dense":
        spec = ("dense", spec[1].astype(dtype, copy=False))
    elif spec[0] == "sparse":
        spec = spec[:5] + (spec[5].astype(dtype, copy=False),)
    return spec, b2, x2, m_spec, one, dtype


_BREAKDOWN = {
    ("cg", -1): "p^T A p or r^T M r is not positive, so A or M is not positive definite",
    ("bicgstab", -10): "rho = r0 . r vanished (|rho| < eps^2)",
    ("bicgstab", -11): "omega or r0 . v vanished",
    ("minres", -4): "the condition estimate of A reached 0.1/eps",
    ("minres", -9): "M is not positive definite",
}


def _finish(
    method: str, raw: tuple[Any, ...], one: bool, least_squares: bool = False
) -> KrylovResult:
    x, converged, iterations, residual_norm, history, stopped, info = raw
    converged = np.asarray(converged, dtype=bool)
    iterations = np.asarray(iterations, dtype=np.int64)
    residual_norm = np.asarray(residual_norm, dtype=np.float64)
    info = np.asarray(info, dtype=np.int64)
    if least_squares:
        if not stopped:
            _warn_least_squares(method, info, iterations, one)
        return _package(x, converged, iterations, residual_norm, history, stopped, info, one)
    for c in np.flatnonzero(info < 0):
        where = "" if one else f" (right-hand side {c})"
        reason = _BREAKDOWN.get((method, int(info[c])), "a breakdown")
        warnings.warn(
            f"{method} broke down at iteration {iterations[c] + 1}{where}: {reason}; "
            "the returned x is the last iterate before the breakdown",
            ConvergenceWarning,
            stacklevel=3,
        )
    if not stopped and np.any(info > 0):
        bad = np.flatnonzero(info > 0)
        where = "" if one else f" for right-hand sides {bad.tolist()}"
        warnings.warn(
            f"{method} did not converge in {int(iterations[bad].max())} iterations{where}",
            ConvergenceWarning,
            stacklevel=3,
        )
    return _package(x, converged, iterations, residual_norm, history, stopped, info, one)


def _warn_least_squares(method: str, info: np.ndarray, iterations: np.ndarray, one: bool) -> None:
    for c in np.flatnonzero(info == 7):
        where = "" if one else f" for right-hand side {c}"
        warnings.warn(
            f"{method} did not converge in {int(iterations[c])} iterations{where}",
            ConvergenceWarning,
            stacklevel=4,
        )
    for c in np.flatnonzero((info == 3) | (info == 6)):
        where = "" if one else f" for right-hand side {c}"
        warnings.warn(
            f"{method} stopped at the conditioning limit{where}: the estimate of cond(A) "
            "exceeds conlim (or 1/eps); x may be inaccurate",
            ConvergenceWarning,
            stacklevel=4,
        )


def _package(
    x: np.ndarray,
    converged: np.ndarray,
    iterations: np.ndarray,
    residual_norm: np.ndarray,
    history: np.ndarray,
    stopped: bool,
    info: np.ndarray,
    one: bool,
) -> KrylovResult:
    if one:
        return KrylovResult(
            x=x[:, 0],
            converged=bool(converged[0]),
            iterations=int(iterations[0]),
            residual_norm=float(residual_norm[0]),
            residual_history=history[:, 0],
            stopped=bool(stopped),
            info=int(info[0]),
        )
    return KrylovResult(x, converged, iterations, residual_norm, history, bool(stopped), info)


def _callback(callback: Any, one: bool) -> Callable[[int, np.ndarray, np.ndarray], bool] | None:
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError("callback must be callable")

    def call(iteration: int, x: np.ndarray, norms: np.ndarray) -> bool:
        info = IterationInfo(
            iteration=int(iteration),
            x=x[:, 0] if one else x,
            residual_norm=float(norms[0]) if one else norms,
        )
        return bool(callback(info))

    return call


def _check_nonnegative(**values: float) -> None:
    for name, value in values.items():
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value}")


def _check_maxiter(maxiter: Any, default: int) -> int:
    if maxiter is None:
        return default
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        raise ValueError(f"maxiter must be a positive int, got {maxiter!r}")
    return int(maxiter)


def _solve_square(
    method: str,
    A: Any,
    b: Any,
    x0: Any,
    M: Any,
    rtol: float,
    atol: float,
    maxiter: Any,
    iterations_per_unknown: int,
    callback: Any,
    **extra: Any,
) -> KrylovResult:
    """Normalize a square system, run ``method`` in the core, package the result."""
    spec, b2, x2, m_spec, one, _ = _make_system(A, b, x0, M, square=True)
    _check_nonnegative(rtol=rtol, atol=atol)
    limit = _check_maxiter(maxiter, iterations_per_unknown * b2.shape[0])
    raw = _core.krylov_solve(
        method,
        spec,
        b2,
        x2,
        m_spec,
        limit,
        _callback(callback, one),
        rtol=float(rtol),
        atol=float(atol),
        **extra,
    )
    return _finish(method, raw, one)


def _solve_least_squares(
    method: str,
    A: Any,
    b: Any,
    x0: Any,
    damp: float,
    atol: float,
    btol: float,
    conlim: float,
    maxiter: Any,
    callback: Any,
) -> KrylovResult:
    """LSQR and LSMR: the same system, tolerances and result; scipy's default limits."""
    spec, b2, x2, _, one, _ = _make_system(A, b, x0, None, square=False)
    _check_nonnegative(damp=damp, atol=atol, btol=btol, conlim=conlim)
    rows, cols = _shape_of(spec)
    limit = _check_maxiter(maxiter, 2 * cols if method == "lsqr" else min(rows, cols))
    raw = _core.krylov_solve(
        method,
        spec,
        b2,
        x2,
        None,
        limit,
        _callback(callback, one),
        atol=float(atol),
        btol=float(btol),
        damp=float(damp),
        conlim=float(conlim),
    )
    return _finish(method, raw, one, least_squares=True)


def cg(
    A: Any,
    b: Any,
    x0: Any = None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callable[[IterationInfo], Any] | None = None,
) -> KrylovResult:
    """Conjugate gradients for symmetric positive definite ``A``.

    The same recurrences, stopping rule and iteration count as
    :func:`scipy.sparse.linalg.cg`, with native kernels for dense and sparse
    ``A`` and several right-hand sides solved together.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix, LinearOperator or callable, shape (n, n)
        Symmetric positive definite.
    b : array_like, shape (n,) or (n, m)
        Right-hand side(s); each column stops on its own tolerance.
    x0 : array_like, optional
        Starting guess, shape of ``b`` (zeros by default).
    rtol, atol : float
        Stop when ``||b - A x|| <= max(rtol * ||b||, atol)``.
    maxiter : int, optional
        Iteration limit (``10 * n`` by default).
    M : array_like, sparse matrix, LinearOperator or callable, optional
        Symmetric positive definite preconditioner approximating ``A^{-1}``.
    callback : callable, optional
        ``callback(info)`` with an :class:`IterationInfo` after each iteration;
        returning ``True`` stops the solve (``stopped=True``).

    Returns
    -------
    KrylovResult
        ``converged=False`` with a :class:`randla.ConvergenceWarning` when
        ``maxiter`` is reached; ``info < 0`` with a warning when ``p^T A p`` or
        ``r^T M r`` is not positive (``A`` or ``M`` is not positive definite).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, randla as rl
    >>> A = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(100, 100), format="csr")
    >>> res = rl.krylov.cg(A, np.ones(100), rtol=1e-10)
    >>> res.converged, bool(np.allclose(A @ res.x, 1.0))
    (True, True)
    """
    return _solve_square("cg", A, b, x0, M, rtol, atol, maxiter, 10, callback)


def bicgstab(
    A: Any,
    b: Any,
    x0: Any = None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callable[[IterationInfo], Any] | None = None,
) -> KrylovResult:
    """BiCGSTAB for general square ``A`` (van der Vorst).

    The same recurrences, breakdown tests and stopping rule as
    :func:`scipy.sparse.linalg.bicgstab`, with native kernels for dense and
    sparse ``A`` and several right-hand sides solved together. ``M`` is
    applied as a right preconditioner.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix, LinearOperator or callable, shape (n, n)
        Square; nonsymmetric allowed.
    b : array_like, shape (n,) or (n, m)
        Right-hand side(s); each column stops on its own tolerance.
    x0 : array_like, optional
        Starting guess, shape of ``b`` (zeros by default).
    rtol, atol : float
        Stop when ``||b - A x|| <= max(rtol * ||b||, atol)``.
    maxiter : int, optional
        Iteration limit (``10 * n`` by default).
    M : array_like, sparse matrix, LinearOperator or callable, optional
        Preconditioner approximating ``A^{-1}``.
    callback : callable, optional
        ``callback(info)`` with an :class:`IterationInfo` after each iteration;
        returning ``True`` stops the solve (``stopped=True``).

    Returns
    -------
    KrylovResult
        ``converged=False`` with a :class:`randla.ConvergenceWarning` when
        ``maxiter`` is reached; ``info`` -10 (``rho`` breakdown) or -11
        (``omega`` breakdown) with a warning, as scipy.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, randla as rl
    >>> A = sp.diags([-1.0, 2.5, -1.2], [-1, 0, 1], shape=(100, 100), format="csr")
    >>> res = rl.krylov.bicgstab(A, np.ones(100), rtol=1e-10)
    >>> res.converged, bool(np.allclose(A @ res.x, 1.0))
    (True, True)
    """
    return _solve_square("bicgstab", A, b, x0, M, rtol, atol, maxiter, 10, callback)


def gmres(
    A: Any,
    b: Any,
    x0: Any = None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    restart: int = 30,
    maxiter: int | None = None,
    M: Any = None,
    flexible: bool = False,
    callback: Callable[[IterationInfo], Any] | None = None,
) -> KrylovResult:
    """Restarted GMRES, or flexible GMRES (FGMRES) with ``flexible=True``.

    Right preconditioning: the residual estimate is the true ``||b - A x||``
    (recomputed at every restart), so the stopping rule
    ``||b - A x|| <= max(rtol * ||b||, atol)`` is scipy's on the original
    system. With ``flexible=True`` the preconditioned directions ``M v`` are
    kept, so ``M`` may change between iterations (a learned or inner-iterative
    preconditioner, as in FGMRES).

    Parameters
    ----------
    A : array_like, scipy.sparse matrix, LinearOperator or callable, shape (n, n)
    b : array_like, shape (n,) or (n, m)
    x0 : array_like, optional
    rtol, atol : float
    restart : int
        Krylov subspace size before a restart (30; capped at ``n``).
    maxiter : int, optional
        Limit on inner iterations (products with ``A``), ``10 * n`` by default.
        Note: scipy's ``maxiter`` counts restart cycles instead.
    M : array_like, sparse matrix, LinearOperator or callable, optional
        Right preconditioner approximating ``A^{-1}``.
    flexible : bool
        FGMRES: allow ``M`` to vary from one application to the next.
    callback : callable, optional
        ``callback(info)`` after each inner iteration (forming ``info.x`` costs
        O(n k) at inner step k); returning ``True`` stops.

    Returns
    -------
    KrylovResult

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, randla as rl
    >>> A = sp.diags([-1.3, 2.5, -0.7], [-1, 0, 1], shape=(200, 200), format="csr")
    >>> res = rl.krylov.gmres(A, np.ones(200), rtol=1e-10)
    >>> res.converged, bool(np.allclose(A @ res.x, 1.0))
    (True, True)
    """
    if isinstance(restart, bool) or not isinstance(restart, (int, np.integer)) or restart < 1:
        raise ValueError(f"restart must be a positive int, got {restart!r}")
    return _solve_square(
        "gmres",
        A,
        b,
        x0,
        M,
        rtol,
        atol,
        maxiter,
        10,
        callback,
        restart=int(restart),
        flexible=bool(flexible),
    )


def minres(
    A: Any,
    b: Any,
    x0: Any = None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    shift: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callable[[IterationInfo], Any] | None = None,
) -> KrylovResult:
    """MINRES for symmetric (possibly indefinite) ``A``, solving ``(A - shift I) x = b``.

    scipy's recurrences (Paige & Saunders). Stops when the residual estimate
    ``||b - A x||`` (its ``M^{-1}``-weighted norm with a preconditioner, compared
    with ``||b||`` in the same norm) is ``<= max(rtol * ||b||, atol)``, or when
    ``x`` is numerically an eigenvector (a least squares solution, converged).
    Note: scipy's own test is relative to ``||A|| ||x||``, so iteration counts
    differ from scipy's while the solutions agree to the tolerance.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix, LinearOperator or callable, shape (n, n)
        Symmetric.
    b : array_like, shape (n,) or (n, m)
    x0 : array_like, optional
    rtol, atol : float
    shift : float
        Solve with ``A - shift I``.
    maxiter : int, optional
        ``5 * n`` by default, as scipy.
    M : array_like, sparse matrix, LinearOperator or callable, optional
        Symmetric positive definite preconditioner approximating ``A^{-1}``.
    callback : callable, optional
        ``callback(info)`` after each iteration; returning ``True`` stops.

    Returns
    -------
    KrylovResult
        ``info`` -4: ``cond(A)`` reached ``0.1/eps``; -9: ``M`` is not positive
        definite (both with a warning).

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> A = np.diag([-2.0, -1.0, 1.0, 3.0])
    >>> res = rl.krylov.minres(A, np.ones(4), rtol=1e-12)
    >>> bool(np.allclose(res.x, [-0.5, -1.0, 1.0, 1 / 3]))
    True
    """
    if not np.isfinite(shift):
        raise ValueError(f"shift must be finite, got {shift}")
    return _solve_square(
        "minres", A, b, x0, M, rtol, atol, maxiter, 5, callback, shift=float(shift)
    )


def lsqr(
    A: Any,
    b: Any,
    x0: Any = None,
    *,
    damp: float = 0.0,
    atol: float = 1e-8,
    btol: float = 1e-8,
    conlim: float = 1e8,
    maxiter: int | None = None,
    callback: Callable[[IterationInfo], Any] | None = None,
) -> KrylovResult:
    """LSQR for ``min ||A x - b||^2 + damp^2 ||x||^2`` (Paige & Saunders).

    The same recurrences, estimates and stopping tests as
    :func:`scipy.sparse.linalg.lsqr`, for any (rectangular) ``A`` given as a
    dense array, a scipy.sparse matrix or an operator with ``matvec`` and
    ``rmatvec``, and for several right-hand sides at once.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix or LinearOperator, shape (m, n)
    b : array_like, shape (m,) or (m, k)
    x0 : array_like, optional
        Starting guess, shape ``(n,)`` or ``(n, k)``.
    damp, atol, btol, conlim : float
        As in scipy: stop when ``||r|| <= btol ||b|| + atol ||A|| ||x||`` (a
        compatible system), when ``||A^T r|| <= atol ||A|| ||r||`` (a least
        squares solution), or when the condition estimate exceeds ``conlim``.
    maxiter : int, optional
        Iteration limit (``2 * n`` by default, as scipy).
    callback : callable, optional
        ``callback(info)`` after each iteration; returning ``True`` stops.

    Returns
    -------
    KrylovResult
        ``info`` holds scipy's ``istop``: 0 (b = 0), 1, 2, 4, 5 converged;
        3, 6 the conditioning limit; 7 the iteration limit (with a
        :class:`randla.ConvergenceWarning`) or a callback's stop. ``residual_norm`` is
        ``sqrt(||b - A x||^2 + damp^2 ||x||^2)``.

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> A = np.random.default_rng(0).standard_normal((50, 5))
    >>> b = A @ np.arange(5.0)
    >>> res = rl.krylov.lsqr(A, b, atol=1e-12, btol=1e-12)
    >>> bool(np.allclose(res.x, np.arange(5.0)))
    True
    """
    return _solve_least_squares("lsqr", A, b, x0, damp, atol, btol, conlim, maxiter, callback)


def lsmr(
    A: Any,
    b: Any,
    x0: Any = None,
    *,
    damp: float = 0.0,
    atol: float = 1e-8,
    btol: float = 1e-8,
    conlim: float = 1e8,
    maxiter: int | None = None,
    callback: Callable[[IterationInfo], Any] | None = None,
) -> KrylovResult:
    """LSMR for ``min ||A x - b||^2 + damp^2 ||x||^2`` (Fong & Saunders).

    The same recurrences, estimates and stopping tests as
    :func:`scipy.sparse.linalg.lsmr` (``||A^T r||`` decreases monotonically,
    so it often stops earlier than :func:`lsqr` on least squares problems),
    for any (rectangular) ``A`` given as a dense array, a scipy.sparse matrix
    or an operator with ``matvec`` and ``rmatvec``, and for several
    right-hand sides at once.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix or LinearOperator, shape (m, n)
    b : array_like, shape (m,) or (m, k)
    x0 : array_like, optional
        Starting guess, shape ``(n,)`` or ``(n, k)``.
    damp, atol, btol, conlim : float
        As in scipy: stop when ``||r|| <= btol ||b|| + atol ||A|| ||x||`` (a
        compatible system), when ``||A^T r|| <= atol ||A|| ||r||`` (a least
        squares solution), or when the condition estimate exceeds ``conlim``.
    maxiter : int, optional
        Iteration limit (``min(m, n)`` by default, as scipy).
    callback : callable, optional
        ``callback(info)`` after each iteration; returning ``True`` stops.

    Returns
    -------
    KrylovResult
        ``info`` holds scipy's ``istop``: 0 (b = 0), 1, 2, 4, 5 converged;
        3, 6 the conditioning limit; 7 the iteration limit (with a
        :class:`randla.ConvergenceWarning`) or a callback's stop. ``residual_norm`` estimates
        ``||b - A x||``.

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> A = np.random.default_rng(0).standard_normal((50, 5))
    >>> b = A @ np.arange(5.0)
    >>> res = rl.krylov.lsmr(A, b, atol=1e-12, btol=1e-12)
    >>> bool(np.allclose(res.x, np.arange(5.0)))
    True
    """
    return _solve_least_squares("lsmr", A, b, x0, damp, atol, btol, conlim, maxiter, callback)


def _shape_of(spec: tuple[Any, ...]) -> tuple[int, int]:
    if spec[0] == "dense":
        return spec[1].shape  # type: ignore[no-any-return]
    if spec[0] == "sparse":
        return spec[2]  # type: ignore[no-any-return]
    return spec[1]  # type: ignore[no-any-return]
