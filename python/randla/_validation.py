"""Shared argument checks and normalization (API.md §1), used by every public function.

Dense inputs of any layout are passed to the core as they are (no copy) when
their dtype is float32 or float64 and their strides are whole elements; bool
and integer inputs become float64; complex, object and other dtypes raise
``TypeError``. scipy.sparse matrices and arrays of any format become CSR or
CSC (converted only if needed).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple, Union

import numpy as np
import scipy.sparse as sp

__all__ = [
    "SparseParts",
    "as_dense",
    "as_operand",
    "as_sparse",
    "check_dtype",
    "check_int",
    "check_positive_int",
    "ensure_finite_result",
    "result_dtype",
]


class SparseParts(NamedTuple):
    """A CSR or CSC matrix as the arrays the core borrows."""

    format: str
    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    matrix: Any  # the scipy object the arrays belong to

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return 2


Operand = Union[np.ndarray, SparseParts]


def _float_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """float32 and float64 stay; bool/int become float64; float16 float32; others raise."""
    kind = dtype.kind
    if kind == "c":
        raise TypeError(f"{name}: complex input is not supported")
    if kind in "biu":
        return np.dtype(np.float64)
    if kind == "f":
        if dtype.itemsize <= 4:
            return np.dtype(np.float32)
        return np.dtype(np.float64)
    raise TypeError(f"{name}: expected a real numeric array, got dtype {dtype}")


def check_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """Validate a requested output dtype: float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def check_int(value: Any, name: str, low: int) -> int:
    """An int >= ``low`` (numpy integers accepted, bools and floats rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if int(value) < low:
        raise ValueError(f"{name} must be >= {low}, got {int(value)}")
    return int(value)


def check_positive_int(value: Any, name: str) -> int:
    """An int >= 1 (numpy integers accepted, bools and floats rejected)."""
    return check_int(value, name, 1)


def as_dense(
    x: Any,
    name: str,
    *,
    ndim: tuple[int, ...] | None = (1, 2),
    check_finite: bool = True,
    dtype: np.dtype | None = None,
    allow_empty: bool = False,
) -> np.ndarray:
    """Normalize an array_like: real float dtype, allowed ndim, non-empty, finite.

    ``dtype`` forces a dtype (a copy only when it differs); ``ndim=None``
    allows any number of axes; ``allow_empty`` accepts arrays with no entries.
    """
    if sp.issparse(x):
        raise TypeError(f"{name}: a dense array is required here, got a scipy.sparse matrix")
    arr = np.asarray(x)
    target = _float_dtype(arr.dtype, name) if dtype is None else np.dtype(dtype)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: complex input is not supported")
    if ndim is not None and arr.ndim not in ndim:
        wanted = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name} must be {wanted}, got an array of shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype != target:
        arr = arr.astype(target)
    if any(s % arr.itemsize for s in arr.strides):
        arr = np.ascontiguousarray(arr)
    if check_finite and not _all_finite(arr):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _all_finite(arr: np.ndarray) -> bool:
    """Whether every entry is finite: a finite sum proves it (any NaN or
    infinity makes the sum non-finite) in one pass without a boolean
    temporary; only a non-finite sum (or an overflow) needs the entrywise test."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return True
    return bool(np.isfinite(arr).all())


def as_sparse(
    x: Any, name: str, *, check_finite: bool = True, formats: tuple[str, ...] = ("csr", "csc")
) -> SparseParts:
    """Normalize a scipy.sparse matrix or array to one of ``formats`` (CSR first)."""
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got a sparse array of shape {x.shape}")
    if x.format not in formats:
        x = x.asformat(formats[0])
    target = _float_dtype(x.dtype, name)
    if x.dtype != target:
        x = x.astype(target)
    if 0 in x.shape:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    indptr, indices = x.indptr, x.indices
    if indptr.dtype != indices.dtype or indptr.dtype not in (np.int32, np.int64):
        indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
    data = np.ascontiguousarray(x.data)
    if check_finite and not _all_finite(data):
        raise ValueError(f"{name} contains NaN or infinity")
    return SparseParts(
        x.format,
        (int(x.shape[0]), int(x.shape[1])),
        np.ascontiguousarray(indptr),
        np.ascontiguousarray(indices),
        data,
        x,
    )


def as_operand(
    x: Any, name: str, *, ndim: tuple[int, ...] = (1, 2), check_finite: bool = True
) -> Operand:
    """A dense array (see :func:`as_dense`) or, for scipy.sparse input, :class:`SparseParts`."""
    if sp.issparse(x):
        return as_sparse(x, name, check_finite=check_finite)
    return as_dense(x, name, ndim=ndim, check_finite=check_finite)


def result_dtype(*dtypes: np.dtype) -> np.dtype:
    """float64 if any input is float64, else float32."""
    return np.dtype(np.result_type(*dtypes))


def ensure_finite_result(result: np.ndarray, source: Any, name: str) -> None:
    """Raise if ``result`` is non-finite because ``source`` was.

    Kernels in which every input entry reaches the output check the (small)
    output instead of the (large) input: a NaN or infinity in the input always
    makes the output non-finite. A non-finite output from finite input is an
    overflow and is returned as numpy would.
    """
    if np.isfinite(result).all():
        return
    values = source.data if isinstance(source, SparseParts) else source
    if not _all_finite(values):
        raise ValueError(f"{name} contains NaN or infinity")
