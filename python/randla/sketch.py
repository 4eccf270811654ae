"""Sketching operators.

A sketch operator ``S`` of shape ``(k, n)`` is lazy and immutable: it stores its
distribution, parameters and a 64-bit key, never a dense matrix (except
:meth:`SketchOperator.to_dense`). Every entry is a pure function of the key
and its position, so the same ``rng`` gives bitwise identical operators and
products ``S @ A`` whatever the thread count. All operators are scaled so that
``E[S.T @ S] = I``.

Products
--------
``S @ A`` (``A`` of shape ``(n,)`` or ``(n, d)``, dense or scipy.sparse),
``A @ S.T`` (``A`` of shape ``(m, n)``), ``S.T @ B`` and ``B @ S``. Dense
operators (Gaussian, Rademacher) are generated tile by tile inside a GEMM;
SRHT uses a fast Walsh–Hadamard transform; sparse operators cost
O(nnz(S) * d) on dense input and avoid densifying sparse input. Products with
the transposed operator on a sparse right-hand side (``S.T @ B``, ``B @ S``
with ``B`` sparse) densify ``B``, which lives in the small sketch space.

Non-finite input raises ``ValueError``. The check is done on the (small)
result for operators in which every input entry reaches the output, and on
the input for ``sparse_rp`` and ``row_sampling``, which can skip rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _core
from ._rng import RNGLike, key_from_rng
from ._validation import (
    SparseParts,
    as_dense,
    as_operand,
    check_dtype,
    check_positive_int,
    ensure_finite_result,
    result_dtype,
)

__all__ = [
    "SketchOperator",
    "apply",
    "countsketch",
    "gaussian",
    "rademacher",
    "row_sampling",
    "sparse_rp",
    "sparse_sign",
    "srht",
]

# Operators whose zero columns can hide rows of A: their input is checked up front.
_SKIPS_ROWS = ("sparse_rp", "row_sampling")


def _transpose_parts(parts: SparseParts) -> SparseParts:
    """The transpose of a CSR/CSC matrix: the same arrays in the other format."""
    fmt = "csc" if parts.format == "csr" else "csr"
    shape = (parts.shape[1], parts.shape[0])
    return parts._replace(format=fmt, shape=shape, matrix=parts.matrix.T)


def _cast_parts(parts: SparseParts, dtype: np.dtype) -> SparseParts:
    if parts.data.dtype == dtype:
        return parts
    return parts._replace(data=parts.data.astype(dtype))


class SketchOperator:
    """A lazy random sketching matrix of shape ``(k, n)``; see :mod:`randla.sketch`.

    Create one with :func:`gaussian`, :func:`rademacher`, :func:`srht`,
    :func:`countsketch`, :func:`sparse_sign`, :func:`sparse_rp` or
    :func:`row_sampling`; apply it with ``@``.

    Attributes
    ----------
    shape : tuple of int
        ``(k, n)``, or ``(n, k)`` for a transposed operator.
    dtype : numpy.dtype
        float32 or float64: the dtype of products with float32 input.
    kind : str
        The family (``"gaussian"``, ``"srht"``, ...).
    key : int
        The 64-bit Philox key every entry derives from.
    T : SketchOperator
        The transposed operator (no copy).

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> S = rl.sketch.gaussian(20, 1000, rng=0)
    >>> A = np.ones((1000, 3))
    >>> (S @ A).shape, (A.T @ S.T).shape
    ((20, 3), (3, 20))
    >>> np.allclose(S @ A, S.to_dense() @ A)
    True
    """

    __array_ufunc__ = None  # numpy defers A @ S to SketchOperator.__rmatmul__

    def __init__(
        self,
        core: Any,
        dtype: np.dtype,
        key: int,
        params: dict[str, Any],
        transposed: bool = False,
    ) -> None:
        self._core = core
        self._dtype = np.dtype(dtype)
        self._key = key
        self._params = params
        self._transposed = transposed

    @property
    def shape(self) -> tuple[int, int]:
        k, n = self._core.shape
        return (n, k) if self._transposed else (k, n)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def kind(self) -> str:
        return str(self._core.kind)

    @property
    def key(self) -> int:
        return self._key

    @property
    def T(self) -> SketchOperator:  # noqa: N802 (numpy's name)
        return SketchOperator(
            self._core, self._dtype, self._key, self._params, not self._transposed
        )

    def __repr__(self) -> str:
        params = "".join(f", {name}={value!r}" for name, value in self._params.items())
        suffix = ".T" if self._transposed else ""
        return (
            f"SketchOperator(kind={self.kind!r}, shape={self._core.shape}, "
            f"dtype={self._dtype.name}{params}, key={self._key:#018x}){suffix}"
        )

    # --- products -------------------------------------------------------

    def __matmul__(self, other: Any) -> np.ndarray:
        if isinstance(other, SketchOperator):
            return NotImplemented
        if self._transposed:
            return self._transpose_times(other)
        return self._times(other)

    def __rmatmul__(self, other: Any) -> np.ndarray:
        if isinstance(other, SketchOperator):
            return NotImplemented
        if self._transposed:
            return self._times_transposed_input(other)
        return self._input_times(other)

    def _operand(self, other: Any, name: str) -> Any:
        return as_operand(other, name, check_finite=self.kind in _SKIPS_ROWS)

    def _check_rows(self, shape: tuple[int, ...], needed: int, name: str, product: str) -> None:
        if shape[0] != needed:
            raise ValueError(
                f"{name} has shape {shape}, but {product} with an operator of shape "
                f"{self.shape} needs {needed} rows"
            )

    def _times(self, A: Any) -> np.ndarray:
        """S @ A."""
        k, n = self._core.shape
        op = self._operand(A, "A")
        self._check_rows(op.shape, n, "A", "S @ A")
        dtype = result_dtype(self._dtype, op.dtype)
        if isinstance(op, SparseParts):
            out = np.empty((k, op.shape[1]), dtype=dtype)
            parts = _cast_parts(op, dtype)
            self._core.apply_sparse(
                parts.format, parts.shape, parts.indptr, parts.indices, parts.data, out
            )
        else:
            a = op.astype(dtype, copy=False)
            out = np.empty((k, 1 if a.ndim == 1 else a.shape[1]), dtype=dtype)
            self._core.apply(a.reshape(n, -1), out)
        ensure_finite_result(out, op, "A")
        return out[:, 0] if op.ndim == 1 else out

    def _times_transposed_input(self, A: Any) -> np.ndarray:
        """A @ S.T = (S @ A.T).T for A of shape (m, n); a 1-D A gives S @ A."""
        k, n = self._core.shape
        op = self._operand(A, "A")
        if op.ndim == 1:
            return self._times(op)
        if op.shape[1] != n:
            raise ValueError(
                f"A has shape {op.shape}, but A @ S.T with S.T of shape {self.shape} "
                f"needs {n} columns"
            )
        m = op.shape[0]
        dtype = result_dtype(self._dtype, op.dtype)
        out = np.empty((m, k), dtype=dtype)
        if isinstance(op, SparseParts):
            parts = _cast_parts(_transpose_parts(op), dtype)
            self._core.apply_sparse(
                parts.format, parts.shape, parts.indptr, parts.indices, parts.data, out.T
            )
        else:
            self._core.apply(op.astype(dtype, copy=False).T, out.T)
        ensure_finite_result(out, op, "A")
        return out

    def _dense_small(self, B: Any, name: str) -> np.ndarray:
        # Sparse inputs of transposed products live in the k-dimensional sketch space: densify.
        if hasattr(B, "toarray") and not isinstance(B, np.ndarray):
            B = B.toarray()
        # B is k x d, small: check it directly (its rows that meet an empty row of S
        # never reach the output).
        return as_dense(B, name)

    def _transpose_times(self, B: Any) -> np.ndarray:
        """S.T @ B for B of shape (k,) or (k, d)."""
        k, n = self._core.shape
        b = self._dense_small(B, "B")
        self._check_rows(b.shape, k, "B", "S.T @ B")
        dtype = result_dtype(self._dtype, b.dtype)
        b = b.astype(dtype, copy=False)
        out = np.empty((n, 1 if b.ndim == 1 else b.shape[1]), dtype=dtype)
        self._core.apply_transpose(b.reshape(k, -1), out)
        return out[:, 0] if b.ndim == 1 else out

    def _input_times(self, B: Any) -> np.ndarray:
        """B @ S = (S.T @ B.T).T for B of shape (m, k); a 1-D B gives S.T @ B."""
        k, n = self._core.shape
        b = self._dense_small(B, "B")
        if b.ndim == 1:
            return self._transpose_times(b)
        if b.shape[1] != k:
            raise ValueError(
                f"B has shape {b.shape}, but B @ S with S of shape {self.shape} needs {k} columns"
            )
        dtype = result_dtype(self._dtype, b.dtype)
        out = np.empty((b.shape[0], n), dtype=dtype)
        self._core.apply_transpose(b.astype(dtype, copy=False).T, out.T)
        return out

    def to_dense(self) -> np.ndarray:
        """The operator as a dense array of shape ``self.shape`` (for tests and small cases)."""
        out = np.empty(self._core.shape, dtype=self._dtype)
        self._core.to_dense(out)
        return np.ascontiguousarray(out.T) if self._transposed else out


def _make(
    kind: str,
    k: Any,
    n: Any,
    rng: RNGLike,
    dtype: Any,
    params: dict[str, Any] | None = None,
    **core_options: Any,
) -> SketchOperator:
    k = check_positive_int(k, "k")
    n = check_positive_int(n, "n")
    if n >= 2**63:
        raise ValueError(f"n = {n} is too large (must be < 2**63)")
    if k > n:
        raise ValueError(
            f"k = {k} must be <= n = {n}: a sketch has at most as many rows as its input"
        )
    dt = check_dtype(dtype)
    key = key_from_rng(rng)
    core = _core.SketchCore(kind, k, n, key, **core_options)
    return SketchOperator(core, dt, key, params or {})


def gaussian(k: int, n: int, *, rng: RNGLike = None, dtype: Any = np.float64) -> SketchOperator:
    """Gaussian sketch: i.i.d. entries N(0, 1/k).

    Entry ``(i, j)`` is the Box–Muller normal at position ``i * n + j`` of the
    key's Philox stream; float32 operators use the same draws, rounded to float32. ``S @ A``
    generates ``S`` in tiles inside a GEMM: O(k n d) time, O(k d) extra memory.

    Parameters
    ----------
    k, n : int
        Shape ``(k, n)`` of the operator (``k`` sketch rows, ``n`` input rows).
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Source of the 64-bit key.
    dtype : float32 or float64
        dtype of products with float32 input (float64 input gives float64).

    Returns
    -------
    SketchOperator

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> S = rl.sketch.gaussian(4, 100, rng=1)
    >>> S.shape
    (4, 100)
    >>> np.array_equal(S.to_dense(), rl.sketch.gaussian(4, 100, rng=1).to_dense())
    True
    """
    return _make("gaussian", k, n, rng, dtype)


def rademacher(k: int, n: int, *, rng: RNGLike = None, dtype: Any = np.float64) -> SketchOperator:
    """Rademacher sketch: i.i.d. entries ±1/√k with probability 1/2 each.

    Same layout and cost as :func:`gaussian`, with cheaper generation.

    Parameters
    ----------
    k, n : int
        Shape ``(k, n)`` of the operator, ``1 <= k <= n``.
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Source of the 64-bit key.
    dtype : float32 or float64
        Precision of the entries (products follow numpy's type promotion).

    Returns
    -------
    SketchOperator

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> S = rl.sketch.rademacher(4, 10, rng=0)
    >>> bool(np.all(np.abs(S.to_dense()) == 0.5))
    True
    """
    return _make("rademacher", k, n, rng, dtype)


def srht(k: int, n: int, *, rng: RNGLike = None, dtype: Any = np.float64) -> SketchOperator:
    """Subsampled randomized Hadamard transform ``sqrt(n2/k) P H D``.

    ``D`` holds random signs, ``H`` is the orthonormal Walsh–Hadamard matrix of
    size ``n2`` (the next power of two >= ``n``; the input is zero-padded) and
    ``P`` keeps ``k`` distinct rows drawn uniformly (in increasing order), so
    ``k <= n2``. ``S @ A`` costs O(n2 d log n2) with a cache-blocked FWHT.

    Parameters
    ----------
    k, n : int
        Shape ``(k, n)`` of the operator, ``1 <= k <= n``.
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Source of the 64-bit key.
    dtype : float32 or float64
        Precision of the entries (products follow numpy's type promotion).

    Returns
    -------
    SketchOperator

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> S = rl.sketch.srht(8, 16, rng=0)
    >>> np.allclose(S.to_dense() @ S.to_dense().T, 2.0 * np.eye(8))
    True
    """
    return _make("srht", k, n, rng, dtype)


def countsketch(k: int, n: int, *, rng: RNGLike = None, dtype: Any = np.float64) -> SketchOperator:
    """CountSketch (Clarkson–Woodruff): one ±1 per column, in a uniformly random row.

    ``S @ A`` costs one pass over ``A``: O(nnz(A)).

    Parameters
    ----------
    k, n : int
        Shape ``(k, n)`` of the operator, ``1 <= k <= n``.
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Source of the 64-bit key.
    dtype : float32 or float64
        Precision of the entries (products follow numpy's type promotion).

    Returns
    -------
    SketchOperator

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> S = rl.sketch.countsketch(5, 12, rng=0)
    >>> (np.abs(S.to_dense()).sum(axis=0) == 1).all()
    np.True_
    """
    return _make("countsketch", k, n, rng, dtype)


def sparse_sign(
    k: int,
    n: int,
    *,
    nnz_per_col: int = 8,
    rng: RNGLike = None,
    dtype: Any = np.float64,
) -> SketchOperator:
    """Sparse sign sketch (SJLT/OSNAP): ``nnz_per_col`` distinct random rows per column.

    Entries are ±1/√nnz_per_col. ``S @ A`` costs O(nnz_per_col * nnz(A)).
    Requires ``nnz_per_col <= k``.

    Parameters
    ----------
    k, n : int
        Shape ``(k, n)`` of the operator, ``1 <= k <= n``.
    nnz_per_col : int
        Nonzeros per column, ``1 <= nnz_per_col <= k`` (8 by default; ``rl.sketch.apply``
        clamps the default to ``k``).
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Source of the 64-bit key.
    dtype : float32 or float64
        Precision of the entries (products follow numpy's type promotion).

    Returns
    -------
    SketchOperator

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> S = rl.sketch.sparse_sign(10, 50, nnz_per_col=4, rng=0)
    >>> (np.count_nonzero(S.to_dense(), axis=0) == 4).all()
    np.True_
    """
    s = check_positive_int(nnz_per_col, "nnz_per_col")
    return _make("sparse_sign", k, n, rng, dtype, {"nnz_per_col": s}, nnz_per_col=s)


def sparse_rp(
    k: int,
    n: int,
    *,
    density: Any = "auto",
    rng: RNGLike = None,
    dtype: Any = np.float64,
) -> SketchOperator:
    """Very sparse random projection (Li, Hastie, Church 2006).

    Each entry is nonzero with probability ``density``, then ±sqrt(1/(k density))
    with equal probability. ``density="auto"`` is ``1/sqrt(n)``. Rows of the
    nonzeros of each column are drawn by geometric skipping, so generation
    costs O(nnz(S)), not O(k n).

    Parameters
    ----------
    k, n : int
        Shape ``(k, n)`` of the operator, ``1 <= k <= n``.
    density : float or "auto"
        Probability that an entry is nonzero, in (0, 1]; ``"auto"`` is ``1/sqrt(n)``.
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Source of the 64-bit key.
    dtype : float32 or float64
        Precision of the entries (products follow numpy's type promotion).

    Returns
    -------
    SketchOperator

    Examples
    --------
    >>> import randla as rl
    >>> rl.sketch.sparse_rp(10, 400, rng=0)
    SketchOperator(kind='sparse_rp', shape=(10, 400), dtype=float64, density=0.05, key=...)
    """
    n_int = check_positive_int(n, "n")
    if isinstance(density, str):
        if density != "auto":
            raise ValueError(f"density must be 'auto' or a float in (0, 1], got {density!r}")
        value = min(1.0, 1.0 / math.sqrt(n_int))
    else:
        value = float(density)
        if not (0.0 < value <= 1.0):
            raise ValueError(f"density must be in (0, 1], got {density!r}")
    return _make("sparse_rp", k, n_int, rng, dtype, {"density": value}, density=value)


def row_sampling(
    k: int,
    n: int,
    *,
    p: Any = None,
    replace: bool = True,
    rng: RNGLike = None,
    dtype: Any = np.float64,
) -> SketchOperator:
    """Row sampling: ``k`` rows of the identity drawn from ``p``, scaled by ``1/sqrt(k p_i)``.

    Parameters
    ----------
    k, n : int
        Shape ``(k, n)`` of the operator, ``1 <= k <= n``.
    p : array_like of shape (n,), optional
        Sampling probabilities (normalized here; uniform if ``None``). Must be
        finite and nonnegative with a positive sum.
    replace : bool
        With replacement (default), sample ``t`` is row ``i`` with probability
        ``p_i`` and ``E[S.T @ S] = I`` exactly. Without replacement, uniform
        sampling keeps ``E[S.T @ S] = I`` (scale ``sqrt(n/k)``); non-uniform
        sampling uses Efraimidis–Spirakis keys and the same ``1/sqrt(k p_i)``
        scale, unbiased only to first order in ``k p_i``. Samples without
        replacement are returned in increasing row order.
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Source of the 64-bit key.
    dtype : float32 or float64
        Precision of the entries.

    Returns
    -------
    SketchOperator

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> S = rl.sketch.row_sampling(3, 6, replace=False, rng=0)
    >>> int(np.count_nonzero(S.to_dense()))
    3
    """
    n_int = check_positive_int(n, "n")
    probabilities = None
    if p is not None:
        probabilities = as_dense(p, "p", ndim=(1,), dtype=np.dtype(np.float64))
        if probabilities.shape[0] != n_int:
            raise ValueError(f"p has shape {probabilities.shape}, expected ({n_int},)")
        if (probabilities < 0).any():
            raise ValueError("p must be nonnegative")
        if probabilities.sum() <= 0:
            raise ValueError("p must have a positive sum")
        probabilities = np.ascontiguousarray(probabilities)
    replace = bool(replace)
    params = {"replace": replace} if p is None else {"p": "given", "replace": replace}
    return _make("row_sampling", k, n_int, rng, dtype, params, p=probabilities, replace=replace)


_METHODS = {
    "gaussian": gaussian,
    "rademacher": rademacher,
    "srht": srht,
    "countsketch": countsketch,
    "sparse_sign": sparse_sign,
    "sparse_rp": sparse_rp,
    "row_sampling": row_sampling,
}


def apply(
    A: Any,
    k: int,
    *,
    method: str = "sparse_sign",
    axis: int = 0,
    rng: RNGLike = None,
    **options: Any,
) -> np.ndarray:
    """Sketch ``A`` along one axis in a single call.

    Parameters
    ----------
    A : array_like or scipy.sparse matrix, shape (n,) or (n, d)
        The matrix to sketch.
    k : int
        Sketch size.
    method : str
        ``"gaussian"``, ``"rademacher"``, ``"srht"``, ``"countsketch"``,
        ``"sparse_sign"`` (default), ``"sparse_rp"`` or ``"row_sampling"``.
    axis : {0, 1}
        0: ``S @ A`` with ``S`` of shape ``(k, A.shape[0])``; 1: ``A @ S.T``
        with ``S`` of shape ``(k, A.shape[1])``.
    rng : None, int, Generator or SeedSequence
        Source of the key.
    **options
        Passed to the operator's constructor (``nnz_per_col``, ``density``,
        ``p``, ``replace``).

    Returns
    -------
    numpy.ndarray
        ``(k, d)`` for ``axis=0``, ``(m, k)`` for ``axis=1``, dtype of ``A``.

    Examples
    --------
    >>> import numpy as np, randla as rl
    >>> A = np.random.default_rng(0).standard_normal((1000, 5))
    >>> rl.sketch.apply(A, 40, rng=0).shape
    (40, 5)
    >>> rl.sketch.apply(A.T, 40, axis=1, method="srht", rng=0).shape
    (5, 40)
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
    if method == "sparse_sign" and "nnz_per_col" not in options and isinstance(k, int) and k > 0:
        options["nnz_per_col"] = min(8, k)  # the default, clamped for tiny sketches
    if isinstance(axis, bool) or axis not in (0, 1, -1, -2):
        raise ValueError(f"axis must be 0 or 1, got {axis!r}")
    # Normalize once for the shape and dtype; the product below does the checks.
    op = as_operand(A, "A", check_finite=False)
    axis = axis % op.ndim if op.ndim == 2 else axis
    if op.ndim == 1 and axis != 0:
        raise ValueError(f"axis must be 0 for a 1-D A of shape {op.shape}, got {axis}")
    dtype = op.dtype
    source = op.matrix if isinstance(op, SparseParts) else op
    S = _METHODS[method](k, op.shape[axis], rng=rng, dtype=dtype, **options)
    return S @ source if axis == 0 else source @ S.T
