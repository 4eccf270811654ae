"""rl.complete, CompletionResult and rl.MatrixCompleter against independent references.

The references never come from randla itself:

- the known ground truth: a random rank-k matrix ``M = A @ B.T`` observed on a
  uniformly sampled set Omega; the completion must return ``M`` on *all* entries;
- numpy least squares (``numpy.linalg.lstsq``, and the ridge normal equations
  solved by ``numpy.linalg.solve``) for single row and column problems: a
  converged completion is a fixed point of the alternating updates;
- the noise level: with Gaussian noise of standard deviation sigma on the
  observations, least squares theory gives an observed RMSE close to
  ``sigma * sqrt(1 - dof / |Omega|)`` and an error on all entries of order
  ``sigma * sqrt(dof / |Omega|)``, ``dof = k (m + n - k)``;
- numpy products of the returned factors (``U @ V.T``) for ``predict``,
  ``to_dense`` and the RMSE ``history``.

Sampling rates are quoted as ``C = |Omega| / ((m + n) k log(m + n))``, the
constant of the ``n k log n`` sample complexity; every row and column of the
exact-recovery cases holds at least ``2 k`` observations.
"""

from __future__ import annotations

import dataclasses
import re
import tracemalloc
import warnings

import numpy as np
import pytest
import randla as rl
import scipy.sparse as sp
from conftest import SPARSE_CONSTRUCTORS, dense_layouts

SOLVERS = ["exact", "sketch"]


# --- problems with a known answer --------------------------------------------------


def low_rank(m: int, n: int, k: int, seed: int) -> np.ndarray:
    """A random rank-``k`` matrix ``A @ B.T`` with standard normal factors."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)) @ rng.standard_normal((k, n))


def sample_mask(m: int, n: int, frac: float, seed: int) -> np.ndarray:
    """A uniformly random observation pattern with about ``frac * m * n`` entries."""
    return np.random.default_rng(seed + 1000).random((m, n)) < frac


def observed(values: np.ndarray, mask: np.ndarray, fmt: str = "csr") -> sp.spmatrix:
    """The entries of ``values`` under ``mask`` as a scipy.sparse matrix (zeros kept)."""
    rows, cols = np.nonzero(mask)
    coo = sp.coo_matrix((values[rows, cols], (rows, cols)), shape=values.shape)
    return coo.asformat(fmt)


def with_nan(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, values, np.nan)


def rel_error(res: rl.CompletionResult, M: np.ndarray) -> float:
    P = res.U.astype(np.float64) @ res.V.astype(np.float64).T
    return float(np.linalg.norm(P - M) / np.linalg.norm(M))


def sampling_constant(mask: np.ndarray, k: int) -> float:
    m, n = mask.shape
    return float(mask.sum() / ((m + n) * k * np.log(m + n)))


def complete_quietly(X, rank, **kwargs):
    """``rl.complete`` with its ConvergenceWarning (if any) recorded, not raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rl.ConvergenceWarning)
        res = rl.complete(X, rank, **kwargs)
    return res, [w for w in caught if issubclass(w.category, rl.ConvergenceWarning)]


def observed_rmse(res: rl.CompletionResult, X: sp.spmatrix) -> float:
    """RMSE of ``U @ V.T`` (numpy) on the stored entries of ``X``."""
    coo = X.tocoo()
    P = res.U.astype(np.float64) @ res.V.astype(np.float64).T
    return float(np.sqrt(np.mean((P[coo.row, coo.col] - coo.data) ** 2)))


def line_data(X: sp.spmatrix, i: int, by_rows: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the observations in row ``i`` (or column ``i``)."""
    mat = X.tocsr() if by_rows else X.tocsc()
    lo, hi = mat.indptr[i], mat.indptr[i + 1]
    return mat.indices[lo:hi], mat.data[lo:hi]


# --- exact recovery ------------------------------------------------------------------

# (m, n, k, sampled fraction): square-ish and very rectangular.
RECOVERY_CASES = [(400, 300, 5, 0.2), (2000, 60, 5, 0.5), (60, 2000, 5, 0.5)]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("case", RECOVERY_CASES, ids=lambda c: f"{c[0]}x{c[1]}")
def test_noiseless_recovery(case, solver: str) -> None:
    m, n, k, frac = case
    M = low_rank(m, n, k, seed=1)
    mask = sample_mask(m, n, frac, seed=1)
    assert mask.sum(axis=1).min() >= 2 * k and mask.sum(axis=0).min() >= 2 * k
    assert sampling_constant(mask, k) < 1.1  # about C n k log n observations
    with warnings.catch_warnings():
        warnings.simplefilter("error", rl.ConvergenceWarning)
        res = rl.complete(observed(M, mask), k, solver=solver, rng=0)
    assert isinstance(res, rl.CompletionResult)
    assert res.U.shape == (m, k) and res.V.shape == (n, k)
    assert res.U.dtype == res.V.dtype == np.float64
    assert type(res.U) is np.ndarray and res.U.flags.c_contiguous and res.V.flags.c_contiguous
    assert res.converged and 1 <= res.iterations <= 100
    assert res.history.shape == (res.iterations,)
    assert rel_error(res, M) <= 1e-6
    # Also on the entries that were never observed.
    P = res.to_dense()
    assert np.linalg.norm((P - M)[~mask]) <= 1e-6 * np.linalg.norm(M[~mask])


def test_recovery_below_threshold_fails() -> None:
    # The tests above can fail: with 2% of the entries (C ~ 0.2, rows with fewer than
    # k observations) a rank-5 matrix is not determined by its observations.
    m, n, k = 400, 300, 5
    M = low_rank(m, n, k, seed=1)
    mask = sample_mask(m, n, 0.02, seed=1)
    res, _ = complete_quietly(observed(M, mask), k, solver="exact", rng=0)
    assert not rel_error(res, M) <= 1e-3


@pytest.mark.parametrize("kind", ["dense_nan", "csr"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_recovery(solver: str, kind: str) -> None:
    m, n, k = 300, 200, 4
    M = low_rank(m, n, k, seed=2)
    mask = sample_mask(m, n, 0.3, seed=2)
    M32 = M.astype(np.float32)
    X = with_nan(M32, mask) if kind == "dense_nan" else observed(M32, mask)
    assert X.dtype == np.float32
    res = rl.complete(X, k, solver=solver, rng=0)
    assert res.U.dtype == res.V.dtype == np.float32
    assert res.to_dense().dtype == np.float32
    assert res.predict(np.array([0, 1]), np.array([2, 3])).dtype == np.float32
    # The observations are rounded to float32 (relative 6e-8).
    assert rel_error(res, M) <= 1e-4


def _reference_dense_result(seed: int = 3):
    m, n, k = 150, 100, 4
    M = low_rank(m, n, k, seed=seed)
    mask = sample_mask(m, n, 0.35, seed=seed)
    return M, mask, k, rl.complete(with_nan(M, mask), k, rng=7)


@pytest.mark.parametrize("name", list(SPARSE_CONSTRUCTORS))
def test_sparse_formats_match_dense_nan(name: str) -> None:
    M, mask, k, ref = _reference_dense_result()
    assert rel_error(ref, M) <= 1e-6
    X = SPARSE_CONSTRUCTORS[name](observed(M, mask))
    assert X.nnz == mask.sum()
    res = rl.complete(X, k, rng=7)
    scale = np.abs(ref.U).max()
    np.testing.assert_allclose(res.U, ref.U, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(res.V, ref.V, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(res.history, ref.history, rtol=1e-9, atol=1e-15)
    assert res.iterations == ref.iterations


def test_dense_layouts_match() -> None:
    M, mask, k, ref = _reference_dense_result()
    for name, X in dense_layouts(with_nan(M, mask)).items():
        res = rl.complete(X, k, rng=7)
        scale = np.abs(ref.U).max()
        np.testing.assert_allclose(res.U, ref.U, rtol=0, atol=1e-12 * scale, err_msg=name)
        np.testing.assert_allclose(res.V, ref.V, rtol=0, atol=1e-12 * scale, err_msg=name)


def test_duplicate_entries_are_summed() -> None:
    # Documented: duplicates in a sparse X are summed (scipy's convention).
    M, mask, k, ref = _reference_dense_result()
    rows, cols = np.nonzero(mask)
    vals = M[rows, cols]
    split = np.arange(rows.size) % 3 == 0
    X = sp.coo_matrix(
        (
            np.concatenate([np.where(split, vals / 4, vals), 3 * vals[split] / 4]),
            (np.concatenate([rows, rows[split]]), np.concatenate([cols, cols[split]])),
        ),
        shape=M.shape,
    )
    assert X.nnz > mask.sum()
    res = rl.complete(X, k, rng=7)
    assert rel_error(res, M) <= 1e-6
    np.testing.assert_allclose(res.to_dense(), ref.to_dense(), rtol=0, atol=1e-9)


def test_int_and_bool_input_become_float64() -> None:
    # A fully observed integer matrix of rank 1 (no NaN can be stored).
    M = np.outer(np.arange(1, 7), np.arange(1, 5))
    res = rl.complete(M, 1, rng=0)
    assert res.U.dtype == np.float64
    np.testing.assert_allclose(res.to_dense(), M, rtol=1e-10)
    res = rl.complete(np.ones((5, 4), dtype=bool), 1, rng=0)
    assert res.U.dtype == np.float64
    np.testing.assert_allclose(res.to_dense(), np.ones((5, 4)), rtol=1e-10)


def test_full_rank_fully_observed() -> None:
    # rank == min(m, n) is allowed: a fully observed matrix is reproduced.
    A = np.random.default_rng(4).standard_normal((30, 20))
    res, _ = complete_quietly(A, 20, rng=0)
    np.testing.assert_allclose(res.to_dense(), A, atol=1e-10)


def test_explicit_zeros_are_observations() -> None:
    # M has an exact zero block (rows 0:60 only use factors 0, 1; columns 0:50 only
    # factors 2, 3, 4): the sampled entries there are stored as explicit zeros.
    m, n, k = 300, 200, 5
    rng = np.random.default_rng(5)
    A = rng.standard_normal((m, k))
    B = rng.standard_normal((n, k))
    A[:60, 2:] = 0.0
    B[:50, :2] = 0.0
    M = A @ B.T
    assert np.all(M[:60, :50] == 0.0)
    mask = sample_mask(m, n, 0.3, seed=5)
    X = observed(M, mask, "csr")
    zeros = int(np.sum(X.data == 0.0))
    assert X.nnz == mask.sum() and zeros >= 600  # the zeros are stored
    res = rl.complete(X, k, rng=0)
    assert rel_error(res, M) <= 1e-6
    assert np.abs(res.to_dense()[:60, :50]).max() <= 1e-6 * np.abs(M).max()
    # Same observations as a dense array: the zeros are plain observed values there.
    dense = rl.complete(with_nan(M, mask), k, rng=0)
    np.testing.assert_allclose(dense.to_dense(), res.to_dense(), rtol=0, atol=1e-10)
    # Dropping the explicit zeros changes the problem (fewer observations).
    dropped = X.copy()
    dropped.eliminate_zeros()
    assert dropped.nnz == X.nnz - zeros
    other = rl.complete(dropped, k, rng=0)
    assert other.history[0] != res.history[0]


# --- noise ------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_error_proportional_to_noise(solver: str) -> None:
    m, n, k = 400, 300, 5
    M = low_rank(m, n, k, seed=6)
    mask = sample_mask(m, n, 0.3, seed=6)
    rows, cols = np.nonzero(mask)
    noise = np.random.default_rng(60).standard_normal(rows.size)
    dof = k * (m + n - k)
    nobs = rows.size
    rms_M = np.sqrt(np.mean(M**2))
    errors = {}
    for sigma in (1e-3, 1e-2):
        X = sp.csr_matrix((M[rows, cols] + sigma * noise, (rows, cols)), shape=(m, n))
        with warnings.catch_warnings():
            warnings.simplefilter("error", rl.ConvergenceWarning)
            res = rl.complete(X, k, solver=solver, rng=0)
        assert res.converged
        rms_error = rel_error(res, M) * rms_M
        errors[sigma] = rms_error
        # Least squares: the residual on Omega keeps the noise outside the tangent space.
        np.testing.assert_allclose(res.history[-1], sigma * np.sqrt(1 - dof / nobs), rtol=0.05)
        # The error on all entries is of the order of the noise projected on it.
        expected = sigma * np.sqrt(dof / nobs)
        assert 0.5 * expected <= rms_error <= 3.0 * expected, (rms_error, expected)
    ratio = errors[1e-2] / errors[1e-3]
    assert 10 / 3 <= ratio <= 30, ratio


def test_sketch_as_accurate_as_exact() -> None:
    # Rank 10: 3 CG steps do not solve a row problem exactly, unlike for k <= 3.
    m, n, k = 500, 400, 10
    M = low_rank(m, n, k, seed=7)
    mask = sample_mask(m, n, 0.3, seed=7)
    rows, cols = np.nonzero(mask)
    noise = 1e-3 * np.random.default_rng(70).standard_normal(rows.size)
    clean = observed(M, mask)
    noisy = sp.csr_matrix((M[rows, cols] + noise, (rows, cols)), shape=(m, n))
    for X, bound in ((clean, 1e-6), (noisy, None)):
        exact = rl.complete(X, k, solver="exact", rng=0)
        sketch = rl.complete(X, k, solver="sketch", rng=0)
        assert exact.converged and sketch.converged
        if bound is not None:
            assert rel_error(exact, M) <= bound and rel_error(sketch, M) <= bound
        else:
            e_exact, e_sketch = rel_error(exact, M), rel_error(sketch, M)
            assert e_sketch <= 1.05 * e_exact, (e_sketch, e_exact)
            # Both reach the same least-squares solution.
            np.testing.assert_allclose(sketch.to_dense(), exact.to_dense(), atol=1e-6)


# --- lines with no or few observations -------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_rows_and_columns_without_observations(solver: str) -> None:
    m, n, k = 300, 200, 4
    M = low_rank(m, n, k, seed=8)
    mask = sample_mask(m, n, 0.3, seed=8)
    empty_rows, empty_cols = np.array([0, 7, 299]), np.array([3, 150])
    mask[empty_rows] = False
    mask[:, empty_cols] = False
    res = rl.complete(observed(M, mask), k, solver=solver, rng=0)
    P = res.to_dense()
    assert np.isfinite(P).all() and np.isfinite(res.U).all() and np.isfinite(res.V).all()
    tiny = 1e-12 * np.abs(M).max()
    assert np.abs(res.U[empty_rows]).max() <= tiny and np.abs(res.V[empty_cols]).max() <= tiny
    assert np.abs(P[empty_rows]).max() <= tiny and np.abs(P[:, empty_cols]).max() <= tiny
    r = np.repeat(empty_rows, 5)
    assert np.abs(res.predict(r, np.arange(r.size) % n)).max() <= tiny
    keep_r = np.setdiff1d(np.arange(m), empty_rows)
    keep_c = np.setdiff1d(np.arange(n), empty_cols)
    inner = np.ix_(keep_r, keep_c)
    assert np.linalg.norm(P[inner] - M[inner]) <= 1e-6 * np.linalg.norm(M[inner])


@pytest.mark.parametrize("solver", SOLVERS)
def test_unobserved_lines_get_exactly_zero_factors(solver: str) -> None:
    # Documented: "rows or columns with no observation get zero factors (their
    # predictions are 0)": exactly 0, so that 0 marks an unseen user or item.
    m, n, k = 300, 200, 4
    M = low_rank(m, n, k, seed=8)
    mask = sample_mask(m, n, 0.3, seed=8)
    empty_rows, empty_cols = np.array([0, 7, 299]), np.array([0, 3, 150])
    mask[empty_rows] = False
    mask[:, empty_cols] = False
    res = rl.complete(observed(M, mask), k, solver=solver, rng=0)
    assert np.all(res.U[empty_rows] == 0.0), np.abs(res.U[empty_rows]).max()
    assert np.all(res.V[empty_cols] == 0.0), np.abs(res.V[empty_cols]).max()
    assert np.all(res.predict(np.array([0, 7, 299, 5]), np.array([1, 2, 3, 0])) == 0.0)


@pytest.mark.parametrize("nobs", [1, 2, 3, 4])
@pytest.mark.parametrize("solver", SOLVERS)
def test_rows_with_fewer_observations_than_rank(solver: str, nobs: int) -> None:
    # Every 10th row of a well-sampled 2000 x 60 rank-5 matrix holds only nobs < 5
    # observations: those rows are underdetermined (any factor fitting their
    # entries is a solution), the others are determined. Nothing may blow up,
    # and the well-observed rows must still be recovered.
    m, n, k = 2000, 60, 5
    rng = np.random.default_rng(9)
    M = low_rank(m, n, k, seed=9)
    mask = sample_mask(m, n, 0.5, seed=9)
    few = np.arange(0, m, 10)
    mask[few] = False
    for i in few:
        mask[i, rng.choice(n, nobs, replace=False)] = True
    X = observed(M, mask)
    res, _ = complete_quietly(X, k, solver=solver, rng=0)
    P = res.to_dense()
    assert np.isfinite(P).all()
    good = np.setdiff1d(np.arange(m), few)
    # An underdetermined row fits its nobs entries; a minimum-norm-like factor keeps
    # its other predictions of the size of the data, not 1e8.
    assert np.abs(P).max() <= 10 * np.abs(M).max(), np.abs(P).max()
    assert np.linalg.norm(P[good] - M[good]) <= 1e-6 * np.linalg.norm(M[good])
    r, c = np.nonzero(mask[few])
    np.testing.assert_allclose(P[few][r, c], M[few][r, c], atol=1e-4 * np.abs(M).max())


# --- bad input --------------------------------------------------------------------


@pytest.mark.parametrize("rank", [0, -1, 21, 1000])
def test_rank_out_of_range(rank: int) -> None:
    M = low_rank(30, 20, 2, seed=0)
    with pytest.raises(ValueError, match="rank"):
        rl.complete(M, rank)
    with pytest.raises(ValueError, match="rank"):
        rl.complete(sp.csr_matrix(M), rank)


@pytest.mark.parametrize(
    "X",
    [
        np.full((6, 5), np.nan),
        sp.csr_matrix((6, 5)),
        sp.coo_array((6, 5)),
        np.zeros((0, 5)),
        sp.csr_matrix((0, 5)),
    ],
    ids=["all_nan", "csr_empty", "coo_array_empty", "no_rows", "sparse_no_rows"],
)
def test_no_observations(X) -> None:
    with pytest.raises(ValueError):
        rl.complete(X, 1)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_observations(bad: float) -> None:
    M = low_rank(20, 15, 2, seed=0)
    mask = sample_mask(20, 15, 0.5, seed=0)
    M_bad = M.copy()
    i, j = np.argwhere(mask)[3]
    M_bad[i, j] = bad
    with pytest.raises(ValueError, match="X"):
        rl.complete(with_nan(M_bad, mask), 2)
    with pytest.raises(ValueError, match="X"):
        rl.complete(observed(M_bad, mask), 2)


def test_nan_stored_in_sparse_is_rejected() -> None:
    X = sp.csr_matrix(low_rank(20, 15, 2, seed=0))
    X.data[5] = np.nan
    with pytest.raises(ValueError, match="X"):
        rl.complete(X, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reg": -1.0}, "reg"),
        ({"reg": np.nan}, "reg"),
        ({"reg": np.inf}, "reg"),
        ({"solver": "lsqr"}, "solver"),
        ({"method": "softimpute"}, "method"),
        ({"tol": -1e-3}, "tol"),
        ({"maxiter": 0}, "maxiter"),
    ],
)
def test_bad_parameters(kwargs, match: str) -> None:
    X = with_nan(low_rank(20, 15, 2, seed=0), sample_mask(20, 15, 0.5, seed=0))
    with pytest.raises(ValueError, match=match):
        rl.complete(X, 2, **kwargs)


def test_bad_shapes_and_complex() -> None:
    with pytest.raises(ValueError, match="2-D"):
        rl.complete(np.ones(5), 1)
    with pytest.raises(ValueError, match="2-D"):
        rl.complete(np.ones((2, 3, 4)), 1)
    with pytest.raises(TypeError, match="complex"):
        rl.complete(np.ones((4, 3), dtype=complex), 1)
    with pytest.raises(TypeError, match="complex"):
        rl.complete(sp.csr_matrix(np.ones((4, 3), dtype=complex)), 1)


# --- iteration control ------------------------------------------------------------


def _noisy_problem(m: int = 200, n: int = 150, k: int = 4, sigma: float = 1e-2, seed: int = 11):
    M = low_rank(m, n, k, seed=seed)
    mask = sample_mask(m, n, 0.3, seed=seed)
    rows, cols = np.nonzero(mask)
    noise = sigma * np.random.default_rng(seed + 1).standard_normal(rows.size)
    return M, sp.csr_matrix((M[rows, cols] + noise, (rows, cols)), shape=(m, n)), k


def test_maxiter_warns_and_reports_not_converged() -> None:
    M, X, k = _noisy_problem()
    with pytest.warns(rl.ConvergenceWarning, match="maxiter=2"):
        res = rl.complete(X, k, maxiter=2, rng=0)
    assert not res.converged
    assert res.iterations == 2 and res.history.shape == (2,)
    assert np.isfinite(res.U).all()


@pytest.mark.parametrize("stop_at", [1, 3])
def test_callback_stops(stop_at: int) -> None:
    M, X, k = _noisy_problem()
    seen: list[rl.CompletionInfo] = []

    def callback(info: rl.CompletionInfo) -> bool:
        seen.append(info)
        return info.iteration == stop_at

    with warnings.catch_warnings():
        warnings.simplefilter("error", rl.ConvergenceWarning)
        res = rl.complete(X, k, callback=callback, tol=0.0, rng=0)
    assert res.iterations == stop_at and len(res.history) == stop_at
    assert [info.iteration for info in seen] == list(range(1, stop_at + 1))
    np.testing.assert_array_equal([info.rmse for info in seen], res.history)
    elapsed = [info.elapsed for info in seen]
    assert elapsed[0] >= 0 and np.all(np.diff(elapsed) >= 0)
    assert not res.converged
    # The result is the state after that iteration: its observed RMSE is history[-1].
    np.testing.assert_allclose(observed_rmse(res, X), res.history[-1], rtol=1e-8)


def test_callback_returning_none_does_not_stop() -> None:
    M, X, k = _noisy_problem()
    calls = []
    res = rl.complete(X, k, callback=lambda info: calls.append(info.iteration), rng=0)
    plain = rl.complete(X, k, rng=0)
    assert res.iterations == plain.iterations == len(calls)
    np.testing.assert_array_equal(res.U, plain.U)


def test_verbose_prints_one_line_per_iteration(capsys: pytest.CaptureFixture) -> None:
    M, X, k = _noisy_problem()
    res = rl.complete(X, k, verbose=True, rng=0)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == res.iterations
    for it, line in enumerate(lines, start=1):
        assert re.search(rf"\b{it}\b", line), line
    rl.complete(X, k, rng=0)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("solver", SOLVERS)
def test_history_is_the_observed_rmse(solver: str) -> None:
    M, X, k = _noisy_problem()
    res = rl.complete(X, k, solver=solver, rng=0)
    h = res.history
    assert h.shape == (res.iterations,) and np.all(h > 0)
    if solver == "exact":
        # Exact alternating least squares never increases the observed error.
        assert np.all(np.diff(h) <= 1e-12 * h[:-1])
    else:
        assert np.all(np.diff(h) <= 1e-3 * h[:-1])
    assert h[-1] <= 0.5 * h[0]
    np.testing.assert_allclose(h[-1], observed_rmse(res, X), rtol=1e-8)


# --- fixed points: each row and column solves its own least-squares problem ------


@pytest.mark.parametrize("solver", SOLVERS)
def test_rows_and_columns_are_least_squares_solutions(solver: str) -> None:
    M, X, k = _noisy_problem(300, 200, 5, sigma=1e-2, seed=12)
    res = rl.complete(X, k, solver=solver, rng=0)
    assert res.converged
    for by_rows, fixed, solved, count in ((True, res.V, res.U, 300), (False, res.U, res.V, 200)):
        for i in range(0, count, 13):
            idx, vals = line_data(X, i, by_rows)
            expected = np.linalg.lstsq(fixed[idx], vals, rcond=None)[0]
            gap = np.linalg.norm(solved[i] - expected)
            assert gap <= 1e-6 * np.linalg.norm(expected), (by_rows, i, gap)


# (reg = 100 on this problem shrinks every factor to zero, a fixed point reached
# only geometrically: relative stationarity of vanishing lines is not testable.)
@pytest.mark.parametrize("reg", [1.0, 10.0])
@pytest.mark.parametrize("solver", SOLVERS)
def test_converged_regularized_result_is_stationary(solver: str, reg: float) -> None:
    # A converged result must be a fixed point of the ridge updates
    # x_i = argmin sum_j (X_ij - x_i . f_j)^2 + reg |x_i|^2, for rows and columns.
    # tol bounds the relative decrease of the (square root of the) objective in
    # the last sweep; the distance to the fixed point is about its square root,
    # so a 1e-5 stationarity check asks for tol well below 1e-10.
    M, X, k = _noisy_problem(300, 200, 5, sigma=1e-2, seed=13)
    res, warned = complete_quietly(X, k, solver=solver, reg=reg, maxiter=500, tol=1e-13, rng=0)
    assert res.converged and not warned
    for by_rows, fixed, solved, count in ((True, res.V, res.U, 300), (False, res.U, res.V, 200)):
        for i in range(0, count, 13):
            idx, vals = line_data(X, i, by_rows)
            F = fixed[idx]
            expected = np.linalg.solve(F.T @ F + reg * np.eye(k), F.T @ vals)
            gap = np.linalg.norm(solved[i] - expected)
            # Relative to the line's solution, or to the typical line when a
            # strong penalty shrinks this one towards zero.
            scale = max(np.linalg.norm(expected), np.linalg.norm(solved) / np.sqrt(count))
            assert gap <= 1e-5 * scale, (by_rows, i, gap)


def test_reg_shrinks_the_factors() -> None:
    M, X, k = _noisy_problem(300, 200, 5, sigma=1e-2, seed=14)
    sizes = []
    for reg in (0.0, 3.0, 30.0, 300.0):
        res, _ = complete_quietly(X, k, reg=reg, rng=0)
        P = res.U @ res.V.T
        nuclear = np.linalg.svd(P, compute_uv=False).sum()
        sizes.append((np.linalg.norm(res.U) ** 2 + np.linalg.norm(res.V) ** 2, nuclear))
    sizes = np.array(sizes)
    assert np.all(np.diff(sizes[:, 0]) < 0), sizes
    assert np.all(np.diff(sizes[:, 1]) < 0), sizes


# --- the result object ------------------------------------------------------------


def _small_result(dtype=np.float64) -> rl.CompletionResult:
    M = low_rank(30, 20, 3, seed=15).astype(dtype)
    mask = sample_mask(30, 20, 0.6, seed=15)
    return rl.complete(with_nan(M, mask), 3, rng=0)


def test_predict_matches_numpy() -> None:
    res = _small_result()
    full = res.U @ res.V.T  # numpy reference
    rng = np.random.default_rng(16)
    rows = rng.integers(-30, 30, size=(7, 9))
    cols = rng.integers(-20, 20, size=(7, 9))
    got = res.predict(rows, cols)
    assert got.shape == (7, 9) and got.dtype == np.float64
    np.testing.assert_allclose(got, full[rows, cols], rtol=1e-13, atol=1e-13)
    # Lists, negative indices, scalars and empty arrays, as numpy indexing.
    np.testing.assert_allclose(res.predict([0, -1], [-1, 0]), [full[0, -1], full[-1, 0]])
    np.testing.assert_allclose(res.predict(29, 19), full[29, 19])
    assert res.predict(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).shape == (0,)
    # Indices of any integer dtype.
    np.testing.assert_allclose(
        res.predict(np.array([1, 2], np.uint8), np.array([3, 4], np.int32)), full[[1, 2], [3, 4]]
    )


def test_predict_errors() -> None:
    res = _small_result()
    with pytest.raises(IndexError):
        res.predict([30], [0])
    with pytest.raises(IndexError):
        res.predict([-31], [0])
    with pytest.raises(IndexError):
        res.predict([0], [20])
    with pytest.raises(IndexError):
        res.predict([0], [-21])
    with pytest.raises(ValueError, match="shape"):
        res.predict([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="shape"):
        res.predict(np.zeros((2, 3), int), np.zeros((3, 2), int))
    with pytest.raises((TypeError, IndexError)):
        res.predict([0.5], [1.0])


def test_predict_never_densifies() -> None:
    # A 10^6 x 10^6 completion (8 TB dense): predict touches only the rows it needs.
    rng = np.random.default_rng(17)
    U = rng.standard_normal((10**6, 3))
    V = rng.standard_normal((10**6, 3))
    res = rl.CompletionResult(U, V, 1, True, np.array([1.0]))
    rows = rng.integers(0, 10**6, 1000)
    cols = rng.integers(0, 10**6, 1000)
    tracemalloc.start()
    try:
        got = res.predict(rows, cols)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak
    np.testing.assert_allclose(got, np.sum(U[rows] * V[cols], axis=1), rtol=1e-13, atol=1e-14)
    with pytest.raises(ValueError, match="predict"):
        res.to_dense()


def test_to_dense_and_shape() -> None:
    res = _small_result()
    assert res.shape == (30, 20)
    D = res.to_dense()
    assert D.shape == (30, 20) and type(D) is np.ndarray
    np.testing.assert_allclose(D, res.U @ res.V.T, rtol=1e-14, atol=1e-14)
    res32 = _small_result(np.float32)
    assert res32.to_dense().dtype == np.float32


def test_factors_are_balanced() -> None:
    # Documented in the user guide: U = P S^(1/2), V = Q S^(1/2) with P S Q^T the SVD
    # of U V^T, so U^T U = V^T V = diag(s) with s the singular values, decreasing.
    M, X, k = _noisy_problem()
    res = rl.complete(X, k, rng=0)
    s_ref = np.linalg.svd(res.U @ res.V.T, compute_uv=False)[:k]  # numpy reference
    scale = s_ref[0]
    np.testing.assert_allclose(res.U.T @ res.U, np.diag(s_ref), atol=1e-10 * scale)
    np.testing.assert_allclose(res.V.T @ res.V, np.diag(s_ref), atol=1e-10 * scale)


def test_result_is_frozen_with_readable_repr() -> None:
    res = _small_result()
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.iterations = 0  # type: ignore[misc]
    text = repr(res)
    assert "CompletionResult" in text and "(30, 20)" in text and "rank=3" in text
    assert str(res.iterations) in text


def test_same_seed_same_result() -> None:
    M, X, k = _noisy_problem()
    a = rl.complete(X, k, rng=42)
    b = rl.complete(X, k, rng=42)
    np.testing.assert_array_equal(a.U, b.U)
    np.testing.assert_array_equal(a.V, b.V)
    np.testing.assert_array_equal(a.history, b.history)
    # Generator and SeedSequence are accepted; the result does not depend on the seed
    # beyond rounding (the spectral start only picks the starting point).
    c = rl.complete(X, k, rng=np.random.default_rng(1))
    d = rl.complete(X, k, rng=np.random.SeedSequence(2))
    for other in (c, d):
        np.testing.assert_allclose(other.to_dense(), a.to_dense(), atol=1e-6)


def test_thread_count_does_not_change_the_result() -> None:
    M, X, k = _noisy_problem(400, 300, 5)
    ref = rl.complete(X, k, rng=3)
    for threads in (1, 2, 3):
        with rl.num_threads(threads):
            res = rl.complete(X, k, rng=3)
        np.testing.assert_allclose(res.to_dense(), ref.to_dense(), rtol=0, atol=1e-10)
        assert res.iterations == ref.iterations


# --- scikit-learn wrapper ---------------------------------------------------------


def _nan_matrix(m: int = 300, n: int = 50, k: int = 3, frac: float = 0.5, seed: int = 20):
    M = low_rank(m, n, k, seed=seed)
    mask = sample_mask(m, n, frac, seed=seed)
    return M, mask, with_nan(M, mask)


def test_completer_params_round_trip() -> None:
    est = rl.MatrixCompleter(rank=4, solver="exact", reg=0.5, maxiter=7, tol=1e-6, rng=3)
    params = est.get_params()
    assert params == {
        "rank": 4,
        "solver": "exact",
        "reg": 0.5,
        "maxiter": 7,
        "tol": 1e-6,
        "rng": 3,
        "verbose": False,
    }
    assert est.set_params(rank=2, reg=0.0) is est
    assert est.get_params()["rank"] == 2 and est.get_params()["reg"] == 0.0
    assert rl.MatrixCompleter(**est.get_params()).get_params() == est.get_params()
    with pytest.raises(ValueError):
        est.set_params(alpha=1.0)
    assert "MatrixCompleter(" in repr(est) and "rank=2" in repr(est)


def test_completer_sklearn_clone() -> None:
    base = pytest.importorskip("sklearn.base")
    M, mask, X = _nan_matrix()
    est = rl.MatrixCompleter(rank=3, solver="exact", rng=0).fit(X)
    copy = base.clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    assert not hasattr(copy, "components_")
    np.testing.assert_allclose(copy.fit_transform(X), est.fit_transform(X))


@pytest.mark.parametrize("solver", SOLVERS)
def test_completer_fit_transform(solver: str) -> None:
    M, mask, X = _nan_matrix()
    before = X.copy()
    filled = rl.MatrixCompleter(rank=3, solver=solver, rng=0).fit_transform(X)
    np.testing.assert_array_equal(X, before)  # the input is not modified
    assert type(filled) is np.ndarray and filled.shape == X.shape and filled.dtype == np.float64
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[mask], X[mask])  # observed entries kept exactly
    err = np.linalg.norm(filled[~mask] - M[~mask]) / np.linalg.norm(M[~mask])
    assert err <= 1e-6


def test_completer_float32() -> None:
    M, mask, X = _nan_matrix()
    filled = rl.MatrixCompleter(rank=3, rng=0).fit_transform(X.astype(np.float32))
    assert filled.dtype == np.float32
    np.testing.assert_array_equal(filled[mask], X[mask].astype(np.float32))
    assert np.linalg.norm(filled - M) / np.linalg.norm(M) <= 1e-4


def test_completer_transform_new_rows() -> None:
    # Fit on 300 rows, then fill 40 new rows of the same model (same columns).
    rng = np.random.default_rng(21)
    m, n, k = 340, 50, 3
    M = low_rank(m, n, k, seed=21)
    mask = rng.random((m, n)) < 0.5
    mask[-1] = True  # a fully observed new row stays as it is
    X = with_nan(M, mask)
    est = rl.MatrixCompleter(rank=k, rng=0).fit(X[:300])
    assert est.n_features_in_ == n and est.components_.shape == (n, k)
    new = X[300:]
    filled = est.transform(new)
    assert filled.shape == new.shape and not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[mask[300:]], new[mask[300:]])
    np.testing.assert_array_equal(filled[-1], M[-1])
    truth, miss = M[300:], ~mask[300:]
    assert np.linalg.norm(filled[miss] - truth[miss]) <= 1e-6 * np.linalg.norm(truth[miss])
    # Each new row's factor is the least-squares fit of its observations to V
    # (numpy lstsq reference), so its predictions are components_ times it.
    V = est.components_
    for i in range(0, 40, 7):
        obs = mask[300 + i]
        u = np.linalg.lstsq(V[obs], new[i, obs], rcond=None)[0]
        np.testing.assert_allclose(filled[i, ~obs], V[~obs] @ u, rtol=1e-8, atol=1e-10)


def test_completer_errors() -> None:
    M, mask, X = _nan_matrix()
    est = rl.MatrixCompleter(rank=3, rng=0)
    with pytest.raises(ValueError, match="fit"):
        est.transform(X)
    est.fit(X)
    with pytest.raises(ValueError, match="columns"):
        est.transform(X[:, :40])
    with pytest.raises(ValueError, match="rank"):
        rl.MatrixCompleter(rank=100).fit(X)


def test_completer_in_pipeline() -> None:
    pipeline = pytest.importorskip("sklearn.pipeline")
    linear_model = pytest.importorskip("sklearn.linear_model")
    base = pytest.importorskip("sklearn.base")
    M, mask, X = _nan_matrix(450, 40, 3, 0.6, seed=22)
    w = np.random.default_rng(23).standard_normal(40)
    y = M @ w
    # Fit on 400 rows; the last 50 are new rows with the same columns.
    X, y, X_new, y_new = X[:400], y[:400], X[400:], y[400:]
    pipe = pipeline.Pipeline(
        [
            ("impute", rl.MatrixCompleter(rank=3, rng=0)),
            ("regress", linear_model.LinearRegression()),
        ]
    )
    pipe.fit(X, y)
    pred = pipe.predict(X)
    assert np.linalg.norm(pred - y) <= 1e-5 * np.linalg.norm(y)
    # New rows go through transform (the fitted factors) before the regression.
    assert np.linalg.norm(pipe.predict(X_new) - y_new) <= 1e-5 * np.linalg.norm(y_new)
    cloned = base.clone(pipe)
    assert cloned.get_params()["impute__rank"] == 3
    cloned.set_params(impute__solver="exact").fit(X, y)
    assert np.linalg.norm(cloned.predict(X) - y) <= 1e-5 * np.linalg.norm(y)


# --- heavier cases (make test-all) ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVERS)
def test_recovery_large_square_sparse_sampling(solver: str) -> None:
    # 3000 x 3000, rank 10, 3% observed (C ~ 0.52 of (m + n) k log(m + n)).
    m = n = 3000
    k = 10
    M = low_rank(m, n, k, seed=30)
    mask = sample_mask(m, n, 0.03, seed=30)
    res = rl.complete(observed(M, mask), k, solver=solver, rng=0)
    assert res.converged
    assert rel_error(res, M) <= 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("k", [20, 40])
def test_sketch_matches_exact_at_higher_rank(k: int) -> None:
    m, n = 1500, 1200
    M = low_rank(m, n, k, seed=31)
    mask = sample_mask(m, n, 0.25, seed=31)
    X = observed(M, mask)
    for solver in SOLVERS:
        res = rl.complete(X, k, solver=solver, rng=0)
        assert res.converged
        assert rel_error(res, M) <= 1e-6, solver


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVERS)
def test_noise_levels_over_three_decades(solver: str) -> None:
    m, n, k = 1000, 800, 8
    M = low_rank(m, n, k, seed=32)
    mask = sample_mask(m, n, 0.1, seed=32)
    rows, cols = np.nonzero(mask)
    noise = np.random.default_rng(33).standard_normal(rows.size)
    sigmas = np.array([1e-4, 1e-3, 1e-2, 1e-1])
    errors = []
    for sigma in sigmas:
        X = sp.csr_matrix((M[rows, cols] + sigma * noise, (rows, cols)), shape=(m, n))
        res = rl.complete(X, k, solver=solver, rng=0)
        errors.append(rel_error(res, M))
    ratios = np.array(errors) / sigmas
    assert ratios.max() <= 1.5 * ratios.min(), ratios
