"""Shared fixtures and helpers of the randla test suite.

- ``OPERATOR_CASES`` / the ``operator_case`` fixture: every sketch operator
  family (and every variant of row sampling) with the options it needs.
- ``dense_layouts`` / ``vector_layouts``: the same values in C order, Fortran
  order, non-contiguous, negative-stride and odd-stride views.
- ``sparse_variants``: the same matrix as scipy CSR/CSC/COO, spmatrix and sparray.
- ``assert_product_close``: a product against a float64 reference with an
  entrywise rounding bound.
- ``run_python``: a fresh interpreter (for import-time environment variables).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import randla as rl
import scipy.sparse as sp


def default_probabilities(n: int) -> np.ndarray:
    """Unnormalized, strictly positive, non-uniform row probabilities of length ``n``."""
    return 1.0 + (np.arange(n) % 5).astype(np.float64)


@dataclass(frozen=True)
class OperatorCase:
    """One sketch operator family with fixed options.

    ``kind`` is the constructor's name in ``rl.sketch`` (and ``S.kind``);
    ``options(n)`` the keyword arguments for an operator with ``n`` columns,
    also valid for ``rl.sketch.apply(..., method=kind, **options)``.
    """

    name: str
    kind: str
    options: Callable[[int], dict[str, Any]] = field(default=lambda n: {})
    # E[S.T @ S] = I exactly (non-uniform sampling without replacement is
    # unbiased only to first order).
    unbiased: bool = True

    def build(self, k: int, n: int, *, rng: Any = 0, dtype: Any = np.float64, **override: Any):
        options = {**self.options(n), **override}
        return getattr(rl.sketch, self.kind)(k, n, rng=rng, dtype=dtype, **options)

    def __repr__(self) -> str:
        return self.name


OPERATOR_CASES = [
    OperatorCase("gaussian", "gaussian"),
    OperatorCase("rademacher", "rademacher"),
    OperatorCase("srht", "srht"),
    OperatorCase("countsketch", "countsketch"),
    OperatorCase("sparse_sign", "sparse_sign", lambda n: {"nnz_per_col": 4}),
    OperatorCase("sparse_rp", "sparse_rp"),
    OperatorCase("sparse_rp_dense", "sparse_rp", lambda n: {"density": 0.3}),
    OperatorCase("row_sampling", "row_sampling"),
    OperatorCase("row_sampling_no_replace", "row_sampling", lambda n: {"replace": False}),
    OperatorCase("row_sampling_p", "row_sampling", lambda n: {"p": default_probabilities(n)}),
    OperatorCase(
        "row_sampling_p_no_replace",
        "row_sampling",
        lambda n: {"p": default_probabilities(n), "replace": False},
        unbiased=False,
    ),
]

OPERATOR_IDS = [case.name for case in OPERATOR_CASES]

# Small shapes for exact comparisons with to_dense: n is not a power of two
# (SRHT pads to 64) and k >= nnz_per_col.
K_SMALL, N_SMALL, D_SMALL = 12, 40, 5


@pytest.fixture(params=OPERATOR_CASES, ids=OPERATOR_IDS)
def operator_case(request: pytest.FixtureRequest) -> OperatorCase:
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy Generator for test data (never for the operators' keys)."""
    return np.random.default_rng(20240611)


@pytest.fixture(autouse=True)
def _restore_thread_count():
    """Tests that change the thread count must not leak it to later tests."""
    before = rl.get_num_threads()
    yield
    if rl.get_num_threads() != before:
        rl.set_num_threads(before)


# --- layouts of one dense matrix ---------------------------------------------


def _strided_view(A: np.ndarray) -> np.ndarray:
    """A non-contiguous view (every other row, every third column of a larger array)."""
    big = np.full((2 * A.shape[0], 3 * A.shape[1]), np.nan, dtype=A.dtype)
    big[::2, ::3] = A
    return big[::2, ::3]


def _reversed_view(A: np.ndarray) -> np.ndarray:
    """A view with negative strides on both axes."""
    return np.ascontiguousarray(A[::-1, ::-1])[::-1, ::-1]


def _reversed_fortran_view(A: np.ndarray) -> np.ndarray:
    """A Fortran-ordered base read with a negative row stride."""
    return np.asfortranarray(A[::-1])[::-1]


def _odd_stride_view(A: np.ndarray) -> np.ndarray:
    """A field of a packed record array: strides that are not a multiple of the itemsize."""
    record = np.zeros(A.shape, dtype=[("value", A.dtype), ("pad", np.int8)])
    record["value"] = A
    view = record["value"]
    assert view.strides[1] % view.itemsize != 0
    return view


DENSE_LAYOUTS = {
    "C": np.ascontiguousarray,
    "F": np.asfortranarray,
    "strided": _strided_view,
    "reversed": _reversed_view,
    "reversed_F": _reversed_fortran_view,
    "odd_strides": _odd_stride_view,
}


def dense_layouts(A: np.ndarray) -> dict[str, np.ndarray]:
    """The values of the 2-D ``A`` in every memory layout (each checked equal to ``A``)."""
    views = {name: make(A) for name, make in DENSE_LAYOUTS.items()}
    for name, view in views.items():
        assert np.array_equal(view, A, equal_nan=True), name
    assert not views["strided"].flags.c_contiguous and not views["strided"].flags.f_contiguous
    assert all(s < 0 for s in views["reversed"].strides)
    assert views["reversed_F"].strides[0] < 0
    return views


def vector_layouts(v: np.ndarray) -> dict[str, np.ndarray]:
    """The values of the 1-D ``v``: contiguous, strided and reversed."""
    big = np.full(3 * v.shape[0], np.nan, dtype=v.dtype)
    big[::3] = v
    views = {
        "contiguous": np.ascontiguousarray(v),
        "strided": big[::3],
        "reversed": np.ascontiguousarray(v[::-1])[::-1],
    }
    for name, view in views.items():
        assert np.array_equal(view, v, equal_nan=True), name
    return views


# --- scipy.sparse variants ---------------------------------------------------

SPARSE_CONSTRUCTORS = {
    "csr_matrix": sp.csr_matrix,
    "csc_matrix": sp.csc_matrix,
    "coo_matrix": sp.coo_matrix,
    "csr_array": sp.csr_array,
    "csc_array": sp.csc_array,
    "coo_array": sp.coo_array,
}


def sparse_variants(A: np.ndarray) -> dict[str, Any]:
    """``A`` as every supported scipy.sparse format and container."""
    return {name: make(A) for name, make in SPARSE_CONSTRUCTORS.items()}


def random_sparse_dense(rng: np.random.Generator, n: int, d: int, density: float = 0.3):
    """A dense array with about ``density`` nonzeros, every row and column nonempty."""
    A = rng.standard_normal((n, d))
    mask = rng.random((n, d)) < density
    mask[np.arange(n), np.arange(n) % d] = True
    return np.where(mask, A, 0.0)


# --- numerical comparisons ---------------------------------------------------


def assert_product_close(got: Any, left: np.ndarray, right: np.ndarray, rtol: float) -> None:
    """``got == left @ right`` entrywise to ``rtol * (|left| @ |right|)``.

    The reference is computed in float64 from the given factors; the bound is
    the standard rounding bound of a dot product, so it is meaningful for
    entries that cancel too.
    """
    assert isinstance(got, np.ndarray) and type(got) is np.ndarray
    left = np.asarray(left, dtype=np.float64)
    right = np.asarray(right, dtype=np.float64)
    expected = left @ right
    assert got.shape == expected.shape, (got.shape, expected.shape)
    bound = rtol * (np.abs(left) @ np.abs(right)) + 1e-300
    error = np.abs(got.astype(np.float64) - expected)
    worst = np.max(error / bound)
    assert worst <= 1.0, f"error {np.max(error):.3e} exceeds the bound (ratio {worst:.2f})"


# --- subprocesses ------------------------------------------------------------


def run_python(code: str, env: dict[str, str | None] | None = None, timeout: float = 120):
    """Runs ``code`` in a fresh interpreter with ``env`` changes (None removes a variable)."""
    environment = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result
