"""API.md §2: sketching operators (``rl.sketch``).

Products against the dense operator for every input layout, dtype and sparse
format; the transposed products; ``rl.sketch.apply``; the statistical claims
(``E[S.T @ S] = I``, subspace embedding); the scaling of each family;
determinism across seeds and thread counts; argument validation; and products
running concurrently from several Python threads (the GIL is released).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import randla as rl
import scipy.linalg
import scipy.sparse as sp
import scipy.stats
from conftest import (
    D_SMALL,
    DENSE_LAYOUTS,
    K_SMALL,
    N_SMALL,
    OPERATOR_CASES,
    OPERATOR_IDS,
    SPARSE_CONSTRUCTORS,
    OperatorCase,
    assert_product_close,
    dense_layouts,
    random_sparse_dense,
    run_python,
    sparse_variants,
    vector_layouts,
)
from randla.sketch import SketchOperator

CONSTRUCTORS = {
    "gaussian": rl.sketch.gaussian,
    "rademacher": rl.sketch.rademacher,
    "srht": rl.sketch.srht,
    "countsketch": rl.sketch.countsketch,
    "sparse_sign": rl.sketch.sparse_sign,
    "sparse_rp": rl.sketch.sparse_rp,
    "row_sampling": rl.sketch.row_sampling,
}

RTOL64 = 1e-12
RTOL32 = 1e-4


def small_operator(case, *, dtype=np.float64, seed=1):
    return case.build(K_SMALL, N_SMALL, rng=seed, dtype=dtype)


# --- S @ A against the dense operator ------------------------------------------------


def test_to_dense_is_a_plain_c_ordered_array(operator_case):
    S = small_operator(operator_case)
    D = S.to_dense()
    assert type(D) is np.ndarray and D.flags.c_contiguous
    assert D.shape == (K_SMALL, N_SMALL) and D.dtype == np.float64
    assert np.isfinite(D).all() and np.count_nonzero(D) > 0
    DT = S.T.to_dense()
    assert DT.flags.c_contiguous and np.array_equal(DT, D.T)


@pytest.mark.parametrize("layout", list(DENSE_LAYOUTS))
def test_product_matches_dense_operator(operator_case, layout, rng):
    S = small_operator(operator_case)
    A = rng.standard_normal((N_SMALL, D_SMALL))
    view = dense_layouts(A)[layout]
    before = view.copy()
    got = S @ view
    assert got.dtype == np.float64 and got.flags.c_contiguous
    assert_product_close(got, S.to_dense(), A, RTOL64)
    assert np.array_equal(view, before)  # the input is not modified


@pytest.mark.parametrize("layout", ["contiguous", "strided", "reversed"])
def test_vector_product_matches_dense_operator(operator_case, layout, rng):
    S = small_operator(operator_case)
    v = rng.standard_normal(N_SMALL)
    got = S @ vector_layouts(v)[layout]
    assert got.shape == (K_SMALL,) and got.dtype == np.float64
    assert_product_close(got, S.to_dense(), v, RTOL64)


@pytest.mark.parametrize("layout", list(DENSE_LAYOUTS))
def test_float32_product(operator_case, layout, rng):
    S = small_operator(operator_case, dtype=np.float32)
    assert S.dtype == np.float32
    D = S.to_dense()
    assert D.dtype == np.float32
    A = rng.standard_normal((N_SMALL, D_SMALL)).astype(np.float32)
    got = S @ dense_layouts(A)[layout]
    assert got.dtype == np.float32
    assert_product_close(got, D, A, RTOL32)
    v = A[:, 0].copy()
    got = S @ v
    assert got.dtype == np.float32 and got.shape == (K_SMALL,)
    assert_product_close(got, D, v, RTOL32)


def test_float32_operator_is_the_rounded_float64_operator(operator_case):
    D64 = small_operator(operator_case, dtype=np.float64).to_dense()
    D32 = small_operator(operator_case, dtype=np.float32).to_dense()
    np.testing.assert_allclose(D32, D64, rtol=4e-7, atol=0)
    assert np.array_equal(D32 == 0, D64 == 0)


def test_dtype_promotion_follows_numpy(operator_case, rng):
    A32 = rng.standard_normal((N_SMALL, 3)).astype(np.float32)
    A64 = A32.astype(np.float64)
    S64 = small_operator(operator_case, dtype=np.float64)
    S32 = small_operator(operator_case, dtype=np.float32)
    # float64 with float32 gives float64 (numpy's promotion), computed in float64.
    got = S64 @ A32
    assert got.dtype == np.float64
    assert_product_close(got, S64.to_dense(), A64, RTOL64)
    got = S32 @ A64
    assert got.dtype == np.float64
    assert_product_close(got, S64.to_dense(), A64, 1e-6)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_integer_and_bool_input_becomes_float64(operator_case, dtype, rng):
    A = rng.integers(0, 3, size=(N_SMALL, 4)).astype(dtype)
    S = small_operator(operator_case)
    # Converted to float64: the same as converting first.
    got = S @ A
    assert got.dtype == np.float64
    assert np.array_equal(got, S @ A.astype(np.float64))
    got = A.T @ S.T
    assert got.dtype == np.float64
    assert np.array_equal(got, A.T.astype(np.float64) @ S.T)
    # float64 also with a float32 operator (float32 is kept only for float32 input).
    got = small_operator(operator_case, dtype=np.float32) @ A
    assert got.dtype == np.float64
    assert_product_close(got, S.to_dense(), A, 1e-6)
    got = S @ sp.csr_array(A)
    assert got.dtype == np.float64
    assert_product_close(got, S.to_dense(), A, RTOL64)


def test_array_like_input(operator_case, rng):
    S = small_operator(operator_case)
    A = rng.standard_normal((N_SMALL, 3))
    assert np.array_equal(S @ A.tolist(), S @ A)
    assert np.array_equal(S @ list(A[:, 0]), S @ np.ascontiguousarray(A[:, 0]))


@pytest.mark.parametrize("fmt", list(SPARSE_CONSTRUCTORS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_product_matches_dense_operator(operator_case, fmt, dtype, rng):
    S = small_operator(operator_case, dtype=dtype)
    A = random_sparse_dense(rng, N_SMALL, 7).astype(dtype)
    matrix = sparse_variants(A)[fmt]
    got = S @ matrix
    assert type(got) is np.ndarray and got.dtype == dtype and got.flags.c_contiguous
    assert_product_close(got, S.to_dense(), A, RTOL64 if dtype == np.float64 else RTOL32)


def test_sparse_product_with_unsorted_duplicate_entries_and_int64_indices(operator_case, rng):
    S = small_operator(operator_case)
    n, d = N_SMALL, 6
    indptr, indices, data = [0], [], []
    for _ in range(n):
        cols = list(rng.choice(d, size=3, replace=False))
        cols = cols[::-1] + [cols[0]]  # unsorted, with a duplicate
        indices += cols
        data += list(rng.standard_normal(len(cols)))
        indptr.append(len(indices))
    for index_dtype in (np.int32, np.int64):
        A = sp.csr_array(
            (np.array(data), np.array(indices, index_dtype), np.array(indptr, index_dtype)),
            shape=(n, d),
        )
        assert not A.has_canonical_format
        dense = A.toarray()  # sums the duplicates
        assert_product_close(S @ A, S.to_dense(), dense, RTOL64)
        assert_product_close(S @ A.tocsc(), S.to_dense(), dense, RTOL64)


def test_sparse_product_keeps_explicit_zeros_harmless(operator_case, rng):
    S = small_operator(operator_case)
    A = random_sparse_dense(rng, N_SMALL, 4)
    matrix = sp.csr_array(A)
    matrix.data[::3] = 0.0  # explicit zeros
    assert_product_close(S @ matrix, S.to_dense(), matrix.toarray(), RTOL64)


# --- transposed products --------------------------------------------------------


@pytest.mark.parametrize("layout", ["C", "F", "strided", "reversed"])
def test_transposed_products_match_dense_operator(operator_case, layout, rng):
    S = small_operator(operator_case)
    D = S.to_dense()
    k, n, m = K_SMALL, N_SMALL, 3
    assert S.T.shape == (n, k)

    A = rng.standard_normal((m, n))  # A @ S.T
    got = dense_layouts(A)[layout] @ S.T
    assert got.shape == (m, k) and got.flags.c_contiguous
    assert_product_close(got, A, D.T, RTOL64)

    B = rng.standard_normal((k, m))  # S.T @ B
    got = S.T @ dense_layouts(B)[layout]
    assert got.shape == (n, m) and got.flags.c_contiguous
    assert_product_close(got, D.T, B, RTOL64)

    C = rng.standard_normal((m, k))  # C @ S
    got = dense_layouts(C)[layout] @ S
    assert got.shape == (m, n) and got.flags.c_contiguous
    assert_product_close(got, C, D, RTOL64)


def test_transposed_vector_products(operator_case, rng):
    S = small_operator(operator_case)
    D = S.to_dense()
    v = rng.standard_normal(N_SMALL)
    w = rng.standard_normal(K_SMALL)
    for name, view in vector_layouts(v).items():
        got = view @ S.T
        assert got.shape == (K_SMALL,), name
        assert_product_close(got, D, v, RTOL64)
    for name, view in vector_layouts(w).items():
        got = S.T @ view
        assert got.shape == (N_SMALL,), name
        assert_product_close(got, D.T, w, RTOL64)
        got = view @ S
        assert got.shape == (N_SMALL,), name
        assert_product_close(got, D.T, w, RTOL64)


@pytest.mark.parametrize("fmt", list(SPARSE_CONSTRUCTORS))
def test_transposed_products_with_sparse_operands(operator_case, fmt, rng):
    S = small_operator(operator_case)
    D = S.to_dense()
    A = random_sparse_dense(rng, N_SMALL, 4).T  # (4, n)
    got = sparse_variants(A)[fmt] @ S.T
    assert type(got) is np.ndarray and got.shape == (4, K_SMALL)
    assert_product_close(got, A, D.T, RTOL64)
    B = random_sparse_dense(rng, K_SMALL, 3)  # (k, 3)
    got = S.T @ sparse_variants(B)[fmt]
    assert type(got) is np.ndarray and got.shape == (N_SMALL, 3)
    assert_product_close(got, D.T, B, RTOL64)
    got = sparse_variants(B.T)[fmt] @ S
    assert type(got) is np.ndarray and got.shape == (3, N_SMALL)
    assert_product_close(got, B.T, D, RTOL64)


def test_float32_transposed_products(operator_case, rng):
    S = small_operator(operator_case, dtype=np.float32)
    D = S.to_dense()
    A = rng.standard_normal((3, N_SMALL)).astype(np.float32)
    B = rng.standard_normal((K_SMALL, 3)).astype(np.float32)
    for got, left, right in [(A @ S.T, A, D.T), (S.T @ B, D.T, B), (B.T @ S, B.T, D)]:
        assert got.dtype == np.float32
        assert_product_close(got, left, right, RTOL32)


def test_transpose_of_transpose(operator_case, rng):
    S = small_operator(operator_case)
    assert S.T.T.shape == S.shape == (K_SMALL, N_SMALL)
    assert S.T.kind == S.kind and S.T.dtype == S.dtype
    A = rng.standard_normal((N_SMALL, 2))
    assert np.array_equal(S.T.T @ A, S @ A)
    assert np.array_equal(S.T.T.to_dense(), S.to_dense())


def test_numpy_defers_to_the_operator(operator_case, rng):
    S = small_operator(operator_case)
    assert SketchOperator.__array_ufunc__ is None
    C = rng.standard_normal((3, K_SMALL))
    got = C @ S  # ndarray.__matmul__ returns NotImplemented
    assert type(got) is np.ndarray
    assert_product_close(got, C, S.to_dense(), RTOL64)
    A = rng.standard_normal((3, N_SMALL))
    assert_product_close(A @ S.T, A, S.to_dense().T, RTOL64)
    with pytest.raises(TypeError):
        np.matmul(C, S)


# --- rl.sketch.apply ---------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_apply_equals_the_explicit_product(operator_case, axis, rng):
    n, d, k = N_SMALL, 6, K_SMALL
    options = operator_case.options(n)
    S = operator_case.build(k, n, rng=5)
    A = rng.standard_normal((n, d)) if axis in (0, -2) else rng.standard_normal((d, n))
    expected = S @ A if axis in (0, -2) else A @ S.T
    got = rl.sketch.apply(A, k, method=operator_case.kind, axis=axis, rng=5, **options)
    assert np.array_equal(got, expected)
    # Sparse input, float32 input.
    As = sp.csr_array(A)
    expected = S @ As if axis in (0, -2) else As @ S.T
    got = rl.sketch.apply(As, k, method=operator_case.kind, axis=axis, rng=5, **options)
    assert np.array_equal(got, expected)
    A32 = A.astype(np.float32)
    S32 = operator_case.build(k, n, rng=5, dtype=np.float32)
    expected = S32 @ A32 if axis in (0, -2) else A32 @ S32.T
    got = rl.sketch.apply(A32, k, method=operator_case.kind, axis=axis, rng=5, **options)
    assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_apply_vector_and_default_method(rng):
    A = rng.standard_normal((300, 4))
    assert np.array_equal(rl.sketch.apply(A, 20, rng=9), rl.sketch.sparse_sign(20, 300, rng=9) @ A)
    v = A[:, 0]
    got = rl.sketch.apply(v, 20, method="srht", rng=9)
    assert got.shape == (20,) and np.array_equal(got, rl.sketch.srht(20, 300, rng=9) @ v)


def test_apply_bad_arguments(rng):
    A = rng.standard_normal((30, 4))
    with pytest.raises(ValueError, match="method"):
        rl.sketch.apply(A, 5, method="fourier")
    for axis in (2, -3, True):
        with pytest.raises(ValueError, match="axis"):
            rl.sketch.apply(A, 5, axis=axis)
    with pytest.raises(ValueError, match="axis"):
        rl.sketch.apply(A[:, 0], 5, axis=1)
    with pytest.raises(ValueError):
        rl.sketch.apply(A, 0)
    with pytest.raises(ValueError, match="contains NaN"):
        rl.sketch.apply(np.where(A > 1, np.nan, A), 10, rng=0)


# --- statistics -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [c for c in OPERATOR_CASES if c.unbiased],
    ids=[c.name for c in OPERATOR_CASES if c.unbiased],
)
def test_expected_gram_is_identity(case):
    # E[S.T @ S] = I, each entry within 5 standard errors of its sample mean.
    k, n, samples = 6, 10, 2000
    grams = np.empty((samples, n, n))
    for seed in range(samples):
        D = case.build(k, n, rng=seed).to_dense()
        grams[seed] = D.T @ D
    mean = grams.mean(axis=0)
    standard_error = grams.std(axis=0, ddof=1) / np.sqrt(samples)
    deviation = np.abs(mean - np.eye(n))
    assert np.all(deviation <= 5 * standard_error + 1e-12), (
        deviation / (standard_error + 1e-300)
    ).max()
    # The diagonal is 1 on average: a wrong scale moves it by far more than the noise.
    assert np.abs(np.diag(mean) - 1).max() < 0.15


N_EMBED, D_EMBED = 1000, 8


def _distortion(SQ):
    """max |sigma_i(S Q) - 1|: the distortion of the embedding of range(Q) (orthonormal Q)."""
    return np.max(np.abs(np.linalg.svd(SQ, compute_uv=False) - 1))


def _embedding_distortions(case, Q, k, seeds):
    """The distortion for each seed; row sampling with given p uses the leverage scores of Q."""
    n = Q.shape[0]
    override = {"p": (Q**2).sum(axis=1)} if "p" in case.options(n) else {}
    return np.array([_distortion(case.build(k, n, rng=seed, **override) @ Q) for seed in seeds])


@pytest.fixture(scope="module")
def incoherent_basis():
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((N_EMBED, D_EMBED)))
    return Q


@pytest.fixture(scope="module")
def coherent_basis():
    rows = np.random.default_rng(1).choice(N_EMBED, size=D_EMBED, replace=False)
    return np.eye(N_EMBED)[:, rows]


# Oblivious embeddings at these sizes whatever the coherence of the subspace (sparse sign
# with its default nnz_per_col = 8; with 4 nonzeros per column, two columns of S sharing two
# rows already give a distortion of 0.5).
OBLIVIOUS = [c for c in OPERATOR_CASES if c.kind in ("gaussian", "rademacher", "srht")] + [
    OperatorCase("sparse_sign_default", "sparse_sign")
]


def _check_embedding(case, Q, seeds):
    # k = 16 d: every seed is a 0.5-distortion embedding (Marchenko-Pastur edge at 0.25).
    large = _embedding_distortions(case, Q, 16 * D_EMBED, seeds)
    assert large.max() < 0.5, large.max()
    # k = 4 d: the Marchenko-Pastur edges are sigma = 1 +- 0.5 for a Gaussian sketch, so the
    # typical distortion is 0.45; a bound below 0.5 for every seed is impossible here.
    small = _embedding_distortions(case, Q, 4 * D_EMBED, seeds)
    assert np.median(small) < 0.56, np.median(small)
    assert small.max() < 0.85, small.max()


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=OPERATOR_IDS)
def test_subspace_embedding_of_an_incoherent_basis(case, incoherent_basis):
    _check_embedding(case, incoherent_basis, range(60))


@pytest.mark.parametrize("case", OBLIVIOUS, ids=[c.name for c in OBLIVIOUS])
def test_subspace_embedding_of_a_coherent_basis(case, coherent_basis):
    _check_embedding(case, coherent_basis, range(60))


@pytest.mark.slow
@pytest.mark.parametrize("case", OPERATOR_CASES, ids=OPERATOR_IDS)
def test_subspace_embedding_many_seeds(case, incoherent_basis):
    _check_embedding(case, incoherent_basis, range(1000, 1600))


@pytest.mark.slow
@pytest.mark.parametrize("case", OBLIVIOUS, ids=[c.name for c in OBLIVIOUS])
def test_subspace_embedding_of_a_coherent_basis_many_seeds(case, coherent_basis):
    _check_embedding(case, coherent_basis, range(1000, 1600))


def test_embedding_check_rejects_a_wrong_scale(incoherent_basis):
    # The bounds above fail for a Gaussian sketch scaled by sqrt(2) or with half the rows.
    case, Q = OPERATOR_CASES[0], incoherent_basis
    scaled = [
        _distortion(np.sqrt(2) * (case.build(16 * D_EMBED, N_EMBED, rng=s) @ Q)) for s in range(20)
    ]
    assert min(scaled) > 0.5
    half = [_distortion(case.build(2 * D_EMBED, N_EMBED, rng=s) @ Q) for s in range(20)]
    assert np.median(half) > 0.56


# --- scaling of each family ---------------------------------------------------------


def test_gaussian_entries():
    k, n = 20, 5000
    D = rl.sketch.gaussian(k, n, rng=3).to_dense() * np.sqrt(k)
    assert abs(D.mean()) < 5 / np.sqrt(D.size)
    assert abs(D.var() - 1) < 5 * np.sqrt(2 / D.size)
    assert scipy.stats.kstest(D.ravel(), "norm").pvalue > 1e-3


def test_rademacher_entries():
    k, n = 20, 5000
    D = rl.sketch.rademacher(k, n, rng=3).to_dense()
    assert np.all(np.abs(D) == 1 / np.sqrt(k))
    assert abs(np.mean(D > 0) - 0.5) < 5 * 0.5 / np.sqrt(D.size)


@pytest.mark.parametrize(("k", "n"), [(7, 3000), (64, 500)])
def test_countsketch_one_signed_one_per_column(k, n):
    D = rl.sketch.countsketch(k, n, rng=11).to_dense()
    assert np.all(np.count_nonzero(D, axis=0) == 1)
    assert set(np.unique(D)) <= {-1.0, 0.0, 1.0}
    values = D[D != 0]
    assert abs(values.mean()) < 5 / np.sqrt(n)
    # Rows are uniform: chi-square with k - 1 degrees of freedom.
    counts = np.count_nonzero(D, axis=1)
    chi2 = np.sum((counts - n / k) ** 2 / (n / k))
    assert scipy.stats.chi2.sf(chi2, k - 1) > 1e-4


@pytest.mark.parametrize(("k", "s"), [(20, 8), (20, 1), (20, 3), (8, 8)])
def test_sparse_sign_distinct_rows_per_column(k, s):
    n = 2000
    options = {} if s == 8 else {"nnz_per_col": s}  # 8 is the default
    D = rl.sketch.sparse_sign(k, n, rng=4, **options).to_dense()
    # Exactly s distinct rows per column (a repeated row would sum to 0 or +-2/sqrt(s)).
    assert np.all(np.count_nonzero(D, axis=0) == s)
    assert np.all(np.isin(D, [0.0, 1 / np.sqrt(s), -1 / np.sqrt(s)]))
    values = D[D != 0]
    assert abs(np.mean(values > 0) - 0.5) < 5 * 0.5 / np.sqrt(values.size)
    if s < k:
        counts = np.count_nonzero(D, axis=1)
        expected = n * s / k
        chi2 = np.sum((counts - expected) ** 2 / expected)
        assert scipy.stats.chi2.sf(chi2, k - 1) > 1e-4


def test_sparse_sign_repr_and_default():
    S = rl.sketch.sparse_sign(10, 30, rng=0)
    assert "nnz_per_col=8" in repr(S)


@pytest.mark.parametrize(("density", "expected"), [("auto", 0.01), (0.05, 0.05), (0.5, 0.5)])
def test_sparse_rp_density_and_values(density, expected):
    k, n = 100, 10_000
    S = rl.sketch.sparse_rp(k, n, density=density, rng=6)
    assert f"density={expected!r}" in repr(S)
    D = S.to_dense()
    nnz = np.count_nonzero(D)
    mean_nnz = k * n * expected
    assert abs(nnz - mean_nnz) < 5 * np.sqrt(mean_nnz * (1 - expected))
    # Nonzeros per column are Binomial(k, density): checks the geometric skipping.
    per_column = np.count_nonzero(D, axis=0)
    variance = k * expected * (1 - expected)
    assert abs(per_column.var() - variance) < 0.1 * variance
    # Rows of the nonzeros are uniform.
    per_row = np.count_nonzero(D, axis=1)
    chi2 = np.sum((per_row - nnz / k) ** 2 / (nnz / k))
    assert scipy.stats.chi2.sf(chi2, k - 1) > 1e-4
    value = np.sqrt(1.0 / (k * expected))
    np.testing.assert_allclose(np.abs(D[D != 0]), value, rtol=1e-14)
    assert abs(np.mean(D[D != 0] > 0) - 0.5) < 5 * 0.5 / np.sqrt(nnz)


def test_sparse_rp_full_density_has_no_zeros():
    D = rl.sketch.sparse_rp(9, 50, density=1.0, rng=1).to_dense()
    assert np.all(np.abs(D) == 1 / 3)


@pytest.mark.parametrize(("k", "n"), [(16, 64), (64, 64), (5, 256)])
def test_srht_rows_are_orthogonal_for_a_power_of_two(k, n):
    S = rl.sketch.srht(k, n, rng=2)
    D = S.to_dense()
    np.testing.assert_allclose(D @ D.T, (n / k) * np.eye(k), atol=1e-12)


@pytest.mark.parametrize(("k", "n"), [(12, 40), (16, 64), (3, 5), (5, 5)])
def test_srht_structure(k, n):
    """S = sqrt(n2/k) P H D restricted to n columns, H the Sylvester Hadamard matrix / sqrt(n2)."""
    n2 = 1 << (n - 1).bit_length()
    D = rl.sketch.srht(k, n, rng=7).to_dense()
    assert np.all(np.abs(D) == 1 / np.sqrt(k))
    M = np.rint(D * np.sqrt(k))
    hadamard = scipy.linalg.hadamard(n2)[:, :n]
    # Row t of M is h(r_t) * d: the product of rows t and 0 is h(r_t xor r_0), a row of H.
    found = []
    for t in range(k):
        matches = np.flatnonzero(np.all(hadamard == M[t] * M[0], axis=1))
        assert matches.size == 1, t
        found.append(int(matches[0]))
    assert len(set(found)) == k  # distinct sampled rows


@pytest.mark.parametrize("d", [1, 2, 3, 5, 7, 12, 16, 17, 24])
def test_srht_large_n_every_column_count(d, rng):
    # n2 = 8192 exceeds the FWHT's cache block for every group width w <= 16.
    k, n = 8, 5000
    S = rl.sketch.srht(k, n, rng=4)
    D = S.to_dense()
    A = rng.standard_normal((n, d))
    assert_product_close(S @ A, D, A, RTOL64)
    assert_product_close(S @ np.asfortranarray(A), D, A, RTOL64)
    As = random_sparse_dense(rng, n, d, density=0.05)
    assert_product_close(S @ sp.csc_array(As), D, As, RTOL64)
    B = rng.standard_normal((k, d))
    assert_product_close(S.T @ B, D.T, B, RTOL64)


@pytest.mark.parametrize("k", [3, 12, 16, 40])
def test_srht_to_dense_large_n(k):
    # to_dense is S.T applied to the identity: k columns, in groups of up to 16.
    n = 5000
    S = rl.sketch.srht(k, n, rng=4)
    D = S.to_dense()
    assert D.shape == (k, n) and np.all(np.abs(D) == 1 / np.sqrt(k))
    e = np.zeros(n)
    e[1234] = 1.0
    assert np.array_equal(S @ e, D[:, 1234])


def test_srht_largest_k():
    assert rl.sketch.srht(5, 5, rng=0).shape == (5, 5)
    with pytest.raises(ValueError):
        rl.sketch.srht(6, 5, rng=0)


@pytest.mark.parametrize("replace", [True, False])
def test_uniform_row_sampling_structure(replace):
    k, n = 30, 50
    D = rl.sketch.row_sampling(k, n, replace=replace, rng=8).to_dense()
    rows, cols = np.nonzero(D)
    assert np.array_equal(rows, np.arange(k))  # one entry per row
    if not replace:
        assert np.all(np.diff(cols) > 0)  # distinct, increasing
    np.testing.assert_allclose(D[rows, cols], np.sqrt(n / k), rtol=1e-15)


def test_row_sampling_frequencies_follow_p():
    # k <= n: the mass sits on the first five of n = k rows.
    k = 20_000
    p = np.zeros(k)
    p[:5] = [1.0, 2.0, 0.0, 3.0, 4.0]
    S = rl.sketch.row_sampling(k, k, p=p, rng=12)
    e = np.eye(k, 5)
    D = S @ e  # (k, 5): the sampled rows, restricted to the support
    rows, cols = np.nonzero(D)
    assert np.array_equal(rows, np.arange(k))
    counts = np.bincount(cols, minlength=5)
    assert counts[2] == 0  # p = 0 is never sampled
    q = p[:5] / p.sum()
    np.testing.assert_allclose(D[rows, cols], 1 / np.sqrt(k * q[cols]), rtol=1e-14)
    support = q > 0
    expected = k * q[support]
    chi2 = np.sum((counts[support] - expected) ** 2 / expected)
    assert scipy.stats.chi2.sf(chi2, support.sum() - 1) > 1e-4


def test_uniform_row_sampling_frequencies():
    # k = n = 20000 samples; rows are binned by index mod 8 (2500 expected per bin).
    k = n = 20_000
    S = rl.sketch.row_sampling(k, n, rng=13)
    sampled = (S @ np.arange(1.0, n + 1)) / np.sqrt(n / k) - 1
    counts = np.bincount(sampled.astype(np.int64) % 8, minlength=8)
    chi2 = np.sum((counts - k / 8) ** 2 / (k / 8))
    assert scipy.stats.chi2.sf(chi2, 7) > 1e-4


def test_row_sampling_without_replacement_with_p():
    p = np.array([0.0, 1.0, 5.0, 0.0, 2.0, 2.0, 1.0])
    D = rl.sketch.row_sampling(4, 7, p=p, replace=False, rng=3).to_dense()
    rows, cols = np.nonzero(D)
    assert np.array_equal(rows, np.arange(4))
    assert np.all(np.diff(cols) > 0)
    assert not np.isin(cols, [0, 3]).any()
    q = p / p.sum()
    np.testing.assert_allclose(D[rows, cols], 1 / np.sqrt(4 * q[cols]), rtol=1e-14)
    # All five rows with p > 0 can be taken, not six.
    assert np.count_nonzero(rl.sketch.row_sampling(5, 7, p=p, replace=False, rng=3).to_dense()) == 5
    with pytest.raises(ValueError):
        rl.sketch.row_sampling(6, 7, p=p, replace=False, rng=3)


# --- determinism --------------------------------------------------------------------


def test_same_seed_gives_bitwise_identical_operators(operator_case, rng):
    first = small_operator(operator_case, seed=99)
    second = small_operator(operator_case, seed=99)
    assert np.array_equal(first.to_dense(), second.to_dense())
    A = rng.standard_normal((N_SMALL, 4))
    assert np.array_equal(first @ A, second @ A)
    assert np.array_equal(first @ sp.csc_array(A), second @ sp.csc_array(A))
    B = rng.standard_normal((K_SMALL, 4))
    assert np.array_equal(first.T @ B, second.T @ B)


def test_different_seeds_differ(operator_case):
    assert not np.array_equal(
        small_operator(operator_case, seed=1).to_dense(),
        small_operator(operator_case, seed=2).to_dense(),
    )


K_BIG, N_BIG, D_BIG = 300, 20_000, 16


def _products_for_determinism(case, A, As):
    S = case.build(K_BIG, N_BIG, rng=3)
    S32 = case.build(K_BIG, N_BIG, rng=3, dtype=np.float32)
    return [
        S @ A,
        S @ np.asfortranarray(A),
        S @ A[:, 0],
        S32 @ A.astype(np.float32),
        S @ As,
        S @ As.tocsc(),
        A.T @ S.T,
        S.T @ A[:K_BIG],
        case.build(64, 5000, rng=3).to_dense(),
    ]


@pytest.fixture(scope="module")
def big_inputs():
    generator = np.random.default_rng(5)
    A = generator.standard_normal((N_BIG, D_BIG))
    As = sp.random_array((N_BIG, D_BIG), density=0.05, format="csr", rng=generator)
    return A, As


def test_bitwise_identical_across_thread_counts(operator_case, big_inputs):
    A, As = big_inputs
    with rl.num_threads(1):
        one = _products_for_determinism(operator_case, A, As)
    with rl.num_threads(2):
        two = _products_for_determinism(operator_case, A, As)
    for index, (x, y) in enumerate(zip(one, two)):
        assert x.dtype == y.dtype and np.array_equal(x, y), index


_HASH_PRODUCTS = f"""
import hashlib, json
import numpy as np, scipy.sparse as sp, randla as rl
n = {N_BIG}
A = np.random.default_rng(5).standard_normal((n, 16))
As = sp.random_array((n, 16), density=0.05, format="csr", rng=np.random.default_rng(6))
p = 1.0 + (np.arange(n) % 5)
cases = [("gaussian", {{}}), ("rademacher", {{}}), ("srht", {{}}), ("countsketch", {{}}),
         ("sparse_sign", {{}}), ("sparse_rp", {{}}), ("row_sampling", {{}}),
         ("row_sampling", {{"replace": False}}), ("row_sampling", {{"p": p}})]
report = {{"threads": rl.get_num_threads()}}
for index, (kind, options) in enumerate(cases):
    S = getattr(rl.sketch, kind)({K_BIG}, n, rng=3, **options)
    digest = hashlib.sha256()
    for result in (S @ A, S @ np.asfortranarray(A), S @ A.astype(np.float32), S @ As,
                   A.T @ S.T, S.T @ A[:{K_BIG}]):
        digest.update(result.tobytes())
    report[f"{{index}}-{{kind}}"] = digest.hexdigest()
print(json.dumps(report))
"""


def test_bitwise_identical_across_thread_counts_from_the_environment():
    reports = {}
    for threads in ("1", "2"):
        out = run_python(_HASH_PRODUCTS, env={"RANDLA_NUM_THREADS": threads})
        reports[threads] = json.loads(out.stdout.strip().splitlines()[-1])
    assert reports["1"].pop("threads") == 1
    assert reports["2"].pop("threads") == 2
    assert len(reports["1"]) == 9
    assert reports["1"] == reports["2"]


# --- attributes and repr ---------------------------------------------------------------


def test_attributes_and_repr(operator_case):
    S = small_operator(operator_case)
    assert isinstance(S, SketchOperator)
    assert S.kind == operator_case.kind
    assert S.shape == (K_SMALL, N_SMALL) and all(type(x) is int for x in S.shape)
    assert S.dtype == np.dtype(np.float64) and isinstance(S.dtype, np.dtype)
    text = repr(S)
    assert operator_case.kind in text and str(S.shape) in text
    text_t = repr(S.T)
    assert operator_case.kind in text_t and text_t != text
    with pytest.raises(AttributeError):
        S.shape = (1, 1)
    with pytest.raises(AttributeError):
        S.kind = "gaussian"


def test_operators_are_lazy():
    # Dense storage would need terabytes; construction stores parameters and a key only.
    start = time.perf_counter()
    S = rl.sketch.gaussian(10**6, 10**7, rng=0)
    rl.sketch.rademacher(10**6, 10**7, rng=0)
    rl.sketch.sparse_sign(10**6, 10**9, rng=0)
    rl.sketch.sparse_rp(10**6, 10**9, rng=0)
    rl.sketch.srht(10**6, 10**9, rng=0)
    rl.sketch.countsketch(10**6, 10**9, rng=0)
    assert time.perf_counter() - start < 1.0
    assert S.shape == (10**6, 10**7)


def test_tiny_shapes(operator_case, rng):
    override = {"nnz_per_col": 1} if operator_case.kind == "sparse_sign" else {}
    shapes = [(1, 1), (1, 7), (2, 2)]
    with pytest.raises(ValueError, match="k = 3 must be <= n = 1"):
        operator_case.build(3, 1, rng=0, **override)  # API.md §1: k > n cannot hold
    for k, n in shapes:
        S = operator_case.build(k, n, rng=0, **override)
        assert S.shape == (k, n)
        A = rng.standard_normal((n, 2))
        assert_product_close(S @ A, S.to_dense(), A, RTOL64)
        assert_product_close(S @ A[:, 0], S.to_dense(), A[:, 0], RTOL64)
        assert_product_close(A.T @ S.T, A.T, S.to_dense().T, RTOL64)


# --- bad input ----------------------------------------------------------------------


def _poisoned(A, value, rng):
    B = A.copy()
    B[tuple(rng.integers(0, s) for s in A.shape)] = value
    return B


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_finite_dense_input_raises(operator_case, value, dtype, rng):
    S = small_operator(operator_case, dtype=dtype)
    A = rng.standard_normal((N_SMALL, 3)).astype(dtype)
    for _ in range(5):
        bad = _poisoned(A, value, rng)
        for layout in ("C", "F", "reversed"):
            with pytest.raises(ValueError, match=r"\bA\b"):
                S @ dense_layouts(bad)[layout]
        with pytest.raises(ValueError, match=r"\bA\b"):
            bad.T @ S.T
    v = A[:, 0].copy()
    v[N_SMALL // 2] = value
    with pytest.raises(ValueError, match=r"\bA\b"):
        S @ v


@pytest.mark.parametrize("fmt", ["csr_matrix", "csc_array", "coo_array"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_sparse_input_raises(operator_case, fmt, value, rng):
    S = small_operator(operator_case)
    A = random_sparse_dense(rng, N_SMALL, 4)
    for row in (0, N_SMALL // 2, N_SMALL - 1):
        bad = A.copy()
        bad[row, row % 4] = value
        matrix = SPARSE_CONSTRUCTORS[fmt](bad)
        with pytest.raises(ValueError, match=r"\bA\b"):
            S @ matrix
        with pytest.raises(ValueError, match=r"\bA\b"):
            SPARSE_CONSTRUCTORS[fmt](bad.T) @ S.T


def _wide_shape(case):
    """k = n: sparse operators then have empty rows."""
    return 5, 5


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_b_raises_in_transposed_products(operator_case, value, rng):
    # Every row of B is poisoned in turn, including rows that meet an empty row of S.
    k, n = _wide_shape(operator_case)
    S = operator_case.build(k, n, rng=0)
    B = rng.standard_normal((k, 3))
    for row in range(k):
        bad = B.copy()
        bad[row, 1] = value
        with pytest.raises(ValueError, match=r"\bB\b"):
            S.T @ bad
        with pytest.raises(ValueError, match=r"\bB\b"):
            bad.T @ S
        with pytest.raises(ValueError, match=r"\bB\b"):
            S.T @ bad[:, 1]
        with pytest.raises(ValueError, match=r"\bB\b"):
            S.T @ sp.csr_array(bad)


def test_wrong_shapes_name_both_shapes(operator_case):
    S = small_operator(operator_case)
    k, n = S.shape
    cases = [
        (lambda X: S @ X, np.ones((n + 1, 2))),
        (lambda X: S @ X, np.ones(n - 1)),
        (lambda X: S @ X, sp.csr_array(np.ones((n + 2, 2)))),
        (lambda X: X @ S.T, np.ones((2, n + 1))),
        (lambda X: X @ S.T, sp.csr_array(np.ones((2, n - 1)))),
        (lambda X: S.T @ X, np.ones((k + 1, 2))),
        (lambda X: S.T @ X, np.ones(k - 1)),
        (lambda X: X @ S, np.ones((2, k + 1))),
        (lambda X: X @ S, np.ones(k + 1)),
    ]
    for index, (product, X) in enumerate(cases):
        with pytest.raises(ValueError) as info:
            product(X)
        message = str(info.value)
        assert str(tuple(X.shape)) in message, (index, message)
        assert str(S.shape) in message or str(S.T.shape) in message, (index, message)


@pytest.mark.parametrize("kind", list(CONSTRUCTORS))
def test_bad_sizes(kind):
    make = CONSTRUCTORS[kind]
    for k, n in [(0, 5), (-1, 5), (3, 0), (3, -4)]:
        with pytest.raises(ValueError):
            make(k, n, rng=0)
    for k, n in [(2.0, 5), ("3", 5), (None, 5), (3, 5.0), (3, [5])]:
        with pytest.raises(TypeError):
            make(k, n, rng=0)
    # numpy integers are integers.
    assert make(np.int64(8), np.int32(9), rng=0).shape == (8, 9)


def test_sizes_beyond_the_position_space_raise_value_error():
    # "Sizes that cannot hold raise ValueError" (as numpy does for np.empty(2**64)).
    wrong = []
    for kind, make in CONSTRUCTORS.items():
        for k, n in [(2**64, 8), (8, 2**64 + 5)]:
            try:
                make(k, n, rng=0)
            except ValueError:
                continue
            except Exception as error:  # noqa: BLE001 (reported below)
                wrong.append(f"{kind}({k}, {n}): {type(error).__name__}: {error}")
            else:
                wrong.append(f"{kind}({k}, {n}): no error")
    assert wrong == [], "\n".join(wrong)


def test_dense_operators_reject_k_times_n_beyond_64_bits():
    for make in (rl.sketch.gaussian, rl.sketch.rademacher):
        with pytest.raises(ValueError):
            make(2**32, 2**32, rng=0)


def test_parameter_constraints():
    with pytest.raises(ValueError):
        rl.sketch.row_sampling(11, 10, replace=False, rng=0)
    assert rl.sketch.row_sampling(10, 10, replace=False, rng=0).shape == (10, 10)
    with pytest.raises(ValueError, match="k = 11 must be <= n = 10"):
        rl.sketch.row_sampling(11, 10, replace=True, rng=0)
    with pytest.raises(ValueError):
        rl.sketch.sparse_sign(7, 10, rng=0)  # default nnz_per_col = 8 > k
    with pytest.raises(ValueError):
        rl.sketch.sparse_sign(5, 10, nnz_per_col=6, rng=0)
    with pytest.raises(ValueError):
        rl.sketch.sparse_sign(5, 10, nnz_per_col=0, rng=0)
    with pytest.raises(TypeError):
        rl.sketch.sparse_sign(5, 10, nnz_per_col=2.0, rng=0)
    assert rl.sketch.sparse_sign(5, 10, nnz_per_col=5, rng=0).shape == (5, 10)
    with pytest.raises(ValueError):
        rl.sketch.srht(17, 16, rng=0)
    with pytest.raises(ValueError):
        rl.sketch.srht(18, 17, rng=0)
    assert rl.sketch.srht(17, 17, rng=0).shape == (17, 17)
    for density in (0.0, -0.1, 1.5, np.nan, "dense"):
        with pytest.raises(ValueError, match="density"):
            rl.sketch.sparse_rp(5, 10, density=density, rng=0)


@pytest.mark.parametrize(
    "p",
    [
        np.array([1.0, -1.0, 1.0, 1.0]),
        np.zeros(4),
        np.ones(3),
        np.ones(5),
        np.array([1.0, np.nan, 1.0, 1.0]),
        np.array([1.0, np.inf, 1.0, 1.0]),
        np.ones((2, 2)),
    ],
    ids=["negative", "zero_sum", "short", "long", "nan", "inf", "2d"],
)
def test_row_sampling_bad_probabilities(p):
    with pytest.raises(ValueError, match=r"\bp\b"):
        rl.sketch.row_sampling(2, 4, p=p, rng=0)


def test_row_sampling_complex_probabilities():
    with pytest.raises(TypeError, match="complex input is not supported"):
        rl.sketch.row_sampling(2, 4, p=np.ones(4, dtype=complex), rng=0)


def test_complex_input_raises_type_error(operator_case):
    S = small_operator(operator_case)
    k, n = S.shape
    A = np.ones((n, 2), dtype=np.complex128)
    for product, X in [
        (lambda X: S @ X, A),
        (lambda X: S @ X, A[:, 0]),
        (lambda X: S @ X, A.astype(np.complex64)),
        (lambda X: S @ X, sp.csr_array(A)),
        (lambda X: X @ S.T, A.T),
        (lambda X: S.T @ X, np.ones((k, 2), dtype=complex)),
        (lambda X: X @ S, np.ones((2, k), dtype=complex)),
    ]:
        with pytest.raises(TypeError, match="complex input is not supported"):
            product(X)


NON_NUMERIC = {
    "object": lambda shape: np.ones(shape).astype(object),
    "str": lambda shape: np.ones(shape).astype(str),
    "datetime": lambda shape: np.zeros(shape, dtype="datetime64[s]"),
}


@pytest.mark.parametrize("make", list(NON_NUMERIC.values()), ids=list(NON_NUMERIC))
def test_non_numeric_input_raises_type_error(operator_case, make):
    S = small_operator(operator_case)
    k, n = S.shape
    with pytest.raises(TypeError, match=r"\bA\b"):
        S @ make((n, 2))
    with pytest.raises(TypeError, match=r"\bA\b"):
        S @ make(n)
    with pytest.raises(TypeError, match=r"\bA\b"):
        make((2, n)) @ S.T
    with pytest.raises(TypeError, match=r"\bB\b"):
        S.T @ make((k, 2))
    with pytest.raises(TypeError, match=r"\bB\b"):
        make((2, k)) @ S


def test_wrong_ndim_and_empty_input_name_the_argument(operator_case):
    S = small_operator(operator_case)
    k, n = S.shape
    for X in (np.ones((n, 2, 2)), np.float64(1.0), np.ones((n, 0)), np.ones((0,)), np.ones((0, 3))):
        with pytest.raises(ValueError, match=r"\bA\b"):
            S @ X
    with pytest.raises(ValueError, match=r"\bA\b"):
        np.ones((2, n, 1)) @ S.T
    with pytest.raises(ValueError, match=r"\bA\b"):
        S @ sp.csr_array((n, 0))
    for X in (np.ones((k, 2, 2)), np.ones((k, 0))):
        with pytest.raises(ValueError, match=r"\bB\b"):
            S.T @ X
    with pytest.raises(ValueError, match=r"\bB\b"):
        np.ones((0, k)) @ S


@pytest.mark.parametrize("kind", list(CONSTRUCTORS))
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.complex128, np.bool_, object, "float16"])
def test_operator_dtype_must_be_float32_or_float64(kind, dtype):
    with pytest.raises(TypeError, match="dtype"):
        CONSTRUCTORS[kind](8, 9, rng=0, dtype=dtype)


@pytest.mark.parametrize("kind", list(CONSTRUCTORS))
def test_operator_dtype_accepts_dtype_spellings(kind):
    for spelling in (np.float32, "float32", np.dtype("f4")):
        assert CONSTRUCTORS[kind](8, 9, rng=0, dtype=spelling).dtype == np.float32
    for spelling in (np.float64, float, "f8"):
        assert CONSTRUCTORS[kind](8, 9, rng=0, dtype=spelling).dtype == np.float64


# --- the GIL ------------------------------------------------------------------------------


def test_concurrent_products_equal_sequential_products(rng):
    A = rng.standard_normal((16_384, 32))
    As = sp.random_array((16_384, 32), density=0.02, format="csr", rng=rng)
    operators = [case.build(256, 16_384, rng=seed) for seed, case in enumerate(OPERATOR_CASES)]
    jobs = [(S, X) for S in operators for X in (A, As)]
    sequential = [S @ X for S, X in jobs]
    with rl.num_threads(2), ThreadPoolExecutor(max_workers=2) as pool:
        concurrent = list(pool.map(lambda job: job[0] @ job[1], jobs))
    for index, (x, y) in enumerate(zip(sequential, concurrent)):
        assert np.array_equal(x, y), index


def test_dense_sketch_releases_the_gil(rng):
    S = rl.sketch.gaussian(512, 65_536, rng=0)
    A = rng.standard_normal((65_536, 32))
    with rl.num_threads(1):
        start = time.perf_counter()
        expected = S @ A
        duration = time.perf_counter() - start
        results = []
        worker = threading.Thread(target=lambda: results.append(S @ A))
        ticks = [time.perf_counter()]
        worker.start()
        while worker.is_alive():
            time.sleep(0.002)
            ticks.append(time.perf_counter())
        worker.join()
    assert duration > 0.05, "the product is too quick for this test to mean anything"
    # While the worker is inside the kernel, this thread keeps running: no gap as
    # long as the kernel (a kernel holding the GIL would block it throughout).
    gaps = np.diff(ticks)
    assert gaps.max() < 0.5 * duration, (gaps.max(), duration)
    assert np.array_equal(results[0], expected)
