"""Monarch matrices: products of two block-diagonal factors with permutations.

A Monarch matrix (Dao et al. 2022, "Monarch: Expressive Structured Matrices
for Efficient and Accurate Training") is ``M = P_out blkdiag(w2) P_mid
blkdiag(w1)`` with ``w1`` a stack of ``k`` blocks of shape ``(q, p)`` and
``w2`` a stack of ``l`` blocks of shape ``(s, r)``, ``l * r == k * q``. It maps
``n = k * p`` inputs to ``m = l * s`` outputs with ``k q p + l s r`` parameters
instead of ``m n``, and ``x @ M.T`` costs ``O(n (q + s))`` per row instead of
``O(m n)``.

The convention is that of ``blockdiag_butterfly_multiply`` in the paper's
code, along the last axis of ``x``:

1. ``out1[..., kk, :] = w1[kk] @ x[..., kk*p:(kk+1)*p]``;
2. ``out1`` (``k*q`` values) is read as ``(r, l)`` and transposed to ``(l, r)``;
3. ``out2[..., li, :] = w2[li] @ out1[..., li, :]``;
4. ``y = out2`` transposed to ``(s, l)`` and flattened: ``y[s*l + li]``.

Every block product is a GEMM in the Rust core over chunks of rows, run in
parallel; the permutations are strides, or (for C-ordered data) a
transpose of each row through a small per-thread buffer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _core
from ._validation import as_dense

__all__ = ["Monarch", "multiply", "project"]


def _factors(w1: Any, w2: Any) -> tuple[np.ndarray, np.ndarray]:
    a1, a2 = as_dense(w1, "w1", ndim=(3,)), as_dense(w2, "w2", ndim=(3,))
    k, q, _ = a1.shape
    nl, _, r = a2.shape
    if nl * r != k * q:
        raise ValueError(
            f"w2 of shape {a2.shape} does not fit w1 of shape {a1.shape}: "
            f"w2.shape[0] * w2.shape[2] = {nl * r} must equal w1.shape[0] * w1.shape[1] = {k * q}"
        )
    dtype = np.result_type(a1, a2)
    return np.ascontiguousarray(a1, dtype), np.ascontiguousarray(a2, dtype)


def _apply(x: np.ndarray, w1: np.ndarray, w2: np.ndarray, transpose: bool) -> np.ndarray:
    """Rows of ``x`` (2-D, any strides of whole elements) times ``M^T`` (or ``M``)."""
    m, n = w2.shape[0] * w2.shape[1], w1.shape[0] * w1.shape[2]
    out = np.empty((x.shape[0], n if transpose else m), dtype=x.dtype)
    _core.monarch_apply(
        x, w1.astype(x.dtype, copy=False), w2.astype(x.dtype, copy=False), out, transpose
    )
    return out


def multiply(x: Any, w1: Any, w2: Any) -> np.ndarray:
    """Multiply by a Monarch matrix along the last axis: ``y = x @ M.T``.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Inputs, ``n = k * p``; any number of leading (batch) axes.
    w1 : array_like, shape (k, q, p)
        The first block-diagonal factor.
    w2 : array_like, shape (l, s, r)
        The second block-diagonal factor, ``l * r == k * q``.

    Returns
    -------
    y : ndarray, shape (..., l * s)
        The same function as ``blockdiag_butterfly_multiply`` of the Monarch
        paper's code (see the module docstring for the convention). float32
        when every input is float32, else float64.

    Raises
    ------
    ValueError
        If ``w1`` or ``w2`` is not 3-D, ``x.shape[-1] != k * p``,
        ``l * r != k * q``, or an input holds NaN or infinity.

    Examples
    --------
    >>> import numpy as np
    >>> import randla as rl
    >>> rng = np.random.default_rng(0)
    >>> w1, w2 = rng.standard_normal((4, 4, 8)), rng.standard_normal((4, 4, 4))
    >>> x = rng.standard_normal((10, 32))
    >>> y = rl.monarch.multiply(x, w1, w2)
    >>> bool(np.allclose(y, x @ rl.monarch.Monarch(w1, w2).to_dense().T))
    True
    """
    a1, a2 = _factors(w1, w2)
    # x's entries are checked finite in the core, chunk by chunk as the
    # product reads them (here a separate pass cost ~10% of the product).
    ax = as_dense(x, "x", ndim=None, check_finite=False)
    n = a1.shape[0] * a1.shape[2]
    if ax.ndim == 0:
        raise ValueError(f"x must have at least one axis (of length {n}), got a scalar")
    if ax.shape[-1] != n:
        raise ValueError(
            f"x has {ax.shape[-1]} entries along its last axis (shape {ax.shape}); "
            f"w1 of shape {a1.shape} needs {n}"
        )
    dtype = np.result_type(ax, a1)
    lead = ax.shape[:-1]
    rows = ax.astype(dtype, copy=False).reshape(-1, n)
    y = _apply(rows, a1, a2, transpose=False)
    return y.reshape(*lead, y.shape[1])


def _nblocks(m: int, n: int, nblocks: Any) -> int:
    if nblocks is None:
        divisors = [b for b in range(1, n + 1) if n % b == 0 and m % b == 0]
        return min(divisors, key=lambda b: (abs(b - math.sqrt(n)), b))
    if isinstance(nblocks, (bool, np.bool_)) or not isinstance(nblocks, (int, np.integer)):
        raise TypeError(f"nblocks must be an int, got {type(nblocks).__name__}")
    b = int(nblocks)
    if b < 1 or m % b or n % b:
        raise ValueError(f"nblocks = {b} must be >= 1 and divide both dimensions of M {(m, n)}")
    return b


def project(M: Any, *, nblocks: int | None = None) -> Monarch:
    """The Frobenius-optimal Monarch approximation of a dense matrix.

    Parameters
    ----------
    M : array_like, shape (m, n)
        Dense matrix, square or rectangular.
    nblocks : int, optional
        The number of blocks ``b``; it must divide ``m`` and ``n``. Default:
        the divisor of ``n`` nearest ``sqrt(n)`` that also divides ``m``.

    Returns
    -------
    Monarch
        With ``w1`` of shape ``(b, b, n // b)`` and ``w2`` of shape
        ``(b, m // b, b)``. Entry ``M[s*b + l, k*(n//b) + i]`` of such a
        matrix is ``w2[l, s, k] * w1[k, l, i]``: each ``(l, k)`` block over
        ``(s, i)`` is rank one, so the optimum is the top singular pair of
        each block of ``M`` (computed in parallel in the Rust core). The
        scale is split evenly, ``sqrt(sigma)`` on each factor, and the sign
        makes the largest entry of each ``w1`` row positive.

    Examples
    --------
    >>> import numpy as np
    >>> import randla as rl
    >>> rng = np.random.default_rng(0)
    >>> exact = rl.monarch.Monarch(rng.standard_normal((4, 4, 4)), rng.standard_normal((4, 4, 4)))
    >>> P = rl.monarch.project(exact.to_dense())
    >>> bool(np.allclose(P.to_dense(), exact.to_dense()))
    True
    """
    a = as_dense(M, "M", ndim=(2,))
    m, n = a.shape
    b = _nblocks(m, n, nblocks)
    w1, w2 = _core.monarch_project(a, b)
    return Monarch(w1.reshape(b, b, n // b), w2.reshape(b, m // b, b))


class Monarch:
    """A Monarch matrix ``P_out blkdiag(w2) P_mid blkdiag(w1)`` of shape ``(l*s, k*p)``.

    Parameters
    ----------
    w1 : array_like, shape (k, q, p)
    w2 : array_like, shape (l, s, r), with ``l * r == k * q``

    ``M @ X`` multiplies a vector ``(n,)`` or a matrix ``(n, b)``, ``X @ M``
    a vector ``(m,)`` or a matrix ``(b, m)``; ``M.T`` is
    the transpose (with ``@``, ``shape``, ``to_dense`` and ``T``);
    ``M.to_dense()`` builds the dense matrix. See :func:`multiply` for the
    convention.

    Examples
    --------
    >>> import numpy as np
    >>> import randla as rl
    >>> rng = np.random.default_rng(0)
    >>> M = rl.monarch.Monarch(rng.standard_normal((8, 8, 8)), rng.standard_normal((8, 8, 8)))
    >>> M.shape
    (64, 64)
    >>> X = rng.standard_normal((64, 3))
    >>> bool(np.allclose(M @ X, M.to_dense() @ X)), bool(np.allclose(M.T @ X, M.to_dense().T @ X))
    (True, True)
    """

    # numpy arrays defer ``X @ M`` to __rmatmul__ instead of trying to
    # convert M to an array.
    __array_ufunc__ = None

    def __init__(self, w1: Any, w2: Any, *, _transposed: bool = False) -> None:
        self.w1, self.w2 = _factors(w1, w2)
        self._transposed = _transposed

    @property
    def shape(self) -> tuple[int, int]:
        m, n = self.w2.shape[0] * self.w2.shape[1], self.w1.shape[0] * self.w1.shape[2]
        return (n, m) if self._transposed else (m, n)

    @property
    def dtype(self) -> np.dtype:
        return self.w1.dtype

    @property
    def T(self) -> Monarch:
        return Monarch(self.w1, self.w2, _transposed=not self._transposed)

    def __matmul__(self, X: Any) -> np.ndarray:
        ax = as_dense(X, "X", ndim=None, check_finite=False)  # checked in the core
        if ax.ndim not in (1, 2):
            raise ValueError(f"X must be 1-D or 2-D, got an array of shape {ax.shape}")
        n = self.shape[1]
        if ax.shape[0] != n:
            raise ValueError(f"X of shape {ax.shape} does not fit M of shape {self.shape}")
        dtype = np.result_type(ax, self.w1)
        cols = ax.astype(dtype, copy=False).reshape(n, -1)
        # M X = (X^T M^T)^T: the kernel multiplies the rows of X^T; writing
        # into the transpose of a C-order result keeps the output C-ordered.
        out = np.empty((self.shape[0], cols.shape[1]), dtype=dtype)
        w1, w2 = self.w1.astype(dtype, copy=False), self.w2.astype(dtype, copy=False)
        _core.monarch_apply(cols.T, w1, w2, out.T, self._transposed, name="X")
        return out.reshape(-1) if ax.ndim == 1 else out

    def __rmatmul__(self, X: Any) -> np.ndarray:
        ax = as_dense(X, "X", ndim=None, check_finite=False)  # checked by self.T @
        return (self.T @ ax.T).T

    def to_dense(self) -> np.ndarray:
        """The dense matrix, shape ``self.shape``."""
        return self @ np.eye(self.shape[1], dtype=self.dtype)

    @classmethod
    def project(cls, M: Any, *, nblocks: int | None = None) -> Monarch:
        """Same as :func:`randla.monarch.project`."""
        return project(M, nblocks=nblocks)

    def __repr__(self) -> str:
        t = ".T" if self._transposed else ""
        return (
            f"Monarch(shape={self.shape}, w1={self.w1.shape}, w2={self.w2.shape}, "
            f"dtype={self.dtype}){t}"
        )
