"""Leverage scores and Lewis weights against numpy QR and their defining fixed point."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import randla as rl
import scipy.sparse as sp


def _numpy_leverage(A: np.ndarray) -> np.ndarray:
    Q = np.linalg.qr(A)[0]
    return (Q**2).sum(axis=1)


def _coherent(n: int = 4000, d: int = 20, seed: int = 0) -> np.ndarray:
    """Gaussian rows plus a few heavy ones: leverage scores far from uniform."""
    A = np.random.default_rng(seed).standard_normal((n, d))
    A[:5] *= 200.0
    return A


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exact_matches_numpy_qr(dtype: type) -> None:
    A = _coherent().astype(dtype)
    tau = rl.leverage_scores(A)
    assert tau.dtype == np.float64 and tau.shape == (A.shape[0],)
    ref = _numpy_leverage(A.astype(np.float64))
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(tau, ref, atol=tol)
    assert abs(tau.sum() - A.shape[1]) < (1e-10 if dtype == np.float64 else 1e-3)


def test_exact_rank_deficient_sums_to_rank() -> None:
    rng = np.random.default_rng(1)
    A = rng.standard_normal((500, 3)) @ rng.standard_normal((3, 8))
    tau = rl.leverage_scores(A)
    U = np.linalg.svd(A, full_matrices=False)[0][:, :3]
    np.testing.assert_allclose(tau, (U**2).sum(axis=1), atol=1e-10)
    assert abs(tau.sum() - 3.0) < 1e-9


def test_exact_wide_and_sparse() -> None:
    A = _coherent(300, 10)
    np.testing.assert_allclose(rl.leverage_scores(A.T), np.ones(10), atol=1e-12)
    S = sp.random(400, 12, density=0.3, format="csr", random_state=2) + sp.eye(400, 12)
    np.testing.assert_allclose(rl.leverage_scores(S), _numpy_leverage(S.toarray()), atol=1e-10)


@pytest.mark.parametrize("eps", [0.5, 0.25])
def test_approx_within_eps(eps: float) -> None:
    A = _coherent(20_000, 40)
    ref = _numpy_leverage(A)
    for seed in range(3):
        tau = rl.leverage_scores(A, method="approx", eps=eps, rng=seed)
        assert np.abs(tau / ref - 1).max() <= eps


@pytest.mark.parametrize(
    ("n", "d", "eps"),
    [
        (20_000, 2, 0.5),  # few columns: the largest of n errors, not d, sizes the sketch
        (20_000, 10, 0.5),
        (20_000, 300, 0.5),  # t < d: the JL matrix runs
        (20_000, 150, 1.0),  # eps = 1, JL matrix
    ],
)
def test_approx_within_eps_for_narrow_and_wide_matrices(n: int, d: int, eps: float) -> None:
    # The earlier sizes (a sketch of 4 d / eps^2 rows, a JL matrix of
    # 6 ln(n) / eps^2 columns) gave errors up to 1.2 eps at d = 10, 1.06 eps
    # at d = 300 and 1.6 eps at eps = 1 on these matrices and seeds.
    A = _coherent(n, d, seed=d)
    ref = _numpy_leverage(A)
    for seed in range(3):
        tau = rl.leverage_scores(A, method="approx", eps=eps, rng=seed)
        assert np.abs(tau / ref - 1).max() <= eps


def test_approx_sparse_within_eps() -> None:
    A = sp.random(20_000, 30, density=0.05, format="csr", random_state=3) + sp.eye(20_000, 30)
    ref = _numpy_leverage(A.toarray())
    keep = ref > 1e-12
    tau = rl.leverage_scores(A, method="approx", eps=0.5, rng=0)
    assert np.abs(tau[keep] / ref[keep] - 1).max() <= 0.5
    assert np.all(tau[~keep] < 1e-12)


def test_approx_is_deterministic_for_a_seed() -> None:
    A = _coherent(20_000, 40)
    a = rl.leverage_scores(A, method="approx", rng=7)
    b = rl.leverage_scores(A, method="approx", rng=7)
    np.testing.assert_array_equal(a, b)


def _fixed_point_residual(A: np.ndarray, w: np.ndarray, p: float) -> float:
    tau = _numpy_leverage(A * (w ** (0.5 - 1.0 / p))[:, None])
    return float(np.max(np.abs(w - tau) / np.maximum(w, 1e-300)))


@pytest.mark.parametrize("p", [1.0, 1.5, 3.0, 4.0, 6.0])
def test_lewis_exact_fixed_point(p: float) -> None:
    A = _coherent(2000, 8)
    w = rl.lewis_weights(A, p, method="exact", tol=1e-12)
    assert abs(w.sum() - 8.0) < 1e-8
    assert _fixed_point_residual(A, w, p) < 1e-8


def test_lewis_p2_is_leverage() -> None:
    A = _coherent(1000, 6)
    np.testing.assert_allclose(
        rl.lewis_weights(A, 2.0, method="exact"), _numpy_leverage(A), atol=1e-12
    )


@pytest.mark.parametrize("p", [1.0, 3.0])
def test_lewis_approx_within_a_constant_factor(p: float) -> None:
    A = _coherent(20_000, 20)
    exact = rl.lewis_weights(A, p, method="exact")
    approx = rl.lewis_weights(A, p, rng=0)
    ratio = approx / exact
    assert ratio.min() > 0.5 and ratio.max() < 2.0
    assert abs(approx.sum() - 20.0) < 2.0


def test_lewis_zero_rows_stay_zero_and_acceleration_converges() -> None:
    # Zero rows take no part in the (Anderson-accelerated) iteration: their
    # weight is 0, the others satisfy the fixed point, and the accelerated
    # loop needs far fewer leverage computations than the plain contraction
    # (rate 1/2 for p = 1: about 33 iterations to 1e-10).
    from randla import _core

    A = _coherent(3000, 10)
    A[[7, 100, 2999]] = 0.0
    w, iterations, converged, change = _core.lewis_weights(A, 1.0, 1e-10, 200, "exact", 0, 0, 0)
    w = np.asarray(w)
    assert converged and change <= 1e-10
    assert iterations <= 15
    assert np.all(w[[7, 100, 2999]] == 0.0)
    keep = np.ones(3000, dtype=bool)
    keep[[7, 100, 2999]] = False
    assert abs(w.sum() - 10.0) < 1e-8
    assert _fixed_point_residual(A[keep], w[keep], 1.0) < 1e-8


def test_approx_ill_conditioned_stays_within_eps() -> None:
    # Columns scaled over 7 orders of magnitude: float32 products would lose
    # the small directions, so the rounding bound must keep them in float64.
    A = _coherent(20_000, 30) * np.logspace(0, 7, 30)
    ref = _numpy_leverage(A)
    for eps in (0.5, 0.2):
        tau = rl.leverage_scores(A, method="approx", eps=eps, rng=1)
        assert np.abs(tau / ref - 1).max() <= eps


def test_approx_float32_input_within_eps() -> None:
    A = _coherent(20_000, 40).astype(np.float32)
    ref = _numpy_leverage(A.astype(np.float64))
    tau = rl.leverage_scores(A, method="approx", eps=0.5, rng=2)
    assert np.abs(tau / ref - 1).max() <= 0.5


@pytest.mark.parametrize("method", ["exact", "approx"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_a_raises_on_both_paths(method: str, value: float) -> None:
    # The approximate path checks a dense A through its sketch: every entry
    # reaches it, wherever the bad value sits (small n falls back to exact).
    for n in (20_000, 100):
        A = _coherent(n, 10)
        for where in ((0, 0), (n - 1, 9), (n // 2, 4)):
            bad = A.copy()
            bad[where] = value
            with pytest.raises(ValueError, match="A contains NaN or infinity"):
                rl.leverage_scores(bad, method=method, eps=0.5, rng=0)


def test_lewis_maxiter_warns() -> None:
    A = _coherent(500, 5)
    with pytest.warns(rl.ConvergenceWarning):
        rl.lewis_weights(A, 1.0, method="exact", maxiter=1, tol=1e-14)


def test_bad_input() -> None:
    A = _coherent(100, 3)
    with pytest.raises(ValueError):
        rl.leverage_scores(A, method="magic")
    with pytest.raises(ValueError):
        rl.leverage_scores(A, method="approx", eps=0.0)
    bad = A.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rl.leverage_scores(bad)
    with pytest.raises(ValueError, match="NaN"):
        rl.lewis_weights(bad, 1.0)
    with pytest.raises(ValueError):
        rl.lewis_weights(A, 0.5)
    with pytest.raises(ValueError):
        rl.lewis_weights(A, float("inf"))
    with pytest.raises(ValueError):
        rl.lewis_weights(A, 1.0, maxiter=0)
    with pytest.raises(TypeError):
        rl.leverage_scores(A.astype(complex))
    with pytest.raises(ValueError):
        rl.leverage_scores(np.ones((0, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rl.lewis_weights(A, 1.5, method="exact")


# --- sensitivities and row sampling ---------------------------------------------------


def test_sensitivity_bounds_hold() -> None:
    A = _coherent(60, 3, seed=4)
    exact = rl.sensitivities(A, 1.0, method="exact")
    # Exact sensitivities are attained: some x reaches each one, and they sum to >= d... at most d.
    assert np.all(exact > 0) and exact.sum() <= 3.0 + 1e-8
    for method in ("lewis", "approx"):
        bound = rl.sensitivities(A, 1.0, method=method, rng=0)
        assert np.all(exact <= bound * (1 + 1e-8)), method
    np.testing.assert_allclose(
        rl.sensitivities(A, 2.0, method="exact"), _numpy_leverage(A), atol=1e-12
    )
    with pytest.raises(ValueError, match="p = 1 and p = 2"):
        rl.sensitivities(A, 3.0, method="exact")


def test_l1_sensitivity_is_attained() -> None:
    # For the LP optimum x*, |a_i x*| / ||A x*||_1 equals the computed sensitivity:
    # check it against a brute-force search over many random directions (a lower bound).
    A = _coherent(40, 2, seed=5)
    exact = rl.sensitivities(A, 1.0, method="exact")
    X = np.random.default_rng(0).standard_normal((2, 20_000))
    ratios = np.abs(A @ X) / np.abs(A @ X).sum(axis=0)
    assert np.all(ratios.max(axis=1) <= exact * (1 + 1e-8))
    assert np.all(ratios.max(axis=1) >= 0.95 * exact)


def _distortion(A: np.ndarray, idx: np.ndarray, w: np.ndarray, p: float, X: np.ndarray) -> float:
    est = (w[:, None] * np.abs(A[idx] @ X) ** p).sum(axis=0)
    exact = (np.abs(A @ X) ** p).sum(axis=0)
    return float(np.max(np.abs(est / exact - 1)))


def test_sample_rows_is_unbiased() -> None:
    A = _coherent(3000, 4, seed=6)
    x = np.array([1.0, -2.0, 0.5, 3.0])
    exact = np.abs(A @ x).sum()
    for method in ("lewis", "leverage", "root_leverage", "sensitivity", "uniform"):
        estimates = []
        for seed in range(200):
            idx, w = rl.sample_rows(A, 100, p=1, method=method, rng=seed)
            estimates.append(np.sum(w * np.abs(A[idx] @ x)))
        mean, sem = np.mean(estimates), np.std(estimates) / np.sqrt(len(estimates))
        assert abs(mean - exact) <= 5 * sem + 1e-9 * exact, method


def test_importance_sampling_beats_uniform_on_heavy_rows() -> None:
    # The last column lives on three rows only: leverage about 1/3 each, and
    # a uniform sample of 2% of the rows usually misses all three.
    A = np.random.default_rng(7).standard_normal((20_000, 5))
    A[:, 4] = 0.0
    A[:3, 4] = 1.0
    X = np.random.default_rng(1).standard_normal((5, 200))
    X[:, :20] = np.eye(5)[:, [4]] + 1e-3 * X[:, :20]  # directions seen by three rows only
    for p in (1.0, 2.0):
        lewis = max(
            _distortion(A, *rl.sample_rows(A, 400, p=p, method="lewis", rng=s), p, X)
            for s in range(5)
        )
        uniform = min(
            _distortion(A, *rl.sample_rows(A, 400, p=p, method="uniform", rng=s), p, X)
            for s in range(5)
        )
        assert lewis < 0.5, (p, lewis)
        assert uniform > 2 * lewis, (p, uniform, lewis)


def test_sample_rows_determinism_and_without_replacement() -> None:
    A = _coherent(1000, 3, seed=8)
    a = rl.sample_rows(A, 50, rng=3)
    b = rl.sample_rows(A, 50, rng=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    idx, w = rl.sample_rows(A, 200, method="leverage", replace=False, rng=1)
    assert idx.dtype == np.int64 and len(np.unique(idx)) == 200 and np.all(np.diff(idx) > 0)
    assert np.all(w > 0)


def test_sample_rows_bad_input() -> None:
    A = _coherent(100, 3)
    with pytest.raises(ValueError):
        rl.sample_rows(A, 0)
    with pytest.raises(TypeError):
        rl.sample_rows(A, 2.5)
    with pytest.raises(ValueError):
        rl.sample_rows(A, 10, p=0.5)
    with pytest.raises(ValueError):
        rl.sample_rows(A, 10, method="magic")
    with pytest.raises(ValueError):
        rl.sample_rows(A, 101, replace=False)
    bad = A.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN"):
        rl.sample_rows(bad, 10, method="uniform")
    with pytest.raises(ValueError):
        rl.sensitivities(A, 1.0, method="magic")


@pytest.mark.slow
def test_sketched_lewis_weights_within_a_constant_factor() -> None:
    # d > 24 ln(n) and n > 40 d: the sketched path runs.
    A = np.random.default_rng(9).standard_normal((13_000, 300))
    A[:5] *= 50.0
    exact = rl.lewis_weights(A, 1.0, method="exact")
    approx = rl.lewis_weights(A, 1.0, rng=0)
    ratio = approx / exact
    assert ratio.min() > 0.5 and ratio.max() < 2.0


# --- l_p regression ---------------------------------------------------------------------


def _lp_problem(n: int = 300, d: int = 4, seed: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    b = A @ rng.standard_normal(d) + rng.laplace(size=n)
    b[:5] += 50.0  # outliers: l1 and l2 answers differ
    return A, b


def _l1_by_linprog(A: np.ndarray, b: np.ndarray) -> float:
    from scipy.optimize import linprog

    n, d = A.shape
    # min sum t  s.t.  -t <= A x - b <= t
    c = np.concatenate([np.zeros(d), np.ones(n)])
    A_ub = np.block([[A, -np.eye(n)], [-A, -np.eye(n)]])
    b_ub = np.concatenate([b, -b])
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * d + [(0, None)] * n)
    assert res.status == 0
    return float(res.fun)


def test_l1_regression_matches_linear_programming() -> None:
    A, b = _lp_problem()
    res = rl.lp_regression(A, b, 1.0, tol=1e-10, maxiter=500)
    assert res.converged
    optimum = _l1_by_linprog(A, b)
    assert abs(res.objective - optimum) <= 1e-6 * optimum


@pytest.mark.parametrize("p", [1.5, 3.0, 5.0])
def test_lp_regression_matches_scipy_minimize(p: float) -> None:
    from scipy.optimize import minimize

    A, b = _lp_problem(200, 3, seed=11)
    res = rl.lp_regression(A, b, p, tol=1e-14, maxiter=500)
    x0 = np.linalg.lstsq(A, b, rcond=None)[0]

    def f(x: np.ndarray) -> float:
        return float(np.sum(np.abs(A @ x - b) ** p))

    def grad(x: np.ndarray) -> np.ndarray:
        r = A @ x - b
        return A.T @ (p * np.abs(r) ** (p - 1) * np.sign(r))

    ref = minimize(f, x0, jac=grad, method="BFGS", options={"gtol": 1e-12, "maxiter": 10_000})
    ours = res.objective**p
    assert ours <= ref.fun * (1 + 1e-6)
    assert abs(ours - ref.fun) <= 1e-6 * ref.fun


def test_l2_regression_is_least_squares() -> None:
    A, b = _lp_problem()
    res = rl.lp_regression(A, b, 2.0)
    np.testing.assert_allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0], rtol=1e-10)
    assert res.iterations == 0 and res.converged


def test_lp_regression_on_a_coreset() -> None:
    A, b = _lp_problem(20_000, 4, seed=12)
    full = rl.lp_regression(A, b, 1.0)
    for seed in range(3):
        sub = rl.lp_regression(A, b, 1.0, sample=2000, rng=seed)
        assert full.objective <= sub.objective <= 1.2 * full.objective


def test_lp_regression_bad_input() -> None:
    A, b = _lp_problem(50, 3)
    with pytest.raises(ValueError):
        rl.lp_regression(A, b, 0.5)
    with pytest.raises(ValueError):
        rl.lp_regression(A, b[:-1], 1.0)
    with pytest.raises(ValueError):
        rl.lp_regression(A, b, 1.0, method="lp")
    with pytest.raises(ValueError):
        rl.lp_regression(A, b, 1.0, sample=2)
    with pytest.raises(ValueError):
        rl.lp_regression(A.T, b[:3], 1.0)
    bad = b.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rl.lp_regression(A, bad, 1.0)
    with pytest.warns(rl.ConvergenceWarning):
        rl.lp_regression(A, b, 1.0, maxiter=1)
