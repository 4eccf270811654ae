"""Low-rank matrix completion by (robust) alternating minimization.

``rl.complete`` recovers a low-rank matrix from a subset of its entries:
spectral initialization (the top-k SVD of the rescaled observations by
:func:`randla.svd`, with incoherence clipping), then alternating least
squares on the observed entries (Jain, Netrapalli & Sanghavi 2013), each
half-sweep a parallel pass over all rows or all columns in the Rust core
over CSR and CSC views of the observations built once.

With ``solver="sketch"`` each row/column problem is solved only
approximately, in ``O(|Omega_i| k)``, as in the robust alternating
minimization of Gu, Song, Yin & Zhang (2023); ``solver="exact"`` solves
them exactly in ``O(|Omega_i| k^2)``. :class:`MatrixCompleter` wraps it for
scikit-learn pipelines.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, cast

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from . import _core
from ._errors import ConvergenceWarning
from ._rng import RNGLike, key_from_rng
from ._validation import _float_dtype, check_positive_int

__all__ = ["CompletionInfo", "CompletionResult", "MatrixCompleter", "complete"]

# CG steps per row/column problem of the sketch solver.
_SKETCH_STEPS = 3
# Rows of the spectral start with norm above this multiple of sqrt(k / m) are clipped.
_CLIP = 2.0
_DENSE_LIMIT = 10**8


@dataclass(frozen=True)
class CompletionInfo:
    """What a callback sees after each iteration (one sweep over rows and columns).

    Attributes
    ----------
    iteration : int
        Completed iterations, counted from 1.
    rmse : float
        Root mean square error on the observed entries.
    elapsed : float
        Seconds since the start of ``complete``.
    """

    iteration: int
    rmse: float
    elapsed: float


@dataclass(frozen=True, repr=False)
class CompletionResult:
    """A completed matrix ``M ~ U @ V.T``.

    Attributes
    ----------
    U : numpy.ndarray, shape (m, rank)
    V : numpy.ndarray, shape (n, rank)
    iterations : int
        Sweeps run.
    converged : bool
        Whether the tolerance was met before ``maxiter`` (or the callback stopped).
    history : numpy.ndarray
        Observed-entry RMSE after each sweep.
    """

    U: np.ndarray
    V: np.ndarray
    iterations: int
    converged: bool
    history: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.U.shape[0], self.V.shape[0])

    def predict(self, rows: Any, cols: Any) -> np.ndarray:
        """Entries ``M[rows[t], cols[t]]`` of the completion, without forming ``M``.

        ``rows`` and ``cols`` are integer arrays of the same shape (negative
        indices count from the end, as in numpy); cost ``O(len(rows) * rank)``.
        """
        r = np.asarray(rows)
        c = np.asarray(cols)
        if r.shape != c.shape:
            raise ValueError(f"rows of shape {r.shape} and cols of shape {c.shape} differ")
        if r.size and (r.dtype.kind not in "iu" or c.dtype.kind not in "iu"):
            raise TypeError("rows and cols must be integer arrays")
        m, n = self.shape
        for name, idx, size in (("rows", r, m), ("cols", c, n)):
            if idx.size and (idx.min() < -size or idx.max() >= size):
                raise IndexError(f"{name} out of range for a completion of shape {self.shape}")
        out = np.empty(r.shape, dtype=self.U.dtype)
        flat_r, flat_c, flat_o = r.ravel(), c.ravel(), out.reshape(-1)
        step = 1 << 16
        for s in range(0, flat_r.size, step):
            u, v = self.U[flat_r[s : s + step]], self.V[flat_c[s : s + step]]
            flat_o[s : s + step] = np.einsum("ij,ij->i", u, v)
        return out

    def to_dense(self) -> np.ndarray:
        """``U @ V.T`` (refused above 1e8 entries: use :meth:`predict`)."""
        m, n = self.shape
        if m * n > _DENSE_LIMIT:
            raise ValueError(
                f"to_dense() of a {m}x{n} completion would hold {m * n:.2e} entries; "
                "use predict(rows, cols) for the entries you need"
            )
        return self.U @ self.V.T

    def __repr__(self) -> str:
        last = f"{self.history[-1]:.3e}" if self.history.size else "n/a"
        return (
            f"CompletionResult(shape={self.shape}, rank={self.U.shape[1]}, "
            f"iterations={self.iterations}, converged={self.converged}, rmse={last})"
        )


class _Observations:
    """The observed entries as CSR and CSC views (float64 values, built once)."""

    def __init__(self, X: Any) -> None:
        if sp.issparse(X):
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D, got a sparse array of shape {X.shape}")
            if X.dtype.kind == "c":
                raise TypeError("X: complex input is not supported")
            self.dtype = _float_dtype(X.dtype, "X")
            coo = X.tocoo()
            rows, cols, vals = coo.row, coo.col, np.asarray(coo.data, dtype=np.float64)
        else:
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise ValueError(f"X must be 2-D, got an array of shape {arr.shape}")
            self.dtype = _float_dtype(arr.dtype, "X")
            mask = ~np.isnan(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, bool)
            rows, cols = np.nonzero(mask)
            vals = np.asarray(arr[rows, cols], dtype=np.float64)
        self.shape = (int(X.shape[0]), int(X.shape[1]))
        if 0 in self.shape:
            raise ValueError(f"X is empty (shape {self.shape})")
        if vals.size == 0:
            raise ValueError("X has no observed entries")
        if not np.isfinite(vals).all():
            raise ValueError("X contains infinity (or NaN stored as an observation)")
        coo = sp.coo_matrix((vals, (rows, cols)), shape=self.shape)
        self.csr = coo.tocsr()  # duplicates are summed (scipy's convention)
        self.csc = coo.tocsc()
        self.nnz = int(self.csr.nnz)
        self.norm = float(np.sqrt(np.mean(self.csr.data**2)))

    def update(
        self, by_rows: bool, fixed: np.ndarray, x: np.ndarray, reg: float, steps: int
    ) -> float:
        mat = self.csr if by_rows else self.csc
        return float(
            _core.completion_update(
                mat.format, self.shape, mat.indptr, mat.indices, mat.data, fixed, x, reg, steps
            )
        )


def _spectral_start(obs: _Observations, rank: int, key: int) -> np.ndarray:
    """Top-``rank`` left singular vectors of ``P_Omega(M) / p``, rows clipped, orthonormalized."""
    from .lowrank import svd

    m, n = obs.shape
    p = obs.nnz / (m * n)
    # A rough subspace suffices to start alternating minimization: one block
    # Krylov pass beyond the first. The SVD of P_Omega(M) itself, its
    # singular values divided by p: no rescaled copy of the observations.
    U, s, _ = svd(obs.csr, rank, n_iter=1, rng=np.random.SeedSequence(key))
    s = s / p
    limit = _CLIP * np.sqrt(rank / m)
    norms = np.linalg.norm(U, axis=1)
    heavy = norms > limit
    if heavy.any():
        U[heavy] *= (limit / norms[heavy])[:, None]
    Q, _ = np.linalg.qr(U)
    return np.ascontiguousarray(Q * np.sqrt(np.maximum(s, np.finfo(float).tiny)))


def complete(
    X: Any,
    rank: int,
    *,
    method: str = "altmin",
    solver: str = "sketch",
    reg: float = 0.0,
    maxiter: int = 100,
    tol: float = 1e-9,
    rng: RNGLike = None,
    callback: Optional[Callable[[CompletionInfo], Any]] = None,
    verbose: bool = False,
) -> CompletionResult:
    """Complete a low-rank matrix from its observed entries.

    Parameters
    ----------
    X : scipy.sparse matrix or array_like, shape (m, n)
        Sparse (any format): the stored entries are the observations
        (explicit zeros included; duplicates are summed). Dense: NaN marks
        a missing entry.
    rank : int
        Target rank, ``1 <= rank <= min(m, n)``.
    method : {"altmin"}
        Spectral initialization with incoherence clipping, then alternating
        least squares.
    solver : {"sketch", "exact"}
        ``"exact"``: each row/column least-squares problem by Cholesky of
        its normal equations, ``O(|Omega_i| k^2)``. ``"sketch"``: 3
        conjugate-gradient steps warm-started from the previous iterate and
        preconditioned by the Gram matrix of the whole fixed factor scaled
        to the line's sample size, ``O(|Omega_i| k)`` (robust alternating
        minimization, Gu, Song, Yin & Zhang 2023: the outer iteration
        tolerates the inexact solves).
    reg : float
        Ridge penalty ``reg * |u_i|^2`` in every row and column problem.
    maxiter : int
        Maximum sweeps (one sweep updates all columns, then all rows).
    tol : float
        Stop when the observed RMSE falls below ``tol`` times the RMS of
        the observed values (with ``reg = 0``), or when the objective
        ``sum of squared observed residuals + reg (|U|^2 + |V|^2)`` (its square root) decreases
        by less than ``tol`` relative to the previous sweep (the noise
        floor). An objective that increases (possible with the inexact
        ``"sketch"`` solves) never counts as converged.
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Seeds the randomized SVD of the spectral start.
    callback : callable, optional
        ``callback(info)`` with a :class:`CompletionInfo` after each sweep;
        returning ``True`` stops (the result then has ``converged=True`` only
        if the tolerance was met).
    verbose : bool
        Print one progress line per sweep to stderr.

    Returns
    -------
    CompletionResult
        ``U`` (m, rank), ``V`` (n, rank) with ``M ~ U @ V.T``; ``history``
        the observed RMSE per sweep. Rows or columns with no observation get
        zero factors (their predictions are 0).

    Raises
    ------
    ValueError
        ``rank`` out of range, no observed entry, infinite observations,
        negative ``reg``, unknown ``method``/``solver``.

    Warns
    -----
    ConvergenceWarning
        ``maxiter`` reached before the tolerance.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> import randla as rl
    >>> rng = np.random.default_rng(0)
    >>> M = rng.standard_normal((300, 5)) @ rng.standard_normal((5, 200))
    >>> mask = rng.random(M.shape) < 0.3
    >>> X = sp.csr_matrix(np.where(mask, M, 0.0)); X.eliminate_zeros()
    >>> res = rl.complete(sp.coo_matrix((M[mask], np.nonzero(mask)), shape=M.shape), 5, rng=0)
    >>> bool(np.linalg.norm(res.to_dense() - M) / np.linalg.norm(M) < 1e-6)
    True
    """
    if method != "altmin":
        raise ValueError(f"method must be 'altmin', got {method!r}")
    if solver not in ("sketch", "exact"):
        raise ValueError(f"solver must be 'sketch' or 'exact', got {solver!r}")
    rank = check_positive_int(rank, "rank")
    maxiter = check_positive_int(maxiter, "maxiter")
    reg = float(reg)
    if not (reg >= 0 and np.isfinite(reg)):
        raise ValueError(f"reg must be finite and >= 0, got {reg}")
    tol = float(tol)
    if not (tol >= 0 and np.isfinite(tol)):
        raise ValueError(f"tol must be finite and >= 0, got {tol}")
    obs = _Observations(X)
    m, n = obs.shape
    if rank > min(m, n):
        raise ValueError(f"rank = {rank} must be <= min(X.shape) = {min(m, n)}")
    key = key_from_rng(rng)
    steps = _SKETCH_STEPS if solver == "sketch" else 0
    start = time.perf_counter()
    U = _spectral_start(obs, rank, key)
    V = np.zeros((n, rank))
    if solver == "sketch":
        # The first column solve is exact: CG needs a warm start.
        obs.update(False, U, V, reg, 0)
    history: list[float] = []
    objective: list[float] = []
    converged = False
    stop = False
    it = 0
    for it in range(1, maxiter + 1):
        obs.update(False, U, V, reg, steps)
        ss = obs.update(True, V, U, reg, steps)
        rmse = float(np.sqrt(ss / obs.nnz))
        history.append(rmse)
        # The square root of the objective the sweeps minimize (the observed
        # RMSE alone may rise when reg > 0); for reg = 0 a multiple of the RMSE.
        objective.append(np.sqrt(ss + reg * (float(np.sum(U * U)) + float(np.sum(V * V)))))
        elapsed = time.perf_counter() - start
        if verbose:
            print(
                f"rl.complete: iteration {it:4d}  observed RMSE {rmse:.3e}  ({elapsed:.2f} s)",
                file=sys.stderr,
            )
        small = rmse <= tol * obs.norm and reg == 0.0
        stalled = len(objective) > 1 and 0.0 <= objective[-2] - objective[-1] <= tol * objective[-2]
        if small or stalled:
            converged = True
        stop = bool(callback(CompletionInfo(it, rmse, elapsed))) if callback is not None else False
        if converged or stop:
            break
    if not converged and not stop:
        warnings.warn(
            f"rl.complete: maxiter={maxiter} sweeps reached with observed RMSE "
            f"{history[-1]:.3e} (tol={tol:g})",
            ConvergenceWarning,
            stacklevel=2,
        )
    if reg == 0.0:
        # Without a penalty only U V^T is determined: return balanced factors.
        # With one, the stationary factors are balanced already and a
        # rescaling would break their stationarity.
        U, V = _balance(U, V)
    return CompletionResult(
        U.astype(obs.dtype, copy=False),
        V.astype(obs.dtype, copy=False),
        it,
        converged,
        np.asarray(history),
    )


def _balance(U: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rescale to ``U = P sqrt(S)``, ``V = Q sqrt(S)`` (same product, equal Gram matrices).

    Both factors are multiplied on the right by a ``k x k`` matrix, so zero
    rows (lines without observations) stay exactly zero.
    """
    # mode="r" returns the triangular factor alone (numpy's stubs say QRResult).
    ru = cast(np.ndarray, np.linalg.qr(U, mode="r"))
    rv = cast(np.ndarray, np.linalg.qr(V, mode="r"))
    a, s, bt = np.linalg.svd(ru @ rv.T)
    root = np.sqrt(s)
    try:
        tu = scipy.linalg.solve_triangular(ru, a * root)
        tv = scipy.linalg.solve_triangular(rv, bt.T * root)
    except (np.linalg.LinAlgError, ValueError):
        return U, V
    if not (np.isfinite(tu).all() and np.isfinite(tv).all()):
        return U, V
    return U @ tu, V @ tv


class MatrixCompleter:
    """scikit-learn compatible imputer: completes arrays with NaN by :func:`complete`.

    ``fit(X)`` learns the column factors ``V`` (``components_``) from the
    observed entries of ``X``; ``transform(X)`` fills the NaN entries of any
    ``X`` with the same columns, solving each row's factor by least squares
    on its observed entries against ``V`` (observed entries are kept as they
    are); ``fit_transform(X)`` does both on one matrix. Parameters are those
    of :func:`complete`.

    Examples
    --------
    >>> import numpy as np
    >>> import randla as rl
    >>> rng = np.random.default_rng(0)
    >>> M = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 50))
    >>> X = np.where(rng.random(M.shape) < 0.5, M, np.nan)
    >>> filled = rl.MatrixCompleter(rank=3, rng=0).fit_transform(X)
    >>> bool(np.allclose(filled, M, atol=1e-6))
    True
    """

    def __init__(
        self,
        rank: int = 10,
        *,
        solver: str = "sketch",
        reg: float = 0.0,
        maxiter: int = 100,
        tol: float = 1e-9,
        rng: RNGLike = None,
        verbose: bool = False,
    ) -> None:
        self.rank = rank
        self.solver = solver
        self.reg = reg
        self.maxiter = maxiter
        self.tol = tol
        self.rng = rng
        self.verbose = verbose

    _PARAMS = ("rank", "solver", "reg", "maxiter", "tol", "rng", "verbose")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> MatrixCompleter:
        for name, value in params.items():
            if name not in self._PARAMS:
                raise ValueError(f"invalid parameter {name!r} for MatrixCompleter")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"MatrixCompleter({args})"

    def fit(self, X: Any, y: Any = None) -> MatrixCompleter:
        self.result_ = complete(
            X,
            self.rank,
            solver=self.solver,
            reg=self.reg,
            maxiter=self.maxiter,
            tol=self.tol,
            rng=self.rng,
            verbose=self.verbose,
        )
        self.components_ = self.result_.V
        self.n_features_in_ = self.result_.V.shape[0]
        self._fit_shape = self.result_.shape
        return self

    def transform(self, X: Any) -> np.ndarray:
        if not hasattr(self, "components_"):
            raise ValueError("this MatrixCompleter is not fitted yet: call fit first")
        obs = _Observations(X)
        if obs.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {obs.shape[1]} columns; the completer was fitted on {self.n_features_in_}"
            )
        V = np.ascontiguousarray(self.components_, dtype=np.float64)
        U = np.zeros((obs.shape[0], V.shape[1]))
        obs.update(True, V, U, float(self.reg), 0)
        arr = np.array(X.toarray() if sp.issparse(X) else X, dtype=obs.dtype, copy=True)
        missing = np.isnan(arr)
        rows, cols = np.nonzero(missing)
        arr[rows, cols] = np.einsum("ij,ij->i", U[rows], V[cols])
        return arr

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        self.fit(X)
        res = self.result_
        arr = np.array(X.toarray() if sp.issparse(X) else X, dtype=np.result_type(res.U), copy=True)
        rows, cols = np.nonzero(np.isnan(arr))
        arr[rows, cols] = res.predict(rows, cols)
        return arr
