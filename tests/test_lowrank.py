"""rl.range_finder, rl.svd and rl.eigh against numpy, scipy and scikit-learn references."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import randla as rl
import scipy.sparse as sp
import scipy.sparse.linalg as spla

SKETCHES = ["gaussian", "rademacher", "srht", "countsketch", "sparse_sign", "sparse_rp"]
SVD_METHODS = ["auto", "block_krylov", "power"]


def decaying(m: int, n: int, base: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``U diag(base**i) V^T`` with random orthonormal ``U``, ``V``; returns ``A`` and ``s``."""
    rng = np.random.default_rng(seed)
    r = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    s = base ** np.arange(r, dtype=np.float64)
    return (U * s) @ V.T, s


def psd_decaying(n: int, base: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    w = base ** np.arange(n, dtype=np.float64)
    A = (Q * w) @ Q.T
    return (A + A.T) / 2, w


def orthonormality_error(Q: np.ndarray) -> float:
    Q = np.asarray(Q, dtype=np.float64)
    return float(np.abs(Q.T @ Q - np.eye(Q.shape[1])).max())


def subspace_alignment_error(U: np.ndarray, U_ref: np.ndarray) -> float:
    """``max | |U^T U_ref| - I |``: 0 when the columns agree up to sign."""
    return float(np.abs(np.abs(U.T @ U_ref) - np.eye(U.shape[1])).max())


def sparse_clusters(seed: int = 0) -> sp.csr_matrix:
    """A sparse 800 x 300 matrix: 6 cluster prototypes with separated weights + sparse noise.

    Centered, its spectrum has 5 well-separated values (the cluster structure,
    rank r - 1 after centering) above a noise floor near 3e-2.
    """
    rng = np.random.default_rng(seed)
    m, n, r = 800, 300, 6
    labels = rng.integers(0, r, m)
    Z = sp.csr_matrix((np.ones(m), (np.arange(m), labels)), shape=(m, r))
    C = sp.diags([10.0, 7.0, 5.0, 3.0, 2.0, 1.5]) @ sp.random(r, n, density=0.3, rng=rng)
    noise = 1e-2 * sp.random(m, n, density=0.01, rng=rng)
    return (Z @ C + noise).tocsr()


# --- svd -------------------------------------------------------------------------


@pytest.mark.parametrize("method", SVD_METHODS)
@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_svd_decaying_spectrum_matches_numpy(k: int, method: str) -> None:
    A, _ = decaying(400, 300, 0.5, seed=1)
    U_ref, s_ref, Vt_ref = np.linalg.svd(A, full_matrices=False)
    U, s, Vt = rl.svd(A, k, method=method, rng=0)
    assert U.shape == (400, k) and s.shape == (k,) and Vt.shape == (k, 300)
    assert U.dtype == s.dtype == Vt.dtype == np.float64
    assert np.all(np.diff(s) <= 0)
    np.testing.assert_allclose(s, s_ref[:k], rtol=1e-8)
    assert orthonormality_error(U) <= 1e-12
    assert orthonormality_error(Vt.T) <= 1e-12
    approx = (U * s) @ Vt
    truncation = (U_ref[:, :k] * s_ref[:k]) @ Vt_ref[:k]
    # Spectral gaps are 2x, so the rank-k truncation is well defined.
    assert np.linalg.norm(approx - truncation, 2) <= 1e-6 * s_ref[k]
    assert np.linalg.norm(A - approx, 2) <= (1 + 1e-6) * s_ref[k]


@pytest.mark.parametrize("sketch", SKETCHES)
def test_svd_every_sketch(sketch: str) -> None:
    A, s_ref = decaying(300, 200, 0.7, seed=2)
    U, s, Vt = rl.svd(A, 5, sketch=sketch, rng=0)
    np.testing.assert_allclose(s, s_ref[:5], rtol=1e-8)
    assert orthonormality_error(U) <= 1e-12 and orthonormality_error(Vt.T) <= 1e-12


def test_svd_exact_low_rank() -> None:
    rng = np.random.default_rng(3)
    A = rng.standard_normal((200, 5)) @ rng.standard_normal((5, 100))
    U, s, Vt = rl.svd(A, 5, rng=0)
    np.testing.assert_allclose(s, np.linalg.svd(A, compute_uv=False)[:5], rtol=1e-10)
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-10 * s[0])


@pytest.mark.parametrize("k", [1, 7])
def test_svd_k_equal_min_shape(k: int) -> None:
    rng = np.random.default_rng(4)
    A = rng.standard_normal((40, k))
    U, s, Vt = rl.svd(A, k, rng=0)
    np.testing.assert_allclose(s, np.linalg.svd(A, compute_uv=False), rtol=1e-10)
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-10 * s[0])
    # Wide too.
    U, s, Vt = rl.svd(A.T, k, rng=0)
    assert U.shape == (k, k) and Vt.shape == (k, 40)
    np.testing.assert_allclose((U * s) @ Vt, A.T, atol=1e-10 * s[0])


@functools.lru_cache(maxsize=1)
def _noisy_low_rank() -> tuple[np.ndarray, np.ndarray]:
    """600 x 400 of rank 20 plus 0.01 Gaussian noise, and its singular values."""
    rng = np.random.default_rng(5)
    A = rng.standard_normal((600, 20)) @ rng.standard_normal((20, 400))
    A += 0.01 * rng.standard_normal(A.shape)
    A.flags.writeable = False
    return A, np.linalg.svd(A, compute_uv=False)


@pytest.mark.parametrize("method", SVD_METHODS)
@pytest.mark.parametrize("k", [10, 25, 50])
def test_svd_not_worse_than_sklearn(k: int, method: str) -> None:
    extmath = pytest.importorskip("sklearn.utils.extmath")
    A, s_ref = _noisy_low_rank()
    U, s, Vt = rl.svd(A, k, oversamples=10, n_iter="auto", method=method, rng=0)
    Us, ss, Vts = extmath.randomized_svd(A, k, n_oversamples=10, n_iter="auto", random_state=0)
    ours = np.linalg.norm(A - (U * s) @ Vt)
    theirs = np.linalg.norm(A - (Us * ss) @ Vts)
    assert ours <= 1.01 * theirs
    # And both are within a whisker of the optimum.
    optimum = np.sqrt(np.sum(s_ref[k:] ** 2))
    assert optimum * (1 - 1e-12) <= ours <= 1.01 * optimum


def _largest_entries(U: np.ndarray) -> np.ndarray:
    return U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])]


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_svd_sign_convention(kind: str, center: bool) -> None:
    S = sparse_clusters(6)
    A = S if kind == "csr" else S.toarray()
    U, s, Vt = rl.svd(A, 4, center=center, rng=0)
    assert np.all(_largest_entries(U) > 0)


def test_svd_same_rng_is_bitwise_reproducible() -> None:
    A, _ = decaying(400, 300, 0.5, seed=7)
    first = rl.svd(A, 10, rng=3)
    second = rl.svd(A, 10, rng=3)
    for a, b in zip(first, second):
        assert np.array_equal(a, b)
    g1 = rl.svd(A, 10, rng=np.random.default_rng(3))
    g2 = rl.svd(A, 10, rng=np.random.default_rng(3))
    for a, b in zip(g1, g2):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("method", SVD_METHODS)
def test_svd_different_rng_same_answer(method: str) -> None:
    A, _ = decaying(400, 300, 0.5, seed=8)
    U1, s1, Vt1 = rl.svd(A, 10, method=method, rng=1)
    U2, s2, Vt2 = rl.svd(A, 10, method=method, rng=2)
    np.testing.assert_allclose(s1, s2, rtol=1e-8)
    # Well-separated values and the sign convention fix the vectors too.
    np.testing.assert_allclose(U1, U2, atol=1e-8)
    np.testing.assert_allclose(Vt1, Vt2, atol=1e-8)


# --- centering ---------------------------------------------------------------------


@pytest.mark.parametrize("method", SVD_METHODS)
def test_svd_center_dense(method: str) -> None:
    rng = np.random.default_rng(9)
    m, n = 500, 200
    weights = np.array([50.0, 30.0, 20.0, 10.0, 5.0, 2.0])
    low_rank = (rng.standard_normal((m, 6)) * weights) @ rng.standard_normal((6, n))
    A = low_rank + 5.0 * rng.standard_normal(n) + 1e-3 * rng.standard_normal((m, n))
    centered = A - A.mean(axis=0)
    U_ref, s_ref, Vt_ref = np.linalg.svd(centered, full_matrices=False)
    k = 5
    U, s, Vt = rl.svd(A, k, center=True, method=method, rng=0)
    np.testing.assert_allclose(s, s_ref[:k], rtol=1e-8)
    assert subspace_alignment_error(U, U_ref[:, :k]) <= 1e-8
    assert subspace_alignment_error(Vt.T, Vt_ref[:k].T) <= 1e-8
    # The left vectors of a centered matrix are orthogonal to the ones vector.
    assert np.abs(U.sum(axis=0)).max() <= 1e-10
    # Without centering the column mean dominates: a different answer.
    s_plain = rl.svd(A, k, method=method, rng=0)[1]
    assert not np.allclose(s_plain, s_ref[:k], rtol=1e-3)


@pytest.mark.parametrize(
    "make",
    [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array, spla.aslinearoperator],
    ids=["csr", "csc", "coo", "csr_array", "linear_operator"],
)
def test_svd_center_sparse_matches_dense(make) -> None:
    S = sparse_clusters(0)
    D = S.toarray()
    U_ref, s_ref, Vt_ref = np.linalg.svd(D - D.mean(axis=0), full_matrices=False)
    k = 4
    Ud, sd, Vtd = rl.svd(D, k, center=True, rng=0)
    U, s, Vt = rl.svd(make(S), k, center=True, rng=0)
    np.testing.assert_allclose(s, s_ref[:k], rtol=1e-8)
    np.testing.assert_allclose(s, sd, rtol=1e-8)
    assert subspace_alignment_error(U, U_ref[:, :k]) <= 1e-8
    assert subspace_alignment_error(Vt.T, Vt_ref[:k].T) <= 1e-8
    # Same sketch and the sign convention: the dense and sparse results agree.
    np.testing.assert_allclose(U, Ud, atol=1e-8)
    np.testing.assert_allclose(Vt, Vtd, atol=1e-8)


def _centered_operator(A: sp.csr_matrix) -> spla.LinearOperator:
    """``A - 1 mu^T`` applied implicitly."""
    mu = np.asarray(A.mean(axis=0)).ravel()
    ones = np.ones(A.shape[0])
    return spla.LinearOperator(
        A.shape,
        matvec=lambda v: A @ v - ones * (mu @ v),
        rmatvec=lambda u: A.T @ u - mu * u.sum(),
        matmat=lambda V: A @ V - np.outer(ones, mu @ V),
        rmatmat=lambda W: A.T @ W - np.outer(mu, W.sum(axis=0)),
        dtype=np.float64,
    )


@pytest.mark.slow
def test_svd_center_big_sparse_without_densifying() -> None:
    # Its centered dense form would take 200000 * 50000 * 8 bytes = 80 GB.
    A = sp.random(200_000, 50_000, density=1e-5, rng=np.random.default_rng(0), format="csr")
    k = 5
    # The spectrum is flat (gaps ~1%), so this needs more Krylov steps than "auto".
    U, s, Vt = rl.svd(A, k, center=True, n_iter=10, rng=0)
    assert U.shape == (200_000, k) and Vt.shape == (k, 50_000)
    _, s_ref, _ = spla.svds(_centered_operator(A), k=k, rng=np.random.default_rng(0))
    s_ref = np.sort(s_ref)[::-1]
    # Ritz values from a subspace never exceed the true singular values.
    assert np.all(s <= s_ref * (1 + 1e-10))
    np.testing.assert_allclose(s, s_ref, rtol=1e-3)
    assert orthonormality_error(U) <= 1e-10
    assert np.abs(U.sum(axis=0)).max() <= 1e-8


# --- range_finder -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "n", "k", "oversamples"),
    [(300, 200, 5, 10), (300, 200, 10, 0), (300, 200, 10, 5), (200, 300, 5, 10)],
)
def test_range_finder_decaying_spectrum(m: int, n: int, k: int, oversamples: int) -> None:
    A, s_ref = decaying(m, n, 0.7, seed=10)
    Q = rl.range_finder(A, k, oversamples=oversamples, rng=0)
    width = k + oversamples
    assert Q.shape == (m, width) and Q.dtype == np.float64
    assert orthonormality_error(Q) <= 1e-12
    error = np.linalg.norm(A - Q @ (Q.T @ A), 2)
    # Eckart-Young: no basis of `width` columns does better than s[width]...
    assert error >= s_ref[width] * (1 - 1e-10)
    # ...and with power iterations on a decaying spectrum this one is close.
    assert error <= 1.01 * s_ref[width]


@pytest.mark.parametrize(("k", "oversamples"), [(195, 10), (200, 0), (150, 100)])
def test_range_finder_width_capped_at_min_shape(k: int, oversamples: int) -> None:
    A, _ = decaying(300, 200, 0.9, seed=11)
    Q = rl.range_finder(A, k, oversamples=oversamples, rng=0)
    assert Q.shape == (300, 200)
    assert orthonormality_error(Q) <= 1e-12
    np.testing.assert_allclose(Q @ (Q.T @ A), A, atol=1e-12)


@pytest.mark.parametrize("sketch", SKETCHES)
def test_range_finder_every_sketch(sketch: str) -> None:
    A, s_ref = decaying(300, 200, 0.7, seed=12)
    Q = rl.range_finder(A, 5, sketch=sketch, rng=0)
    assert Q.shape == (300, 15)
    assert orthonormality_error(Q) <= 1e-12
    assert np.linalg.norm(A - Q @ (Q.T @ A), 2) <= 1.01 * s_ref[15]


def test_range_finder_more_power_iterations_help() -> None:
    A, s_ref = decaying(300, 200, 0.9, seed=13)
    errors = []
    for n_iter in [0, 2, 6]:
        Q = rl.range_finder(A, 5, oversamples=0, n_iter=n_iter, rng=0)
        errors.append(np.linalg.norm(A - Q @ (Q.T @ A), 2))
    assert all(e >= s_ref[5] * (1 - 1e-10) for e in errors)
    assert errors[2] <= errors[0]
    assert errors[2] <= 1.1 * s_ref[5]


@pytest.mark.parametrize(
    "make",
    [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, spla.aslinearoperator],
    ids=["csr", "csc", "coo", "linear_operator"],
)
def test_range_finder_sparse_and_operator_match_dense(make) -> None:
    S = sparse_clusters(14)
    D = S.toarray()
    Q_dense = rl.range_finder(D, 5, rng=0)
    Q = rl.range_finder(make(S), 5, rng=0)
    assert Q.shape == Q_dense.shape == (800, 15)
    assert orthonormality_error(Q) <= 1e-12
    # The same subspace (the bases may differ by an orthogonal factor).
    P, P_dense = Q @ Q.T, Q_dense @ Q_dense.T
    assert np.linalg.norm(P - P_dense, 2) <= 1e-8


# --- eigh (Nystrom) -------------------------------------------------------------------


def test_eigh_exact_low_rank() -> None:
    rng = np.random.default_rng(15)
    G = rng.standard_normal((300, 8))
    A = G @ G.T
    w, V = rl.eigh(A, 8, rng=0)
    w_ref = np.linalg.eigvalsh(A)[::-1][:8]
    assert w.shape == (8,) and V.shape == (300, 8)
    assert np.all(np.diff(w) <= 0) and np.all(w >= 0)
    np.testing.assert_allclose(w, w_ref, rtol=1e-9)
    assert orthonormality_error(V) <= 1e-12
    assert np.linalg.norm(A @ V - V * w) <= 1e-9 * w[0]
    assert np.all(_largest_entries(V) > 0)


@pytest.mark.parametrize("k", [5, 10])
def test_eigh_decaying_spectrum(k: int) -> None:
    A, w_ref = psd_decaying(300, 0.5, seed=16)
    # One-pass Nystrom: its error is set by the eigenvalues beyond the sketch
    # (0.5**(k + oversamples)), so 1e-6 needs a sketch ~30 wider than k.
    w, V = rl.eigh(A, k, oversamples=30, rng=0)
    np.testing.assert_allclose(w, w_ref[:k], rtol=1e-6)
    assert orthonormality_error(V) <= 1e-12
    assert np.linalg.norm(A @ V - V * w, 2) <= 1e-6 * w[0]


def test_eigh_default_oversamples_is_nystrom_accurate() -> None:
    A, w_ref = psd_decaying(300, 0.5, seed=16)
    w, _ = rl.eigh(A, 5, rng=0)
    # Nystrom underestimates: never above the truth, close with 15 samples.
    assert np.all(w <= w_ref[:5] * (1 + 1e-10))
    np.testing.assert_allclose(w, w_ref[:5], rtol=1e-2)


@pytest.mark.parametrize(
    "make",
    [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, spla.aslinearoperator],
    ids=["csr", "csc", "coo", "linear_operator"],
)
def test_eigh_sparse_psd(make) -> None:
    W = sp.random(400, 6, density=0.3, rng=np.random.default_rng(17)) @ sp.diags(
        [5.0, 4.0, 3.0, 2.0, 1.5, 1.0]
    )
    A = (W @ W.T).tocsr()
    w_ref = np.linalg.eigvalsh(A.toarray())[::-1][:6]
    w, V = rl.eigh(make(A), 6, rng=0)
    assert V.dtype == np.float64
    np.testing.assert_allclose(w, w_ref, rtol=1e-9)
    assert np.linalg.norm(A @ V - V * w) <= 1e-9 * w[0]


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_eigh_non_symmetric_raises(kind: str) -> None:
    rng = np.random.default_rng(18)
    G = rng.standard_normal((50, 5))
    A = np.triu(G @ G.T)
    with pytest.raises(ValueError, match="symmetric"):
        rl.eigh(sp.csr_matrix(A) if kind == "csr" else A, 3)


def test_eigh_non_square_raises() -> None:
    with pytest.raises(ValueError, match="square"):
        rl.eigh(np.ones((50, 40)), 3)


@pytest.mark.parametrize("method", ["lanczos", "NYSTROM", "power"])
def test_eigh_unknown_method_raises(method: str) -> None:
    with pytest.raises(ValueError, match="method"):
        rl.eigh(np.eye(10), 2, method=method)


# --- float32 ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("center", [False, True])
def test_svd_float32(kind: str, center: bool) -> None:
    A, s_ref = decaying(300, 200, 0.7, seed=19)
    if center:
        s_ref = np.linalg.svd(A - A.mean(axis=0), compute_uv=False)
    A32 = A.astype(np.float32)
    U, s, Vt = rl.svd(sp.csr_matrix(A32) if kind == "csr" else A32, 5, center=center, rng=0)
    assert U.dtype == s.dtype == Vt.dtype == np.float32
    np.testing.assert_allclose(s, s_ref[:5], rtol=1e-4)
    assert orthonormality_error(U) <= 1e-5


def test_range_finder_and_eigh_float32() -> None:
    A, _ = decaying(300, 200, 0.7, seed=20)
    Q = rl.range_finder(A.astype(np.float32), 5, rng=0)
    assert Q.dtype == np.float32
    assert orthonormality_error(Q) <= 1e-5
    G = np.random.default_rng(21).standard_normal((100, 5))
    P = G @ G.T
    w, V = rl.eigh(P.astype(np.float32), 5, rng=0)
    assert w.dtype == V.dtype == np.float32
    np.testing.assert_allclose(w, np.linalg.eigvalsh(P)[::-1][:5], rtol=1e-4)


@pytest.mark.parametrize("function", ["svd", "range_finder", "eigh"])
def test_float32_linear_operator(function: str) -> None:
    G = np.random.default_rng(22).standard_normal((120, 6))
    P = (G @ G.T).astype(np.float32)
    op = spla.aslinearoperator(P)
    assert op.dtype == np.float32
    if function == "svd":
        s = rl.svd(op, 6, rng=0)[1]
    elif function == "range_finder":
        s = np.linalg.svd(rl.range_finder(op, 6, rng=0).T @ P, compute_uv=False)[:6]
    else:
        s = rl.eigh(op, 6, rng=0)[0]
    np.testing.assert_allclose(s, np.linalg.eigvalsh(P.astype(np.float64))[::-1][:6], rtol=1e-4)


# --- input kinds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        sp.csr_matrix,
        sp.csc_matrix,
        sp.coo_matrix,
        sp.csc_array,
        spla.aslinearoperator,
        lambda A: spla.aslinearoperator(sp.csr_matrix(A)),
        lambda A: spla.LinearOperator(
            A.shape, matvec=lambda x: A @ x, rmatvec=lambda y: A.T @ y, dtype=np.float64
        ),
    ],
    ids=["csr", "csc", "coo", "csc_array", "linear_operator", "sparse_operator", "matvec_only"],
)
def test_svd_sparse_and_operator_match_dense(make) -> None:
    S = sparse_clusters(23)
    D = S.toarray()
    s_ref = np.linalg.svd(D, compute_uv=False)
    U_dense, s_dense, Vt_dense = rl.svd(D, 5, rng=0)
    U, s, Vt = rl.svd(make(D if make is spla.aslinearoperator else S), 5, rng=0)
    assert U.dtype == np.float64
    np.testing.assert_allclose(s, s_dense, rtol=1e-9)
    np.testing.assert_allclose(s, s_ref[:5], rtol=1e-8)
    np.testing.assert_allclose(U, U_dense, atol=1e-8)
    np.testing.assert_allclose(Vt, Vt_dense, atol=1e-8)


def test_svd_integer_input_becomes_float64() -> None:
    A = (np.arange(60 * 40).reshape(60, 40) % 7).astype(np.int64)
    U, s, Vt = rl.svd(A, 3, rng=0)
    assert s.dtype == np.float64
    np.testing.assert_allclose(s, np.linalg.svd(A.astype(float), compute_uv=False)[:3], rtol=1e-8)


# --- bad input ------------------------------------------------------------------------

FUNCTIONS = {
    "svd": rl.svd,
    "range_finder": rl.range_finder,
    "eigh": rl.eigh,
}


def _square_psd() -> np.ndarray:
    G = np.random.default_rng(24).standard_normal((40, 40))
    return G @ G.T


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("k", [0, -1, 41])
def test_bad_k_raises(name: str, k: int) -> None:
    with pytest.raises(ValueError, match="k"):
        FUNCTIONS[name](_square_psd(), k)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_k_must_be_an_int(name: str) -> None:
    with pytest.raises(TypeError, match="k"):
        FUNCTIONS[name](_square_psd(), 2.0)


def test_k_larger_than_min_shape_of_rectangular_raises() -> None:
    with pytest.raises(ValueError, match=r"min\(A.shape\)"):
        rl.svd(np.ones((50, 20)), 21)
    with pytest.raises(ValueError, match=r"min\(A.shape\)"):
        rl.range_finder(sp.csr_matrix(np.eye(20, 50)), 21)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_negative_oversamples_raises(name: str) -> None:
    with pytest.raises(ValueError, match="oversamples"):
        FUNCTIONS[name](_square_psd(), 3, oversamples=-1)


@pytest.mark.parametrize("name", ["svd", "range_finder"])
@pytest.mark.parametrize("n_iter", ["bad", "AUTO", -1])
def test_bad_n_iter_raises(name: str, n_iter) -> None:
    with pytest.raises(ValueError, match="n_iter"):
        FUNCTIONS[name](_square_psd(), 3, n_iter=n_iter)


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_input_raises(name: str, kind: str, value: float) -> None:
    A = _square_psd()
    A[3, 3] = value
    with pytest.raises(ValueError, match="NaN or infinity"):
        FUNCTIONS[name](sp.csr_matrix(A) if kind == "csr" else A, 3)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_complex_input_raises_type_error(name: str) -> None:
    with pytest.raises(TypeError, match="complex"):
        FUNCTIONS[name](_square_psd().astype(np.complex128), 3)


@pytest.mark.parametrize("name", ["svd", "range_finder"])
@pytest.mark.parametrize("sketch", ["fjlt", "row_sampling", "Gaussian"])
def test_unknown_sketch_raises(name: str, sketch: str) -> None:
    with pytest.raises(ValueError, match="sketch"):
        FUNCTIONS[name](_square_psd(), 3, sketch=sketch)


def test_svd_unknown_method_raises() -> None:
    with pytest.raises(ValueError, match="method"):
        rl.svd(_square_psd(), 3, method="lanczos")


def test_operator_without_rmatvec_names_what_is_missing() -> None:
    A = np.random.default_rng(3).standard_normal((50, 30))
    op = spla.LinearOperator(A.shape, matvec=lambda x: A @ x, dtype=np.float64)
    with pytest.raises(TypeError, match="rmatvec"):
        rl.svd(op, 3, rng=0)
